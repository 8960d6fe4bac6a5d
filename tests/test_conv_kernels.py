"""The convolution and pooling kernels of ``symbackprop.codegen.conv_kernels``.

Checked against references written directly from the definitions (loops over output
positions and kernel offsets, at tiny sizes), against central differences of a scalar
function of the forward pass, and against PyTorch when it is importable. Every buffer handed
to a kernel starts as NaN, so a kernel that reads a buffer it did not write, or leaves part
of an output unwritten, fails.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from symbackprop.codegen import conv_kernels as ck

try:
    import torch
except ImportError:  # the torch comparisons are skipped
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed "
                                 "(pip install torch==2.13.0 for the CPU wheel)")

TOL = {np.float64: 1e-12, np.float32: 1e-5}


def close(got, want, dtype):
    """Relative to the largest magnitude of want (or 1)."""
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    err = float(np.abs(np.asarray(got, np.float64) - want).max()) if want.size else 0.0
    assert err <= TOL[dtype] * scale, (err, scale)


def alloc(kind, dtype, **sizes):
    """The kernel's buffers from ``ck.buffers``, filled with NaN."""
    return {name: None if shape is None else np.full(shape, np.nan, dtype)
            for name, shape in ck.buffers(kind, **sizes).items()}


# --- references from the definitions ----------------------------------------------------------

def ref_conv(A, W, b, S, P):
    m, C, H, Wd = A.shape
    F, _, K, _ = W.shape
    Ho, Wo = (H + 2 * P - K) // S + 1, (Wd + 2 * P - K) // S + 1
    Ap = np.zeros((m, C, H + 2 * P, Wd + 2 * P))
    Ap[:, :, P:P + H, P:P + Wd] = A
    Z = np.zeros((m, F, Ho, Wo))
    for i, f, x, y in itertools.product(range(m), range(F), range(Ho), range(Wo)):
        Z[i, f, x, y] = np.sum(W[f] * Ap[i, :, S * x:S * x + K, S * y:S * y + K]) + b[f]
    return Z


def ref_conv_grads(A, W, S, P, dZ):
    """dW, db, dA by the chain rule on Z[i,f,x,y] = sum W[f,c,u,v] Ap[i,c,Sx+u,Sy+v] + b[f]."""
    m, C, H, Wd = A.shape
    F, _, K, _ = W.shape
    Ho, Wo = dZ.shape[2:]
    Ap = np.zeros((m, C, H + 2 * P, Wd + 2 * P))
    Ap[:, :, P:P + H, P:P + Wd] = A
    dW, dAp = np.zeros(W.shape), np.zeros(Ap.shape)
    for i, f, x, y in itertools.product(range(m), range(F), range(Ho), range(Wo)):
        g = dZ[i, f, x, y]
        dW[f] += g * Ap[i, :, S * x:S * x + K, S * y:S * y + K]
        dAp[i, :, S * x:S * x + K, S * y:S * y + K] += g * W[f]
    return dW, dZ.sum(axis=(0, 2, 3)), dAp[:, :, P:P + H, P:P + Wd]


def ref_pool(A, K, S, how):
    m, C, H, Wd = A.shape
    Ho, Wo = (H - K) // S + 1, (Wd - K) // S + 1
    out = np.zeros((m, C, Ho, Wo))
    for x, y in itertools.product(range(Ho), range(Wo)):
        win = A[:, :, S * x:S * x + K, S * y:S * y + K]
        out[:, :, x, y] = win.max(axis=(2, 3)) if how == "max" else win.mean(axis=(2, 3))
    return out


def ref_pool_grad(A, K, S, how, dP):
    """Max: the whole gradient of a window to its first maximum in row-major order."""
    m, C, Ho, Wo = dP.shape
    dA = np.zeros(A.shape)
    for i, c, x, y in itertools.product(range(m), range(C), range(Ho), range(Wo)):
        win = A[i, c, S * x:S * x + K, S * y:S * y + K]
        if how == "max":
            u, v = divmod(int(np.argmax(win)), K)  # argmax: the first maximum, row-major
            dA[i, c, S * x + u, S * y + v] += dP[i, c, x, y]
        else:
            dA[i, c, S * x:S * x + K, S * y:S * y + K] += dP[i, c, x, y] / K ** 2
    return dA


# --- running the kernels ----------------------------------------------------------------------

def conv_forward(fn, buf, A, W, b, S, P):
    """``fn`` (a _conv2d_forward) with the buffers of ``alloc("conv2d_forward", ...)``."""
    return fn(A, W, b, S, P, buf["Ap"], buf["R"], buf["Wb"], buf["cols"], buf["Zt"],
              buf["Z"])


def run_conv(A, W, b, S, P, dZ, dtype, share=False):
    """Forward and all gradients through the kernels; with ``share``, dZt is the forward's Zt
    and dcols its cols (as the module docstring allows)."""
    m, C, H, Wd = A.shape
    F, _, K, _ = W.shape
    sizes = {"m": m, "C": C, "H": H, "W": Wd, "F": F, "K": K, "S": S, "P": P}
    A, W, b, dZ = (np.ascontiguousarray(a, dtype) for a in (A, W, b, dZ))
    fw = alloc("conv2d_forward", dtype, **sizes)
    assert conv_forward(ck._conv2d_forward, fw, A, W, b, S, P) is None
    cols = fw["cols"].copy()
    dZt = fw["Zt"] if share else alloc("conv2d_dz_t", dtype, **sizes)["dZt"]
    ck._conv2d_dz_t(dZ, dZt)
    gp = alloc("conv2d_grad_params", dtype, **sizes)
    ck._conv2d_grad_params(dZt, fw["cols"], 1.0, gp["dWt"], gp["dW"], gp["db"])
    np.testing.assert_array_equal(fw["cols"], cols)  # the columns are only read
    gi = alloc("conv2d_grad_input", dtype, **sizes)
    dcols = fw["cols"] if share else gi["dcols"]
    R = fw["R"] if share else gi["R"]
    ck._conv2d_grad_input(dZt, W, S, P, R, dcols, gi["dA"])
    return fw["Z"], gp["dW"], gp["db"], gi["dA"]


def run_pool(A, K, S, how, dP, dtype):
    m, C, H, Wd = A.shape
    sizes = {"m": m, "C": C, "H": H, "W": Wd, "K": K, "S": S}
    A, dP = np.ascontiguousarray(A, dtype), np.ascontiguousarray(dP, dtype)
    if how == "max":
        fw = alloc("maxpool2d_forward", dtype, **sizes)
        ck._maxpool2d_forward(A, K, S, fw["R"], fw["mask"], fw["out"])
        bw = alloc("maxpool2d_backward", dtype, **sizes)
        ck._maxpool2d_backward(dP, fw["mask"], K, S, bw["T"], bw["dA"])
    else:
        fw = alloc("avgpool2d_forward", dtype, **sizes)
        ck._avgpool2d_forward(A, K, S, fw["out"])
        bw = alloc("avgpool2d_backward", dtype, **sizes)
        ck._avgpool2d_backward(dP, K, S, bw["T"], bw["dA"])
    return fw["out"], bw["dA"]


def conv_cases():
    """K 1..3, S 1..3, P 0..2 (where an output exists), C and F 1..3, square and not."""
    cases = []
    for n, (K, S, P) in enumerate(itertools.product((1, 2, 3), (1, 2, 3), (0, 1, 2))):
        # every (C, F), (C, P) and (F, S) pair occurs, so C and F vary independently of K, S, P
        C, F = 1 + (n + n // 9) % 3, 1 + (n // 3 + 2 * (n // 9) + n) % 3
        H, Wd = (5, 7) if n % 2 else (6, 6)
        if (H + 2 * P - K) // S + 1 >= 1 and (Wd + 2 * P - K) // S + 1 >= 1:
            cases.append((2, C, H, Wd, F, K, S, P))
    return cases


def pool_cases():
    """K 1..3, S 1..3 (overlapping when S < K, remainders when (H - K) % S != 0)."""
    cases = []
    for n, (K, S) in enumerate(itertools.product((1, 2, 3), (1, 2, 3))):
        for H, Wd in ((6, 6), (7, 5)):
            cases.append((2, 1 + (n + n // 3) % 3, H, Wd, K, S))
    return cases


CONV, POOL = conv_cases(), pool_cases()
DTYPES = [np.float64, np.float32]


def conv_data(case, seed=0):
    m, C, H, Wd, F, K, S, P = case
    rng = np.random.default_rng(seed)
    Ho, Wo = (H + 2 * P - K) // S + 1, (Wd + 2 * P - K) // S + 1
    return (rng.standard_normal((m, C, H, Wd)), rng.standard_normal((F, C, K, K)),
            rng.standard_normal(F), rng.standard_normal((m, F, Ho, Wo)))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CONV, ids=lambda c: "m{}C{}H{}W{}F{}K{}S{}P{}".format(*c))
def test_conv_against_definition(case, dtype):
    A, W, b, dZ = conv_data(case)
    S, P = case[6], case[7]
    Z, dW, db, dA = run_conv(A, W, b, S, P, dZ, dtype)
    rdW, rdb, rdA = ref_conv_grads(A, W, S, P, dZ)
    close(Z, ref_conv(A, W, b, S, P), dtype)
    close(dW, rdW, dtype)
    close(db, rdb, dtype)
    close(dA, rdA, dtype)


@pytest.mark.parametrize("case", CONV[::3], ids=lambda c: "m{}C{}H{}W{}F{}K{}S{}P{}".format(*c))
def test_conv_shared_buffers(case):
    """dZt in the forward's Zt and dcols in its cols give the same gradients."""
    A, W, b, dZ = conv_data(case, seed=1)
    S, P = case[6], case[7]
    for got, want in zip(run_conv(A, W, b, S, P, dZ, np.float64, share=True),
                         run_conv(A, W, b, S, P, dZ, np.float64)):
        np.testing.assert_array_equal(got, want)


def test_conv_grad_params_scale():
    A, W, b, dZ = conv_data(CONV[5])
    m, C, H, Wd, F, K, S, P = CONV[5]
    sizes = {"m": m, "C": C, "H": H, "W": Wd, "F": F, "K": K, "S": S, "P": P}
    fw = alloc("conv2d_forward", np.float64, **sizes)
    conv_forward(ck._conv2d_forward, fw, A, W, b, S, P)
    ck._conv2d_dz_t(dZ, fw["Zt"])
    gp = alloc("conv2d_grad_params", np.float64, **sizes)
    ck._conv2d_grad_params(fw["Zt"], fw["cols"], -0.25, gp["dWt"], gp["dW"], gp["db"])
    rdW, rdb, _ = ref_conv_grads(A, W, S, P, dZ)
    close(gp["dW"], -0.25 * rdW, np.float64)
    close(gp["db"], -0.25 * rdb, np.float64)


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


@pytest.mark.parametrize("case", [(2, 2, 5, 6, 3, 3, 1, 1), (2, 3, 7, 5, 2, 3, 2, 2),
                                  (1, 2, 6, 6, 2, 2, 3, 0), (2, 1, 5, 5, 3, 1, 2, 1)],
                         ids=lambda c: "m{}C{}H{}W{}F{}K{}S{}P{}".format(*c))
def test_conv_grads_against_central_differences(case):
    """J = sum(G sin(Z)): dJ/dZ = G cos(Z); the kernels' dA, dW, db against (J(+h)-J(-h))/2h."""
    A, W, b, G = conv_data(case, seed=2)
    S, P = case[6], case[7]
    Z, _, _, _ = run_conv(A, W, b, S, P, G, np.float64)
    _, dW, db, dA = run_conv(A, W, b, S, P, G * np.cos(Z), np.float64)

    def J():
        return float(np.sum(G * np.sin(run_conv(A, W, b, S, P, G, np.float64)[0])))

    for got, x in ((dA, A), (dW, W), (db, b)):
        np.testing.assert_allclose(got, numeric_grad(J, x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("how", ["max", "avg"])
@pytest.mark.parametrize("case", POOL, ids=lambda c: "m{}C{}H{}W{}K{}S{}".format(*c))
def test_pool_against_definition(case, how, dtype):
    m, C, H, Wd, K, S = case
    rng = np.random.default_rng(3)
    A = rng.standard_normal((m, C, H, Wd))
    if dtype == np.float32:
        A = A.astype(np.float32).astype(np.float64)  # the same maxima in both dtypes
    dP = rng.standard_normal((m, C, (H - K) // S + 1, (Wd - K) // S + 1))
    out, dA = run_pool(A, K, S, how, dP, dtype)
    close(out, ref_pool(A, K, S, how), dtype)
    close(dA, ref_pool_grad(A, K, S, how, dP), dtype)


@pytest.mark.parametrize("how", ["max", "avg"])
@pytest.mark.parametrize("K,S", [(2, 2), (3, 2), (3, 1), (2, 3)])
def test_pool_grads_against_central_differences(K, S, how):
    rng = np.random.default_rng(4)
    A = rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) / 10.0  # no ties
    G = rng.standard_normal((2, 2, (7 - K) // S + 1, (6 - K) // S + 1))
    out, _ = run_pool(A, K, S, how, G, np.float64)
    _, dA = run_pool(A, K, S, how, G * np.cos(out), np.float64)

    def J():
        return float(np.sum(G * np.sin(run_pool(A, K, S, how, G, np.float64)[0])))

    np.testing.assert_allclose(dA, numeric_grad(J, A, h=1e-4), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_maxpool_ties_go_to_the_first_maximum(dtype):
    A = np.zeros((1, 1, 4, 4))  # 2x2 windows: all equal; two equal maxima; one maximum
    A[0, 0, 0:2, 2:4] = [[1, 5], [5, 5]]
    A[0, 0, 2:4, 0:2] = [[-1, -2], [-3, -1]]
    A[0, 0, 2:4, 2:4] = [[0, 0], [7, 7]]
    dP = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out, dA = run_pool(A, 2, 2, "max", dP, dtype)
    np.testing.assert_array_equal(out[0, 0], [[0, 5], [-1, 7]])
    want = np.zeros((4, 4))
    want[0, 0], want[0, 3], want[2, 0], want[3, 2] = 1, 2, 3, 4
    np.testing.assert_array_equal(dA[0, 0], want)
    # overlapping windows (3x3, stride 1) over a constant map: each window's top-left entry
    out, dA = run_pool(np.ones((1, 1, 4, 4)), 3, 1, "max", np.ones((1, 1, 2, 2)), dtype)
    want = np.zeros((4, 4))
    want[0:2, 0:2] = 1
    np.testing.assert_array_equal(dA[0, 0], want)


@pytest.mark.parametrize("case", [(2, 2, 6, 7, 3, 3, 1, 1), (2, 2, 7, 6, 3, 2, 2, 1),
                                  (2, 1, 6, 6, 2, 3, 1, 0)],
                         ids=lambda c: "m{}C{}H{}W{}F{}K{}S{}P{}".format(*c))
def test_kernels_write_into_the_arrays_passed(case):
    """Outputs are the arrays handed in (nothing returned), and every entry is written."""
    A, W, b, dZ = conv_data(case)
    m, C, H, Wd, F, K, S, P = case
    sizes = {"m": m, "C": C, "H": H, "W": Wd, "F": F, "K": K, "S": S, "P": P}
    fw = alloc("conv2d_forward", np.float64, **sizes)
    ids = {name: id(a) for name, a in fw.items()}
    assert conv_forward(ck._conv2d_forward, fw, A, W, b, S, P) is None
    assert {name: id(a) for name, a in fw.items()} == ids
    for name in ("Ap", "Wb", "cols", "Zt", "Z"):
        assert fw[name] is None or not np.isnan(fw[name]).any(), name
    dZt = alloc("conv2d_dz_t", np.float64, **sizes)["dZt"]
    assert ck._conv2d_dz_t(dZ, dZt) is None
    assert not np.isnan(dZt).any()
    gp = alloc("conv2d_grad_params", np.float64, **sizes)
    assert ck._conv2d_grad_params(dZt, fw["cols"], 2.0, gp["dWt"], gp["dW"], gp["db"]) is None
    gi = alloc("conv2d_grad_input", np.float64, **sizes)
    assert ck._conv2d_grad_input(dZt, W, S, P, gi["R"], gi["dcols"], gi["dA"]) is None
    for buf in (gp, gi):
        for name, a in buf.items():
            assert a is None or not np.isnan(a).any(), name


def test_buffers_and_scratch():
    b = ck.buffers("conv2d_forward", m=4, C=3, H=9, W=8, F=5, K=3, S=2, P=1)
    assert b == {"Ap": (4, 3, 11, 10), "R": (3, 3, 4, 11, 4), "Wb": (5, 28),
                 "cols": (28, 4 * 5 * 4), "Zt": (5, 80), "Z": (4, 5, 5, 4)}
    assert ck.scratch("_conv2d_forward", m=4, C=3, H=9, W=8, F=5, K=3) == {
        "Ap": None, "R": (3, 3, 4, 9, 6), "Wb": (5, 28), "cols": (28, 4 * 7 * 6),
        "Zt": (5, 168)}
    assert ck.scratch("conv2d_grad_input", m=4, C=3, H=9, W=8, F=5, K=3, P=1) == {
        "R": (3, 3, 4, 11, 8), "dcols": (27, 4 * 9 * 8)}
    assert ck.scratch("conv2d_grad_params", m=4, C=3, H=9, W=8, F=5, K=3, P=1) == {
        "dWt": (28, 5)}
    assert ck.scratch("maxpool2d_forward", m=2, C=3, H=7, W=6, K=2) == {
        "R": (2, 3, 3, 3), "mask": (4, 2, 3, 3, 3)}
    assert ck.scratch("maxpool2d_backward", m=2, C=3, H=7, W=6, K=2) == {"T": None}
    assert ck.scratch("maxpool2d_backward", m=2, C=3, H=7, W=6, K=3, S=2) == {
        "T": (2, 3, 3, 2)}
    assert ck.conv_size(28, 5) == 24 and ck.pool_size(24, 2) == 12
    with pytest.raises(ValueError):
        ck.conv_size(2, 3)
    with pytest.raises(TypeError):
        ck.buffers("conv2d_forward", m=1, C=1, H=5, W=5, K=3)
    with pytest.raises(KeyError):
        ck.buffers("conv3d_forward", m=1)
    assert set(ck.OUTPUTS) == set(ck.KERNELS)


@pytest.mark.parametrize("case", [(2, 2, 6, 5, 3, 3, 2, 1), (2, 2, 6, 5, 3, 3, 1, 1)],
                         ids=lambda c: "m{}C{}H{}W{}F{}K{}S{}P{}".format(*c))
def test_sources_run_in_a_namespace_with_only_np(case):
    """Each kernel's source, with the kernels it needs, exec'd where only ``np`` is defined
    (as a generated trainer carries them) gives what the imported kernel gives."""
    A, W, b, dZ = conv_data(case)
    m, C, H, Wd, F, K, S, P = case
    assert ck.needed(["_conv2d_forward"]) == ["_conv2d_forward", "_im2col"]
    assert ck.needed(["_conv2d_grad_input"]) == ["_col2im", "_conv2d_grad_input"]
    for name in ck.KERNELS:
        namespace = {"np": np}
        for dep in ck.needed([name]):
            text = ck.source(dep)
            assert text.startswith(f"def {dep}(")
            exec(compile(text, f"<{dep}>", "exec"), namespace)  # noqa: S102
        assert set(namespace) - {"__builtins__"} == {"np", *ck.needed([name])}
        results = []
        for fn in (namespace[name], getattr(ck, name)):
            rng = np.random.default_rng(5)
            if name.startswith("_conv2d"):
                sizes = {"m": m, "C": C, "H": H, "W": Wd, "F": F, "K": K, "S": S, "P": P}
                fw = alloc("conv2d_forward", np.float64, **sizes)
                conv_forward(ck._conv2d_forward, fw, A, W, b, S, P)
                dZt = np.empty(fw["Zt"].shape)
                ck._conv2d_dz_t(dZ, dZt)
                buf = alloc(name, np.float64, **sizes)
                if name == "_conv2d_forward":
                    conv_forward(fn, buf, A, W, b, S, P)
                elif name == "_conv2d_dz_t":
                    fn(dZ, buf["dZt"])
                elif name == "_conv2d_grad_params":
                    fn(dZt, fw["cols"], 0.5, buf["dWt"], buf["dW"], buf["db"])
                else:
                    fn(dZt, W, S, P, buf["R"], buf["dcols"], buf["dA"])
            else:
                sizes = {"m": m, "C": C, "H": H, "W": Wd, "K": 3, "S": 2}
                X = rng.standard_normal((m, C, H, Wd))
                dP = rng.standard_normal((m, C, 2, 2))
                fw = alloc("maxpool2d_forward", np.float64, **sizes)
                ck._maxpool2d_forward(X, 3, 2, fw["R"], fw["mask"], fw["out"])
                buf = alloc(name, np.float64, **sizes)
                if name == "_maxpool2d_forward":
                    fn(X, 3, 2, buf["R"], buf["mask"], buf["out"])
                elif name == "_maxpool2d_backward":
                    fn(dP, fw["mask"], 3, 2, buf["T"], buf["dA"])
                elif name == "_avgpool2d_forward":
                    fn(X, 3, 2, buf["out"])
                else:
                    fn(dP, 3, 2, buf["T"], buf["dA"])
            results.append(buf)
        for key in results[0]:
            if results[0][key] is not None:
                np.testing.assert_array_equal(results[0][key], results[1][key], err_msg=key)


# --- against PyTorch ----------------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CONV[::2] + [(3, 3, 9, 11, 4, 3, 2, 1)],
                         ids=lambda c: "m{}C{}H{}W{}F{}K{}S{}P{}".format(*c))
def test_conv_against_torch(case, dtype):
    A, W, b, dZ = conv_data(case, seed=6)
    S, P = case[6], case[7]
    Z, dW, db, dA = run_conv(A, W, b, S, P, dZ, dtype)
    tA, tW, tb = (torch.tensor(x, requires_grad=True) for x in (A, W, b))
    tZ = torch.nn.functional.conv2d(tA, tW, tb, stride=S, padding=P)
    tZ.backward(torch.tensor(dZ))
    for got, want in ((Z, tZ), (dW, tW.grad), (db, tb.grad), (dA, tA.grad)):
        close(got, want.detach().numpy(), dtype)


@needs_torch
@pytest.mark.parametrize("how", ["max", "avg"])
@pytest.mark.parametrize("case", POOL + [(2, 2, 4, 4, 2, 2)],
                         ids=lambda c: "m{}C{}H{}W{}K{}S{}".format(*c))
def test_pool_against_torch(case, how):
    m, C, H, Wd, K, S = case
    rng = np.random.default_rng(7)
    # small integers: many ties, so the tie rule is compared as well
    A = rng.integers(0, 3, (m, C, H, Wd)).astype(np.float64)
    dP = rng.standard_normal((m, C, (H - K) // S + 1, (Wd - K) // S + 1))
    out, dA = run_pool(A, K, S, how, dP, np.float64)
    tA = torch.tensor(A, requires_grad=True)
    pool = torch.nn.functional.max_pool2d if how == "max" else torch.nn.functional.avg_pool2d
    tout = pool(tA, K, S)
    tout.backward(torch.tensor(dP))
    close(out, tout.detach().numpy(), np.float64)
    close(dA, tA.grad.numpy(), np.float64)
