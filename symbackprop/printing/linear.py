"""One-line text for formulas in terms of entries: ``dW[2] = (1/m) dZ[2] A[1]ᵀ``.

A ``StrPrinter`` subclass with one method per node the derivation uses: matrix products,
transposes, ones, and ``Elementwise`` maps, whose products print as ⊙; products of scalars as
juxtaposition (``A[1][0] (1 - A[1][0])``), powers with superscripts (``(A - Y)²``), and scalar
fractions in front (``(1/2) (A - Y)²``), as a textbook writes them on one line. The 2-D terminal
documents use ``pretty.py``; this printer serves where a formula must stay on one line
(the worked examples and path listings of ``explain`` and ``example``).
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from ..matrices import Elementwise
from .entrywise import (
    EntrywiseScope,
    decimal_text,
    entry_atoms,
    is_indicator,
    is_negative,
    is_reciprocal,
    signed_join,
)
from .latex import _scalar_factor_key

_SUPERSCRIPTS = dict(zip("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _positive_first(terms) -> list:
    """A positive term first: ``A[2] - Y``, never ``-Y + A[2]``."""
    return sorted(terms, key=is_negative)


_GREEK = {"lambda": "λ", "alpha": "α"}  # symbols named by a Greek letter print as that letter


class TextPrinter(EntrywiseScope, StrPrinter):
    """Matrices by name, products by juxtaposition, ⊙ for entrywise products."""

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
        coeff = sp.Mul(*scalars)
        sign = "-" if coeff == -1 else ""
        parts = [f"({self._print(coeff)})"] if scalars and coeff != -1 else []
        parts += [self.parenthesize(f, 1000) if isinstance(f, (sp.MatAdd, Elementwise))
                  and len(mats) > 1 else self._print(f) for f in mats]
        return sign + " ".join(parts)

    def _print_MatAdd(self, expr):
        return signed_join(_positive_first(expr.args), self._print)


    def _print_Derivative(self, expr):
        (var, _count), = expr.variable_count
        return f"∂{self._print(expr.expr)}/∂{self._print(var)}"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Rational(self, expr):
        return decimal_text(expr) or super()._print_Rational(expr)

    def _print_Piecewise(self, expr):
        if is_indicator(expr):
            return f"[{self._print(expr.args[0].cond)}]"
        if len(expr.args) == 2 and expr.args[1].cond == sp.true:
            (first, cond), (second, _) = expr.args
            return f"({self._print(first)} if {self._print(cond)} else {self._print(second)})"
        return super()._print_Piecewise(expr)

    def _print_KroneckerDelta(self, expr):
        return f"δ({self._print(expr.args[0])},{self._print(expr.args[1])})"

    def _print_Sum(self, expr):
        body = expr.function  # a sum of terms in parentheses; a product runs to the end
        text = self._factor(body) if isinstance(body, sp.Add) else self._print(body)
        return f"{self._sum_sign(expr.limits)} {text}"

    def _sum_sign(self, limits) -> str:
        return " ".join(f"Σ[{self._print(v)}={self._print(lo)}..{self._print(hi)}]"
                        for v, lo, hi in reversed(limits))

    def _print_Symbol(self, expr):
        if expr in self._bindings:
            bound = self._bindings[expr]
            text = self._print(bound)
            return f"({text})" if not isinstance(bound, sp.MatrixSymbol) else text
        if expr.name in _GREEK:
            return _GREEK[expr.name]
        return super()._print_Symbol(expr)

    def _print_Mul(self, expr):
        """``(1/2) (A - Y)²``, ``dA[1][0] A[1][0] (1 - A[1][0])``, ``-Y[0]/A[2][0]``: factors
        side by side in the order of the LaTeX printer (errors first), numbers and sizes in
        front, a quotient of entries with a slash."""
        if self._bindings and expr.free_symbols & set(self._bindings):
            return self._entrywise(expr)
        if expr.could_extract_minus_sign():
            return "-" + self._print(-expr)
        coeff, rest = expr.as_independent(*entry_atoms(expr), as_Add=False)
        if rest == 1:  # numbers and sizes only: 2/n_2, 1/m, λ/(2 m)
            num, den = expr.as_numer_denom()
            if den == 1 or not (num.is_Mul or den.is_Mul):
                return super()._print_Mul(expr)
            return f"{self._quotient_side(list(sp.Mul.make_args(num)))}/" \
                f"{self._quotient_side(list(sp.Mul.make_args(den)))}"
        factors = sorted(sp.Mul.make_args(rest), key=_scalar_factor_key)
        den = sorted((1 / f for f in factors if is_reciprocal(f)), key=_scalar_factor_key)
        up = [f for f in factors if not is_reciprocal(f)]
        if den:
            front = [f for f in up if _scalar_factor_key(f)[0] < 2 and not isinstance(f, sp.Add)]
            num = [f for f in up if f not in front]
            text = " ".join([*(self._factor(f) for f in front),
                             f"{self._quotient_side(num)}/{self._quotient_side(den)}"])
        else:
            text = " ".join(self._factor(f) for f in up)
        if coeff == 1:
            return text
        if coeff.is_Integer or coeff.is_Symbol or decimal_text(coeff):
            return f"{self._print(coeff)} {text}"
        return f"({self._print(coeff)}) {text}"

    def _factor(self, f) -> str:
        return f"({self._print(f)})" if isinstance(f, sp.Add) else self._print(f)

    def _quotient_side(self, factors) -> str:
        text = " ".join(self._factor(f) for f in factors)
        return f"({text})" if len(factors) > 1 else text or "1"

    def _print_Pow(self, expr, rational=False):
        """``A[1][0]²``, ``(A - Y)²``, ``1/A[2][0]``; inside an ``Elementwise`` map ``A[1]^⊙2``."""
        base, exp = expr.args
        if exp.is_negative:
            return f"1/{self._quotient_side(sp.Mul.make_args(1 / expr))}"
        if exp.is_Rational and not exp.is_Integer:
            return super()._print_Pow(expr, rational)
        if isinstance(base, (sp.Add, sp.Mul, sp.Pow)) or base.could_extract_minus_sign():
            base_text = f"({self._print(base)})"
        else:
            base_text = self._print(base)
        if self._bindings and base.free_symbols & set(self._bindings):
            return f"{base_text}^⊙{self._print(exp)}"
        if exp.is_Integer:
            return base_text + "".join(_SUPERSCRIPTS[d] for d in str(exp))
        return f"{base_text}^{self.parenthesize(exp, PRECEDENCE['Pow'])}"

    def _entrywise(self, body):
        """A scalar body in placeholders: products of matrices print as ⊙, scalars in front."""
        if isinstance(body, sp.Mul):
            coeff = [f for f in body.args if not (f.free_symbols & set(self._bindings))]
            mats = [f for f in body.args if f.free_symbols & set(self._bindings)]
            if mats:
                # 1/X entrywise is a Hadamard division: Y ⊙ 1/A prints as Y ⊘ A
                up = [f for f in mats if not (f.is_Pow and f.exp.is_negative)]
                down = [1 / f for f in mats if f.is_Pow and f.exp.is_negative]
                text = " ⊙ ".join(self._entrywise_factor(f) for f in up) or "1"
                if down:
                    text += "".join(f" ⊘ {self._entrywise_factor(f)}" for f in down)
                if coeff:
                    c = sp.Mul(*coeff)
                    if c == -1:
                        return f"-{text}"
                    return f"({self._print(c)}) {text}"
                return text
        if isinstance(body, sp.Add):
            return signed_join(_positive_first(body.as_ordered_terms()), self._entrywise)
        return self._print(body)

    def _entrywise_factor(self, factor) -> str:
        text = self._entrywise(factor)
        return f"({text})" if isinstance(factor, sp.Add) else text


def text(expr) -> str:
    return TextPrinter().doprint(expr)


