"""The kernels of the array-API trainers: the NumPy kernels' pure counterparts.

Each function with a leading underscore here is the array-API version of the NumPy kernel of
the same name (``kernels``, ``conv_kernels``, ``rnn_kernels``): it takes the array namespace
``xp`` first, then the NumPy kernel's inputs under the same parameter names (and, as
``NAME_shape``, the shape of the NumPy kernel's argument NAME where the result needs it), and
returns what the NumPy kernel writes, in the order ``RETURNS`` lists those parameters. Scratch
arrays are not needed. No ``out=``, no in-place update and no NumPy-only call, so that jax.jit
can trace them and PyTorch, CuPy, Dask and array-api-strict run them. Copied into a generated
module, source and all (``source(name)``, with the kernels they call: ``needed``); tested here
as they are, against the NumPy kernels and ``math.erf``.

erf and erfc (the standard has neither): the same approximations as ``kernels.py`` (W. J.
Cody's rational Chebyshev approximations in three intervals of |x|, every interval evaluated at
inputs clipped into it and the right one kept).

Convolution: the im2col as K*K strided slices stacked (m, C*K*K, Ho*Wo), then one batched
matmul; dW by a batched matmul summed over examples; dA as the transposed convolution it
is (the stride-dilated dZ, padded by K - 1, correlated with the flipped kernel, channels
swapped, then cropped by the padding), so that no scatter-add is needed. Max-pooling keeps the
NumPy kernel's 0/1 mask of each window's first maximum; a pooling's gradient is assembled from K*K pieces, tiled
when windows do not overlap (S >= K) and added up, each padded into place, when they do.
The recurrent layer loops over time steps as the NumPy kernel does, stacking the steps.
"""
from __future__ import annotations

from .kernels import _CODY_FAR, _CODY_MIDDLE, _CODY_NEAR_ZERO, needed_in, source_of

try:  # the generated module imports it the same way
    from array_api_compat import device as _device
except ImportError:  # symbackprop prints these kernels without array-api-compat
    _device = None

# The kernels a trainer's calls may name, and the kernels each one calls in turn.
DEPENDS = {"_erf": ("_erf_near_zero", "_erfc_tail"), "_erfc": ("_erf_near_zero", "_erfc_tail"),
           "_erf_near_zero": ("_rational", "_CODY_NEAR_ZERO"),
           "_erfc_tail": ("_rational", "_CODY_MIDDLE", "_CODY_FAR"),
           "_conv2d_forward": ("_pad", "_correlate"), "_correlate": ("_pool_windows",),
           "_conv2d_grad_input": ("_pad", "_correlate", "_dilate"),
           "_maxpool2d_forward": ("_pool_windows",), "_maxpool2d_backward": ("_unpool",),
           "_avgpool2d_forward": ("_pool_windows",), "_avgpool2d_backward": ("_unpool",),
           "_unpool": ("_pad", "_dilate")}
# (the coefficient tables are kernels.py's: one table for both kinds of kernel)

# What each kernel returns: the NumPy kernel's parameters it writes, in order (what a NumPy
# kernel keeps for the backward pass included: cols, mask, Xt, Z, H).
RETURNS = {
    "_erf": ("out",), "_erfc": ("out",),
    "_conv2d_forward": ("cols", "Z"), "_conv2d_dz_t": ("dZt",),
    "_conv2d_grad_params": ("dW", "db"), "_conv2d_grad_input": ("dA",),
    "_maxpool2d_forward": ("mask", "out"), "_maxpool2d_backward": ("dA",),
    "_avgpool2d_forward": ("out",), "_avgpool2d_backward": ("dA",),
    "_rnn_forward": ("Xt", "Z", "H"), "_rnn_every_step": ("A",), "_rnn_backward": ("dZ",),
    "_rnn_step_outer": ("out",), "_rnn_step_sum": ("out",),
}


def _rational(t, p, q):
    """P(t)/Q(t) in Cody's form, n = len(q): the numerator is Horner's scheme on
    p[n] t^n + p[0] t^(n-1) + ... + p[n-1], the denominator on t^n + q[0] t^(n-1) + ... + q[n-1]."""
    n = len(q)
    num, den = t * p[n], t
    for k in range(n - 1):
        num = (num + p[k]) * t
        den = (den + q[k]) * t
    return (num + p[n - 1]) / (den + q[n - 1])


def _erfc_tail(xp, a):
    """erfc(a) for a >= 0.46875 (Cody's second and third intervals), for every a >= 0.

    Below 0.46875 it gives erfc(0.46875); callers take that interval from ``_erf``'s first one.
    """
    # 0.46875 < a <= 4: erfc(a) = exp(-a^2) c(a)/d(a)
    middle = _rational(xp.clip(a, 0.46875, 4.0), *_CODY_MIDDLE)
    # a > 4: erfc(a) = exp(-a^2) (1/sqrt(pi) - w p(w)/q(w)) / a with w = 1/a^2; beyond 27.3
    # erfc is 0 in float64 (below the least subnormal), so a stops there
    y = xp.clip(a, 4.0, 27.3)
    w = 1.0 / (y * y)
    far = (5.6418958354775628695e-1 - _rational(w, *_CODY_FAR) * w) / y
    r = xp.where(a > 4.0, far, middle)
    # times exp(-a^2) = exp(-h^2) exp(-(a - h)(a + h)), h = a rounded down to 1/16: h^2 exact
    y = xp.clip(a, 0.46875, 27.3)
    h = xp.trunc(y * 16.0) * 0.0625
    return r * xp.exp(-(h * h)) * xp.exp(-((y - h) * (y + h)))


def _erf_near_zero(xp, x):
    """erf(x1) = x1 a(x1^2)/b(x1^2), x1 = x clipped to [-0.46875, 0.46875]."""
    x1 = xp.clip(x, -0.46875, 0.46875)
    return _rational(x1 * x1, *_CODY_NEAR_ZERO) * x1


def _erf(xp, x):
    """erf(x), entry by entry, relative error below 1e-15 in float64."""
    tail = xp.copysign(1.0 - _erfc_tail(xp, xp.abs(x)), x)  # sign(x) (1 - erfc(|x|))
    return xp.where(xp.abs(x) > 0.46875, tail, _erf_near_zero(xp, x))


def _erfc(xp, x):
    """erfc(x) = 1 - erf(x), entry by entry, without cancellation for large x (relative
    error below 1e-14 in float64 until it underflows near x = 26.5)."""
    tail = _erfc_tail(xp, xp.abs(x))
    tail = xp.where(x < 0.0, 2.0 - tail, tail)  # erfc(x) = 2 - erfc(|x|) for x < 0
    return xp.where(xp.abs(x) > 0.46875, tail, 1.0 - _erf_near_zero(xp, x))


# --- convolution ------------------------------------------------------------------------------

def _pad(xp, A, top, bottom, left, right):
    """A (m, C, H, W) with rows of zeros added above and below and columns left and right."""
    m, C, H, W = A.shape
    dtype, device = A.dtype, _device(A)
    if top or bottom:
        A = xp.concat([xp.zeros((m, C, top, W), dtype=dtype, device=device), A,
                       xp.zeros((m, C, bottom, W), dtype=dtype, device=device)], axis=2)
    if left or right:
        H = A.shape[2]
        A = xp.concat([xp.zeros((m, C, H, left), dtype=dtype, device=device), A,
                       xp.zeros((m, C, H, right), dtype=dtype, device=device)], axis=3)
    return A


def _pool_windows(xp, A, K, S, Ho, Wo):
    """The K*K strided slices A[:, :, S x + u, S y + v] (x < Ho, y < Wo), u-major order."""
    return [A[:, :, u:u + S * (Ho - 1) + 1:S, v:v + S * (Wo - 1) + 1:S]
            for u in range(K) for v in range(K)]


def _correlate(xp, Ap, W, S):
    """(cols, Z): the cross-correlation Z (m, F, Ho, Wo) of Ap (m, C, Hp, Wp), already padded,
    with W (F, C, K, K) at stride S, and cols (m, C*K*K, Ho*Wo), the im2col it multiplies:
    row (c, u, v) of example i holds Ap[i, c, S x + u, S y + v] in column (x, y)."""
    m, C, Hp, Wp = Ap.shape
    F, K = W.shape[0], W.shape[2]
    Ho, Wo = (Hp - K) // S + 1, (Wp - K) // S + 1
    cols = xp.reshape(xp.stack(_pool_windows(xp, Ap, K, S, Ho, Wo), axis=2),
                      (m, C * K * K, Ho * Wo))
    Z = xp.matmul(xp.reshape(W, (F, C * K * K)), cols)
    return cols, xp.reshape(Z, (m, F, Ho, Wo))


def _conv2d_forward(xp, A, W, b, S, P):
    """Z = conv2d(A, W, b, stride S, zero padding P), as torch.nn.functional.conv2d, and cols,
    the im2col of the padded input (m, C*K*K, Ho*Wo), kept for dW."""
    cols, Z = _correlate(xp, _pad(xp, A, P, P, P, P) if P else A, W, S)
    return cols, Z + xp.reshape(b, (W.shape[0], 1, 1))


def _conv2d_dz_t(xp, dZ):
    """dZ as the gradients below read it: the array itself (the NumPy kernel's transposed
    copy is its own layout)."""
    return dZ


def _conv2d_grad_params(xp, dZt, cols, scale, dW_shape):
    """(dW, db) = scale (dJ/dW, dJ/db) of a convolution from dZt = dJ/dZ (m, F, Ho, Wo) and
    cols from ``_conv2d_forward``: dW the sum over examples of a batched matmul (on torch 2x
    faster than one tensordot over examples and positions)."""
    m, F = dZt.shape[0], dZt.shape[1]
    d = xp.reshape(dZt, (m, F, cols.shape[2]))
    dW = xp.reshape(xp.sum(xp.matmul(d, xp.permute_dims(cols, (0, 2, 1))), axis=0), dW_shape)
    db = xp.sum(d, axis=(0, 2))
    return (dW, db) if scale == 1 else (dW * scale, db * scale)


def _dilate(xp, d, S):
    """d (m, F, Ho, Wo) with S - 1 rows and columns of zeros between its rows and columns:
    (m, F, S (Ho - 1) + 1, S (Wo - 1) + 1)."""
    if S == 1:
        return d
    m, F, Ho, Wo = d.shape
    z = xp.zeros_like(d)
    d = xp.reshape(xp.stack([d] + [z] * (S - 1), axis=3), (m, F, Ho * S, Wo))
    d = d[:, :, :S * (Ho - 1) + 1, :]
    z = xp.zeros_like(d)
    d = xp.reshape(xp.stack([d] + [z] * (S - 1), axis=4), (m, F, d.shape[2], Wo * S))
    return d[:, :, :, :S * (Wo - 1) + 1]


def _conv2d_grad_input(xp, dZt, W, S, P, dA_shape):
    """dA = dJ/dA (dA_shape: (m, C, H, W)) of a convolution from dZt = dJ/dZ: the
    stride-dilated dZ, padded by K - 1, correlated with the flipped kernel with its channels
    swapped, gives the gradient of the padded input over the rows and columns the windows
    reach (those past the last window get none); cropped by the padding."""
    K = W.shape[2]
    H, Wd = dA_shape[2], dA_shape[3]
    d = _dilate(xp, dZt, S)
    flipped = xp.permute_dims(xp.flip(W, axis=(2, 3)), (1, 0, 2, 3))  # (C, F, K, K)
    _, G = _correlate(xp, _pad(xp, d, K - 1, K - 1, K - 1, K - 1), flipped, 1)
    G = _pad(xp, G, 0, max(0, H + 2 * P - G.shape[2]), 0, max(0, Wd + 2 * P - G.shape[3]))
    return G[:, :, P:P + H, P:P + Wd]


# --- pooling ----------------------------------------------------------------------------------

def _maxpool2d_forward(xp, A, K, S):
    """(mask, out): out = max_pool2d(A, K, stride S), and mask (K*K, m, C, Ho, Wo), as the
    NumPy kernel's: mask[u K + v] is 1 where A[:, :, S x + u, S y + v] is the first maximum of
    window (x, y) in row-major order, else 0 (in A's dtype)."""
    H, W = A.shape[2], A.shape[3]
    windows = _pool_windows(xp, A, K, S, (H - K) // S + 1, (W - K) // S + 1)
    out = xp.max(xp.stack(windows, axis=0), axis=0)
    masks, found = [], None
    for w in windows:  # (argmax over the stacked windows is 15x slower than this on torch)
        hit = w == out
        masks.append(hit if found is None else hit & ~found)
        found = hit if found is None else found | hit
    return xp.astype(xp.stack(masks, axis=0), A.dtype), out


def _unpool(xp, pieces, K, S, dA_shape):
    """dA (dA_shape: (m, C, H, W)) with dA[:, :, S x + u, S y + v] the sum of pieces[u K + v]
    [:, :, x, y] (m, C, Ho, Wo) over the windows that reach it; zero where none does."""
    m, C, Ho, Wo = pieces[0].shape
    H, W = dA_shape[2], dA_shape[3]
    if S >= K:  # no overlap: each window a tile of S x S, its last S - K rows and columns 0
        zero = xp.zeros_like(pieces[0])
        rows = [xp.stack([pieces[u * K + v] if u < K and v < K else zero for v in range(S)],
                         axis=4) for u in range(S)]
        dA = xp.reshape(xp.stack(rows, axis=3), (m, C, Ho * S, Wo * S))
        dA = dA[:, :, :min(H, Ho * S), :min(W, Wo * S)]
        return _pad(xp, dA, 0, H - dA.shape[2], 0, W - dA.shape[3])
    dA = None
    for u in range(K):
        for v in range(K):
            d = _dilate(xp, pieces[u * K + v], S)
            d = _pad(xp, d, u, H - u - d.shape[2], v, W - v - d.shape[3])
            dA = d if dA is None else dA + d
    return dA


def _maxpool2d_backward(xp, dP, mask, K, S, dA_shape):
    """dA = dJ/dA of max_pool2d from dP = dJ/d(out): each window's gradient goes to its first
    maximum (mask from ``_maxpool2d_forward``); where windows overlap (S < K) they add up."""
    return _unpool(xp, [mask[k, ...] * dP for k in range(K * K)], K, S, dA_shape)


def _avgpool2d_forward(xp, A, K, S):
    """out = avg_pool2d(A, K, stride S): the windows' sum times 1/K^2."""
    H, W = A.shape[2], A.shape[3]
    w = _pool_windows(xp, A, K, S, (H - K) // S + 1, (W - K) // S + 1)
    total = w[0]
    for a in w[1:]:
        total = total + a
    return total if K == 1 else total * (1.0 / (K * K))


def _avgpool2d_backward(xp, dP, K, S, dA_shape):
    """dA = dJ/dA of avg_pool2d from dP = dJ/d(out): dP/K^2 spread over each window, added up
    where windows overlap (S < K)."""
    return _unpool(xp, [dP * (1.0 / (K * K))] * (K * K), K, S, dA_shape)


# --- the recurrent layer ----------------------------------------------------------------------

def _rnn_forward(xp, X, W, b, U, act):
    """(Xt, Z, H): X (m, T, n) time major, and the pre-activations and states (T, m, H) of an
    Elman layer, Z_t = x_t W^T + H_{t-1} U^T + b, H_t = act(Z_t), H_{-1} = 0; the input
    projection of all steps is one matmul."""
    Xt = xp.permute_dims(X, (1, 0, 2))
    T, m, n = Xt.shape
    k = W.shape[0]
    Z0 = xp.reshape(xp.reshape(Xt, (T * m, n)) @ W.T + b, (T, m, k))
    Zs = [Z0[0, ...]]
    Hs = [act(Zs[0])]
    Ut = U.T
    for t in range(1, T):
        Zs.append(Z0[t, ...] + Hs[-1] @ Ut)
        Hs.append(act(Zs[-1]))
    return Xt, xp.stack(Zs, axis=0), xp.stack(Hs, axis=0)


def _rnn_every_step(xp, H):
    """A (m, T, H) = the states H (T, m, H) batch first."""
    return xp.permute_dims(H, (1, 0, 2))


def _rnn_backward(xp, dA, every_step, U, Z, H, dact):
    """dZ (T, m, H) = dJ/dZ of an Elman layer by backpropagation through time from dA, the
    error of what the layer passes on ((m, H), or (m, T, H) when every_step), scale included:
    dH_{T-1} = dA_{T-1}, dH_t = dA_t (every_step only) + dZ_{t+1} U, dZ_t = dact(dH_t, Z_t,
    H_t)."""
    T = Z.shape[0]
    dAs = [dA[:, t, :] for t in range(T)] if every_step else [dA] * T
    dZs = [dact(dAs[T - 1], Z[T - 1, ...], H[T - 1, ...])]
    for t in range(T - 2, -1, -1):
        dH = dZs[-1] @ U
        if every_step:
            dH = dH + dAs[t]
        dZs.append(dact(dH, Z[t, ...], H[t, ...]))
    return xp.stack(dZs[::-1], axis=0)


def _rnn_step_outer(xp, dZ, A, lag):
    """sum_t dZ_t^T A_{t-lag} (A_{t-lag} = 0 for t < lag), one matmul over every step: dW is
    lag 0 with A = Xt, dU lag 1 with A = H."""
    T, m, k = dZ.shape
    steps = T - lag
    if steps <= 0:
        return xp.zeros((k, A.shape[2]), dtype=dZ.dtype, device=_device(dZ))
    return xp.reshape(dZ[lag:, ...], (steps * m, k)).T @ xp.reshape(A[:steps, ...],
                                                                    (steps * m, A.shape[2]))


def _rnn_step_sum(xp, dZ):
    """The column sums of every step's block (db)."""
    return xp.sum(xp.reshape(dZ, (dZ.shape[0] * dZ.shape[1], dZ.shape[2])), axis=0)


def signature(name) -> list[str]:
    """The parameters of kernel ``name`` after ``xp``."""
    import inspect

    return list(inspect.signature(globals()[name]).parameters)[1:]


def needed(names) -> list[str]:
    """The kernels ``names`` call, with every kernel they call in turn, in a fixed order."""
    return needed_in(DEPENDS, names)


def source(name: str) -> str:
    """The source of kernel ``name``, as a generated module carries it."""
    return source_of(globals()[name], name)
