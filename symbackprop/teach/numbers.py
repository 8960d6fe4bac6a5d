"""Exact numbers in, exact numbers out.

Decimal inputs are read as the rationals they denote (``0.55`` is 11/20, never 0.5499999...),
within bounds (``MAX_DIGITS`` digits, exponents up to ``MAX_EXPONENT``): ``1e999999999`` would
be an integer of a billion digits. Results that are rational stay exact; a value that is not
(σ(1/2) = 1/(1 + e^{-1/2})) is carried as a SymPy ``Float`` with ``WORKING_DIGITS`` significant
digits and printed rounded.

A value that lies closer to a nonzero integer than its digits can tell (σ(1000) = 1 - 5·10⁻⁴³⁵,
tanh(200)) would lose what later steps need (1 - A, its logarithm, 1/(1 - A)): it is computed
again from the exact numbers behind it and carried with as many more digits as it takes, up to
``EXTRA_DIGITS`` (``settle``'s ``exact``). Then a saturated sigmoid's cross-entropy and its
gradient are worked as the stable forms (softplus, A - Y) give them.

How a value prints (``decimal_text``, ``matrix_texts``): exact as a terminating decimal (0.55)
or a fraction (1/3) while it is short, else rounded to the digits asked for. A matrix is
printed in one representation: fractions when every entry is exact and one needs a fraction,
else decimals (entries that are not terminating decimals then rounded, shown with ≈).
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

import sympy as sp

from ..errors import SymbackpropError

#: Significant digits carried for values that are not rational.
WORKING_DIGITS = 50
#: At most this many more digits for a value next to an integer (σ(z) for z up to about 1,100).
EXTRA_DIGITS = 500
#: Significant digits printed for values that are not rational, unless asked otherwise.
PRINTED_DIGITS = 6
#: A value that is not rational and smaller than this is what is left of a cancellation at the
#: working precision (A - Y of a softmax summing to 1): it prints as 0, marked ≈.
RESIDUE = sp.Float(10, WORKING_DIGITS) ** -(WORKING_DIGITS - 10)
#: An input number has at most this many digits and a decimal exponent within ±MAX_EXPONENT.
MAX_DIGITS = 100
MAX_EXPONENT = 300
#: An exact value prints exactly while its decimal or fraction has at most this many digits.
EXACT_DIGITS = 24

_NUMBER = re.compile(r"[+-]?(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+))?\Z")
_FRACTION = re.compile(r"[+-]?\d+\s*/\s*[+-]?\d+\Z")


class NumberError(SymbackpropError, ValueError):
    """A number in the input cannot be read."""


def parse_number(text: str, where: str) -> sp.Rational:
    """``"0.55"`` -> 11/20, ``"-3/4"`` -> -3/4, ``"1e-2"`` -> 1/100; ``where`` names the input.
    At most MAX_DIGITS digits and an exponent within ±MAX_EXPONENT, checked on the text before
    any number is made of it."""
    return exact(_bounded(str(text).strip(), where))


def _bounded(cleaned: str, where: str) -> Fraction:
    shown = cleaned if len(cleaned) <= 40 else cleaned[:20] + "..." + f" ({len(cleaned)} characters)"
    digits = sum(ch.isdigit() for ch in cleaned)
    decimal, fraction = _NUMBER.match(cleaned), _FRACTION.match(cleaned)
    if not cleaned.isascii() or not (decimal or fraction):
        raise NumberError(f"{where}: {shown!r} is not a number; write e.g. 0.5, -2, 3/4 or 1e-3")
    if digits > MAX_DIGITS:
        raise NumberError(f"{where}: {shown!r} has {digits} digits; a number has at most "
                          f"{MAX_DIGITS} (symbackprop computes with them exactly)")
    if decimal and decimal.group(4) is not None:
        exponent = int(decimal.group(4))
        if abs(exponent) > MAX_EXPONENT:
            raise NumberError(f"{where}: {shown!r} has the exponent {exponent}; exponents are "
                              f"from -{MAX_EXPONENT} to {MAX_EXPONENT} (the number is "
                              "computed with exactly, every digit of it)")
    try:
        return Fraction(cleaned.replace(" ", ""))
    except ZeroDivisionError:
        raise NumberError(f"{where}: {shown!r} divides by zero") from None


def parse_json_float(text: str) -> Fraction:
    """A JSON number with a fraction or an exponent, read exactly within the same bounds."""
    return _bounded(text, "a JSON number")


def parse_json_int(text: str) -> int:
    """A JSON integer within the same bounds (json's own limit is 4,300 digits)."""
    value = _bounded(text, "a JSON number")
    return int(value)


def exact(value) -> sp.Rational:
    """An int, Fraction or SymPy rational as a SymPy Rational (bool and float are refused)."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"not an exact number: {value!r}")
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    return sp.Rational(value)


def exactly(expr):
    """``expr`` with every Float replaced by the rational it holds, bit for bit."""
    floats = expr.atoms(sp.Float) if isinstance(expr, sp.Basic) else ()
    return expr.xreplace({x: sp.Rational(x) for x in floats}) if floats else expr


def settle(value, exact_value=None) -> sp.Expr:
    """A computed entry as it is carried on: exact if rational, else a Float of
    WORKING_DIGITS digits (more next to an integer, when ``exact_value``, a function giving
    the value computed from exact numbers, can tell how close: see the module's text)."""
    if not isinstance(value, sp.Basic):
        value = sp.sympify(value)
    if isinstance(value, sp.Rational):
        return value
    if isinstance(value, sp.Float) and value._prec == _WORKING_BITS and value.is_finite:
        number = value  # the common case: a Float computed at the working precision
        if not _next_to_integer(number) or exact_value is None:
            return value
    elif not value.is_number:
        raise SymbackpropError(f"internal error: {value} has free symbols {value.free_symbols}")
    else:
        number = value.evalf(WORKING_DIGITS)
    if _carried(value) and (_next_to_integer(number) or abs(number) < RESIDUE):
        return value  # carried with the digits it needs (a gap to an integer, or what it left)
    if exact_value is not None and (not number.is_real or _next_to_integer(number)):
        return _settle_exactly(sp.sympify(exact_value()))
    if not number.is_real:
        raise _not_real(number)
    return sp.Float(number, WORKING_DIGITS)


def _carried(value) -> bool:
    """A Float with more digits than WORKING_DIGITS: one next to an integer, or a value
    computed from one (1 - A of a saturated sigmoid), its digits all meaningful."""
    return isinstance(value, sp.Float) and value._prec > _bits(WORKING_DIGITS + 5)


def _bits(digits: int) -> int:
    return math.ceil(digits * math.log2(10)) + 1


_WORKING_BITS = sp.Float(1, WORKING_DIGITS)._prec


def _nearest_integer(number) -> int | None:
    """The integer nearest a real Float, or None (not a real finite Float)."""
    import mpmath

    if not isinstance(number, sp.Float) or not number.is_finite:
        return None
    return int(mpmath.nint(mpmath.mpf(number._mpf_)))


def _next_to_integer(number) -> bool:
    """A real number within the working precision's last digits of a nonzero integer."""
    import mpmath

    near = _nearest_integer(number)
    if not near:
        return False
    gap = abs(mpmath.mpf(number._mpf_) - near)
    return gap <= mpmath.mpf(RESIDUE._mpf_) * abs(near)


def _settle_exactly(value) -> sp.Expr:
    if value.is_Rational:
        return value
    most = WORKING_DIGITS + EXTRA_DIGITS
    number = value.evalf(WORKING_DIGITS, maxn=most)
    if not number.is_real:
        raise _not_real(number)
    if _next_to_integer(number):
        near = sp.Integer(_nearest_integer(number))
        gap = (value - near).evalf(WORKING_DIGITS, maxn=most)
        if gap.is_real and gap != 0:
            import mpmath

            scale = mpmath.log10(abs(near)) - mpmath.log10(abs(mpmath.mpf(gap._mpf_)))
            digits = WORKING_DIGITS + int(mpmath.ceil(scale))
            if digits <= most:
                return sp.Float(value.evalf(digits), digits)
    return sp.Float(number, WORKING_DIGITS)


def _not_real(number) -> SymbackpropError:
    return SymbackpropError(
        f"a value is not a real number ({number}): the inputs are outside the loss's domain "
        "(e.g. 0 < A < 1 for bce), or an activation saturates beyond the "
        f"{WORKING_DIGITS + EXTRA_DIGITS} digits carried (a pre-activation of about 1,000 or "
        "more); scale the inputs or weights down")


def is_approximate(value) -> bool:
    return not sp.sympify(value).is_Rational


# --- printing -----------------------------------------------------------------------------

def _digits_of(n: int) -> int:
    """The number of decimal digits of |n|, without printing it (str() of an integer of more
    than 4,300 digits raises)."""
    n = abs(int(n))
    if n < 10:
        return 1
    estimate = int(n.bit_length() * math.log10(2))
    return estimate + (n >= 10 ** estimate)


@lru_cache(maxsize=4096)
def _terminating(value: sp.Rational) -> str | None:
    """11/20 -> "0.55", 3/10**30 -> "3e-30"; None when the decimal does not terminate or has
    more than EXACT_DIGITS significant digits."""
    p, q = int(value.p), int(value.q)
    twos = (q & -q).bit_length() - 1
    rest = q >> twos
    fives = round(rest.bit_length() / math.log2(5)) if rest > 1 else 0
    for guess in (fives - 1, fives, fives + 1):  # rest is 5^fives, or not a power of 5
        if guess >= 0 and 5 ** guess == rest:
            fives = guess
            break
    else:
        return None
    places = max(twos, fives)
    scaled = abs(p) * (10 ** places // q)  # the digits, with the point ``places`` from the right
    sign = "-" if p < 0 else ""
    if places + _digits_of(p) <= EXACT_DIGITS:
        digits = str(scaled).rjust(places + 1, "0")
        whole, frac = digits[: len(digits) - places], digits[len(digits) - places:]
        return sign + whole + ("." + frac if places else "")
    zeros = 0  # else in scientific notation: 1.5e-30, 2e+40
    while scaled % 10 == 0:
        scaled //= 10
        zeros += 1
    if _digits_of(scaled) > EXACT_DIGITS:
        return None
    text = str(scaled)
    exponent = len(text) - 1 + zeros - places
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{sign}{mantissa}e{exponent:+d}"


@lru_cache(maxsize=4096)
def _fraction(value: sp.Rational) -> str | None:
    if _digits_of(value.p) + _digits_of(value.q) > EXACT_DIGITS:
        return None
    return str(value.p) if value.q == 1 else f"{value.p}/{value.q}"


def _rounded(value, digits: int) -> str:
    import mpmath

    with mpmath.workdps(WORKING_DIGITS):
        if value.is_Rational:  # through mpmath: SymPy would print a long integer to convert it
            number = mpmath.mpf(int(value.p)) / int(value.q)
        else:
            number = mpmath.mpf((value if isinstance(value, sp.Float)
                                 else sp.Float(value, WORKING_DIGITS))._mpf_)
            if number == 0 or (abs(value) < RESIDUE and not _carried(value)):
                return "0"
        text = mpmath.nstr(number, digits)
    return text.removesuffix(".0").replace(".0e", "e")


#: How the entries of one matrix print: all as decimals (exact where they terminate, else
#: rounded) or, when every entry is exact and some need one, all as fractions.
DECIMALS, FRACTIONS = "decimals", "fractions"


def representation(values) -> str:
    """The one representation of a matrix (or a single value) of settled numbers."""
    values = [v if isinstance(v, sp.Basic) else sp.sympify(v) for v in values]
    if any(not isinstance(v, sp.Rational) for v in values):
        return DECIMALS
    if all(_terminating(v) is not None for v in values):
        return DECIMALS
    if all(_fraction(v) is not None for v in values):
        return FRACTIONS
    return DECIMALS


def decimal_text(value, digits: int = PRINTED_DIGITS, form: str | None = None
                 ) -> tuple[str, bool]:
    """(how a number prints, whether it is shown exactly) for a settled value, in the matrix's
    representation ``form`` (default: the value's own).

    Exact: a terminating decimal (``0.55``) or else a fraction (``1/3``), while short.
    Not exact: rounded to ``digits`` significant digits (``0.622459``).
    """
    if not isinstance(value, sp.Basic):
        value = sp.sympify(value)
    form = form or representation([value])
    if value.is_Rational:
        text = _fraction(value) if form == FRACTIONS else _terminating(value)
        if text is not None:
            return text, True
    return _rounded(value, digits), False


def shown_exactly(values) -> bool:
    """Whether every entry of a matrix (or a single value) prints exactly, in the matrix's one
    representation: the relation before it is = (else ≈)."""
    form = representation(values)
    return all(decimal_text(v, PRINTED_DIGITS, form)[1] for v in values)


def matrix_texts(values, digits: int = PRINTED_DIGITS) -> tuple[list[str], bool]:
    """The entries of a matrix as they print, all in one representation, and whether every
    one is shown exactly."""
    form = representation(values)
    shown = [decimal_text(v, digits, form) for v in values]
    return [text for text, _ in shown], all(exact for _, exact in shown)
