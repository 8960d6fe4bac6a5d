"""What every printer of derivations shares: the scope of an ``Elementwise`` map's placeholders.

Inside ``Elementwise(Lambda((A[2], Y), A[2] - Y), A[2], Y)`` the symbols ``A[2]`` and ``Y`` stand
for whole matrices; while its body prints, ``_bindings`` maps them to those matrices, so that a
printer's ``_entrywise`` can write products as ⊙ and its symbol method can print the matrix.
"""
from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement


class EntrywiseScope:
    """Mixin for a SymPy printer class that defines ``_entrywise(body)``."""

    def __init__(self, settings=None):
        super().__init__(settings)
        self._bindings: dict = {}  # placeholder -> matrix, inside an Elementwise

    def doprint(self, expr):
        # Constants such as SELU's print as the decimals they were given as (see decimal_text).
        return super().doprint(with_decimals(expr))

    def _is_matrix_valued(self, e) -> bool:
        """Inside an Elementwise body: whether ``e`` involves a bound matrix."""
        return bool(e.free_symbols & set(self._bindings))

    def _print_Elementwise(self, expr):
        outer = self._bindings
        self._bindings = {**outer, **expr.bindings()}
        try:
            return self._entrywise(expr.scalar())
        finally:
            self._bindings = outer


def is_negative(term) -> bool:
    """Whether a term of a sum reads with a minus: -x, -2 x, and (-α) dW as a matrix product."""
    if isinstance(term, sp.MatMul):
        coeff = sp.Mul(*[f for f in term.args if not getattr(f, "is_Matrix", False)])
        return coeff.could_extract_minus_sign()
    return term.could_extract_minus_sign()


def signed_join(terms, show) -> str:
    """Terms joined by + and -, the sign read off each term, not off its printed text."""
    out = show(terms[0])
    for term in terms[1:]:
        out += f" - {show(-term)}" if is_negative(term) else f" + {show(term)}"
    return out


def flatten_matmul(expr) -> list:
    """The factors of a matrix product, nested products opened."""
    out = []
    for a in expr.args:
        out.extend(flatten_matmul(a) if isinstance(a, sp.MatMul) else [a])
    return out


def is_reciprocal(f) -> bool:
    return isinstance(f, sp.Pow) and f.exp.is_negative


def entry_atoms(expr) -> list:
    """What makes a product more than a scalar coefficient: entries, sums, derivatives."""
    return [e for e in sp.preorder_traversal(expr)
            if isinstance(e, (MatrixElement, sp.Sum, sp.Derivative, sp.KroneckerDelta,
                              sp.Indexed, sp.Piecewise))]


def is_indicator(expr) -> bool:
    """Piecewise((1, P), (0, True)): the Iverson bracket [P]."""
    return isinstance(expr, sp.Piecewise) and len(expr.args) == 2 \
        and expr.args[1].cond == sp.true and (expr.args[0].expr, expr.args[1].expr) == (1, 0)


def terminating_decimal(value: sp.Rational) -> str | None:
    """``11/20`` -> ``"0.55"``; None when the decimal does not terminate (1/3)."""
    p, q = int(value.p), int(value.q)
    twos = fives = 0
    while q % 2 == 0:
        q //= 2
        twos += 1
    while q % 5 == 0:
        q //= 5
        fives += 1
    if q != 1:
        return None
    places = max(twos, fives)
    scaled = abs(p) * 10 ** places // int(value.q)
    digits = str(scaled).rjust(places + 1, "0")
    whole, frac = digits[: len(digits) - places], digits[len(digits) - places:]
    text = whole + ("." + frac if places else "")
    return ("-" if p < 0 else "") + text


#: A rational with a denominator this large that is a terminating decimal prints as the decimal.
DECIMAL_DENOMINATOR = 1000


def decimal_text(value) -> str | None:
    """A rational with a long terminating decimal expansion, as that decimal (SELU's
    1.0507009873554804934193349852946, GELU's 0.044715); None for other numbers (1/2 and 1/3
    stay fractions)."""
    if not (isinstance(value, sp.Rational) and not value.is_Integer
            and value.q >= DECIMAL_DENOMINATOR):
        return None
    return terminating_decimal(value)


class DecimalNumber(sp.Symbol):
    """A positive rational shown as its exact terminating decimal, by every printer."""

    def __new__(cls, text):
        return super().__new__(cls, text, positive=True)

    def _latex(self, printer):
        return self.name

    def _sympystr(self, printer):
        return self.name

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(self.name)


def with_decimals(expr):
    """expr with every long terminating rational (a decimal_text) as a DecimalNumber."""
    if not isinstance(expr, sp.Basic):
        return expr

    def show(r):
        text = decimal_text(abs(r))
        return DecimalNumber(text) if r > 0 else -DecimalNumber(text)
    return expr.replace(lambda e: isinstance(e, sp.Rational) and decimal_text(e) is not None,
                        show)
