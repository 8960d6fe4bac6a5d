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

How the convolution runs (one GEMM each way; layouts measured on this project's 2-core VM,
see benchmarks/README.md)
    cols (C*K*K + 1, m*L) holds the im2col of the padded input Ap (m, C, Hp, Wp), Hp = H + 2P,
    Wp = W + 2P, with rows in (c, u, v) order and a last row of ones; for stride 1 column
    i*L + x*Wp + y with L = (Ho - 1)*Wp + Wo ("row-wide": output rows at the input's pitch,
    the Wp - Wo columns between them unused), for stride S > 1 column i*Ho*Wo + x*Wo + y
    (L = Ho*Wo). Then, with Wb = [W.reshape(F, C*K*K), b] (F, C*K*K + 1),
        Zt = Wb cols  (F, m*L): the bias comes with the GEMM;   Z = Zt seen as (m, F, Ho, Wo)
    Backward, with dZt = dZ in the layout of Zt, zeros in the unused columns (_conv2d_dz_t):
        cols dZt^T  (C*K*K + 1, F): its transpose is dW, its last row db (the ones row)
        dcols = Wr dZt  (Wr: W with rows in (u, v, c) order),  dA = col2im(dcols)
    With stride 1 an example's entries in a row of cols are L consecutive entries of
    Ap[i, c] from (u, v) on, so the im2col copy runs over long contiguous stretches, and the
    col2im is K*K adds, each one 2-D ufunc call over (C*m, L), into a (C, m, Hp, Wp) scratch
    that is then cropped and transposed into dA. The unused columns cost (Wp - Wo)/Wp more
    GEMM work. Measured against the compact layout (m*Ho*Wo columns, copies whose inner loops
    run over Wo entries): 1.6x faster for 8x12x12 -> 16x8x8 with K = 5, mostly in the col2im.
    Stride S > 1 uses the compact layout, its col2im adding into dA directly, each add
    clipped to the rows and columns inside the unpadded input.
    One GEMM over all examples beat a batched matmul of m products (as fast on one thread,
    about 2x faster forward with two), cols dZt^T beat dZt cols^T on float32, and the bias
    row saved a pass over Z in the forward and over dZt for db.

Calling sequence, per convolution layer (shapes from ``buffers`` / ``scratch``):
    forward:   _conv2d_forward(A, W, b, S, P, Ap, Wb, cols, Zt, Z)    keep cols for backward
    backward:  _conv2d_dz_t(dZ, S, W + 2P, dZt)
               _conv2d_grad_params(dZt, cols, scale, dWt, dW, db)
               _conv2d_grad_input(dZt, W, S, P, Wr, dcols, T, dA)    (not for the input layer)
    Zt and dZt may be the same buffer; dcols may be cols[:C*K*K] once _conv2d_grad_params has
    run (the forward rewrites the whole of cols).
"""
from __future__ import annotations

import inspect
import textwrap

import numpy as np

# The kernels a trainer's calls may name, and the kernels each one calls in turn.
DEPENDS = {"_conv2d_forward": ("_im2col", "_conv_view"), "_conv2d_dz_t": ("_conv_view",),
           "_maxpool2d_backward": ("_pool_windows",),
           "_avgpool2d_forward": ("_pool_windows",), "_avgpool2d_backward": ("_pool_windows",)}
KERNELS = ("_conv2d_forward", "_conv2d_dz_t", "_conv2d_grad_params", "_conv2d_grad_input",
           "_maxpool2d_forward", "_maxpool2d_backward", "_avgpool2d_forward",
           "_avgpool2d_backward")


# --- convolution ------------------------------------------------------------------------------

def _conv_view(Zt, m, Ho, Wo, Wp, S):
    """The (m, F, Ho, Wo) view of a (F, m*L) array in the column layout of ``conv_columns``."""
    n = Zt.shape[1] // m
    s = Zt.strides[1]
    pitch = Wp if S == 1 else Wo
    return np.lib.stride_tricks.as_strided(Zt, (m, Zt.shape[0], Ho, Wo),
                                           (n * s, Zt.strides[0], pitch * s, s))


def _im2col(Ap, K, S, cols):
    """cols = the im2col of Ap (m, C, Hp, Wp), already padded, into cols (C*K*K, m*L) (see
    ``conv_columns``): row (c, u, v), column (i, x, y) holds Ap[i, c, S x + u, S y + v].

    Stride 1: column i*L + x*Wp + y, so the entries of row (c, u, v) for one example are the
    L consecutive entries of Ap[i, c] from (u, v) on: the copy runs over long contiguous
    stretches. Stride S > 1: column i*Ho*Wo + x*Wo + y.
    """
    m, C, Hp, Wp = Ap.shape
    Ho, Wo = (Hp - K) // S + 1, (Wp - K) // S + 1
    si, sc, sh, sw = Ap.strides
    if S == 1:
        n = (Ho - 1) * Wp + Wo
        windows = np.lib.stride_tricks.as_strided(Ap, (C, K, K, m, n), (sc, sh, sw, si, sw),
                                                  writeable=False)
        np.copyto(cols.reshape(C, K, K, m, n), windows)
    else:
        windows = np.lib.stride_tricks.as_strided(
            Ap, (C, K, K, m, Ho, Wo), (sc, sh, sw, si, S * sh, S * sw), writeable=False)
        np.copyto(cols.reshape(C, K, K, m, Ho, Wo), windows)


def _conv2d_forward(A, W, b, S, P, Ap, Wb, cols, Zt, Z):
    """Z = conv2d(A, W, b, stride S, zero padding P), as torch.nn.functional.conv2d.

    A (m, C, H, W) input; W (F, C, K, K) weights; b (F,) bias; S, P ints.
    Ap (m, C, H + 2P, W + 2P) scratch for the padded input, or None when P == 0 (its border
    is zeroed here, its interior overwritten with A).
    Wb (F, C*K*K + 1) scratch: [W.reshape(F, C*K*K), b], so that the GEMM adds the bias.
    cols (C*K*K + 1, m*L) output kept for the backward pass (L from ``conv_columns``): the
    im2col of the padded input, and a last row of ones.
    Zt (F, m*L) scratch: the GEMM's result. Z (m, F, Ho, Wo) output.
    """
    m, C, H, Wd = A.shape
    F, K = W.shape[0], W.shape[2]
    n = C * K * K
    if P:
        Ap[:, :, :P, :] = 0
        Ap[:, :, H + P:, :] = 0
        Ap[:, :, P:H + P, :P] = 0
        Ap[:, :, P:H + P, Wd + P:] = 0
        np.copyto(Ap[:, :, P:H + P, P:Wd + P], A)
    else:
        Ap = A
    _im2col(Ap, K, S, cols[:n])
    cols[n] = 1
    np.copyto(Wb[:, :n], W.reshape(F, n))
    np.copyto(Wb[:, n], b)
    np.dot(Wb, cols, Zt)
    np.copyto(Z, _conv_view(Zt, m, Z.shape[2], Z.shape[3], Wd + 2 * P, S))


def _conv2d_dz_t(dZ, S, Wp, dZt):
    """dZt = dZ (m, F, Ho, Wo) in the (F, m*L) column layout of the convolution's cols, with
    zeros in the unused columns; S the stride, Wp = W + 2P the padded input's width."""
    m, _, Ho, Wo = dZ.shape
    if S == 1 and Wp != Wo and Ho > 1:
        dZt[...] = 0
    np.copyto(_conv_view(dZt, m, Ho, Wo, Wp, S), dZ)


def _conv2d_grad_params(dZt, cols, scale, dWt, dW, db):
    """dW = scale dJ/dW and db = scale dJ/db of a convolution, from dZt = dJ/dZ.

    dZt (F, m*L) from ``_conv2d_dz_t``; cols (C*K*K + 1, m*L) as ``_conv2d_forward`` left it
    (its row of ones gives db); scale a number (1 when the factor is folded into dZ).
    dWt (C*K*K + 1, F) scratch. dW (F, C, K, K) and db (F,) outputs.
    """
    F, n = dZt.shape[0], dWt.shape[0] - 1
    np.dot(cols, dZt.T, dWt)
    np.multiply(dWt[:n].T, scale, dW.reshape(F, n))
    np.multiply(dWt[n], scale, db)


def _conv2d_grad_input(dZt, W, S, P, Wr, dcols, T, dA):
    """dA = dJ/dA of a convolution: the stride-dilated dZ correlated with the flipped kernel
    and cropped by the padding, as dcols = W2^T dZt followed by a col2im of K*K slice-adds.

    dZt (F, m*L) from ``_conv2d_dz_t``; W (F, C, K, K); S, P ints.
    Wr (K, K, C, F) scratch: W with its rows in (u, v, c) order.
    dcols (C*K*K, m*L) scratch: it may be cols[:C*K*K] of the forward once dW is taken.
    T (C, m, H + 2P, W + 2P) scratch when S == 1, else None.
    dA (m, C, H, W) output.
    """
    F, C, K = W.shape[0], W.shape[1], W.shape[2]
    m, _, H, Wd = dA.shape
    Hp, Wp = H + 2 * P, Wd + 2 * P
    Ho, Wo = (Hp - K) // S + 1, (Wp - K) // S + 1
    np.copyto(Wr, W.transpose(2, 3, 1, 0))
    np.dot(Wr.reshape(K * K * C, F), dZt, dcols)
    if S == 1:
        # Row (u, v, c) of dcols adds, per example i, onto the L consecutive entries of the
        # padded gradient of channel c from (u, v) on (its unused columns are zero, as dZt's
        # are): with T in (c, i) order each add is one 2-D ufunc call over (C*m, L).
        n = (Ho - 1) * Wp + Wo
        d = dcols.reshape(K, K, C * m, n)
        T[...] = 0
        flat = T.reshape(C * m, Hp * Wp)
        for u in range(K):
            for v in range(K):
                t = flat[:, u * Wp + v:u * Wp + v + n]
                np.add(t, d[u, v], t)
        np.copyto(dA, T.transpose(1, 0, 2, 3)[:, :, P:H + P, P:Wd + P])
        return
    d = dcols.reshape(K, K, C, m, Ho, Wo)
    dA[...] = 0
    # Output row x reads input row S x + u - P: keep the x for which it lies in [0, H), as
    # (x0, x1, first input row, end); the same for columns. The padding is cropped so.
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
            t = dA[:, :, r0:r1:S, c0:c1:S]
            np.add(t, d[u, v, :, :, x0:x1, y0:y1].transpose(1, 0, 2, 3), t)


# --- pooling ----------------------------------------------------------------------------------

def _pool_windows(A, K, S, Ho, Wo):
    """The K*K strided views A[:, :, S x + u, S y + v] (x < Ho, y < Wo), u-major order."""
    out = []
    for u in range(K):
        for v in range(K):
            out.append(A[:, :, u:u + S * (Ho - 1) + 1:S, v:v + S * (Wo - 1) + 1:S])
    return out


def _maxpool2d_forward(A, K, S, R, mask, out):
    """out = max_pool2d(A, K, stride S), and the mask its gradient needs.

    A (m, C, H, W) input; K, S ints. R (m, C, Ho, Wo) scratch.
    mask (K*K, m, C, Ho, Wo) output kept for the backward pass: mask[u*K + v] is 1 where
    A[:, :, S x + u, S y + v] is the first maximum of window (x, y) in row-major order, else 0.
    out (m, C, Ho, Wo) output.
    """
    m, C, Ho, Wo = out.shape
    n = K * K
    si, sc, sh, sw = A.strides
    # the windows, copied once into mask: the rest runs on contiguous arrays
    windows = np.lib.stride_tricks.as_strided(A, (K, K, m, C, Ho, Wo),
                                              (sh, sw, si, sc, S * sh, S * sw), writeable=False)
    np.copyto(mask.reshape(K, K, m, C, Ho, Wo), windows)
    np.maximum.reduce(mask, 0, None, out)
    if n == 1:
        mask[0] = 1
        return
    np.equal(mask, out, mask)
    # R = 1 where the window's maximum is not found yet, scanning positions in row-major order
    np.subtract(1, mask[0], R)
    for k in range(1, n - 1):
        np.multiply(mask[k], R, mask[k])
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


def conv_columns(m: int, Ho: int, Wo: int, Wp: int, S: int) -> int:
    """Columns of a convolution's cols, Zt, dZt and dcols: m*L, with L = (Ho - 1)*Wp + Wo for
    stride 1 (row-wide: each example's output rows at the pitch Wp = W + 2P of the padded
    input, the Wp - Wo columns between them unused), L = Ho*Wo otherwise."""
    return m * ((Ho - 1) * Wp + Wo if S == 1 else Ho * Wo)


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
        n, ckk = conv_columns(m, Ho, Wo, W + 2 * P, S), C * K * K
        table = {
            "_conv2d_forward": {"Ap": (m, C, H + 2 * P, W + 2 * P) if P else None,
                                "Wb": (F, ckk + 1), "cols": (ckk + 1, n), "Zt": (F, n),
                                "Z": (m, F, Ho, Wo)},
            "_conv2d_dz_t": {"dZt": (F, n)},
            "_conv2d_grad_params": {"dWt": (ckk + 1, F), "dW": (F, C, K, K), "db": (F,)},
            "_conv2d_grad_input": {"Wr": (K, K, C, F), "dcols": (ckk, n),
                                   "T": (C, m, H + 2 * P, W + 2 * P) if S == 1 else None,
                                   "dA": (m, C, H, W)},
        }
    elif kind.startswith(("_maxpool2d", "_avgpool2d")):
        m, C, H, W, K, S = _sizes(kind, sizes, ["m", "C", "H", "W", "K", "S"])
        Ho, Wo = pool_size(H, K, S), pool_size(W, K, S)
        small = (m, C, Ho, Wo)
        table = {
            "_maxpool2d_forward": {"R": small, "mask": (K * K, *small), "out": small},
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
