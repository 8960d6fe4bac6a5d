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

from .. import naming as N
from ..matrices import Elementwise
from .entrywise import (
    AtStep,
    EntrywiseScope,
    StepColumns,
    decimal_text,
    entry_atoms,
    index_text,
    is_indicator,
    is_negative,
    is_reciprocal,
    is_tensor,
    range_chains,
    range_outside,
    range_piecewise,
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

    def _print(self, expr, **kwargs):
        # Indexed has its own _sympystr, which StrPrinter would call before any method here.
        if isinstance(expr, sp.Indexed) and is_tensor(expr.base):
            return self._print_Indexed(expr)
        return super()._print(expr, **kwargs)

    def _print_MatrixElement(self, expr):
        if all(i.is_Symbol or i.is_Integer for i in expr.indices):
            return super()._print_MatrixElement(expr)
        # An index that is an expression: flatten's unit c n_H n_W + h n_W + w.
        indices = ", ".join(index_text(i, self._print) for i in expr.indices)
        return f"{self._print(expr.parent)}[{indices}]"

    def _print_Indexed(self, expr):
        indices = ", ".join(index_text(i, self._print) for i in expr.indices)
        return f"{self._print(expr.base)}[{indices}]"

    def _print_OutputSize(self, expr):
        num = ""
        for sign, term in expr.numerator_terms():
            sep = "·" if all(a.is_Number for a in term.args) else " "
            text = sep.join(self._print(a) for a in term.args) if isinstance(term, sp.Mul) \
                else self._print(term)
            num += (text if not num else f" + {text}") if sign > 0 else f" - {text}"
        return f"⌊({num})/{self._print(expr.s)}⌋ + 1"

    # --- operations on feature maps (tensors.py), one method each ------------------------------
    def _sub(self, *sizes) -> str:
        return "_{" + ",".join(self._print(n) for n in sizes) + "}"

    def _print_Correlate(self, expr):
        return (f"{self._print(expr.W)} ⋆{self._sub(expr.s, expr.p)} {self._print(expr.A)} "
                f"+ {self._print(expr.b)}")

    def _print_WeightCorrelate(self, expr):
        i = self._print(N.i)
        return (f"Σ_{i} {self._print(expr.A)}[{i}] ⋆{self._sub(expr.s, expr.p)} "
                f"{self._print(expr.dZ)}[{i}]")

    def _print_ChannelSum(self, expr):
        i, x, y = (self._print(v) for v in (N.i, N.x, N.y))
        return f"Σ_{i}{x}{y} {self._print(expr.dZ)}[{i}, :, {x}, {y}]"

    def _print_FullCorrelate(self, expr):
        return (f"{self._print(expr.dZ)} ⋆full{self._sub(expr.s, expr.p)} "
                f"rot180({self._print(expr.W)})")

    def _print_Pool(self, expr):
        return f"{expr.how}pool{self._sub(expr.f, expr.s)}({self._print(expr.A)})"

    def _print_Unpool(self, expr):
        args = self._print(expr.dA) + (f"; {self._print(expr.M)}" if expr.M is not None else "")
        return f"{expr.how}unpool{self._sub(expr.f, expr.s)}({args})"

    def _print_Flatten(self, expr):
        return f"flatten({self._print(expr.A)})"

    def _print_Unflatten(self, expr):
        return f"unflatten({self._print(expr.dA)})"

    # --- operations on sequences (recurrent layers), one method each ---------------------------
    # A sequence at step t is a matrix with a column per example, as in Ng's notation:
    # Z[1]_t = W[1] A[0]_t + U[1] H[1]_{t-1} + b[1] 1ᵀ.
    def _at(self, base, step, transposed: bool = False) -> str:
        """Sequence ``base`` at ``step``: H[1]_t, H[1]_{t-1}ᵀ."""
        index = index_text(sp.sympify(step), self._print)
        text = f"{self._print(base)}_{index}" if len(index) == 1 else \
            f"{self._print(base)}_{{{index}}}"
        return text + ("ᵀ" if transposed else "")

    def _print_AtStep(self, expr):
        return self._at(expr.base, expr.step)

    def _print_StepColumns(self, expr):
        return f"{self._print(expr.matrix)}⟨{index_text(expr.step, self._print)}⟩"

    def _print_Recurrence(self, expr):
        t = N.t
        return (f"{self._print(expr.W)} {self._at(expr.X, t)} + {self._print(expr.U)} "
                f"{self._at(expr.H, t - 1)} + {self._print(expr.b)} 1ᵀ")

    def _print_LastStep(self, expr):
        return self._at(expr.H, expr.steps - 1)

    def _print_EveryStep(self, expr):
        t = self._print(N.t)
        return f"{self._at(expr.H, N.t)} at columns T k + {t}"

    def _print_BackThroughTime(self, expr):
        t, last = N.t, expr.steps - 1
        step, end = index_text(t, self._print), index_text(last, self._print)
        passed = self._print(StepColumns(expr.dA, t)) if expr.every_step else \
            f"[{step} = {end}] {self._print(expr.dA)}"
        return (f"[{index_text(t + 1, self._print)} ≤ {end}] {self._print(expr.U)}ᵀ "
                f"{self._at(expr.dZ, t + 1)} + {passed}")

    def _print_StepOuter(self, expr):
        t = N.t
        return (f"Σ_{self._print(t)} {self._at(expr.dZ, t)} "
                f"{self._at(expr.A, t - expr.lag, transposed=True)}")

    def _print_StepSum(self, expr):
        return f"Σ_{self._print(N.t)} {self._at(expr.dZ, N.t)} 1"

    def _print_Scaled(self, expr):
        from ..tensors import Plus

        node = self._print(expr.node)
        return f"({self._print(expr.factor)}) " + (f"({node})" if isinstance(expr.node, Plus)
                                                    else node)

    def _print_Plus(self, expr):
        return " + ".join(self._print(t) for t in expr.args)

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
        ranged = range_piecewise(expr)
        if ranged is not None:  # a derived index range: Iverson brackets in front
            body, cond = ranged
            parts = []
            for item in range_chains(cond):
                if isinstance(item, tuple):  # low ≤ mid ≤ top, or mid ≤ top
                    parts.append(f"[{' ≤ '.join(index_text(e, self._print) for e in item)}]")
                else:
                    parts.append(f"[{self._print(item)}]")
            return " ".join([*parts, self._factor(body)] if body != 1 else parts)
        if len(expr.args) == 2 and expr.args[1].cond == sp.true:
            (first, cond), (second, _) = expr.args
            return f"({self._print(first)} if {self._print(cond)} else {self._print(second)})"
        return super()._print_Piecewise(expr)

    def _print_KroneckerDelta(self, expr):
        return f"δ({self._print(expr.args[0])},{self._print(expr.args[1])})"

    def _print_Sum(self, expr):
        outside = range_outside(expr)
        if outside is not None:
            return self._print(outside)
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
            simple = isinstance(bound, (sp.MatrixSymbol, sp.IndexedBase, AtStep))
            return f"({text})" if not simple else text
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


