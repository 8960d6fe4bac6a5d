"""The engine on the rnn kind: backpropagation through time comes out of the chain rule over
both uses of a hidden state (the next step, and what the layer passes on), with the boundary
at the last step derived from the range of the delta sum over steps.

The derived entries are evaluated as they are, at concrete sizes, backward in time, and
compared with PyTorch's autograd of the same forward pass."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import sympy as sp

from symbackprop import naming as N
from symbackprop import tensors as T
from symbackprop.engine import derive
from symbackprop.errors import DerivationError
from symbackprop.spec import parse_arch

torch = pytest.importorskip("torch")

EXPECTED = {"BPTT": T.BackThroughTime, "BP4": T.Map, "BP1": T.StepOuter, "BPU": T.StepOuter,
            "BP2": T.StepSum}


@pytest.mark.parametrize("notation", ["ng", "rowvec"])
@pytest.mark.parametrize("every", [False, True])
def test_every_gradient_is_recognised_as_its_operation(notation, every):
    d = derive(parse_arch(f"seq3x2-rnn2:tanh{':all' if every else ''}-1"), notation)
    rnn = d.features[0]
    assert list(rnn.backward) == ["BPTT", "BP4", "BP1", "BPU", "BP2"]
    for name, eq in rnn.backward.items():
        node = eq.rhs.node if isinstance(eq.rhs, T.Scaled) else eq.rhs
        assert isinstance(node, EXPECTED[name])
        assert [s.rule for s in eq.steps][:2] == ["chain",
                                                  "adjoint_pairs" if every else "adjoint"]
    assert rnn.backward["BPTT"].rhs.every_step is every
    assert rnn.backward["BPU"].rhs.node.lag == 1 and rnn.backward["BP1"].rhs.node.lag == 0
    # J averages over examples (and steps, when the head applies at every step).
    assert d.m == (N.m * N.T if every else N.m)
    assert rnn.backward["BP1"].rhs.factor == 1 / d.m


def test_the_boundary_at_the_last_step_is_derived():
    """dH at τ = T-1 has no part through a next step: the range condition the delta sum over
    steps leaves (τ + 1 <= T - 1) is false there, and true before."""
    d = derive(parse_arch("seq3x2-rnn2-1"))
    entry = d.features[0].backward["BPTT"].entry_rhs
    pieces = entry.atoms(sp.Piecewise)
    assert len(pieces) == 1
    cond = next(iter(pieces)).args[0].cond
    assert cond.subs(N.tau, N.T - 1) == sp.false
    assert cond.subs(N.tau, N.T - 2) == sp.true
    last = entry.subs(N.tau, N.T - 1).doit()
    assert last == d.features[0].symbols["dA"][N.r, N.k]


def test_a_kind_naming_the_wrong_operation_is_refused(monkeypatch):
    import symbackprop.kinds as K

    stage = K.RECURRENCE
    wrong = replace(stage.gradients[1], node=lambda sym: T.StepOuter(sym["dZ"], sym["H"], 0))
    bad = replace(stage, gradients=(stage.gradients[0], wrong, stage.gradients[2]))
    monkeypatch.setitem(K.FEATURE_KINDS, "rnn", replace(
        K.RNN, select=lambda f: (bad, K.RECURRENT_ACTIVATION, K.LAST_STEP)))
    from symbackprop.engine import _derive_cached
    _derive_cached.cache_clear()
    with pytest.raises(DerivationError, match="StepOuter"):
        derive(parse_arch("seq3x2-rnn2-1"))
    _derive_cached.cache_clear()


# --- the derived entries, evaluated, against autograd ------------------------------------

def _evaluate(expr, arrays, sizes):
    """A derived entry at concrete indices: sums done, arrays read (step -1 of H is 0)."""
    expr = expr.xreplace(sizes).doit()

    def read(e):
        value = arrays[str(e.base.label)]
        idx = tuple(int(i) for i in e.indices)
        if any(i < 0 for i in idx):
            return sp.Integer(0)
        return sp.Float(float(value[idx]), 30)
    expr = expr.replace(lambda e: isinstance(e, sp.Indexed), read)
    expr = expr.replace(lambda e: hasattr(e, "parent") and str(e.parent) in arrays
                        and isinstance(e, sp.matrices.expressions.matexpr.MatrixElement),
                        lambda e: sp.Float(float(arrays[str(e.parent)][int(e.i), int(e.j)]), 30))
    return float(sp.N(expr.doit()))


@pytest.mark.parametrize("act", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("every", [False, True])
def test_derived_entries_equal_autograd(act, every):
    steps, n, H, m = 3, 2, 2, 2
    arch = parse_arch(f"seq{steps}x{n}-rnn{H}:{act}{':all' if every else ''}-1")
    d = derive(arch)
    rnn = d.features[0]
    rng = np.random.default_rng(1)
    X = rng.standard_normal((m, steps, n))
    W, U, b = rng.standard_normal((H, n)), rng.standard_normal((H, H)), rng.standard_normal(H)
    cols = m * steps if every else m
    G = rng.standard_normal((H, cols))  # dA[1] = M ∂J/∂A[1] for J = (1/M) Σ G ⊙ A[1]
    g = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[act]
    tW, tU, tb = (torch.tensor(v, requires_grad=True) for v in (W, U, b))
    h, states, pre = torch.zeros(m, H, dtype=torch.float64), [], []
    for t in range(steps):
        z = torch.tensor(X[:, t]) @ tW.T + h @ tU.T + tb
        h = g(z)
        pre.append(z)
        states.append(h)
    Hs = torch.stack(states, 1)  # (m, T, H)
    A1 = Hs.reshape(m * steps, H).T if every else Hs[:, -1].T
    J = (torch.tensor(G) * A1).sum() / cols
    J.backward()
    Z = torch.stack(pre, 1).detach().numpy()
    Hn = Hs.detach().numpy()

    sizes = {N.T: steps, N.units(0): n, N.units(1): H, N.m: m}
    arrays = {"A[0]": X, "W[1]": W, "U[1]": U, "b[1]": b, "Z[1]": Z, "H[1]": Hn, "dA[1]": G}
    dH, dZ = np.zeros((m, steps, H)), np.zeros((m, steps, H))
    arrays.update({"dH[1]": dH, "dZ[1]": dZ})
    eqs = rnn.backward
    for tau in reversed(range(steps)):  # the recursion backward in time, entry by entry
        for k in range(m):
            for r in range(H):
                at = {N.k: k, N.tau: tau, N.r: r}
                dH[k, tau, r] = _evaluate(eqs["BPTT"].entry_rhs.xreplace(at), arrays, sizes)
        for k in range(m):
            for r in range(H):
                at = {N.k: k, N.tau: tau, N.r: r}
                dZ[k, tau, r] = _evaluate(eqs["BP4"].entry_rhs.xreplace(at), arrays, sizes)
    got = {name: np.array([[_evaluate(eqs[key].entry_rhs.xreplace({N.r: r, N.s: s}), arrays,
                                      sizes) for s in range(shape[1])] for r in range(H)])
           for name, key, shape in (("W", "BP1", W.shape), ("U", "BPU", U.shape))}
    got["b"] = np.array([_evaluate(eqs["BP2"].entry_rhs.xreplace({N.r: r}), arrays, sizes)
                         for r in range(H)])
    for name, tensor in (("W", tW), ("U", tU), ("b", tb)):
        np.testing.assert_allclose(got[name], tensor.grad.numpy(), rtol=1e-10, atol=1e-12)
