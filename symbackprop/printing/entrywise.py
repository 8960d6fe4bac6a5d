"""What every printer of derivations shares: the scope of an ``Elementwise`` map's placeholders.

Inside ``Elementwise(Lambda((A[2], Y), A[2] - Y), A[2], Y)`` the symbols ``A[2]`` and ``Y`` stand
for whole matrices; while its body prints, ``_bindings`` maps them to those matrices, so that a
printer's ``_entrywise`` can write products as ⊙ and its symbol method can print the matrix.
"""
from __future__ import annotations

import sympy as sp


class EntrywiseScope:
    """Mixin for a SymPy printer class that defines ``_entrywise(body)``."""

    def __init__(self, settings=None):
        super().__init__(settings)
        self._bindings: dict = {}  # placeholder -> matrix, inside an Elementwise

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
