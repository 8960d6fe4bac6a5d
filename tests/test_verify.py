"""The proof: every derived gradient equals direct differentiation of the expanded cost."""
import dataclasses

import pytest
import sympy as sp

from symbackprop import parse_arch, verify
from symbackprop.registry import ACTIVATIONS, LOSSES, a

HIDDEN = sorted(name for name, act in ACTIVATIONS.items() if not act.output_only)


def _cases():
    """Every (loss, output activation) pair the spec allows, hidden activations in turn,
    depths 1, 2, 3 in turn; every hidden activation appears at every depth above 1."""
    pairs = [(loss, out) for loss in sorted(LOSSES) for out in sorted(ACTIVATIONS)
             if LOSSES[loss].output_activations is None or out in LOSSES[loss].output_activations]
    cases = []
    for number, (loss, out) in enumerate(pairs):
        depth = 1 + number % 3
        hidden = [HIDDEN[(number + k) % len(HIDDEN)] for k in range(depth - 1)]
        widths = [2, 3, 2][: depth - 1]
        parts = ["2"] + [f"{w}:{g}" for w, g in zip(widths, hidden)]
        parts.append(f"{3 if out == 'softmax' else 2}:{out}")
        cases.append(("-".join(parts), loss))
    return cases


CASES = _cases()


def test_cases_cover_the_whole_registry():
    losses = {loss for _, loss in CASES}
    outputs = {spec.rsplit(":", 1)[1] for spec, _ in CASES}
    hidden = {part.split(":")[1] for spec, _ in CASES for part in spec.split("-")[1:-1]}
    depths = {spec.count("-") for spec, _ in CASES}
    assert losses == set(LOSSES)
    assert outputs == set(ACTIVATIONS)
    assert hidden == set(HIDDEN)
    assert depths == {1, 2, 3}


@pytest.mark.parametrize("spec,loss", CASES, ids=[f"{s} {l}" for s, l in CASES])
def test_derivation_is_proven(spec, loss):
    report = verify(parse_arch(spec, loss))
    assert report.ok, str(report)
    params = sum(o * i + o for i, o in zip(report.sizes, report.sizes[1:]))
    assert len(report.checks) == 2 * params  # every weight and bias, at two points


@pytest.mark.parametrize("spec,loss", [("3-4:tanh-3:softmax", "cross_entropy"),
                                       ("2-3:relu-2:leaky_relu-2:sigmoid", "bce")])
def test_rowvec_derivation_is_proven(spec, loss):
    report = verify(parse_arch(spec, loss), notation="rowvec")
    assert report.ok, str(report)


def test_piecewise_linear_networks_are_proven_exactly():
    report = verify(parse_arch("2-3:relu-2:leaky_relu-2:identity", "mse"), m=3)
    assert report.ok and report.count("exact") == len(report.checks)


def test_wide_architecture_is_proven_at_small_sizes():
    report = verify(parse_arch("784-128:relu-10:softmax", "cross_entropy"))
    assert report.ok and report.sizes == (3, 3, 3)


def test_a_wrong_derivative_is_caught(monkeypatch, fresh_engine):
    """Sabotage sigma' = a(1 - a) into a(1 + a): the engine then derives a wrong BP4 and the
    proof must say so, naming the entries that differ."""
    wrong = dataclasses.replace(ACTIVATIONS["sigmoid"])
    object.__setattr__(wrong, "derivative_of_output", a * (1 + a))  # cached_property slot
    monkeypatch.setitem(ACTIVATIONS, "sigmoid", wrong)
    report = verify(parse_arch("2-3:sigmoid-1:identity", "half_sse"))
    assert not report.ok
    failed = {c.name.split("[")[0] + "[" + c.name.split("[")[1] for c in report.failures}
    assert failed == {"dW[1]", "db[1]"}  # the output layer does not use sigma'
    assert "FAILED" in str(report) and "!=" in str(report)


def test_report_counts_and_summary():
    report = verify(parse_arch("2-3-1"), m=2)
    assert report.summary().startswith("PROVEN: 2-3-1 loss half_sse (ng): 26 of 26")
    assert all(isinstance(c.derived, sp.Basic) for c in report.checks)


def test_verify_command_exits_1_when_the_proof_fails(monkeypatch, fresh_engine, capsys):
    from symbackprop.cli import main

    wrong = dataclasses.replace(ACTIVATIONS["tanh"])
    object.__setattr__(wrong, "derivative_of_output", 1 + a**2)
    monkeypatch.setitem(ACTIVATIONS, "tanh", wrong)
    assert main(["verify", "2-2:tanh-1:identity"]) == 1
    assert capsys.readouterr().out.startswith("FAILED: 2-2:tanh-1:identity")
