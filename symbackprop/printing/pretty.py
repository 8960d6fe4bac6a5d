"""Two-dimensional text for terminals: SymPy's ``PrettyPrinter`` taught the derivation's nodes.

Matrices print by their names (``W[2]``, ``dZ[l]``), transposes with ``ᵀ``, ones vectors as
``1``; inside an ``Elementwise`` map products print as ``⊙`` and quotients as stacked fractions,
which apply entry by entry. Scalar factors such as 1/m stay in front, as fractions.
"""
from __future__ import annotations

from typing import ClassVar

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.stringpict import prettyForm

from .. import naming as N
from ..matrices import Elementwise
from .entrywise import (
    EntrywiseScope,
    decimal_text,
    flatten_matmul,
    is_indicator,
    is_reciprocal,
    with_decimals,
)
from .latex import _scalar_factor_key, incoming_first


def _join(*parts) -> prettyForm:
    out = parts[0] if isinstance(parts[0], prettyForm) else prettyForm(parts[0])
    for p in parts[1:]:
        out = prettyForm(*out.right(p))
    return out


class DerivationPrettyPrinter(EntrywiseScope, PrettyPrinter):
    """Unicode pretty printing of derivation expressions."""

    _default_settings: ClassVar[dict] = {**PrettyPrinter._default_settings, "use_unicode": True,
                         "wrap_line": False, "function_names": {}, "notation": "ng"}

    def _name(self, name: str) -> str:
        """``W[2]`` in Ng's notation; ``W_2``, ``δ_2``, ``∂C/∂W_2`` in the row notation."""
        if self._settings["notation"] != "rowvec":
            return name
        kind, label = N.split(name)
        if label is None:
            return kind
        return {"dZ": f"δ_{label}", "dA": f"δA_{label}", "dW": f"∂C/∂W_{label}",
                "db": f"∂C/∂b_{label}"}.get(kind, f"{kind}_{label}")

    def _print_MatrixSymbol(self, expr):
        return prettyForm(self._name(expr.name))

    def _print_MatrixElement(self, expr):
        rows, cols = expr.parent.shape
        idx = list(expr.indices)
        if cols == 1 and idx[1] == 0:  # a vector's fixed index: b[l]_r, not b[l]_r0
            idx = idx[:1]
        elif rows == 1 and idx[0] == 0:
            idx = idx[1:]
        name = self._name(expr.parent.name)
        labelled = N.split(expr.parent.name)[1] is not None
        sep = "," if self._settings["notation"] == "rowvec" and labelled else "_"
        return prettyForm(f"{name}{sep}{''.join(str(i) for i in idx)}")

    def _print_Indexed(self, expr):
        # The loss of example i is C_i in the row notation, as the documents write it.
        rowvec_loss = expr.base == N.L and self._settings["notation"] == "rowvec"
        label = "C" if rowvec_loss else expr.base.label
        return prettyForm(f"{label}_{''.join(str(i) for i in expr.indices)}")

    def _print_Component(self, expr):
        vector, index = expr.args
        return _join(self._print(vector), f"_{index}")

    def _print_KroneckerDelta(self, expr):
        a, b = expr.args[:2]
        # In the row notation δ names the errors: the delta is an Iverson bracket there.
        return prettyForm(f"[{a}={b}]" if self._settings["notation"] == "rowvec" else f"δ_{a}{b}")

    def _print_Sum(self, expr):
        # Σ_ji over the summed indices, bounds left out: the indices run over their layer.
        indices = "".join(str(v) for v, _, _ in expr.limits)
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = prettyForm(*body.parens())
        return _join(f"Σ_{indices} ", body)

    def _print_Mul(self, product):
        if self._bindings and self._is_matrix_valued(product):
            return self._entrywise(product)
        entries = [e for e in sp.preorder_traversal(product) if isinstance(
            e, (MatrixElement, sp.Sum, sp.Derivative, sp.KroneckerDelta, sp.Indexed))]
        coeff, rest = product.as_independent(*entries, as_Add=False)
        if rest == 1:
            return super()._print_Mul(product)
        factors = sorted(sp.Mul.make_args(rest), key=_scalar_factor_key)
        nums = [f for f in factors if not is_reciprocal(f)]
        dens = [1 / f for f in factors if is_reciprocal(f)]
        parts = []
        if coeff == -1:
            parts.append(prettyForm("-"))
        elif coeff != 1:
            parts += [self._print(coeff), prettyForm(" ")]
        body = self._juxtapose(nums) if nums else prettyForm("1")
        if dens:
            body = body / self._juxtapose(dens)
        return _join(*parts, body)

    def _juxtapose(self, factors) -> prettyForm:
        forms = []
        for f in factors:
            form = self._print(f)
            if isinstance(f, sp.Add) and len(factors) > 1:
                form = prettyForm(*form.parens())
            forms.append(form)
        return _join(*[p for q in forms for p in (q, " ")][:-1])

    def _print_Transpose(self, expr):
        arg = expr.arg
        if isinstance(arg, sp.MatrixSymbol):
            return prettyForm(f"{self._name(arg.name)}ᵀ")
        if isinstance(arg, sp.OneMatrix):
            return self._print(sp.OneMatrix(*reversed(arg.shape)))
        return _join(prettyForm(*self._print(arg).parens()), "ᵀ")

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        return prettyForm("1" if cols == 1 else "1ᵀ" if rows == 1 else "1 1ᵀ")

    def _print_MatMul(self, expr):
        factors = flatten_matmul(expr)
        scalars = [f for f in factors if not getattr(f, "is_Matrix", False)]
        mats = [f for f in factors if getattr(f, "is_Matrix", False)]
        parts = []
        if scalars:
            c = sp.Mul(*scalars)
            if c == -1:
                parts.append(prettyForm("-"))
            else:
                parts.append(self._print(c))
        for f in mats:
            form = self._print(f)
            if isinstance(f, (sp.MatAdd, Elementwise)) and len(mats) > 1:
                form = prettyForm(*form.parens())
            parts.append(form)
        return _join(*[p for q in parts for p in (q, " ")][:-1])

    def _print_MatAdd(self, expr):
        out = self._print(expr.args[0])
        for t in expr.args[1:]:
            coeff, rest = (t.args[0], sp.MatMul(*t.args[1:])) if isinstance(t, sp.MatMul) \
                and t.args[0].could_extract_minus_sign() else (None, t)
            if coeff is not None:
                out = _join(out, " - ", self._print(sp.MatMul(-coeff, rest) if coeff != -1
                                                    else rest))
            else:
                out = _join(out, " + ", self._print(t))
        return out

    def _print_Symbol(self, expr, bold_name=False):
        if expr == N.J and self._settings["notation"] == "rowvec":
            return prettyForm("C")
        if expr in self._bindings:
            bound = self._bindings[expr]
            form = self._print(bound)
            if isinstance(bound, (sp.MatrixSymbol, sp.OneMatrix)):
                return form
            return prettyForm(*form.parens())
        return super()._print_Symbol(expr, bold_name)

    def _print_Function(self, expr, sort=False, func_name=None, left="(", right=")"):
        name = self._settings["function_names"].get(expr.func.__name__)
        return super()._print_Function(expr, sort=sort, func_name=name or func_name)

    def _print_Rational(self, expr):
        text = decimal_text(expr)
        return prettyForm(text) if text else super()._print_Rational(expr)

    def _print_Piecewise(self, expr):
        if is_indicator(expr):  # relu': an Iverson bracket
            return prettyForm(*self._print(expr.args[0].cond).parens("[", "]"))
        return super()._print_Piecewise(expr)

    def _print_Derivative(self, deriv):
        fn = deriv.expr
        (var, count), = deriv.variable_count
        if count == 1 and isinstance(fn, sp.core.function.AppliedUndef) and fn.args == (var,):
            return _join(f"{fn.func.__name__}'", prettyForm(*self._print(var).parens()))
        return _join("∂", self._print(fn)) / _join("∂", self._print(var))

    # --- entrywise bodies ---------------------------------------------------------------------
    def _entrywise(self, body) -> prettyForm:
        if isinstance(body, sp.Add):
            terms = sorted(body.args, key=lambda t: (t.could_extract_minus_sign(),
                                                     sp.default_sort_key(t)))
            out = self._entrywise(terms[0])
            for t in terms[1:]:
                if t.could_extract_minus_sign():
                    out = _join(out, " - ", self._entrywise(-t))
                else:
                    out = _join(out, " + ", self._entrywise(t))
            return out
        if not self._is_matrix_valued(body):
            return self._print(body)
        if isinstance(body, sp.Mul) or (isinstance(body, sp.Pow) and body.exp.is_negative):
            coeff, rest = body.as_independent(*self._bindings, as_Add=False)
            factors = sp.Mul.make_args(rest)
            nums = sorted([f for f in factors if not is_reciprocal(f)],
                          key=lambda f: incoming_first(self._bindings, f))
            dens = [1 / f for f in factors if is_reciprocal(f)]
            form = self._hadamard(nums, grouped=coeff != 1) if nums else prettyForm("1")
            if dens:
                form = form / self._hadamard(dens)
            if coeff == -1:
                return _join("-", form)
            if coeff != 1:
                return _join(self._print(coeff), " ", form)
            return form
        if isinstance(body, sp.Pow) and body.exp.is_Integer:
            base = self._entrywise(body.base)
            return _join(prettyForm(*base.parens()), f"^⊙{body.exp}")
        return self._print(body)

    def _hadamard(self, factors, grouped=False) -> prettyForm:
        """Factors joined by ⊙; a sum in parentheses unless it stands alone."""
        forms = []
        for f in factors:
            form = self._entrywise(f)
            if isinstance(f, sp.Add) and (len(factors) > 1 or grouped):
                form = prettyForm(*form.parens())
            forms.append(form)
        return _join(*[p for q in forms for p in (q, " ⊙ ")][:-1])


def pretty(expr, notation="ng", function_names=None) -> str:
    printer = DerivationPrettyPrinter({"function_names": function_names or {},
                                       "notation": notation})
    return printer.doprint(expr)


def equation(lhs, rhs, relation="=", function_names=None, notation="ng") -> str:
    """``lhs = rhs`` as one two-dimensional picture, baselines aligned."""
    printer = DerivationPrettyPrinter({"function_names": function_names or {},
                                       "notation": notation})
    form = _join(printer._print(with_decimals(lhs)), f" {relation} ",
                 printer._print(with_decimals(rhs)))
    return form.render(wrap_line=False)
