"""The expression language of functions users write: what it builds, and what it refuses.

Nothing a user writes is executed: hostile text is refused with a SpecError naming the token.
"""
import math

import pytest
import sympy as sp

from symbackprop import SpecError
from symbackprop.expressions import FUNCTIONS, parse

z = sp.Symbol("z", real=True)
VARS = {"z": z}


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


# text -> the same function in plain Python, compared at sample points.
VALID = {
    "z*sigmoid(z)": lambda x: x * sigmoid(x),
    "2*z**2 - 3/4*z + 1e-3": lambda x: 2 * x**2 - 0.75 * x + 1e-3,
    "exp(-z) + log(1 + z**2) + sqrt(1 + z**2)":
        lambda x: math.exp(-x) + math.log(1 + x * x) + math.sqrt(1 + x * x),
    "abs(z) + sin(z) * cos(z) - tanh(z)":
        lambda x: abs(x) + math.sin(x) * math.cos(x) - math.tanh(x),
    "softplus(z) + erf(z/2)": lambda x: math.log1p(math.exp(x)) + math.erf(x / 2),
    "min(z, 1) + max(z, -1)": lambda x: min(x, 1) + max(x, -1),
    "where(z > 0, z, 0.01*z)": lambda x: x if x > 0 else 0.01 * x,
    "where(z <= 1, z**2, pi*e)": lambda x: x * x if x <= 1 else math.pi * math.e,
    "-(+z) + 1_000": lambda x: -x + 1000,
}


@pytest.mark.parametrize("text", sorted(VALID))
def test_valid_expressions_build_the_function_written(text):
    expr = parse(text, VARS)
    f = sp.lambdify(z, expr, "math")
    for x in (-2.5, -1.0, -0.3, 0.4, 1.0, 2.0, 3.7):
        assert f(x) == pytest.approx(VALID[text](x), rel=1e-12, abs=1e-12), (text, x)


def test_numbers_are_exact_rationals():
    assert parse("0.1*z", VARS) == sp.Rational(1, 10) * z
    assert parse("1e-3", {"z": z}) == sp.Rational(1, 1000)


def test_every_function_of_the_table_is_accepted_with_its_arity():
    for name, (arity, _) in FUNCTIONS.items():
        args = ", ".join(["z"] * arity)
        assert parse(f"{name}({args})", VARS).has(z), name
        with pytest.raises(SpecError, match=f"{name}\\(\\) with {arity + 1} arguments"):
            parse(f"{name}({', '.join(['z'] * (arity + 1))})", VARS)


# text -> a fragment the error must contain (it names the offending token).
HOSTILE = {
    "__import__('os').system('echo hi')": "'__import__'",
    "z.__class__": "'__class__'",
    "z.real": "attribute access",
    "().__class__.__bases__[0]": "names starting with '_' are never allowed",
    "lambda: 1": "'lambda'",
    "z[0]": "subscript",
    "'abc'": "a string",
    "b'abc'": "a string",
    "[z]": "a list",
    "(z, z)": "a tuple",
    "{z: 1}": "a dict",
    "z if z > 0 else 0": "'... if ... else ...'",
    "z > 0": "a comparison outside where",
    "z and 1": "'and'/'or'",
    "eval('1')": "the function 'eval'",
    "open('/etc/passwd')": "the function 'open'",
    "exec": "unknown symbol 'exec'",
    "w + z": "unknown symbol 'w'",
    "z // 2": "'//'",
    "z % 2": "'%'",
    "z ^ 2": "'^'",
    "exp": "without arguments",
    "exp(z=1)": "keyword arguments",
    "where(z, 1, 0)": "not one comparison",
    "where(0 < z < 1, 1, 0)": "not one comparison",
    "where(z == 0, 1, 0)": "the comparison 'Eq'",
    "where(z > 0, 1)": "where() with 2 arguments",
    "1j*z": "complex literal",
    "0x10*z": "decimal",
    "z**1000": "powers are limited",
    "1e999999999*z": "exponents are limited",
    "z +": "not an expression",
    "": "empty expression",
    "(z := 1)": "':='",
    "f'{z}'": "f-string",
    "True*z": "True",
}


@pytest.mark.parametrize("text", sorted(HOSTILE))
def test_hostile_or_malformed_text_is_refused_naming_the_token(text):
    with pytest.raises(SpecError) as info:
        parse(text, VARS, "activation 'x'")
    message = str(info.value)
    assert HOSTILE[text] in message, message
    assert "\n" not in message


def test_deep_nesting_and_long_text_are_refused_not_crashing():
    with pytest.raises(SpecError):
        parse("(" * 100_000 + "z" + ")" * 100_000, VARS)
    with pytest.raises(SpecError, match="at most"):
        parse("z+" * 5000 + "z", VARS)
    with pytest.raises(SpecError, match="nested too deeply"):
        parse("-" * 1900 + "z", VARS)


def test_parsing_never_reaches_eval(monkeypatch):
    import builtins

    def no_eval(*args, **kwargs):  # pragma: no cover - failing is the point
        raise AssertionError("eval called")
    monkeypatch.setattr(builtins, "eval", no_eval)
    monkeypatch.setattr(sp, "sympify", no_eval)
    assert parse("z*sigmoid(z) + where(z > 0, z, 0)", VARS).has(z)
