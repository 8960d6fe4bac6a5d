"""Readable plain text for terminals: ``dW[2] = (1/m) dZ[2] A[1]ᵀ``.

A ``StrPrinter`` subclass with one method per node the derivation uses: matrix products,
transposes, ones, and ``Elementwise`` maps, whose products print as ⊙.
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


def equation_text(eq) -> str:
    return f"{text(eq.lhs)} = {text(eq.rhs)}"


def derivation_text(d) -> str:
    """The forward pass and the backward equations of every layer, output layer first."""
    from ..templating import render

    forward, backward = [], []
    for layer in d.layers:
        z_eq, a_eq = layer.forward
        forward.append(equation_text(z_eq))
        forward.append(f"{text(a_eq.lhs)} = {layer.activation.name}({text(layer.Z)})"
                       f"    = {text(a_eq.rhs)}")
    for layer in reversed(d.layers):
        names = ["loss", "output"] if layer.is_output else ["BP4"]
        names += ["BP1", "BP2"] + (["BP3"] if layer.index != 1 else [])
        for name in names:
            tag = {"loss": "", "output": "BP4"}.get(name, name)
            backward.append(f"{equation_text(layer.backward[name]):<56} {tag}".rstrip())
    layout = "columns are examples" if d.notation == "ng" else "rows are examples"
    return render("derive.txt.j2", spec=d.arch.spec(), activations=", ".join(d.arch.activations),
                  loss=d.arch.loss, layout=layout, forward=forward, backward=backward)
