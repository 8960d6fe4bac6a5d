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

How the convolution runs (one GEMM each way; the layouts measured fastest on this project's
2-core VM, see benchmarks/README.md)
    cols (C*K*K + 1, m*Ho*Wo) holds the im2col of the padded input Ap (m, C, Hp, Wp),
    Hp = H + 2P, Wp = W + 2P: rows in (c, u, v) order, columns in (i, x, y) order, and a last
    row of ones. With Wb = [W.reshape(F, C*K*K), b] (F, C*K*K + 1),
        Zt = Wb cols  (F, m*Ho*Wo), the bias added by the GEMM;   Z = Zt transposed to NCHW
    Backward, with dZt = dZ transposed to (F, m*Ho*Wo) (``_conv2d_dz_t``):
        cols dZt^T  (C*K*K + 1, F): its first C*K*K rows are dW^T, its last row db
        dcols = W2^T dZt  (C*K*K, m*Ho*Wo),   dA = col2im(dcols)
    The im2col and the col2im are separable, through a scratch R (C, K, m, Hp, Wo) that holds
    the input's columns shifted by each v: the im2col is two strided copies, and the col2im
    K adds over u into R and K adds over v into dA (2K ufunc calls, not K*K), the second
    clipped to the columns inside the unpadded input while the rows are cropped. With stride
    1 the (x, y) block of an example is contiguous in both cols and R, so the copies and adds
    run over long stretches instead of rows of Wo entries.
    Measured on that VM, per convolution layer (forward and all gradients, interleaved
    runs): 1.0-1.5x faster than a compact im2col done as one 6-d strided copy with a col2im of
    K*K strided adds, and 1.0-1.5x faster than a "row-wide" layout (output rows at the
    input's pitch Wp: contiguous copies, but (Wp - Wo)/Wo more columns in every GEMM and a
    strided copy to Z and to dZt). One GEMM over all examples beat a batched matmul of m
    products (as fast on one thread, about 2x faster forward with two), cols dZt^T beat
    dZt cols^T on float32, and the bias row saved a pass over Z in the forward and one over
    dZt for db.

Calling sequence, per convolution layer (shapes from ``buffers`` / ``scratch``):
    forward:   _conv2d_forward(A, W, b, S, P, Ap, R, Wb, cols, Zt, Z)  keep cols for backward
    backward:  _conv2d_dz_t(dZ, dZt)
               _conv2d_grad_params(dZt, cols, scale, dWt, dW, db)
               _conv2d_grad_input(dZt, W, S, P, R, dcols, dA)        (not for the input layer)
    Zt and dZt may be the same buffer, R the forward's R, and dcols the forward's cols once
    _conv2d_grad_params has run (the forward rewrites the whole of cols).
"""
from __future__ import annotations

import numpy as np

# The kernels a trainer's calls may name, and the kernels each one calls in turn.
DEPENDS = {"_conv2d_forward": ("_im2col",), "_conv2d_grad_input": ("_col2im",),
           "_maxpool2d_backward": ("_pool_windows",),
           "_avgpool2d_forward": ("_pool_windows",), "_avgpool2d_backward": ("_pool_windows",)}
KERNELS = ("_conv2d_forward", "_conv2d_dz_t", "_conv2d_grad_params", "_conv2d_grad_input",
           "_maxpool2d_forward", "_maxpool2d_backward", "_avgpool2d_forward",
           "_avgpool2d_backward")


# --- convolution ------------------------------------------------------------------------------

def _im2col(Ap, K, S, R, cols):
    """cols = the im2col of Ap (m, C, Hp, Wp), already padded: row (c, u, v), column (i, x, y)
    of cols (C*K*K, m*Ho*Wo) holds Ap[i, c, S x + u, S y + v], Ho = (Hp - K)//S + 1,
    Wo = (Wp - K)//S + 1. Two copies, one per kernel axis: first the columns,
    R[c, v, i, h, y] = Ap[i, c, h, S y + v] into R (C, K, m, Hp, Wo), then the rows,
    cols[(c, u, v), (i, x, y)] = R[c, v, i, S x + u, y]; with S = 1 the (x, y) entries of an
    example in a row of cols are Ho consecutive rows of R, one contiguous stretch."""
    m, C, Hp = Ap.shape[0], Ap.shape[1], Ap.shape[2]
    Ho, Wo = (Hp - K) // S + 1, R.shape[4]
    si, sc, sh, sw = Ap.strides
    np.copyto(R, np.lib.stride_tricks.as_strided(Ap, (C, K, m, Hp, Wo),
                                                 (sc, sw, si, sh, S * sw), writeable=False))
    rc, rv, ri, rh, ry = R.strides
    np.copyto(cols.reshape(C, K, K, m, Ho, Wo),
              np.lib.stride_tricks.as_strided(R, (C, K, K, m, Ho, Wo),
                                              (rc, rh, rv, ri, S * rh, ry), writeable=False))


def _col2im(dcols, K, S, P, R, dA):
    """dA = the col2im of dcols (C*K*K, m*Ho*Wo) (rows (c, u, v), columns (i, x, y)) cropped
    by the padding: dA[i, c, S x + u - P, S y + v - P] summed over every (u, v, x, y) that
    lands inside dA (m, C, H, W). R (C, K, m, H + 2P, Wo) scratch.

    Separable, K + K adds: first over u, R[c, v, i, S x + u, y] += dcols[(c, u, v), (i, x, y)]
    (each add one ufunc call over C*K*m blocks of Ho*Wo entries, contiguous with S = 1), then
    over v, dA[i, c, h - P, S y + v - P] += R[c, v, i, h, y] on the rows and columns inside
    the unpadded input.
    """
    m, C, H, Wd = dA.shape
    Ho, Wo = (H + 2 * P - K) // S + 1, R.shape[4]
    d = dcols.reshape(C, K, K, m, Ho, Wo)
    R[...] = 0
    for u in range(K):
        t = R[:, :, :, u:u + S * (Ho - 1) + 1:S, :]
        np.add(t, d[:, u], t)
    dA[...] = 0
    for v in range(K):
        # column S y + v - P of dA, for the y that put it inside [0, W)
        y0, y1 = max(0, -((v - P) // S)), min(Wo, (Wd - 1 - v + P) // S + 1)
        if y1 > y0:
            t = dA[:, :, :, S * y0 + v - P:S * (y1 - 1) + v - P + 1:S]
            np.add(t, R[:, v, :, P:H + P, y0:y1].transpose(1, 0, 2, 3), t)


def _conv2d_forward(A, W, b, S, P, Ap, R, Wb, cols, Zt, Z):
    """Z = conv2d(A, W, b, stride S, zero padding P), as torch.nn.functional.conv2d.

    A (m, C, H, W) input; W (F, C, K, K) weights; b (F,) bias; S, P ints.
    Ap (m, C, H + 2P, W + 2P) scratch for the padded input, or None when P == 0 (its border
    is zeroed here, its interior overwritten with A).
    R (C, K, m, H + 2P, Wo) scratch. Wb (F, C*K*K + 1) scratch: [W.reshape(F, C*K*K), b].
    cols (C*K*K + 1, m*Ho*Wo) output kept for the backward pass: the im2col of the padded
    input, and a last row of ones (so that the GEMM adds the bias).
    Zt (F, m*Ho*Wo) scratch: the GEMM's result. Z (m, F, Ho, Wo) output.
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
    _im2col(Ap, K, S, R, cols[:n])
    cols[n] = 1
    np.copyto(Wb[:, :n], W.reshape(F, n))
    np.copyto(Wb[:, n], b)
    np.dot(Wb, cols, Zt)
    k = Z.shape[2] * Z.shape[3]
    np.copyto(Z.reshape(m, F, k), Zt.reshape(F, m, k).transpose(1, 0, 2))


def _conv2d_dz_t(dZ, dZt):
    """dZt = dZ (m, F, Ho, Wo) in the (F, m*Ho*Wo) layout of Zt: examples after channels."""
    m, F = dZ.shape[0], dZ.shape[1]
    k = dZ.shape[2] * dZ.shape[3]
    np.copyto(dZt.reshape(F, m, k), dZ.reshape(m, F, k).transpose(1, 0, 2))


def _conv2d_grad_params(dZt, cols, scale, dWt, dW, db):
    """dW = scale dJ/dW and db = scale dJ/db of a convolution, from dZt = dJ/dZ.

    dZt (F, m*Ho*Wo) from ``_conv2d_dz_t``; cols (C*K*K + 1, m*Ho*Wo) as ``_conv2d_forward``
    left it (its row of ones gives db); scale a number (1 when the factor is folded into dZ).
    dWt (C*K*K + 1, F) scratch. dW (F, C, K, K) and db (F,) outputs.
    """
    F, n = dZt.shape[0], dWt.shape[0] - 1
    np.dot(cols, dZt.T, dWt)
    np.multiply(dWt[:n].T, scale, dW.reshape(F, n))
    np.multiply(dWt[n], scale, db)


def _conv2d_grad_input(dZt, W, S, P, R, dcols, dA):
    """dA = dJ/dA of a convolution: the stride-dilated dZ correlated with the flipped kernel
    and cropped by the padding, as dcols = W2^T dZt (one GEMM) and a separable col2im.

    dZt (F, m*Ho*Wo) from ``_conv2d_dz_t``; W (F, C, K, K); S, P ints.
    R (C, K, m, H + 2P, Wo) scratch (it may be the forward's).
    dcols (C*K*K, m*Ho*Wo) scratch, or the forward's cols (C*K*K + 1, m*Ho*Wo) once dW is
    taken: its first C*K*K rows are written.
    dA (m, C, H, W) output.
    """
    F, C, K = W.shape[0], W.shape[1], W.shape[2]
    n = C * K * K
    dcols = dcols[:n]
    np.dot(W.reshape(F, n).T, dZt, dcols)
    _col2im(dcols, K, S, P, R, dA)


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
        R = (C, K, m, H + 2 * P, Wo)
        table = {
            "_conv2d_forward": {"Ap": (m, C, H + 2 * P, W + 2 * P) if P else None, "R": R,
                                "Wb": (F, ckk + 1), "cols": (ckk + 1, n), "Zt": (F, n),
                                "Z": (m, F, Ho, Wo)},
            "_conv2d_dz_t": {"dZt": (F, n)},
            "_conv2d_grad_params": {"dWt": (ckk + 1, F), "dW": (F, C, K, K), "db": (F,)},
            "_conv2d_grad_input": {"R": R, "dcols": (ckk, n), "dA": (m, C, H, W)},
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
    from .kernels import needed_in

    return needed_in(DEPENDS, names)


def source(name: str) -> str:
    """The source of kernel ``name``, as a generated module carries it."""
    from .kernels import source_of

    return source_of(globals()[name])
