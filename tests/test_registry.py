"""Each registry entry: its derivative against central differences, inside its domain."""
import math
import random

import pytest
import sympy as sp

from symbackprop import derive, parse_arch, verify
from symbackprop.registry import (
    ACTIVATIONS,
    LOSSES,
    Activation,
    a,
    n,
    user_activation,
    user_loss,
    y,
    z,
)

# Functions users write are entries like the built-ins: every test below runs on both.
USER_ACTIVATIONS = {"swish": "z*sigmoid(z)", "clipped": "min(max(z, -1), 1)",
                    "bent": "where(z > 0, z**2 + z, tanh(z))", "absy": "abs(z) + erf(z)"}
USER_LOSSES = {"pseudo_huber": "sqrt(1 + (a - y)**2) - 1", "l1": "abs(a - y)",
               "my_bce": "-(y*log(a) + (1 - y)*log(1 - a))"}
ENTRIES = {**ACTIVATIONS, **{k: user_activation(k, v) for k, v in USER_ACTIVATIONS.items()}}
ALL_LOSSES = {**LOSSES, **{k: user_loss(k, v) for k, v in USER_LOSSES.items()}}
ELEMENTWISE = [name for name, act in ENTRIES.items() if act.elementwise]


def central(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


def sample_points(lo, hi, count=7, seed=1):
    rng = random.Random(seed)
    return [rng.uniform(lo, hi) for _ in range(count)]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_differences(name):
    act = ENTRIES[name]
    g = sp.lambdify(z, act.expr, "math")
    gp = sp.lambdify(z, act.derivative, "math")
    for x in sample_points(*act.domain):
        if any(abs(x - kink) < 1e-3 for kink in (-1, 0, 1)):  # kinks: differences straddle
            continue
        assert gp(x) == pytest.approx(central(g, x), rel=1e-6, abs=1e-8), (name, x)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_in_terms_of_output_agrees(name):
    act = ENTRIES[name]
    h = act.derivative_of_output
    if h is None:  # no form in a alone that is at most as long as g'(z)
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


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_loss_term_derivative_matches_central_differences(name):
    loss = ALL_LOSSES[name]
    term = sp.lambdify((a, y), loss.term.subs(n, 3), "math")
    dterm = sp.lambdify((a, y), sp.diff(loss.term, a).subs(n, 3), "math")
    for av, yv in zip(sample_points(*loss.a_domain), sample_points(*loss.y_domain, seed=2)):
        if loss.term.has(sp.Piecewise, sp.Abs) and min(abs(abs(av - yv) - k) for k in (0, 1)) < 1e-3:
            continue  # a kink of huber or |a - y|: differences straddle it
        numeric = central(lambda t, yv=yv: term(t, yv), av)
        assert dterm(av, yv) == pytest.approx(numeric, rel=1e-6)


def test_every_entry_has_a_latex_name_and_a_valid_domain():
    for entry in list(ENTRIES.values()) + list(ALL_LOSSES.values()):
        assert entry.latex.strip()
    for act in ENTRIES.values():
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


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivatives_at_zero_are_those_of_pytorch(name):
    """Where g has a kink at 0, g'(0) is the value PyTorch uses: the right-hand branch for
    z > 0 conditions (relu'(0) = 0), sign(0) = 0 for abs."""
    act = ENTRIES[name]
    value = act.derivative.subs(z, 0)
    assert value.is_finite and value.is_real, (name, value)


def test_modern_builtins_match_their_reference_definitions():
    """Values against the formulas as PyTorch documents them (independent of SymPy's forms)."""
    import math

    refs = {
        "gelu": lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))),
        "gelu_tanh": lambda x: 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi)
                                                        * (x + 0.044715 * x**3))),
        "silu": lambda x: x / (1 + math.exp(-x)),
        "elu": lambda x: x if x > 0 else math.exp(x) - 1,
        "selu": lambda x: 1.0507009873554805 * (x if x > 0 else 1.6732632423543772
                                                 * (math.exp(x) - 1)),
        "mish": lambda x: x * math.tanh(math.log1p(math.exp(x))),
        "softsign": lambda x: x / (1 + abs(x)),
    }
    for name, ref in refs.items():
        f = sp.lambdify(z, ACTIVATIONS[name].expr, "math")
        for x in (-3.0, -0.7, 0.0, 0.4, 2.5):
            assert f(x) == pytest.approx(ref(x), rel=1e-13, abs=1e-15), (name, x)
    huber = sp.lambdify((a, y), LOSSES["huber"].term, "math")
    assert huber(0.5, 0.0) == pytest.approx(0.125) and huber(3.0, 0.5) == pytest.approx(2.0)
    log_cosh = sp.lambdify((a, y), LOSSES["log_cosh"].term, "math")
    assert log_cosh(1.5, 0.5) == pytest.approx(math.log(math.cosh(1.0)))
