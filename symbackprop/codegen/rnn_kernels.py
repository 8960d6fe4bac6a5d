"""Elman recurrent-layer kernels for generated NumPy trainers (batch first, as PyTorch's
``batch_first=True``): the forward recurrence and backpropagation through time.

Like ``kernels`` and ``conv_kernels``, the functions with a leading underscore are copied into
a generated module, source and all (``source(name)``, with the kernels they call: ``needed``),
and are imported and tested as they are here, so the text a trainer carries is the text that
was tested. They use ``np`` alone and never allocate an array the size of the data: every
array they write, output or scratch, is passed in preallocated, and its previous contents do
not matter. ``buffers(kind, ...)`` / ``scratch(kind, ...)`` give the shapes to allocate.
Arrays are C-contiguous and of one floating dtype (float32 or float64), that of the inputs.

Conventions
    X (m, T, n) holds m sequences of T steps of n features, examples first. The layer has
    input weights W (H, n), recurrent weights U (H, H) and bias b (H,), and computes, as
    ``torch.nn.RNN(n, H, batch_first=True)`` with one bias (torch's b_ih + b_hh),
        Z_t = x_t W^T + H_{t-1} U^T + b,   H_t = g(Z_t),   t = 0 .. T-1,   H_{-1} = 0
    in rows-are-examples form (Z_t, H_t, x_t are (m, H), (m, H), (m, n) blocks).
    The activation is not fixed here: the caller passes ``act(Z_t, H_t)``, which writes
    g(Z_t) into H_t, and, for BP4, ``dact(dH_t, Z_t, H_t, dZ_t)``, which writes
    dZ_t = dH_t * g'(Z_t) into dZ_t and may read Z_t and H_t (tanh and the logistic σ use the
    output form: 1 - H_t^2, H_t (1 - H_t)). A generated trainer prints both from the
    derivation's maps; each may keep scratch arrays of its own (closures).
    Many-to-one, the layer passes on its last state H_{T-1}, an (m, H) view ``H[T - 1]`` (no
    kernel); many-to-many, it passes on every step, A (m, T, H) batch first
    (``_rnn_every_step``), so that A.reshape(m*T, H) has row T i + t for example i at step t,
    the derivation's column order.

How it runs
    Internally the layer is time major: Xt (T, m, n), Z and H (T, m, H), so that each step's
    block is contiguous (np.dot writes only C-contiguous outputs) and a whole sequence of
    blocks is one (T*m, .) matrix for the GEMMs over all steps at once.
    Forward: Xt = X transposed (one copy), Z = Xt W^T + b for all steps as ONE GEMM and one
    add, then per step S = H_{t-1} U^T (one GEMM), Z_t += S, H_t = act(Z_t): a loop over time
    steps only, none over examples; the loops walk lists of the steps' views, made once.
    Backward (BPTT), from dA = dJ/dA (the last state's error, (m, H), or every step's,
    (m, T, H)), the scale (1/m, or lr/m while training) already in it:
        dH_{T-1} = dA_{T-1},   dH_t = dA_t [many-to-many only] + dZ_{t+1} U,   t < T-1
        dZ_t = dact(dH_t, Z_t, H_t)
    one GEMM and one map per step; then over all steps at once (``_rnn_step_outer``,
    ``_rnn_step_sum``)
        dW = dZ^T Xt (one GEMM), dU = dZ_{1..T-1}^T H_{0..T-2} (one GEMM: H_{-1} = 0 adds
        nothing), db = the column sums of dZ (one reduction).

Calling sequence, per recurrent layer (shapes from ``buffers`` / ``scratch``):
    forward:   _rnn_forward(X, W, b, U, act, Xt, S, Z, H)      keep Xt, Z, H for backward
               _rnn_every_step(H, A)                             (many-to-many only)
    backward:  _rnn_backward(dA, every_step, U, Z, H, dact, dH, dZ)
               _rnn_step_outer(dZ, Xt, 0, dW)
               _rnn_step_outer(dZ, H, 1, dU)
               _rnn_step_sum(dZ, db)
    dH may be the forward's S. No gradient for X is computed (the layer reads the input).
"""
from __future__ import annotations

import numpy as np

# The kernels a trainer's calls may name, and the kernels each one calls in turn.
DEPENDS: dict = {}
KERNELS = ("_rnn_forward", "_rnn_every_step", "_rnn_backward", "_rnn_step_outer",
           "_rnn_step_sum")


def _rnn_forward(X, W, b, U, act, Xt, S, Z, H):
    """H = the states of an Elman layer over X: Z_t = x_t W^T + H_{t-1} U^T + b and
    H_t = act(Z_t) for t = 0 .. T-1, H_{-1} = 0; the input projection of all steps is one GEMM.

    X (m, T, n) input; W (H, n), b (H,), U (H, H) parameters; act(Z_t, H_t) writes g(Z_t)
    into H_t. Xt (T, m, n) output kept for the backward pass: X time major. S (m, H) scratch.
    Z (T, m, H) and H (T, m, H) outputs, time major (Z is kept for BP4).
    """
    T, m, n = Xt.shape
    k = Z.shape[2]
    np.copyto(Xt, X.transpose(1, 0, 2))
    Z2 = Z.reshape(T * m, k)
    np.dot(Xt.reshape(T * m, n), W.T, Z2)
    np.add(Z2, b, Z2)
    # the steps' blocks as views made once (an index per use makes a view per use)
    Hs = list(H)
    act(Z[0], Hs[0])
    Ut = U.T
    for H_prev, Z_t, H_t in zip(Hs, Z[1:], Hs[1:]):
        np.dot(H_prev, Ut, S)
        np.add(Z_t, S, Z_t)
        act(Z_t, H_t)


def _rnn_every_step(H, A):
    """A (m, T, H) = the states H (T, m, H) batch first: A[i, t] = H_t of example i."""
    np.copyto(A, H.transpose(1, 0, 2))


def _rnn_backward(dA, every_step, U, Z, H, dact, dH, dZ):
    """dZ = dJ/dZ of an Elman layer by backpropagation through time, from dA = dJ/dA.

    dA: the error of the states the layer passes on, scale included: (m, H) for the last
    state (every_step False) or (m, T, H), batch first, for every step (every_step True).
    U (H, H); Z, H (T, m, H) from ``_rnn_forward``; dact(dH_t, Z_t, H_t, dZ_t) writes
    dH_t * g'(Z_t) into dZ_t (it must not write dH_t: that may be dA's memory).
    dH (m, H) scratch (it may be the forward's S). dZ (T, m, H) output, time major.
    dH_{T-1} = dA_{T-1};  dH_t = dA_t (every_step only) + dZ_{t+1} U for t < T-1.
    """
    T = Z.shape[0]
    Zs, Hs, dZs = list(Z), list(H), list(dZ)
    dAs = list(dA.transpose(1, 0, 2)) if every_step else [dA] * T
    dact(dAs[T - 1], Zs[T - 1], Hs[T - 1], dZs[T - 1])
    for t in range(T - 2, -1, -1):
        np.dot(dZs[t + 1], U, dH)
        if every_step:
            np.add(dH, dAs[t], dH)
        dact(dH, Zs[t], Hs[t], dZs[t])


def _rnn_step_outer(dZ, A, lag, out):
    """out = sum_t dZ_t^T A_{t-lag} (A_{t-lag} = 0 for t < lag), one GEMM over every step at
    once; the scale is dZ's.

    dW is lag 0 with A = Xt, dU lag 1 with A = H (H_{-1} = 0 adds nothing).
    dZ (T, m, H) from ``_rnn_backward``; A (T, m, k) time major (``_rnn_forward``'s Xt or H).
    out (H, k) output.
    """
    T, m, k = dZ.shape
    steps = T - lag
    if steps <= 0:
        out[...] = 0
        return
    np.dot(dZ[lag:].reshape(steps * m, k).T, A[:steps].reshape(steps * m, A.shape[2]), out)


def _rnn_step_sum(dZ, out):
    """out = sum_t dZ_t^T 1, the column sums of every step's block at once (db).

    dZ (T, m, H); out (H,) output.
    """
    np.add.reduce(dZ.reshape(dZ.shape[0] * dZ.shape[1], dZ.shape[2]), 0, None, out)


# --- plain Python helpers for the code generator (not copied into trainers) -------------------

def buffers(kind: str, **sizes) -> dict:
    """Shapes of every array kernel ``kind`` writes, by the name of its parameter: scratch,
    what it keeps for the backward pass, and its outputs.

    Sizes by keyword: m (examples), T (steps), n (input features), H (units), and lag (0 or 1)
    for ``_rnn_step_outer``. Allocate each
    with the trainer's dtype (np.empty will do: no kernel reads a buffer it did not write).
    """
    kind = kind if kind.startswith("_") else "_" + kind
    missing = [name for name in ("m", "T", "n", "H") if name not in sizes]
    if missing:
        raise TypeError(f"{kind} needs sizes {', '.join(missing)}")
    m, T, n, H = (sizes[name] for name in ("m", "T", "n", "H"))
    table = {
        "_rnn_forward": {"Xt": (T, m, n), "S": (m, H), "Z": (T, m, H), "H": (T, m, H)},
        "_rnn_every_step": {"A": (m, T, H)},
        "_rnn_backward": {"dH": (m, H), "dZ": (T, m, H)},
        # dW (lag 0, reading Xt) or dU (lag 1, reading H)
        "_rnn_step_outer": {"out": (H, n) if sizes.get("lag", 0) == 0 else (H, H)},
        "_rnn_step_sum": {"out": (H,)},
    }
    if kind not in table:
        raise KeyError(f"no kernel {kind!r}; kernels: {', '.join(KERNELS)}")
    return table[kind]


# The outputs of each kernel (the rest of ``buffers`` is scratch or kept for backward).
OUTPUTS = {"_rnn_forward": ("Z", "H"), "_rnn_every_step": ("A",), "_rnn_backward": ("dZ",),
           "_rnn_step_outer": ("out",), "_rnn_step_sum": ("out",)}


def scratch(kind: str, **sizes) -> dict:
    """``buffers`` less the kernel's outputs: the scratch (and kept) arrays to allocate for
    kernel ``kind``, by parameter name."""
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
