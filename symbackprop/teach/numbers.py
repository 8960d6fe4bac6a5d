"""Exact numbers in, exact numbers out.

Decimal inputs are read as the rationals they denote (``0.55`` is 11/20, never 0.5499999...).
Results that are rational stay exact; a value that is not (σ(1/2) = 1/(1 + e^{-1/2})) is carried
as a SymPy ``Float`` with ``WORKING_DIGITS`` significant digits and printed rounded.
"""
from __future__ import annotations

from fractions import Fraction

import sympy as sp

from ..errors import SymbackpropError
from ..printing.entrywise import terminating_decimal

#: Significant digits carried for values that are not rational.
WORKING_DIGITS = 50
#: Significant digits printed for values that are not rational, unless asked otherwise.
PRINTED_DIGITS = 6
#: A value that is not rational and smaller than this is what is left of a cancellation at the
#: working precision (A - Y of a softmax summing to 1): it prints as 0, marked ≈.
RESIDUE = sp.Float(10, WORKING_DIGITS) ** -(WORKING_DIGITS - 10)


class NumberError(SymbackpropError, ValueError):
    """A number in the input cannot be read."""


def parse_number(text: str, where: str) -> sp.Rational:
    """``"0.55"`` -> 11/20, ``"-3/4"`` -> -3/4, ``"1e-2"`` -> 1/100; ``where`` names the input."""
    cleaned = str(text).strip()
    try:
        value = Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        raise NumberError(f"{where}: {cleaned!r} is not a number; write e.g. 0.5, -2 or 3/4") \
            from None
    return sp.Rational(value.numerator, value.denominator)


def exact(value) -> sp.Rational:
    """An int, Fraction or SymPy rational as a SymPy Rational (bool and float are refused)."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"not an exact number: {value!r}")
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    return sp.Rational(value)


def settle(value) -> sp.Expr:
    """A computed entry as it is carried on: exact if rational, else a working-precision Float."""
    value = sp.sympify(value)
    if value.is_Rational:
        return value
    if not value.is_number:
        raise SymbackpropError(f"internal error: {value} has free symbols {value.free_symbols}")
    number = value.evalf(WORKING_DIGITS)
    if not number.is_real:
        raise SymbackpropError(f"a value is not a real number ({number}); check the inputs "
                               "are in the loss's domain (e.g. 0 < A < 1 for bce)")
    return sp.Float(number, WORKING_DIGITS)


def is_approximate(value) -> bool:
    return not sp.sympify(value).is_Rational


def decimal_text(value, digits: int = PRINTED_DIGITS) -> tuple[str, bool]:
    """(how a number prints, whether it is exact) for a settled value.

    Exact: a terminating decimal (``0.55``) or else a fraction (``1/3``).
    Not exact: rounded to ``digits`` significant digits (``0.622459``).
    """
    value = sp.sympify(value)
    if value.is_Rational:
        text = terminating_decimal(value)
        return (text if text is not None else f"{value.p}/{value.q}"), True
    import mpmath

    number = mpmath.mpf(sp.Float(value, WORKING_DIGITS)._mpf_)
    if number == 0 or abs(value) < RESIDUE:
        return "0", False
    text = mpmath.nstr(number, digits)
    text = text.removesuffix(".0")
    return text, False
