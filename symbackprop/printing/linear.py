"""One-line text for formulas in terms of entries: ``dW[2] = (1/m) dZ[2] A[1]ᵀ``.

A ``StrPrinter`` subclass with one method per node the derivation uses: matrix products,
transposes, ones, and ``Elementwise`` maps, whose products print as ⊙. The 2-D terminal
documents use ``pretty.py``; this printer serves where a formula must stay on one line
(the worked examples and path listings of ``explain`` and ``example``).
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

from ..matrices import Elementwise


class TextPrinter(StrPrinter):
    """Matrices by name, products by juxtaposition, ⊙ for entrywise products."""

    def __init__(self, settings=None):
        super().__init__(settings)
        self._bindings: dict = {}

    def _print_MatrixSymbol(self, expr):
        return expr.name

    def _print_Transpose(self, expr):
        arg = self._print(expr.arg)
        return f"{arg}ᵀ" if isinstance(expr.arg, sp.MatrixSymbol) else f"({arg})ᵀ"

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        if cols == 1:
            return "1"
        if rows == 1:
            return "1ᵀ"
        return "1 1ᵀ"

    def _print_MatMul(self, expr):
        scalars = [f for f in expr.args if not getattr(f, "is_Matrix", False)]
        mats = [f for f in expr.args if getattr(f, "is_Matrix", False)]
        parts = [f"({self._print(sp.Mul(*scalars))})"] if scalars else []
        parts += [self.parenthesize(f, 1000) if isinstance(f, (sp.MatAdd, Elementwise))
                  and len(mats) > 1 else self._print(f) for f in mats]
        return " ".join(parts)

    def _print_MatAdd(self, expr):
        return " + ".join(self._print(a) for a in expr.args).replace("+ -", "- ")

    def _print_Elementwise(self, expr):
        outer = self._bindings
        self._bindings = {**outer, **expr.bindings()}
        try:
            return self._entrywise(expr.scalar())
        finally:
            self._bindings = outer

    def _print_Symbol(self, expr):
        if expr in self._bindings:
            bound = self._bindings[expr]
            text = self._print(bound)
            return f"({text})" if not isinstance(bound, sp.MatrixSymbol) else text
        return super()._print_Symbol(expr)

    def _entrywise(self, body):
        """A scalar body in placeholders: products of matrices print as ⊙, scalars in front."""
        if isinstance(body, sp.Mul):
            coeff = [f for f in body.args if not (f.free_symbols & set(self._bindings))]
            mats = [f for f in body.args if f.free_symbols & set(self._bindings)]
            if mats:
                parts = [self._entrywise(f) if not isinstance(f, sp.Add)
                         else f"({self._entrywise(f)})" for f in mats]
                text = " ⊙ ".join(parts)
                if coeff:
                    c = sp.Mul(*coeff)
                    if c == -1:
                        return f"-{text}"
                    return f"({self._print(c)}) {text}"
                return text
        if isinstance(body, sp.Add):
            terms = [self._entrywise(t) for t in body.as_ordered_terms()]
            return " + ".join(terms).replace("+ -", "- ")
        return self._print(body)


def text(expr) -> str:
    return TextPrinter().doprint(expr)


