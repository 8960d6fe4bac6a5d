"""Convolution and pooling kernels for generated NumPy trainers (NCHW, as PyTorch lays them out).

Like ``kernels``, the functions with a leading underscore are copied into a generated module,
source and all (``source(name)``, with the kernels they call: ``needed``), and are imported and
tested as they are here, so the text a trainer carries is the text that was tested. They use
``np`` alone (and ``np.lib.stride_tricks.as_strided``), never allocate an array the size of a
feature map: every array they write, output or scratch, is passed in preallocated, and its
previous contents do not matter. ``scratch(kind, ...)`` gives the shapes to allocate.
Arrays are C-contiguous and of one floating dtype (float32 or float64), that of the inputs.

Conventions
    Feature maps A are (m, C, H, W), examples first. A convolution has weights W (F, C, K, K)
    and bias b (F,), stride S, zero padding P, and computes, as ``torch.nn.functional.conv2d``,
    the cross-correlation
        Z[i, f, x, y] = sum_{c,u,v} W[f, c, u, v] A[i, c, S x + u - P, S y + v - P] + b[f]
    with Ho = (H + 2P - K)//S + 1, Wo = (W + 2P - K)//S + 1.
    Pooling (kernel K, stride S, no padding, as ``torch.nn.functional.max_pool2d`` /
    ``avg_pool2d``) has Ho = (H - K)//S + 1: windows overlap when S < K, and rows or columns
    past the last window (a remainder) get no gradient. Max-pooling's gradient goes to the
    first maximum of each window in row-major order, as PyTorch's does.
    Flatten needs no kernel: a C-contiguous (m, C, H, W) array reshaped to (m, C*H*W) is a view
    in PyTorch's (channel, row, column) order.

How the convolution runs (one GEMM each way, the layout measured fastest on this project's
2-core VM; see benchmarks/README.md)
    cols (C*K*K, m*Ho*Wo), rows in (c, u, v) order and columns in (i, x, y) order, holds the
    im2col of the padded input: one strided copy from an ``as_strided`` window view. Then
        Zt = W2 cols            W2 = W.reshape(F, C*K*K), Zt (F, m*Ho*Wo)
        Z  = Zt, transposed to (m, F, Ho*Wo), + b     (one ufunc call)
    Backward, with dZt = dZ in the (F, m*Ho*Wo) layout (``_conv2d_dz_t``, one copy):
        dW = scale (cols dZt^T)^T,   db = scale sum over columns of dZt
        dcols = W2^T dZt,  and dA = col2im(dcols): K*K strided slice-adds of (m, C, ., .)
    blocks, each clipped to the rows and columns that lie inside the unpadded input, so the
    padding is cropped without a padded buffer. A single GEMM with m*Ho*Wo columns beat a
    batched matmul of m (F, C*K*K) x (C*K*K, Ho*Wo) products (the same on one thread, about
    2x faster forward with two threads), and cols dZt^T beat dZt cols^T on float32.

Calling sequence, per convolution layer (buffers from ``scratch``):
    forward:   _conv2d_forward(A, W, b, S, P, Ap, cols, Zt, Z)      keep cols for backward
    backward:  _conv2d_dz_t(dZ, dZt)
               _conv2d_grad_params(dZt, cols, scale, dWt, dW, db)
               _conv2d_grad_input(dZt, W, S, P, dcols, dA)         (not for the input layer)
    Zt and dZt may be the same buffer; dcols may be cols once _conv2d_grad_params has run.
"""
from __future__ import annotations

import inspect
import textwrap

import numpy as np

# The kernels a trainer's calls may name, and the kernels each one calls in turn.
DEPENDS = {"_conv2d_forward": ("_im2col",), "_maxpool2d_forward": ("_pool_windows",),
           "_maxpool2d_backward": ("_pool_windows",), "_avgpool2d_forward": ("_pool_windows",),
           "_avgpool2d_backward": ("_pool_windows",)}
KERNELS = ("_conv2d_forward", "_conv2d_dz_t", "_conv2d_grad_params", "_conv2d_grad_input",
           "_maxpool2d_forward", "_maxpool2d_backward", "_avgpool2d_forward",
           "_avgpool2d_backward")


# --- convolution ------------------------------------------------------------------------------

def _im2col(Ap, K, S, cols):
    """cols[(c, u, v), (i, x, y)] = Ap[i, c, S x + u, S y + v]: the im2col of Ap (m, C, Hp, Wp),
    already padded, into cols (C*K*K, m*Ho*Wo), Ho = (Hp - K)//S + 1, Wo = (Wp - K)//S + 1."""
    m, C, Hp, Wp = Ap.shape
    Ho, Wo = (Hp - K) // S + 1, (Wp - K) // S + 1
    si, sc, sh, sw = Ap.strides
    windows = np.lib.stride_tricks.as_strided(
        Ap, (C, K, K, m, Ho, Wo), (sc, sh, sw, si, S * sh, S * sw), writeable=False)
    np.copyto(cols.reshape(C, K, K, m, Ho, Wo), windows)


def _conv2d_forward(A, W, b, S, P, Ap, cols, Zt, Z):
    """Z = conv2d(A, W, b, stride S, zero padding P), as torch.nn.functional.conv2d.

    A (m, C, H, W) input; W (F, C, K, K) weights; b (F,) bias; S, P ints.
    Ap (m, C, H + 2P, W + 2P) scratch for the padded input, or None when P == 0 (its border
    is zeroed here, its interior overwritten with A).
    cols (C*K*K, m*Ho*Wo) output kept for the backward pass: the im2col of the padded input.
    Zt (F, m*Ho*Wo) scratch (the GEMM's result). Z (m, F, Ho, Wo) output.
    """
    m, C, H, Wd = A.shape
    F, K = W.shape[0], W.shape[2]
    if P:
        Ap[:, :, :P, :] = 0
        Ap[:, :, H + P:, :] = 0
        Ap[:, :, P:H + P, :P] = 0
        Ap[:, :, P:H + P, Wd + P:] = 0
        np.copyto(Ap[:, :, P:H + P, P:Wd + P], A)
    else:
        Ap = A
    _im2col(Ap, K, S, cols)
    np.dot(W.reshape(F, C * K * K), cols, Zt)
    n = Z.shape[2] * Z.shape[3]
    np.add(Zt.reshape(F, m, n).transpose(1, 0, 2), b.reshape(F, 1), Z.reshape(m, F, n))


def _conv2d_dz_t(dZ, dZt):
    """dZt = dZ (m, F, Ho, Wo) in the (F, m*Ho*Wo) layout the gradient GEMMs read."""
    m, F = dZ.shape[0], dZ.shape[1]
    n = dZ.shape[2] * dZ.shape[3]
    np.copyto(dZt.reshape(F, m, n), dZ.reshape(m, F, n).transpose(1, 0, 2))


def _conv2d_grad_params(dZt, cols, scale, dWt, dW, db):
    """dW = scale dJ/dW and db = scale dJ/db of a convolution, from dZt = dJ/dZ.

    dZt (F, m*Ho*Wo) from ``_conv2d_dz_t``; cols (C*K*K, m*Ho*Wo) as ``_conv2d_forward`` left
    it; scale a number (1 when the factor is folded into dZ). dWt (C*K*K, F) scratch.
    dW (F, C, K, K) and db (F,) outputs.
    """
    F = dZt.shape[0]
    np.dot(cols, dZt.T, dWt)
    np.multiply(dWt.T, scale, dW.reshape(F, dWt.shape[0]))
    np.add.reduce(dZt, 1, None, db)
    if scale != 1:
        np.multiply(db, scale, db)


def _conv2d_grad_input(dZt, W, S, P, dcols, dA):
    """dA = dJ/dA of a convolution: the stride-dilated dZ correlated with the flipped kernel
    and cropped by the padding, computed as dcols = W2^T dZt and a col2im of K*K slice-adds.

    dZt (F, m*Ho*Wo) from ``_conv2d_dz_t``; W (F, C, K, K); S, P ints.
    dcols (C*K*K, m*Ho*Wo) scratch (may be the forward's cols once its gradient is taken).
    dA (m, C, H, W) output.
    """
    F, C, K = W.shape[0], W.shape[1], W.shape[2]
    m, _, H, Wd = dA.shape
    Ho, Wo = (H + 2 * P - K) // S + 1, (Wd + 2 * P - K) // S + 1
    np.dot(W.reshape(F, C * K * K).T, dZt, dcols)
    d = dcols.reshape(C, K, K, m, Ho, Wo)
    dA[...] = 0
    # Output row x reads input row S x + u - P: keep the x for which it lies in [0, H), as
    # (x0, x1, first input row, end); the same for columns.
    rows, columns = [], []
    for u in range(K):
        x0, x1 = max(0, -((u - P) // S)), min(Ho, (H - 1 - u + P) // S + 1)
        rows.append((x0, x1, S * x0 + u - P, S * (x1 - 1) + u - P + 1))
        y0, y1 = max(0, -((u - P) // S)), min(Wo, (Wd - 1 - u + P) // S + 1)
        columns.append((y0, y1, S * y0 + u - P, S * (y1 - 1) + u - P + 1))
    for u in range(K):
        x0, x1, r0, r1 = rows[u]
        if x1 <= x0:
            continue
        for v in range(K):
            y0, y1, c0, c1 = columns[v]
            if y1 <= y0:
                continue
            target = dA[:, :, r0:r1:S, c0:c1:S]
            np.add(target, d[:, u, v, :, x0:x1, y0:y1].transpose(1, 0, 2, 3), target)


# --- pooling ----------------------------------------------------------------------------------

def _pool_windows(A, K, S, Ho, Wo):
    """The K*K strided views A[:, :, S x + u, S y + v] (x < Ho, y < Wo), u-major order."""
    out = []
    for u in range(K):
        for v in range(K):
            out.append(A[:, :, u:u + S * (Ho - 1) + 1:S, v:v + S * (Wo - 1) + 1:S])
    return out


def _maxpool2d_forward(A, K, S, R, E, mask, out):
    """out = max_pool2d(A, K, stride S), and the mask its gradient needs.

    A (m, C, H, W) input; K, S ints. R, E (m, C, Ho, Wo) scratch.
    mask (K*K, m, C, Ho, Wo) output kept for the backward pass: mask[u*K + v] is 1 where
    A[:, :, S x + u, S y + v] is the first maximum of window (x, y) in row-major order, else 0.
    out (m, C, Ho, Wo) output.
    """
    n = K * K
    w = _pool_windows(A, K, S, out.shape[2], out.shape[3])
    if n == 1:
        np.copyto(out, w[0])
        mask[0] = 1
        return
    np.maximum(w[0], w[1], out=out)
    for a in w[2:]:
        np.maximum(out, a, out=out)
    # R = 1 where the window's maximum is not found yet, scanning positions in row-major order
    np.equal(w[0], out, mask[0])
    np.subtract(1, mask[0], R)
    for k in range(1, n - 1):
        np.equal(w[k], out, E)
        np.multiply(E, R, mask[k])
        np.subtract(R, mask[k], R)
    np.copyto(mask[n - 1], R)


def _maxpool2d_backward(dP, mask, K, S, T, dA):
    """dA = dJ/dA of max_pool2d from dP = dJ/d(out): each window's gradient goes to its first
    maximum; where windows overlap (S < K) the gradients add up.

    dP (m, C, Ho, Wo); mask (K*K, m, C, Ho, Wo) from ``_maxpool2d_forward``; K, S ints.
    T (m, C, Ho, Wo) scratch when S < K, else unused (None will do). dA (m, C, H, W) output.
    """
    Ho, Wo = dP.shape[2], dP.shape[3]
    w = _pool_windows(dA, K, S, Ho, Wo)
    if S >= K:
        if S != K or dA.shape[2] != K * Ho or dA.shape[3] != K * Wo:
            dA[...] = 0  # positions in no window
        for k in range(K * K):
            np.multiply(mask[k], dP, w[k])
    else:
        dA[...] = 0
        for k in range(K * K):
            np.multiply(mask[k], dP, T)
            np.add(w[k], T, w[k])


def _avgpool2d_forward(A, K, S, out):
    """out = avg_pool2d(A, K, stride S). A (m, C, H, W); K, S ints; out (m, C, Ho, Wo)."""
    w = _pool_windows(A, K, S, out.shape[2], out.shape[3])
    if K == 1:
        np.copyto(out, w[0])
        return
    np.add(w[0], w[1], out)
    for a in w[2:]:
        np.add(out, a, out)
    np.multiply(out, 1.0 / (K * K), out)


def _avgpool2d_backward(dP, K, S, T, dA):
    """dA = dJ/dA of avg_pool2d from dP = dJ/d(out): dP/K^2 spread over each window, added up
    where windows overlap (S < K).

    dP (m, C, Ho, Wo); K, S ints. T (m, C, Ho, Wo) scratch. dA (m, C, H, W) output.
    """
    Ho, Wo = dP.shape[2], dP.shape[3]
    w = _pool_windows(dA, K, S, Ho, Wo)
    np.multiply(dP, 1.0 / (K * K), T)
    if S >= K:
        if S != K or dA.shape[2] != K * Ho or dA.shape[3] != K * Wo:
            dA[...] = 0
        for k in range(K * K):
            np.copyto(w[k], T)
    else:
        dA[...] = 0
        for k in range(K * K):
            np.add(w[k], T, w[k])


# --- plain Python helpers for the code generator (not copied into trainers) -------------------

def conv_size(n: int, K: int, S: int = 1, P: int = 0) -> int:
    """Output rows (or columns) of a convolution over n input rows: (n + 2P - K)//S + 1."""
    out = (n + 2 * P - K) // S + 1
    if K < 1 or S < 1 or P < 0 or out < 1:
        raise ValueError(f"no output for size {n}, kernel {K}, stride {S}, padding {P}")
    return out


def pool_size(n: int, K: int, S: int | None = None) -> int:
    """Output rows (or columns) of a pooling over n input rows: (n - K)//S + 1, S = K unless
    given."""
    return conv_size(n, K, K if S is None else S, 0)


def _sizes(kind, sizes, names):
    missing = [name for name in names if name not in sizes]
    if missing:
        raise TypeError(f"{kind} needs sizes {', '.join(missing)}")
    return [sizes[name] for name in names]


def buffers(kind: str, **sizes) -> dict:
    """Shapes of every array kernel ``kind`` writes, by the name of its parameter: scratch,
    what it keeps for the backward pass, and its outputs; None where the kernel takes None.

    Sizes by keyword: m, C, H, W (the layer's input), and F, K, S, P for a convolution
    (S = 1, P = 0 unless given), K and S for a pooling (S = K unless given). Allocate each
    with the trainer's dtype (np.empty will do: no kernel reads a buffer it did not write).
    """
    kind = kind if kind.startswith("_") else "_" + kind
    S_default = sizes.get("K") if "pool" in kind else 1
    sizes = {"S": S_default, "P": 0, **sizes}
    if kind.startswith("_conv2d"):
        m, C, H, W, F, K, S, P = _sizes(kind, sizes, ["m", "C", "H", "W", "F", "K", "S", "P"])
        Ho, Wo = conv_size(H, K, S, P), conv_size(W, K, S, P)
        n, ckk = m * Ho * Wo, C * K * K
        table = {
            "_conv2d_forward": {"Ap": (m, C, H + 2 * P, W + 2 * P) if P else None,
                                "cols": (ckk, n), "Zt": (F, n), "Z": (m, F, Ho, Wo)},
            "_conv2d_dz_t": {"dZt": (F, n)},
            "_conv2d_grad_params": {"dWt": (ckk, F), "dW": (F, C, K, K), "db": (F,)},
            "_conv2d_grad_input": {"dcols": (ckk, n), "dA": (m, C, H, W)},
        }
    elif kind.startswith(("_maxpool2d", "_avgpool2d")):
        m, C, H, W, K, S = _sizes(kind, sizes, ["m", "C", "H", "W", "K", "S"])
        Ho, Wo = pool_size(H, K, S), pool_size(W, K, S)
        small = (m, C, Ho, Wo)
        table = {
            "_maxpool2d_forward": {"R": small, "E": small, "mask": (K * K, *small),
                                   "out": small},
            "_maxpool2d_backward": {"T": small if S < K else None, "dA": (m, C, H, W)},
            "_avgpool2d_forward": {"out": small},
            "_avgpool2d_backward": {"T": small, "dA": (m, C, H, W)},
        }
    else:
        table = {}
    if kind not in table:
        raise KeyError(f"no kernel {kind!r}; kernels: {', '.join(KERNELS)}")
    return table[kind]


# The outputs of each kernel (the rest of ``buffers`` is scratch or kept for backward).
OUTPUTS = {"_conv2d_forward": ("Z",), "_conv2d_dz_t": ("dZt",),
           "_conv2d_grad_params": ("dW", "db"), "_conv2d_grad_input": ("dA",),
           "_maxpool2d_forward": ("out",), "_maxpool2d_backward": ("dA",),
           "_avgpool2d_forward": ("out",), "_avgpool2d_backward": ("dA",)}


def scratch(kind: str, **sizes) -> dict:
    """``buffers`` less the kernel's outputs: the scratch (and kept) arrays to allocate for
    kernel ``kind``, by parameter name, None where the kernel takes None."""
    kind = kind if kind.startswith("_") else "_" + kind
    return {name: shape for name, shape in buffers(kind, **sizes).items()
            if name not in OUTPUTS[kind]}


def needed(names) -> list[str]:
    """The kernels ``names`` call, with every kernel they call in turn, in a fixed order."""
    out, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo += DEPENDS.get(name, ())
    return sorted(out)


def source(name: str) -> str:
    """The source of kernel ``name``, as a generated module carries it."""
    return textwrap.dedent(inspect.getsource(globals()[name])).rstrip() + "\n"
