"""Each registry entry: its derivative against central differences, inside its domain."""
import math
import random

import pytest
import sympy as sp

from symbackprop import derive, parse_arch, verify
from symbackprop.registry import ACTIVATIONS, LOSSES, Activation, a, n, y, z

ELEMENTWISE = [name for name, act in ACTIVATIONS.items() if act.elementwise]


def central(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


def sample_points(lo, hi, count=7, seed=1):
    rng = random.Random(seed)
    return [rng.uniform(lo, hi) for _ in range(count)]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_differences(name):
    act = ACTIVATIONS[name]
    g = sp.lambdify(z, act.expr, "math")
    gp = sp.lambdify(z, act.derivative, "math")
    for x in sample_points(*act.domain):
        if abs(x) < 1e-3:  # a kink at 0 (relu, leaky_relu): differences straddle it
            continue
        assert gp(x) == pytest.approx(central(g, x), rel=1e-6, abs=1e-8), (name, x)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_in_terms_of_output_agrees(name):
    act = ACTIVATIONS[name]
    h = act.derivative_of_output
    if h is None:
        assert name in {"identity", "relu", "leaky_relu"}  # no shorter form in a exists
        return
    assert not h.has(z)
    g = sp.lambdify(z, act.expr, "math")
    gp = sp.lambdify(z, act.derivative, "math")
    hp = sp.lambdify(a, h, "math")
    for x in sample_points(*act.domain):
        assert hp(g(x)) == pytest.approx(gp(x), rel=1e-12)


def test_textbook_forms_of_g_prime_come_out_of_the_algebra():
    assert sp.expand(ACTIVATIONS["sigmoid"].derivative_of_output - a * (1 - a)) == 0
    assert sp.expand(ACTIVATIONS["tanh"].derivative_of_output - (1 - a**2)) == 0


def test_relu_and_leaky_relu_derivatives_at_zero_match_pytorch():
    assert ACTIVATIONS["relu"].derivative.subs(z, 0) == 0
    assert ACTIVATIONS["leaky_relu"].derivative.subs(z, 0) == sp.Rational(1, 100)
    assert ACTIVATIONS["relu"].derivative.subs(z, sp.Rational(1, 3)) == 1
    assert ACTIVATIONS["leaky_relu"].expr.subs(z, -2) == sp.Rational(-2, 100)


def test_softmax_columns_sum_to_one():
    act = ACTIVATIONS["softmax"]
    zs = [sp.Rational(1, 2), -1, 2]
    total = 0
    for c in range(3):
        entry = act.expr.subs({sp.Symbol("c", integer=True): c, n: 3}).doit()
        entry = entry.replace(lambda e: isinstance(e, sp.Indexed), lambda e: zs[int(e.indices[0])])
        total += entry
    assert sp.simplify(total) == 1


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_term_derivative_matches_central_differences(name):
    loss = LOSSES[name]
    term = sp.lambdify((a, y), loss.term.subs(n, 3), "math")
    dterm = sp.lambdify((a, y), sp.diff(loss.term, a).subs(n, 3), "math")
    for av, yv in zip(sample_points(*loss.a_domain), sample_points(*loss.y_domain, seed=2)):
        numeric = central(lambda t, yv=yv: term(t, yv), av)
        assert dterm(av, yv) == pytest.approx(numeric, rel=1e-6)


def test_every_entry_has_a_latex_name_and_a_valid_domain():
    for entry in list(ACTIVATIONS.values()) + list(LOSSES.values()):
        assert entry.latex.strip()
    for act in ACTIVATIONS.values():
        assert act.domain[0] < act.domain[1]
    assert LOSSES["bce"].a_domain[0] > 0 and LOSSES["bce"].a_domain[1] < 1  # log(a), log(1-a)


def test_adding_an_activation_is_one_entry(monkeypatch, fresh_engine):
    """swish = z·σ(z): one registry row, and the spec, the engine and the proof accept it."""
    swish = Activation("swish", z / (1 + sp.exp(-z)), r"\operatorname{swish}")
    monkeypatch.setitem(ACTIVATIONS, "swish", swish)
    arch = parse_arch("2-3:swish-2:identity", loss="mse")
    d = derive(arch)
    assert d.layer(1).activation is swish
    report = verify(arch)
    assert report.ok, str(report)
    assert math.isfinite(float(report.checks[0].derived))
