"""The Elman recurrent-layer kernels of ``symbackprop.codegen.rnn_kernels``.

Checked against torch.nn.RNN(batch_first=True) and its autograd (tanh and relu), against an
unrolled PyTorch loop with torch.sigmoid (torch.nn.RNN has no sigmoid), against central
differences in NumPy of a forward pass written from the definition (one example and one step
at a time), many-to-one and many-to-many, in float64 and float32, and at |z| = 1000 with every
floating-point warning an error. The kernels run as a generated trainer carries them: exec'd
from their source in a namespace holding only ``np``. Every buffer handed to a kernel starts as
NaN, so a kernel that reads a buffer it did not write, or leaves part of an output unwritten,
fails.
"""
from __future__ import annotations

import numpy as np
import pytest

from symbackprop.codegen import rnn_kernels as rk

try:
    import torch
except ImportError:  # the torch comparisons are skipped
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed "
                                 "(pip install torch==2.13.0 for the CPU wheel)")

DTYPES = [np.float64, np.float32]
TOL = {np.float64: 1e-11, np.float32: 2e-5}


def _kernels():
    namespace = {"np": np}
    for name in rk.needed(rk.KERNELS):
        exec(compile(rk.source(name), f"<{name}>", "exec"), namespace)  # noqa: S102
    return namespace


K = _kernels()


# --- activations as a generated trainer passes them: act(Z_t, H_t), dact(dH_t, Z_t, H_t, dZ_t)

def _tanh(Z, H):
    np.tanh(Z, H)


def _dtanh(dH, Z, H, dZ):  # dH (1 - H^2)
    np.multiply(H, H, dZ)
    np.subtract(1, dZ, dZ)
    np.multiply(dZ, dH, dZ)


def _relu(Z, H):
    np.maximum(Z, 0, out=H)


def _drelu(dH, Z, H, dZ):  # dH [Z > 0]
    np.greater(Z, 0, dZ)
    np.multiply(dZ, dH, dZ)


def _sigmoid(Z, H):  # (1 + tanh(Z/2))/2: finite for every Z
    np.multiply(Z, 0.5, H)
    np.tanh(H, H)
    np.add(H, 1, H)
    np.multiply(H, 0.5, H)


def _dsigmoid(dH, Z, H, dZ):  # dH H (1 - H)
    np.subtract(1, H, dZ)
    np.multiply(dZ, H, dZ)
    np.multiply(dZ, dH, dZ)


ACTS = {"tanh": (_tanh, _dtanh), "relu": (_relu, _drelu), "sigmoid": (_sigmoid, _dsigmoid)}
SCALAR = {"tanh": np.tanh, "relu": lambda z: max(z, 0.0),
          "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z))}


# --- running the kernels ----------------------------------------------------------------------

def alloc(kind, dtype, **sizes):
    """The kernel's buffers from ``rk.buffers``, filled with NaN."""
    return {name: np.full(shape, np.nan, dtype) for name, shape in rk.buffers(kind, **sizes).items()}


def run(X, W, U, b, dA, act, every_step, dtype, kernels=K):
    """Forward and every gradient through the kernels. dA: (m, H) for the last state, or
    (m, T, H) for every step. Returns the passed-on states A, Z and H (T, m, H), dW, dU, db."""
    m, T, n = X.shape
    Hn = W.shape[0]
    sizes = {"m": m, "T": T, "n": n, "H": Hn}
    X, W, U, b, dA = (np.ascontiguousarray(a, dtype) for a in (X, W, U, b, dA))
    g, dg = ACTS[act]
    fw = alloc("rnn_forward", dtype, **sizes)
    assert kernels["_rnn_forward"](X, W, b, U, g, fw["Xt"], fw["S"], fw["Z"], fw["H"]) is None
    if every_step:
        A = alloc("rnn_every_step", dtype, **sizes)["A"]
        kernels["_rnn_every_step"](fw["H"], A)
    else:
        A = fw["H"][T - 1]
    bw = alloc("rnn_backward", dtype, **sizes)
    kept = {name: fw[name].copy() for name in ("Xt", "Z", "H")}
    kernels["_rnn_backward"](dA, every_step, U, fw["Z"], fw["H"], dg, fw["S"], bw["dZ"])
    dW = alloc("rnn_step_outer", dtype, lag=0, **sizes)["out"]
    dU = alloc("rnn_step_outer", dtype, lag=1, **sizes)["out"]
    db = alloc("rnn_step_sum", dtype, **sizes)["out"]
    kernels["_rnn_step_outer"](bw["dZ"], fw["Xt"], 0, dW)
    kernels["_rnn_step_outer"](bw["dZ"], fw["H"], 1, dU)
    kernels["_rnn_step_sum"](bw["dZ"], db)
    for name, value in kept.items():  # the backward pass only reads what the forward kept
        np.testing.assert_array_equal(fw[name], value, err_msg=name)
    return A, fw["Z"], fw["H"], dW, dU, db


def close(got, want, dtype, what=""):
    """Relative to the largest magnitude of want (or 1)."""
    want = np.asarray(want, np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(np.asarray(got, np.float64) - want).max())
    assert err <= TOL[dtype] * scale, (what, err, scale)


# --- the definition, one example and one step at a time ----------------------------------------

def ref_forward(X, W, U, b, act):
    """Z[i, t] = W x[i, t] + U H[i, t-1] + b, H[i, t] = g(Z[i, t]), H[i, -1] = 0, in float64."""
    m, T, _ = X.shape
    g = np.vectorize(SCALAR[act])
    Z, H = np.zeros((m, T, W.shape[0])), np.zeros((m, T, W.shape[0]))
    for i in range(m):
        prev = np.zeros(W.shape[0])
        for t in range(T):
            Z[i, t] = W @ X[i, t] + U @ prev + b
            H[i, t] = g(Z[i, t])
            prev = H[i, t]
    return Z, H


def data(m=3, T=4, n=3, H=5, seed=0, zscale=None):
    """X, W, U, b and a weighting R of the passed-on states. With ``zscale``, the weights are
    scaled so that the pre-activations reach about +-zscale."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, T, n))
    W, U = rng.standard_normal((H, n)) * 0.6, rng.standard_normal((H, H)) * 0.4
    b = rng.standard_normal(H) * 0.3
    if zscale is not None:
        W, U, b = W * zscale, U * zscale / H, b * zscale
    return X, W, U, b, rng


def weights(rng, m, T, H, every_step):
    return rng.standard_normal((m, T, H) if every_step else (m, H))


# --- tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("act", list(ACTS))
def test_forward_against_definition(act, dtype):
    X, W, U, b, rng = data(seed=1)
    dA = weights(rng, 3, 4, 5, True)
    A, Z, H, *_ = run(X, W, U, b, dA, act, True, dtype)
    rZ, rH = ref_forward(X, W, U, b, act)
    close(Z.transpose(1, 0, 2), rZ, dtype, "Z")
    close(H.transpose(1, 0, 2), rH, dtype, "H")
    close(A, rH, dtype, "A (every step, batch first)")
    A1, *_ = run(X, W, U, b, dA[:, -1], act, False, dtype)
    close(A1, rH[:, -1], dtype, "A (last step)")


def numeric_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f()
        x[idx] = old - h
        down = f()
        x[idx] = old
        g[idx] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize("every_step", [False, True], ids=["last", "every"])
@pytest.mark.parametrize("act", list(ACTS))
def test_gradients_against_central_differences(act, every_step):
    """J = sum(R * A), A the passed-on states from the definition: dJ/dA = R."""
    X, W, U, b, rng = data(seed=2)
    R = weights(rng, 3, 4, 5, every_step)

    def J():
        H = ref_forward(X, W, U, b, act)[1]
        return float(np.sum(R * (H if every_step else H[:, -1])))

    _, _, _, dW, dU, db = run(X, W, U, b, R, act, every_step, np.float64)
    for name, got, x in (("W", dW, W), ("U", dU, U), ("b", db, b)):
        np.testing.assert_allclose(got, numeric_grad(J, x), rtol=1e-6, atol=1e-8, err_msg=name)


def test_scale_is_carried_by_the_error():
    """Gradients are linear in dA: a scale folded into dA (1/m, lr/m) scales all of them."""
    X, W, U, b, rng = data(seed=3)
    R = weights(rng, 3, 4, 5, False)
    plain = run(X, W, U, b, R, "tanh", False, np.float64)[3:]
    scaled = run(X, W, U, b, -0.125 * R, "tanh", False, np.float64)[3:]
    for p, s in zip(plain, scaled):
        np.testing.assert_allclose(s, -0.125 * p, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("T", [1, 2])
def test_short_sequences(T):
    """T = 1: no recurrent term, dU = 0; T = 2: one."""
    X, W, U, b, rng = data(T=T, seed=4)
    R = weights(rng, 3, T, 5, True)
    A, _, _, dW, dU, db = run(X, W, U, b, R, "tanh", True, np.float64)
    close(A, ref_forward(X, W, U, b, "tanh")[1], np.float64)

    def J():
        return float(np.sum(R * ref_forward(X, W, U, b, "tanh")[1]))

    for got, x in ((dW, W), (dU, U), (db, b)):
        np.testing.assert_allclose(got, numeric_grad(J, x), rtol=1e-6, atol=1e-8)
    if T == 1:
        assert not dU.any()


def torch_rnn_grads(X, W, U, b, R, act, every_step):
    """Forward states and dW, dU, db of J = sum(R * A) by PyTorch autograd in float64:
    torch.nn.RNN for tanh and relu, an unrolled loop of torch.sigmoid for sigmoid."""
    tX, tR = torch.from_numpy(X), torch.from_numpy(R)
    if act in ("tanh", "relu"):
        rnn = torch.nn.RNN(X.shape[2], W.shape[0], batch_first=True, nonlinearity=act,
                           dtype=torch.float64)
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.from_numpy(W))
            rnn.weight_hh_l0.copy_(torch.from_numpy(U))
            rnn.bias_ih_l0.copy_(torch.from_numpy(b))
            rnn.bias_hh_l0.zero_()
        out, h_n = rnn(tX)
        A = out if every_step else h_n[0]
        (A * tR).sum().backward()
        grads = (rnn.weight_ih_l0.grad, rnn.weight_hh_l0.grad, rnn.bias_ih_l0.grad)
        assert torch.allclose(rnn.bias_hh_l0.grad, rnn.bias_ih_l0.grad, rtol=1e-12, atol=1e-12)
        return out.detach().numpy(), [g.numpy() for g in grads]
    tW, tU, tb = (torch.tensor(a, requires_grad=True) for a in (W, U, b))
    h = torch.zeros(X.shape[0], W.shape[0], dtype=torch.float64)
    states = []
    for t in range(X.shape[1]):
        h = torch.sigmoid(tX[:, t] @ tW.T + h @ tU.T + tb)
        states.append(h)
    out = torch.stack(states, 1)
    A = out if every_step else h
    (A * tR).sum().backward()
    return out.detach().numpy(), [tW.grad.numpy(), tU.grad.numpy(), tb.grad.numpy()]


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("every_step", [False, True], ids=["last", "every"])
@pytest.mark.parametrize("act", list(ACTS))
def test_against_torch(act, every_step, dtype):
    X, W, U, b, rng = data(m=4, T=7, n=3, H=6, seed=5)
    R = weights(rng, 4, 7, 6, every_step)
    out, want = torch_rnn_grads(X, W, U, b, R, act, every_step)
    A, _, H, *got = run(X, W, U, b, R, act, every_step, dtype)
    close(H.transpose(1, 0, 2), out, dtype, "states")
    close(A, out if every_step else out[:, -1], dtype, "passed on")
    for name, g, w in zip(("dW", "dU", "db"), got, want):
        assert g.dtype == dtype
        close(g, w, dtype, name)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("every_step", [False, True], ids=["last", "every"])
@pytest.mark.parametrize("act", list(ACTS))
def test_stable_at_large_pre_activations(act, every_step, dtype):
    """|z| up to about 1000: no floating-point warning (each one an error here), finite
    results, and PyTorch's values (saturated tanh and sigmoid, large relu states)."""
    X, W, U, b, rng = data(m=3, T=5, n=4, H=6, seed=6, zscale=1000.0)
    R = weights(rng, 3, 5, 6, every_step)
    with np.errstate(all="raise"):
        A, Z, H, *got = run(X, W, U, b, R, act, every_step, dtype)
    assert np.abs(Z).max() > 500
    for a in (A, Z, H, *got):
        assert np.isfinite(a).all()
    out, want = torch_rnn_grads(X, W, U, b, R, act, every_step)
    close(H.transpose(1, 0, 2), out, dtype, "states")
    for name, g, w in zip(("dW", "dU", "db"), got, want):
        close(g, w, dtype, name)


def test_kernels_write_into_the_arrays_passed():
    """Outputs are the arrays handed in (nothing returned), and every entry is written."""
    X, W, U, b, rng = data(seed=7)
    sizes = {"m": 3, "T": 4, "n": 3, "H": 5}
    fw = alloc("rnn_forward", np.float64, **sizes)
    ids = {name: id(a) for name, a in fw.items()}
    assert rk._rnn_forward(X, W, b, U, _tanh, fw["Xt"], fw["S"], fw["Z"], fw["H"]) is None
    assert {name: id(a) for name, a in fw.items()} == ids
    for name in ("Xt", "Z", "H"):
        assert not np.isnan(fw[name]).any(), name
    A = alloc("rnn_every_step", np.float64, **sizes)["A"]
    assert rk._rnn_every_step(fw["H"], A) is None and not np.isnan(A).any()
    bw = alloc("rnn_backward", np.float64, **sizes)
    assert rk._rnn_backward(rng.standard_normal((3, 4, 5)), True, U, fw["Z"], fw["H"], _dtanh,
                            bw["dH"], bw["dZ"]) is None
    assert not np.isnan(bw["dZ"]).any()
    for lag in (0, 1):
        out = alloc("rnn_step_outer", np.float64, lag=lag, **sizes)["out"]
        assert rk._rnn_step_outer(bw["dZ"], fw["Xt"] if lag == 0 else fw["H"], lag, out) is None
        assert not np.isnan(out).any()
    out = alloc("rnn_step_sum", np.float64, **sizes)["out"]
    assert rk._rnn_step_sum(bw["dZ"], out) is None and not np.isnan(out).any()


def test_dh_may_be_the_forwards_scratch_and_da_is_not_written():
    X, W, U, b, rng = data(seed=8)
    sizes = {"m": 3, "T": 4, "n": 3, "H": 5}
    for every_step in (False, True):
        dA = weights(rng, 3, 4, 5, every_step)
        keep = dA.copy()
        fw = alloc("rnn_forward", np.float64, **sizes)
        rk._rnn_forward(X, W, b, U, _tanh, fw["Xt"], fw["S"], fw["Z"], fw["H"])
        dZ = [alloc("rnn_backward", np.float64, **sizes)["dZ"] for _ in range(2)]
        rk._rnn_backward(dA, every_step, U, fw["Z"], fw["H"], _dtanh, fw["S"], dZ[0])
        rk._rnn_backward(dA, every_step, U, fw["Z"], fw["H"], _dtanh,
                         np.empty((3, 5)), dZ[1])
        np.testing.assert_array_equal(dZ[0], dZ[1])
        np.testing.assert_array_equal(dA, keep)


def test_buffers_and_scratch():
    sizes = {"m": 4, "T": 6, "n": 3, "H": 7}
    assert rk.buffers("rnn_forward", **sizes) == {"Xt": (6, 4, 3), "S": (4, 7),
                                                  "Z": (6, 4, 7), "H": (6, 4, 7)}
    assert rk.scratch("_rnn_forward", **sizes) == {"Xt": (6, 4, 3), "S": (4, 7)}
    assert rk.buffers("rnn_every_step", **sizes) == {"A": (4, 6, 7)}
    assert rk.scratch("rnn_backward", **sizes) == {"dH": (4, 7)}
    assert rk.buffers("rnn_step_outer", lag=0, **sizes) == {"out": (7, 3)}
    assert rk.buffers("rnn_step_outer", lag=1, **sizes) == {"out": (7, 7)}
    assert rk.buffers("rnn_step_sum", **sizes) == {"out": (7,)}
    with pytest.raises(TypeError):
        rk.buffers("rnn_forward", m=1, T=2, n=3)
    with pytest.raises(KeyError):
        rk.buffers("lstm_forward", **sizes)
    assert set(rk.OUTPUTS) == set(rk.KERNELS)


def test_sources_are_the_kernels_and_use_only_np():
    """Each kernel's source, exec'd where only ``np`` is defined (as a generated trainer
    carries it), gives what the imported kernel gives."""
    for name in rk.KERNELS:
        assert rk.needed([name]) == [name]
        text = rk.source(name)
        assert text.startswith(f"def {name}(")
    X, W, U, b, rng = data(seed=9)
    for every_step in (False, True):
        dA = weights(rng, 3, 4, 5, every_step)
        from_source = run(X, W, U, b, dA, "sigmoid", every_step, np.float64)
        imported = run(X, W, U, b, dA, "sigmoid", every_step, np.float64, kernels=vars(rk))
        for a, c in zip(from_source, imported):
            np.testing.assert_array_equal(a, c)
