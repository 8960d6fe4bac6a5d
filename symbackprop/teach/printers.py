"""Printers for teaching documents: one method per node, text and LaTeX side by side.

Both print what the derivation's plain printers print (matrices by name, ⊙ for entrywise
products, transposes, ones), and add what a worked example needs: matrix entries (W[2][0,1],
W^{[2]}_{0,1}), partial derivatives, Iverson brackets for the steps of relu' ([Z > 0]),
activation names from the registry, and numbers printed exactly (0.55, 1/3) or, where a value
is not rational, rounded to a stated number of significant digits.

The LaTeX printer keeps every layer-name decision in ``_name``; the project's shared LaTeX
printer makes the same choices (W^{[2]}, ⊙, ᵀ), so these node methods can delegate to it.
"""
from __future__ import annotations

from typing import ClassVar

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.printing.latex import LatexPrinter

from ..matrices import Elementwise
from ..naming import split
from ..printing.linear import TextPrinter
from ..registry import ACTIVATIONS
from .numbers import PRINTED_DIGITS, decimal_text


def _scalars_and_matrices(expr):
    scalars = [f for f in expr.args if not getattr(f, "is_Matrix", False)]
    mats = [f for f in expr.args if getattr(f, "is_Matrix", False)]
    return sp.Mul(*scalars), mats


def _is_indicator(expr) -> bool:
    """Piecewise((1, P), (0, True)): the Iverson bracket [P]."""
    return isinstance(expr, sp.Piecewise) and len(expr.args) == 2 \
        and expr.args[1].cond == sp.true and (expr.args[0].expr, expr.args[1].expr) == (1, 0)


class TeachTextPrinter(TextPrinter):
    """Plain text: ``W[2][0,1]``, ``∂L/∂W[2][0,1]``, ``[Z[1][0] > 0]``, ``α``."""

    _default_settings: ClassVar[dict] = {**TextPrinter._default_settings, "digits": PRINTED_DIGITS}

    def _print_MatrixElement(self, expr):
        _rows, cols = expr.parent.shape
        indices = [expr.indices[0]] if cols == 1 else list(expr.indices)
        inside = ",".join(self._print(i) for i in indices)
        return f"{self._print(expr.parent)}[{inside}]"

    def _print_Derivative(self, expr):
        (var, _count), = expr.variable_count
        return f"∂{self._print(expr.expr)}/∂{self._print(var)}"

    def _print_Piecewise(self, expr):
        if _is_indicator(expr):
            return f"[{self._print(expr.args[0].cond)}]"
        if len(expr.args) == 2 and expr.args[1].cond == sp.true:
            (first, cond), (second, _) = expr.args
            return f"({self._print(first)} if {self._print(cond)} else {self._print(second)})"
        return super()._print_Piecewise(expr)

    def _print_KroneckerDelta(self, expr):
        return f"δ({self._print(expr.args[0])},{self._print(expr.args[1])})"

    def _print_Sum(self, expr):
        limits = " ".join(f"Σ[{self._print(v)}={self._print(lo)}..{self._print(hi)}]"
                          for v, lo, hi in reversed(expr.limits))
        return f"{limits} ({self._print(expr.function)})"

    def _print_Symbol(self, expr):
        if expr.name == "alpha" and expr not in self._bindings:
            return "α"
        return super()._print_Symbol(expr)

    def _print_MatAdd(self, expr):
        parts = []
        for term in expr.args:
            coeff, mats = _scalars_and_matrices(term) if isinstance(term, sp.MatMul) \
                else (sp.Integer(1), [term])
            if coeff.could_extract_minus_sign():
                parts.append(("-", self._print(sp.MatMul(-coeff, *mats))))
            else:
                parts.append(("+", self._print(term)))
        text = parts[0][1] if parts[0][0] == "+" else f"-{parts[0][1]}"
        return text + "".join(f" {sign} {body}" for sign, body in parts[1:])

    def _print_MatMul(self, expr):
        coeff, mats = _scalars_and_matrices(expr)
        if coeff.is_Symbol:
            return " ".join([self._print(coeff)] + [self._print(M) for M in mats])
        return super()._print_MatMul(expr)

    # numbers -----------------------------------------------------------------------------
    def number(self, value) -> str:
        return decimal_text(value, self._settings["digits"])[0]

    def matrix_rows(self, M) -> list[str]:
        """A matrix of numbers as aligned rows ``[ 0.55  -1.2 ]``."""
        cells = [[self.number(M[i, j]) for j in range(M.shape[1])] for i in range(M.shape[0])]
        widths = [max(len(row[j]) for row in cells) for j in range(M.shape[1])]
        return ["[ " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths)) + " ]"
                for row in cells]


class TeachLatexPrinter(LatexPrinter):
    """LaTeX: ``W^{[2]}_{0,1}``, ``dZ^{[2]} A^{[1]\\top}``, ``\\odot``, ``\\mathbf{1}``."""

    _default_settings: ClassVar[dict] = {**LatexPrinter._default_settings, "digits": PRINTED_DIGITS}

    def __init__(self, settings=None):
        super().__init__(settings)
        self._bindings: dict = {}

    # names -------------------------------------------------------------------------------
    def _name(self, name: str, extra: str = "") -> str:
        """``W[2]`` -> ``W^{[2]}``, ``A[l-1]`` -> ``A^{[l-1]}``; ``extra`` joins the superscript."""
        kind, label = split(name)
        if label is None:
            return f"{kind}^{{{extra}}}" if extra else kind
        return f"{kind}^{{[{label}]{extra}}}"

    def _print_MatrixSymbol(self, expr):
        return self._name(expr.name)

    def of_sample(self, matrix, i) -> str:
        """``dW^{[2](i)}``: the part of a gradient that sample i contributes."""
        return self._name(matrix.name, f"({i})")

    def _print_MatrixElement(self, expr):
        _rows, cols = expr.parent.shape
        indices = [expr.indices[0]] if cols == 1 else list(expr.indices)
        inside = ",".join(self._print(i) for i in indices)
        return f"{self._print(expr.parent)}_{{{inside}}}"

    def _print_Transpose(self, expr):
        if isinstance(expr.arg, sp.MatrixSymbol):
            return self._name(expr.arg.name, r"\top")
        return rf"\left({self._print(expr.arg)}\right)^{{\top}}"

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        if cols == 1:
            return r"\mathbf{1}"
        if rows == 1:
            return r"\mathbf{1}^{\top}"
        return r"\mathbf{1}\mathbf{1}^{\top}"

    def _print_MatMul(self, expr):
        coeff, mats = _scalars_and_matrices(expr)
        parts = [] if coeff == 1 else [self._print(coeff)]
        for M in mats:
            text = self._print(M)
            if isinstance(M, (sp.MatAdd, Elementwise)) and len(mats) > 1:
                text = rf"\left({text}\right)"
            parts.append(text)
        return r"\, ".join(parts)

    def _print_MatAdd(self, expr):
        out = []
        for pos, term in enumerate(expr.args):
            coeff, mats = _scalars_and_matrices(term) if isinstance(term, sp.MatMul) \
                else (sp.Integer(1), [term])
            if coeff.could_extract_minus_sign():
                out.append(("- " if pos else "-") + self._print(sp.MatMul(-coeff, *mats)))
            else:
                out.append(("+ " if pos else "") + self._print(term))
        return " ".join(out)

    def _print_Elementwise(self, expr):
        outer = self._bindings
        self._bindings = {**outer, **expr.bindings()}
        try:
            return self._entrywise(expr.scalar())
        finally:
            self._bindings = outer

    def _entrywise(self, body):
        bound = set(self._bindings)
        if isinstance(body, sp.Mul):
            coeff = [f for f in body.args if not (f.free_symbols & bound)]
            mats = [f for f in body.args if f.free_symbols & bound]
            if mats:
                parts = [rf"\left({self._entrywise(f)}\right)" if isinstance(f, sp.Add)
                         else self._entrywise(f) for f in mats]
                text = r" \odot ".join(parts)
                c = sp.Mul(*coeff)
                if c == 1:
                    return text
                if c == -1:
                    return "-" + text
                return rf"{self._print(c)}\, {text}"
        if isinstance(body, sp.Add):
            terms = body.as_ordered_terms()
            out = self._entrywise(terms[0])
            for term in terms[1:]:
                if term.could_extract_minus_sign():
                    out += " - " + self._entrywise(-term)
                else:
                    out += " + " + self._entrywise(term)
            return out
        if isinstance(body, sp.Pow) and body.exp == -1 and body.base.free_symbols & bound:
            return rf"\frac{{1}}{{{self._entrywise(body.base)}}}"
        return self._print(body)

    def _print_Symbol(self, expr, style="plain"):
        if expr in self._bindings:
            bound = self._bindings[expr]
            text = self._print(bound)
            return text if isinstance(bound, sp.MatrixSymbol) else rf"\left({text}\right)"
        return super()._print_Symbol(expr, style=style)

    def _print_Pow(self, expr):
        if isinstance(expr.base, (MatrixElement, sp.MatrixSymbol)):  # no double superscript
            return rf"\left({self._print(expr.base)}\right)^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _needs_mul_brackets(self, expr, first=False, last=False):
        if _is_indicator(expr):  # [Z > 0] brackets itself
            return False
        return super()._needs_mul_brackets(expr, first=first, last=last)

    def _print_Derivative(self, expr):
        (var, _count), = expr.variable_count
        return rf"\frac{{\partial {self._print(expr.expr)}}}{{\partial {self._print(var)}}}"

    def _print_Piecewise(self, expr):
        if _is_indicator(expr):
            return rf"\left[{self._print(expr.args[0].cond)}\right]"
        return super()._print_Piecewise(expr)

    def _print_Function(self, expr, exp=None):
        activation = ACTIVATIONS.get(expr.func.__name__)
        if activation is not None and len(expr.args) == 1:
            return rf"{activation.latex}\left({self._print(expr.args[0])}\right)"
        return super()._print_Function(expr, exp)

    # numbers -----------------------------------------------------------------------------
    def number(self, value) -> str:
        text, _exact = decimal_text(value, self._settings["digits"])
        if "/" in text:
            p, q = text.lstrip("-").split("/")
            return ("-" if text.startswith("-") else "") + rf"\tfrac{{{p}}}{{{q}}}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
        return text

    def number_matrix(self, M) -> str:
        rows = [" & ".join(self.number(M[i, j]) for j in range(M.shape[1]))
                for i in range(M.shape[0])]
        return r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"
