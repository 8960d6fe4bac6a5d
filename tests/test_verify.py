"""The proof: every derived equation equals direct differentiation of the cost."""
import dataclasses
import importlib
import itertools
import json
import time

import pytest
import sympy as sp

from symbackprop import VerificationError, parse_arch, verify
from symbackprop.registry import ACTIVATIONS, LOSSES, a

verify_module = importlib.import_module("symbackprop.verify")
HIDDEN = sorted(name for name, act in ACTIVATIONS.items() if not act.output_only)
DEPTHS = (1, 2, 3, 4)


def _pairs():
    """Every (loss, output activation) pair the spec allows."""
    return [(loss, out) for loss in sorted(LOSSES) for out in sorted(ACTIVATIONS)
            if LOSSES[loss].output_activations is None or out in LOSSES[loss].output_activations]


def _cases():
    """Every (loss, output activation) pair, hidden activations in turn, depths 1 to 4 in
    turn; every hidden activation appears at every depth above 1."""
    cases = []
    for number, (loss, out) in enumerate(_pairs()):
        depth = DEPTHS[number % len(DEPTHS)]
        hidden = [HIDDEN[(number + k) % len(HIDDEN)] for k in range(depth - 1)]
        widths = [2, 3, 2][: depth - 1]
        parts = ["2"] + [f"{w}:{g}" for w, g in zip(widths, hidden)]
        parts.append(f"{3 if out == 'softmax' else 2}:{out}")
        cases.append(("-".join(parts), loss))
    return cases


CASES = _cases()


def _parameters(sizes):
    return sum(o * i + o for i, o in itertools.pairwise(sizes))


def test_cases_cover_the_whole_registry():
    losses = {loss for _, loss in CASES}
    outputs = {spec.rsplit(":", 1)[1] for spec, _ in CASES}
    hidden = {part.split(":")[1] for spec, _ in CASES for part in spec.split("-")[1:-1]}
    depths = {spec.count("-") for spec, _ in CASES}
    assert losses == set(LOSSES)
    assert outputs == set(ACTIVATIONS)
    assert hidden == set(HIDDEN)
    assert depths == set(DEPTHS)
    assert {(loss, spec.rsplit(":", 1)[1]) for spec, loss in CASES} == set(_pairs())


@pytest.mark.parametrize("spec,loss", CASES, ids=[f"{s} {l}" for s, l in CASES])
def test_derivation_is_proven(spec, loss):
    report = verify(parse_arch(spec, loss))
    assert report.ok, str(report)
    assert len(report.gradient) == 2 * _parameters(report.sizes)  # every dW, db, two points
    # Six equations a layer (Z, A, BP4, BP1, BP2, BP3), and the output layer's loss and output.
    depth = spec.count("-")
    assert len(report.lemmas) == 6 * depth + 2
    assert all(lemma.method == "symbolic" for lemma in report.lemmas), str(report)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_rowvec_derivation_is_proven(loss):
    """Rows are examples: the same proof, every loss, in the notation's own layout."""
    outputs = LOSSES[loss].output_activations or ("tanh",)
    spec = f"3-4:relu-2:softsign-{3 if outputs[0] == 'softmax' else 2}:{outputs[0]}"
    report = verify(parse_arch(spec, loss), notation="rowvec")
    assert report.ok, str(report)
    names = {c.name.split("]")[0] + "]" for c in report.gradient}
    assert "dW[1]" in names and "db[3]" in names
    db = [c for c in report.gradient if c.name.startswith("db[1]")]
    assert [c.name for c in db[:3]] == ["db[1][0, 0]", "db[1][0, 1]", "db[1][0, 2]"]  # 1 × n


def test_silu_output_with_log_cosh_is_proven():
    """Once a false failure: SiLU's output error from log-cosh holds exp(Z) and its inverse."""
    report = verify(parse_arch("2-2:elu-1:silu", "log_cosh"))
    assert report.ok, str(report)
    assert {c.method for c in report.checks} == {"digits"}


def test_piecewise_linear_networks_are_proven_exactly():
    report = verify(parse_arch("2-3:relu-2:leaky_relu-2:identity", "mse"), m=3)
    assert report.ok and report.count("exact") == len(report.checks)
    assert all(isinstance(c.derived, sp.Rational) for c in report.checks)


def test_rational_arithmetic_gives_way_to_digits_when_numbers_grow():
    """softsign keeps values rational, but their length multiplies layer by layer."""
    shallow = verify(parse_arch("2-3:softsign-2:identity", "huber"))
    deep = verify(parse_arch("2" + "-3:softsign" * 8 + "-2:identity", "huber"), points=1)
    assert shallow.ok and shallow.count("exact") == len(shallow.checks)
    assert deep.ok and deep.count("digits") == len(deep.checks)


def test_wide_architecture_is_proven_at_small_sizes():
    report = verify(parse_arch("784-128:relu-10:softmax", "cross_entropy"))
    assert report.ok and report.sizes == (3, 3, 3)


def test_deep_network_is_proven_in_seconds():
    spec = "4" + "-4:tanh" * 12 + "-4:relu" * 7 + "-3:softmax"  # 20 layers with weights
    start = time.perf_counter()
    report = verify(parse_arch(spec, "cross_entropy"))
    assert report.ok, str(report)
    assert time.perf_counter() - start < 60
    assert len(report.lemmas) == 6 * 20 + 2


@pytest.mark.parametrize("m", [1, 3])
def test_other_numbers_of_examples(m):
    report = verify(parse_arch("2-3:gelu-2:sigmoid", "bce"), m=m)
    assert report.ok and report.m == m
    assert len(report.gradient) == 2 * _parameters(report.sizes)


def test_user_defined_functions_are_proven():
    arch = parse_arch("2-3:swish-2:identity", loss="pseudo_huber",
                      definitions={"activations": {"swish": "z*sigmoid(z)"},
                                   "losses": {"pseudo_huber": "sqrt(1 + (a - y)**2) - 1"}})
    report = verify(arch)
    assert report.ok, str(report)
    assert all(lemma.ok for lemma in report.lemmas)


USER_FUNCTIONS = [  # (activation text, loss text): piecewise, abs, min/max, erf, pi
    ("min(max(z, -1), 1)", "abs(a - y)"),
    ("where(z > 0, z**2, 0) + z", "log(1 + (a - y)**2)"),
    ("erf(z)*pi/4 + sin(z)", "max(0, 1 - a*y)"),
    ("abs(z) + z/2", "(a - y)**4"),
]


@pytest.mark.parametrize("act,loss", USER_FUNCTIONS)
def test_table_of_user_functions_is_proven(act, loss):
    arch = parse_arch("2-3:mine-2:tanh-2:mine", loss="my_loss",
                      definitions={"activations": {"mine": act}, "losses": {"my_loss": loss}})
    report = verify(arch)
    assert report.ok, str(report)


def test_user_loss_of_probabilities_is_proven():
    """A loss defined only for a in (0, 1), behind a user's activation that stays there."""
    arch = parse_arch("2-3:my_tanh-2:squash", loss="my_bce",
                      definitions={"activations": {"squash": "1/(1 + exp(-z))",
                                                   "my_tanh": "where(z > 0, z, tanh(z))"},
                                   "losses": {"my_bce": "-y*log(a) - (1 - y)*log(1 - a)"}})
    report = verify(arch, notation="rowvec")
    assert report.ok, str(report)


def test_l2_penalty_is_proven():
    report = verify(parse_arch("2-3:relu-2:identity", "mse", l2="0.1"))
    assert report.ok, str(report)
    assert report.count("exact") == len(report.checks)
    assert "l2 1/10" in report.summary()


def test_a_derivation_without_the_penalty_fails_a_penalised_cost(monkeypatch):
    """The direct side adds (λ/2m) Σ ‖W‖² itself: an engine that forgot it is caught in BP1."""
    from symbackprop import engine

    penalised = parse_arch("2-3:tanh-2:identity", "half_sse", l2="0.5")
    plain = parse_arch("2-3:tanh-2:identity", "half_sse")
    monkeypatch.setattr(verify_module, "derive",
                        lambda arch, notation="ng": engine.derive(plain, notation))
    report = verify(penalised)
    assert not report.ok
    assert {c.equation for c in report.failures} == {"BP1"}
    assert {lemma.equation for lemma in report.lemmas if not lemma.ok} == {"BP1"}


def test_a_wrong_derivative_is_caught(monkeypatch, fresh_engine):
    """Sabotage sigma' = a(1 - a) into a(1 + a): the engine then derives a wrong BP4 and the
    proof must say so, naming the equation and the entries that differ."""
    wrong = dataclasses.replace(ACTIVATIONS["sigmoid"])
    object.__setattr__(wrong, "derivative_of_output", a * (1 + a))  # cached_property slot
    monkeypatch.setitem(ACTIVATIONS, "sigmoid", wrong)
    report = verify(parse_arch("2-3:sigmoid-1:identity", "half_sse"))
    assert not report.ok
    failed = {c.name.split("]")[0] + "]" for c in report.gradient if not c.ok}
    assert failed == {"dW[1]", "db[1]"}  # the output layer does not use sigma'
    assert [(x.layer, x.equation) for x in report.lemmas if not x.ok] == [(1, "BP4")]
    assert report.failures[0].equation == "BP4" and report.failures[0].name.startswith("dZ[1]")
    text = str(report)
    assert text.startswith("FAILED") and "!=" in text
    assert "first difference: layer 1 BP4" in text


def test_a_wrong_output_error_is_caught(monkeypatch, fresh_engine):
    """The same sabotage on the output layer: the simplified output error is wrong."""
    wrong = dataclasses.replace(ACTIVATIONS["sigmoid"])
    object.__setattr__(wrong, "derivative_of_output", a * (1 + a))
    monkeypatch.setitem(ACTIVATIONS, "sigmoid", wrong)
    report = verify(parse_arch("2-2:relu-2:sigmoid", "log_cosh"))
    assert not report.ok
    assert report.failures[0].equation == "BP4" and report.failures[0].name.startswith("dZ[2]")
    assert {x.equation for x in report.lemmas if not x.ok} == {"BP4", "output"}


def _sabotaged(monkeypatch, layer, name, change):
    """verify sees a derivation whose equation ``name`` of ``layer`` has rhs ``change(rhs)``."""
    from symbackprop import engine

    def derive(arch, notation="ng"):
        d = engine.derive(arch, notation)
        old = d.layer(layer)
        eq = old.backward[name]
        backward = {**old.backward, name: dataclasses.replace(eq, rhs=change(eq.rhs))}
        layers = list(d.layers)
        layers[layer - 1] = dataclasses.replace(old, backward=backward)
        return dataclasses.replace(d, layers=tuple(layers))
    monkeypatch.setattr(verify_module, "derive", derive)


def test_a_wrong_equation_deep_in_the_network_is_named(monkeypatch):
    _sabotaged(monkeypatch, 7, "BP3", lambda rhs: 2 * rhs)
    report = verify(parse_arch("3" + "-3:tanh" * 11 + "-2:identity", "half_sse"))
    assert not report.ok
    assert [(x.layer, x.equation) for x in report.lemmas if not x.ok] == [(7, "BP3")]
    first = report.failures[0]
    assert first.equation == "BP3" and first.name.startswith("dA[6]")
    assert all(c.ok for c in report.checks if c.name.startswith(("dW[7]", "dW[12]", "dZ[7]")))


def test_a_wrong_branch_of_a_piecewise_derivative_is_caught(monkeypatch):
    """leaky_relu' = 1/100 for z <= 0, sabotaged into 1/50: only negative entries see it."""
    _sabotaged(monkeypatch, 1, "BP4",
               lambda rhs: rhs.xreplace({sp.Rational(1, 100): sp.Rational(1, 50)}))
    report = verify(parse_arch("2-3:leaky_relu-2:identity", "mse"))
    assert not report.ok
    assert [(x.layer, x.equation) for x in report.lemmas if not x.ok] == [(1, "BP4")]


def test_report_counts_and_summary():
    report = verify(parse_arch("2-3-1"), m=2)
    assert report.summary().startswith("PROVEN: 2-3-1 loss half_sse (ng): 26 of 26")
    assert "14 of 14 layer equations proven symbolic identities" in report.summary()
    assert all(isinstance(c.derived, sp.Basic) for c in report.checks)
    assert report.failures == [] and str(report) == report.summary()
    data = report.as_dict()
    assert data["verdict"] == "PROVEN" and data["sizes"] == [2, 3, 1]
    assert len(data["checks"]) == len(report.checks)
    assert set(data["timings"]) >= {"derive", "lemmas", "point 1", "point 2", "total"}


def test_bad_sizes_and_m_are_refused():
    arch = parse_arch("2-3-1")
    with pytest.raises(VerificationError, match="do not fit"):
        verify(arch, sizes=(2, 3))
    with pytest.raises(VerificationError, match="between 1 and 64"):
        verify(arch, m=65)


def test_verify_command_exits_1_when_the_proof_fails(monkeypatch, fresh_engine, capsys):
    from symbackprop.cli import main

    wrong = dataclasses.replace(ACTIVATIONS["tanh"])
    object.__setattr__(wrong, "derivative_of_output", 1 + a**2)
    monkeypatch.setitem(ACTIVATIONS, "tanh", wrong)
    assert main(["verify", "2-2:tanh-1:identity"]) == 1
    assert capsys.readouterr().out.startswith("FAILED: 2-2:tanh-1:identity")
    assert main(["verify", "2-2:tanh-1:identity", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "FAILED"


def test_verify_command_json(capsys):
    from symbackprop.cli import main

    assert main(["verify", "3-2:relu-2:softmax", "--loss", "cross_entropy", "--json",
                 "--notation", "rowvec", "-m", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "PROVEN" and data["notation"] == "rowvec" and data["m"] == 3
    assert data["arch"] == "3-2:relu-2:softmax" and data["loss"] == "cross_entropy"
    assert data["precision"]["digits"] == {"working_digits": 100, "agreeing_digits": 50,
                                           "zero_below": "1e-90"}
    assert "forward-mode" in data["method"] and "point 3" not in data["method"]
    assert "point 1: exact" in data["method"] or "point 1: 100-digit" in data["method"]
    entry = data["checks"][0]
    assert set(entry) == {"name", "equation", "point", "method", "ok", "derived", "direct"}
    assert {x["equation"] for x in data["lemmas"]} == {"forward", "BP4", "loss", "output",
                                                       "BP1", "BP2", "BP3"}


def test_progress_goes_to_stderr_only(monkeypatch, capsys):
    from symbackprop.cli import main
    from symbackprop.commands import verify as command

    monkeypatch.setattr(command, "QUIET_SECONDS", 0.0)
    monkeypatch.setattr(command, "INTERVAL", 0.0)
    assert main(["verify", "2-3:tanh-3:relu-2:identity"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("PROVEN") and "verify:" not in out
    lines = err.splitlines()
    assert lines and all(line.startswith("verify: ") for line in lines)
    assert any("layer 3 of 3" in line for line in lines)


def test_quiet_when_fast(capsys):
    from symbackprop.cli import main

    assert main(["verify", "2-3-1"]) == 0
    assert capsys.readouterr().err == ""
