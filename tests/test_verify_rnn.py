"""The proof of recurrent networks: an Elman rnn layer (many-to-one and many-to-many), then a
dense head. The derived entries are evaluated step by step (the recurrence forward in time,
BPTT backward in time) and compared with the recurrence unrolled from H_{-1} = 0 and
differentiated directly; the direct side itself is checked against PyTorch's autograd."""
import dataclasses
import importlib
import json
import random
import time
from fractions import Fraction

import pytest
import sympy as sp

from symbackprop import naming, parse_arch, verify

verify_module = importlib.import_module("symbackprop.verify")

# (spec, loss, options): tanh, relu, sigmoid recurrences, the last state or every state passed
# on, one or two dense layers, with and without the L2 penalty, both notations.
CASES = [
    ("seq3x2-rnn2-1", "half_sse", {}),
    ("seq3x2-rnn2:relu-2:relu-1:identity", "mse", {"l2": "1/4"}),
    ("seq3x2-rnn2:sigmoid-2:softmax", "cross_entropy", {"notation": "rowvec"}),
    ("seq3x2-rnn2:tanh:all-3:softmax", "cross_entropy", {"l2": "1/2", "notation": "rowvec"}),
    ("seq3x2-rnn2:relu:all-2:sigmoid", "bce", {}),
    ("seq3x2-rnn2:sigmoid:all-2:tanh-1:identity", "half_sse", {"l2": "1/10"}),
    ("seq4x3-rnn3:relu:all-1:identity", "mse", {"notation": "rowvec", "m": 1}),
    ("seq2x1-rnn1:tanh-1:identity", "half_sse", {"m": 3}),
]
RNN_LEMMAS = 8  # Z, H, A, BPTT, BP4, BP1, BPU, BP2


def _run(spec, loss, options):
    arch_options = {key: options[key] for key in ("l2",) if key in options}
    verify_options = {key: options[key] for key in ("notation", "m") if key in options}
    return verify(parse_arch(spec, loss, **arch_options), **verify_options)


def _parameters(report):
    """Entries of W, U, b of the rnn layer and of every dense weight and bias."""
    _, features = report.proof.sequence
    units = report.sizes[0]
    dense = sum(o * i + o for i, o in zip(report.sizes, report.sizes[1:]))
    return units * features + units * units + units + dense


def test_cases_cover_activations_steps_penalty_and_notations():
    archs = [parse_arch(spec, loss) for spec, loss, _ in CASES]
    assert {arch.recurrent.activation for arch in archs} == {"tanh", "relu", "sigmoid"}
    assert {arch.every_step for arch in archs} == {True, False}
    assert {len(arch.sizes) for arch in archs} == {2, 3}
    assert {"l2" in options for *_, options in CASES} == {True, False}
    assert {options.get("notation", "ng") for *_, options in CASES} == {"ng", "rowvec"}


@pytest.mark.parametrize("spec,loss,options", CASES, ids=[c[0] for c in CASES])
def test_recurrent_network_is_proven(spec, loss, options):
    report = _run(spec, loss, options)
    assert report.ok, str(report)
    assert report.summary().startswith(f"PROVEN: {report.arch.spec()} loss {loss}")
    assert len(report.lemmas) == RNN_LEMMAS + 6 * (len(report.arch.sizes) - 1) + 2
    assert all(lemma.method == "symbolic" for lemma in report.lemmas), str(report)
    assert [x.equation for x in report.lemmas if x.layer == 1] == [
        "forward", "forward", "forward", "BPTT", "BP4", "BP1", "BPU", "BP2"]
    assert len(report.gradient) == report.points * _parameters(report)
    names = {c.name.split("]")[0] + "]" for c in report.checks}
    assert {"Z[1]", "H[1]", "A[1]", "dA[1]", "dH[1]", "dZ[1]", "dW[1]", "dU[1]",
            "db[1]"} <= names
    assert "dA[0]" not in names  # no gradient of the input sequence
    steps = report.proof.sequence[0]
    m = options.get("m", 2)
    dH = [c for c in report.checks if c.name.startswith("dH[1]") and c.point == 0]
    assert len(dH) == m * steps * report.sizes[0]  # every example, step and unit
    columns = m * steps if report.arch.every_step else m
    assert sum(c.name.startswith("A[1]") and c.point == 0 for c in report.checks) \
        == columns * report.sizes[0]
    if "l2" in options:
        assert f"l2 {Fraction(options['l2'])}" in report.summary()


def test_a_wide_recurrent_network_shrinks_to_three_steps_features_and_units():
    start = time.perf_counter()
    report = verify(parse_arch("seq8x8-rnn64:tanh-10:softmax", "cross_entropy"))
    elapsed = time.perf_counter() - start
    assert report.ok, str(report)
    assert report.proof.sequence == (3, 3) and report.proof.recurrent.units == 3
    assert report.sizes == (3, 3) and report.steps == 3
    assert report.shapes == ((3, 3), (3,), (3,))
    assert "at sizes 3x3-3-3, m = 2, T = 3" in report.summary()
    assert elapsed < 30


def test_the_small_spec_is_proven_in_seconds():
    start = time.perf_counter()
    report = verify(parse_arch("seq3x2-rnn2-1"))
    assert report.ok and time.perf_counter() - start < 10
    assert report.shapes == ((3, 2), (2,), (1,))  # the spec's own sizes: nothing shrinks


def test_the_hidden_units_may_be_given_as_sizes():
    arch = parse_arch("seq8x8-rnn64:tanh-10:softmax", "cross_entropy")
    report = verify(arch, sizes=(2, 3), points=1)
    assert report.ok, str(report)
    assert report.proof.recurrent.units == 2 and report.shapes == ((3, 3), (2,), (3,))
    with pytest.raises(verify_module.VerificationError, match="do not fit"):
        verify(arch, sizes=(2,))


# --- sabotage: a wrong entry formula is caught, and the report names it -----------------------

def _sabotaged(monkeypatch, name, change):
    """verify sees a derivation whose rnn equation ``name`` (a key of its backward equations,
    or "forward" / "pass": its recurrence / what it passes on) has the entry formula
    ``change(entry_rhs, symbols)``."""
    from symbackprop import engine

    def derive(arch, notation="ng"):
        d = engine.derive(arch, notation)
        old = d.features[0]
        if name in ("forward", "pass"):
            pos = 0 if name == "forward" else 2
            forward = list(old.forward)
            forward[pos] = dataclasses.replace(
                forward[pos], entry_rhs=change(forward[pos].entry_rhs, old.symbols))
            changed = dataclasses.replace(old, forward=tuple(forward))
        else:
            eq = old.backward[name]
            new = dataclasses.replace(eq, entry_rhs=change(eq.entry_rhs, old.symbols))
            changed = dataclasses.replace(old, backward={**old.backward, name: new})
        return dataclasses.replace(d, features=(changed, *d.features[1:]))
    monkeypatch.setattr(verify_module, "derive", derive)


def _transpose_U(entry, sym):  # U[r, j] for U[j, r]
    U = sym["U"]
    return entry.replace(lambda e: isinstance(e, sp.Indexed) and e.base == U,
                         lambda e: U[e.indices[1], e.indices[0]])


def _no_boundary(entry, sym):  # no range condition: the last step reads dZ after it
    return entry.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])


def _no_next_step(entry, sym):  # dH only from what is passed on
    return entry.replace(lambda e: isinstance(e, sp.Sum), lambda e: sp.Integer(0))


def _forward_in_time(entry, sym):  # dZ of the step before, not after
    return entry.xreplace({naming.tau + 1: naming.tau - 1})


def _first_state(entry, sym):  # the dense head's error at the first step, not the last
    return entry.replace(lambda e: isinstance(e, sp.KroneckerDelta),
                         lambda e: sp.KroneckerDelta(naming.tau, 0))


def _same_step(entry, sym):  # H of the same step, not the one before
    return entry.xreplace({naming.tau - 1: naming.tau})


def _no_lag(entry, sym):  # dU from H_t, not H_{t-1}
    return entry.xreplace({naming.t - 1: naming.t})


def _no_penalty(entry, sym):
    return entry.xreplace({naming.lam: 0})


def _tanh_prime_wrong(entry, sym):  # 1 - tanh for 1 - tanh²
    return entry.replace(lambda e: isinstance(e, sp.Pow) and e.exp == 2, lambda e: e.base)


def _mean_over_examples(entry, sym):  # 1/m for 1/(m T): J averages over steps too
    return entry.xreplace({naming.T ** -1: sp.Integer(1)})


def _first_step_passed(entry, sym):  # H_0 for H_{T-1}
    return entry.xreplace({naming.T - 1: 0})


SABOTAGE = [  # (spec, l2, equation, corruption, first wrong entry, what its note says)
    ("seq3x2-rnn2-1", 0, "BPTT", _transpose_U, "dH[1]", None),
    ("seq3x2-rnn2:relu:all-2:identity", 0, "BPTT", _transpose_U, "dH[1]", None),
    ("seq3x2-rnn2-1", 0, "BPTT", _no_boundary, "dH[1]", "outside its shape 2x3x2"),
    ("seq3x2-rnn2:sigmoid:all-1", 0, "BPTT", _no_next_step, "dH[1]", None),
    ("seq3x2-rnn2-1", 0, "BPTT", _forward_in_time, "dH[1]", "which nothing before it gives"),
    ("seq3x2-rnn2-1", 0, "BPTT", _first_state, "dH[1]", None),
    ("seq3x2-rnn2-1", 0, "forward", _same_step, "Z[1]", "which nothing before it gives"),
    ("seq3x2-rnn2:all-1", 0, "forward", _transpose_U, "Z[1]", None),
    ("seq3x2-rnn2-1", 0, "pass", _first_step_passed, "A[1]", None),
    ("seq3x2-rnn2-1", 0, "BPU", _no_lag, "dU[1]", None),
    ("seq3x2-rnn2:relu-1", "1/2", "BPU", _no_penalty, "dU[1]", None),
    ("seq3x2-rnn2-1", 0, "BP4", _tanh_prime_wrong, "dZ[1]", None),
    ("seq3x2-rnn2:all-1", 0, "BP1", _mean_over_examples, "dW[1]", None),
    ("seq3x2-rnn2:all-1", 0, "BP2", _mean_over_examples, "db[1]", None),
]


@pytest.mark.parametrize("spec,l2,name,change,first,note", SABOTAGE,
                         ids=[f"{s[3].__name__} {s[2]} {s[0]}" for s in SABOTAGE])
def test_a_wrong_entry_formula_is_caught(monkeypatch, spec, l2, name, change, first, note):
    _sabotaged(monkeypatch, name, change)
    report = verify(parse_arch(spec, l2=l2))
    assert not report.ok
    equation = "forward" if name == "pass" else name
    assert [(x.layer, x.equation) for x in report.lemmas if not x.ok] == [(1, equation)]
    wrong = report.failures[0]
    assert wrong.equation == equation and wrong.name.startswith(first + "[")
    if note is not None:
        assert note in wrong.note
    text = str(report)
    assert text.startswith("FAILED") and f"first difference: layer 1 {equation}" in text


def test_the_first_difference_is_the_first_wrong_step_backward_in_time(monkeypatch):
    """A wrong BP4 makes dH wrong one step earlier: the report names BP4 (at the last step),
    not the BPTT entries that read its dZ."""
    _sabotaged(monkeypatch, "BP4", _tanh_prime_wrong)
    report = verify(parse_arch("seq3x2-rnn2-1"))
    wrong = report.failures[0]
    assert wrong.equation == "BP4" and wrong.name == "dZ[1][0, 2, 0]"
    late = [c for c in report.checks if c.name.startswith("dH[1]") and ", 2, " in c.name]
    assert late and all(c.ok for c in late)  # dH at the last step reads no dZ: still right


def test_verify_command_exits_1_on_a_wrong_recurrent_derivation(monkeypatch, capsys):
    from symbackprop.cli import main

    _sabotaged(monkeypatch, "BPTT", _transpose_U)
    assert main(["verify", "seq3x2-rnn2-1"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED: seq3x2-rnn2:tanh-1") and "layer 1 BPTT" in out


def test_verify_command_proves_a_recurrent_network(capsys):
    from symbackprop.cli import main

    assert main(["verify", "seq3x2-rnn2-1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PROVEN: seq3x2-rnn2:tanh-1 loss half_sse (ng)")
    assert "at sizes 3x2-2-1, m = 2, T = 3" in out
    assert main(["verify", "seq3x2-rnn2:relu:all-2:softmax", "--loss", "cross_entropy",
                 "--json", "--l2", "0.1", "--notation", "rowvec", "--points", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "PROVEN" and data["steps"] == 3
    assert data["shapes"] == [[3, 2], [2], [2]] and data["sizes"] == [2, 2]
    assert "BPTT backward in time" in data["method"]
    lemmas = {(x["layer"], x["equation"], x["lhs"]) for x in data["lemmas"]}
    assert {(1, "BPTT", "dH[1]"), (1, "BPU", "dU[1]"), (1, "forward", "A[1]")} <= lemmas
    names = {c["name"] for c in data["checks"]}
    assert {"dU[1][1, 1]", "dH[1][1, 2, 1]", "A[1][5, 1]", "dW[1][1, 1]"} <= names


# --- the direct side is right: against PyTorch's autograd of the same network ----------------

DIRECT = [  # (spec, loss, l2)
    ("seq3x2-rnn2:tanh-2:sigmoid", "half_sse", "1/4"),
    ("seq3x2-rnn3:relu:all-2:identity", "half_sse", 0),
    ("seq3x2-rnn2:sigmoid:all-3:softmax", "cross_entropy", "1/2"),
    ("seq3x3-rnn2:tanh-2:tanh-3:softmax", "cross_entropy", 0),
]


def _activations(torch):
    return {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
            "identity": lambda x: x, "softmax": lambda x: torch.softmax(x, dim=1)}


def _tensor(torch, values, shape):
    out = torch.zeros(shape, dtype=torch.float64)
    for index, v in values.items():
        out[index] = float(v)
    return out.requires_grad_()


def _torch_network(torch, arch, point, m):
    """J from the definitions in torch (H_{-1} = 0; J averaging over examples, or over the
    m T (example, step) pairs with ':all'), with every step's z and h kept for their .grad."""
    activations = _activations(torch)
    steps, features = arch.sequence
    units = len({r for r, _ in point[("W", 1)]})
    X = _tensor(torch, point["X"], (m, steps, features)).detach()
    params = {"W1": _tensor(torch, point[("W", 1)], (units, features)),
              "U1": _tensor(torch, point[("U", 1)], (units, units)),
              "b1": _tensor(torch, point[("b", 1)], (units,))}
    g = activations[arch.recurrent.activation]
    h = torch.zeros(m, units, dtype=torch.float64)
    zs, hs = [], []
    for tau in range(steps):
        z = X[:, tau] @ params["W1"].T + h @ params["U1"].T + params["b1"]
        h = g(z)
        z.retain_grad()
        h.retain_grad()
        zs.append(z)
        hs.append(h)
    # rows of A: example k (at step τ: row T k + τ)
    A = torch.stack(hs, 1).reshape(m * steps, units) if arch.every_step else hs[-1]
    for l, act in zip(arch.dense_labels, arch.activations):
        W = torch.tensor([[float(v) for v in row] for row in point[("W", l)]],
                         dtype=torch.float64, requires_grad=True)
        b = torch.tensor([float(row[0]) for row in point[("b", l)]], dtype=torch.float64,
                         requires_grad=True)
        params[f"W{l}"], params[f"b{l}"] = W, b
        A = activations[act](A @ W.T + b)
    Y = torch.tensor([[float(v) for v in row] for row in point["Y"]], dtype=torch.float64).T
    columns = A.shape[0]
    if arch.loss == "half_sse":
        J = ((A - Y) ** 2).sum() / 2 / columns
    else:
        J = -(Y * torch.log(A)).sum() / columns
    lam = float(arch.l2)
    J = J + lam / (2 * columns) * sum((p ** 2).sum() for name, p in params.items()
                                      if name[0] in "WU")
    J.backward()
    return params, zs, hs, columns


@pytest.mark.parametrize("spec,loss,l2", DIRECT, ids=[d[0] for d in DIRECT])
def test_direct_side_matches_autograd(spec, loss, l2):
    torch = pytest.importorskip("torch")
    arch = parse_arch(spec, loss, l2=l2)
    m, sizes = 2, verify_module.small_sizes(arch)
    point = verify_module._random_point(arch, sizes, m, random.Random(5))
    direct = verify_module._Direct(arch, sizes, m, verify_module._DIGITS)
    with verify_module._DIGITS.context():
        truth = direct.run(point, lambda text: None)
    params, zs, hs, columns = _torch_network(torch, arch, point, m)
    approx = lambda got, want: float(got) == pytest.approx(float(want), rel=1e-9, abs=1e-12)
    for name, grad in (("dW", "W1"), ("dU", "U1"), ("db", "b1")):
        for index, value in truth[(name, 1)].items():
            assert approx(value, params[grad].grad[index]), (name, index)
    for l in arch.dense_labels:
        for r, row in enumerate(truth[("dW", l)]):
            for s, value in enumerate(row):
                assert approx(value, params[f"W{l}"].grad[r, s]), (l, r, s)
        for r, (value,) in enumerate(truth[("db", l)]):
            assert approx(value, params[f"b{l}"].grad[r])
    for (k, tau, r), value in truth[("dZ", 1)].items():  # m ∂J/∂Z at one step, the rest fixed
        assert approx(value, columns * zs[tau].grad[k, r]), ("dZ", k, tau, r)
    for (k, tau, r), value in truth[("dH", 1)].items():
        assert approx(value, columns * hs[tau].grad[k, r]), ("dH", k, tau, r)
    for (k, tau, r), value in truth[("H", 1)].items():
        assert approx(value, hs[tau].detach()[k, r]), ("H", k, tau, r)
