"""LaTeX for derivations: a ``LatexPrinter`` with one method per node the derivation uses.

Names come from ``naming``: ``W[2]`` prints as ``W^{[2]}`` in Ng's notation (columns are
examples) and as ``W_{2}`` in the row-vector notation, where the per-example errors are
``\\delta_{l}`` (``dZ[l]``) and the gradients ``\\partial C / \\partial W_{l}``.

Inside an ``Elementwise`` map every placeholder stands for a whole matrix, so products print as
``\\odot``, quotients as ``\\oslash`` and powers as ``^{\\odot 2}``; outside one, a matrix entry
prints with its indices as subscripts (``dZ^{[l]}_{ri}``).
"""
from __future__ import annotations

import re
from typing import ClassVar

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.printing.latex import LatexPrinter

from .. import naming as N
from ..matrices import Elementwise
from .entrywise import (
    AtStep,
    EntrywiseScope,
    StepColumns,
    decimal_text,
    entry_atoms,
    flatten_matmul,
    index_text,
    is_indicator,
    is_negative,
    is_reciprocal,
    is_tensor,
    range_chains,
    range_outside,
    range_piecewise,
    signed_join,
    size_symbol,
    tensor_name,
)

# What makes parentheses around it sized (\left( \right)) in the documents: material taller
# than a line.
_TALL = re.compile(r"\\(frac|dfrac|sum|prod|sqrt|begin|substack|left|int)(?![a-zA-Z])")

# How each kind of matrix is written: (nucleus in Ng's notation, nucleus in the row notation).
# In the row notation a gradient is a fraction; the layer label goes in its denominator.
NUCLEI = {
    "W": ("W", "W"), "b": ("b", "b"), "Z": ("Z", "Z"), "A": ("A", "A"),
    "dZ": ("dZ", r"\delta"), "dA": ("dA", r"\delta^{A}"),
    "dW": ("dW", None), "db": ("db", None),
    # a recurrent layer's hidden states, recurrent weights and their errors
    "H": ("H", "H"), "U": ("U", "U"), "dH": ("dH", r"\delta^{H}"), "dU": ("dU", None),
}
GRADIENT_OF = {"dW": "W", "db": "b", "dU": "U"}  # row notation: dW_l is ∂C/∂W_l

# Factors of a product print in this order: numbers and sizes, errors, deltas, the rest.
_ERRORS = {"dZ", "dA", "dW", "db"}


class Component(sp.Expr):
    """Entry ``index`` of a vector-valued expression: ``softmax(z)_c``."""

    def __new__(cls, vector, index):
        return sp.Expr.__new__(cls, sp.sympify(vector), sp.sympify(index))


class DerivationLatexPrinter(EntrywiseScope, LatexPrinter):
    """LaTeX of derivation expressions. ``notation``: "ng" or "rowvec"."""

    _default_settings: ClassVar[dict] = {
        **LatexPrinter._default_settings,
        "notation": "ng",
        "mul_symbol": None,
        "function_names": {},  # undefined function name -> LaTeX operator (activations)
        # The documents' forms: sums with their limits, plain parentheses where \left(
        # \right) would only add size, entrywise division as ⊘, a sum of negative terms with
        # its minus in front, targets before the functions they weight (Y log A).
        "textbook": False,
    }

    @property
    def textbook(self) -> bool:
        return self._settings["textbook"]

    def _paren(self, text: str) -> str:
        """``text`` in parentheses: plain ones around material of a line's height, sized ones
        (\\left( \\right)) around fractions, big operators and environments."""
        if self.textbook and not _TALL.search(text):
            return f"({text})"
        return rf"\left({text}\right)"

    def _add_parens(self, s) -> str:  # SymPy's parenthesize
        return self._paren(s)

    def _add_parens_lspace(self, s) -> str:
        return self._paren(s) if self.textbook else super()._add_parens_lspace(s)

    # --- names ------------------------------------------------------------------------------
    @property
    def rowvec(self) -> bool:
        return self._settings["notation"] == "rowvec"

    def cost_name(self) -> str:
        return "C" if self.rowvec else "J"

    def _name(self, name: str, sub: str = "", sup: str = "") -> str:
        """A matrix name with an entry subscript ``sub`` and an extra superscript ``sup``."""
        kind, label = N.split(name)
        if label is None:  # Y, and names without a layer
            base, layer_sub, layer_sup = (kind, "", "")
        elif self.rowvec:
            if NUCLEI.get(kind, (None, kind))[1] is None:  # a gradient: ∂C/∂W_l
                of = self._name(N.matrix(GRADIENT_OF[kind], label, 1, 1).name, sub)
                inner = rf"\frac{{\partial {self.cost_name()}}}{{\partial {of}}}"
                return rf"{self._paren(inner)}^{{{sup}}}" if sup else inner
            base, layer_sub, layer_sup = NUCLEI.get(kind, (kind, kind))[1], label, ""
        else:
            base, layer_sub, layer_sup = NUCLEI.get(kind, (kind, kind))[0], "", f"[{label}]"
        subs = ",".join(x for x in (layer_sub, sub) if x)
        sups = "".join(x for x in (layer_sup, sup) if x)
        out = base
        if subs:
            out += f"_{{{subs}}}"
        if sups:
            out += f"^{{{sups}}}"
        return out

    def equation_name(self, name: str, layer=None) -> str:
        """A numbered equation's name as math: BP1, or equation BP1 of layer 1 with the
        layer where the notation's names carry it (BP1^{[1]}, or BP1_{1})."""
        upright = rf"\mathrm{{{name}}}"
        return upright if layer is None else self._name(f"{upright}[{layer}]")

    def _print_MatrixSymbol(self, expr):
        return self._name(expr.name)

    def _print_MatrixElement(self, expr):
        if not isinstance(expr.parent, sp.MatrixSymbol):
            return f"{self.parenthesize(expr.parent, 2000)}_{{{self._indices(expr)}}}"
        return self._name(expr.parent.name, sub=self._indices(expr))

    def _indices(self, expr) -> str:
        # A vector's fixed index 0 is dropped: b^{[l]}_{r}, not b^{[l]}_{r0}.
        rows, cols = expr.parent.shape
        idx = list(expr.indices)
        if cols == 1 and idx[1] == 0:
            idx = idx[:1]
        elif rows == 1 and idx[0] == 0:
            idx = idx[1:]
        # An index that is an expression (flatten's c n_H n_W + h n_W + w) needs commas.
        sep = "" if all(i.is_Symbol or i.is_Integer for i in idx) else ", "
        return sep.join(self._index(i) for i in idx)

    def _index(self, e) -> str:
        """One index: an affine expression in reading order (s x + mu - p)."""
        return index_text(e, self._print)

    def _print_Symbol(self, expr, style="plain"):
        if expr in self._bindings:
            bound = self._bindings[expr]
            text = self._print(bound)
            simple = isinstance(bound, (sp.MatrixSymbol, sp.OneMatrix, sp.IndexedBase, AtStep))
            return text if simple else self._paren(text)
        if expr == N.J:
            return self.cost_name()
        size = size_symbol(expr)
        if size is not None:
            return self._size(*size)
        return super()._print_Symbol(expr, style=style)

    def _size(self, kind: str, label: str) -> str:
        """A feature size: n_C^{[1]}, f^{[1]} in Ng's notation; n_{C,1}, f_{1} in the row one."""
        base, sub = kind.split("_", 1) if "_" in kind else (kind, "")
        if self.rowvec:
            return f"{base}_{{{','.join(x for x in (sub, label) if x)}}}"
        return f"{base}_{{{sub}}}^{{[{label}]}}" if sub else f"{base}^{{[{label}]}}"

    def _print_IndexedBase(self, expr):
        return self._name(tensor_name(expr)) if is_tensor(expr) else super()._print_IndexedBase(expr)

    def _print_Indexed(self, expr):
        if expr.base == N.L:  # the loss of example i
            (i,) = expr.indices
            return rf"C_{{{self._print(i)}}}" if self.rowvec else \
                rf"\mathcal{{L}}^{{({self._print(i)})}}"
        if is_tensor(expr.base):  # A^{[1]}_{k,c,h,w}
            return self._name(tensor_name(expr.base),
                              sub=", ".join(self._index(x) for x in expr.indices))
        indices = ",".join(self._print(x) for x in expr.indices)
        return rf"{self._print(expr.base.label)}_{{{indices}}}"

    def _print_Component(self, expr):
        vector, index = expr.args
        return rf"{self._print(vector)}_{{{self._print(index)}}}"

    # --- matrix nodes -----------------------------------------------------------------------
    def _print_Transpose(self, expr):
        arg = expr.arg
        if isinstance(arg, sp.MatrixSymbol):
            return self._name(arg.name, sup=r"\top")
        if isinstance(arg, sp.OneMatrix):
            return self._print_OneMatrix(sp.OneMatrix(*reversed(arg.shape)))
        return rf"{self._paren(self._print(arg))}^{{\top}}"

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        if cols == 1:
            return rf"\mathbf{{1}}_{{{self._print(rows)}}}"
        if rows == 1:
            return rf"\mathbf{{1}}_{{{self._print(cols)}}}^{{\top}}"
        return (rf"\mathbf{{1}}_{{{self._print(rows)}}}"
                rf"\mathbf{{1}}_{{{self._print(cols)}}}^{{\top}}")

    def _print_MatMul(self, expr):
        factors = flatten_matmul(expr)
        scalars = [f for f in factors if not getattr(f, "is_Matrix", False)]
        mats = [f for f in factors if getattr(f, "is_Matrix", False)]
        parts = [self._scalar_factor(sp.Mul(*scalars))] if scalars else []
        for f in mats:
            text = self._print(f)
            if isinstance(f, (sp.MatAdd, Elementwise)) and len(mats) > 1:
                text = self._paren(text)
            parts.append(text)
        # A thin space between factors: Ng's two-letter names (dZ, dW) must not run together.
        factors = [p for p in parts[1:] if p] if scalars else parts
        text = r" \, ".join(factors)
        front = parts[0] if scalars else ""
        return rf"{front} \, {text}" if front and front != "-" else f"{front}{text}"

    def _scalar_factor(self, c) -> str:
        """A scalar in front of a product: 1/m prints as a fraction, -1 as a sign."""
        if c == 1:
            return ""
        if c.could_extract_minus_sign():
            return "-" + self._scalar_factor(-c)
        num, den = c.as_numer_denom()
        if den != 1:
            return rf"\frac{{{self._print(num)}}}{{{self._print(den)}}}"
        return self.parenthesize(c, 50)

    def _print_MatAdd(self, expr):
        return signed_join(list(expr.args), self._print)

    # --- the body of an elementwise map: matrices combine entry by entry -----------------------
    def _entrywise(self, body) -> str:
        if isinstance(body, sp.Add):
            terms = self._signs_flipped(body.args)
            order = self._term_order if self.textbook else self._term_key
            return signed_join(sorted(terms, key=order), self._entrywise_term)
        return self._entrywise_term(body)

    def _signs_flipped(self, terms) -> list:
        return constants_positive(terms) if self.textbook else list(terms)

    def _term_order(self, term):
        return term_order(term)

    def _term_key(self, term):
        # Positive terms first (1 - A, A - Y), then by SymPy's order.
        return (term.could_extract_minus_sign(), sp.default_sort_key(term))

    def _entrywise_term(self, term) -> str:
        if not self._is_matrix_valued(term):
            return self._print(term)
        if isinstance(term, (sp.Mul, sp.Pow)) and not _is_plain_power(term):
            coeff, rest = term.as_independent(*self._bindings, as_Add=False)
            factors = sp.Mul.make_args(rest)
            nums = [f for f in factors if not (isinstance(f, sp.Pow) and f.exp.is_negative)]
            dens = [1 / f for f in factors if isinstance(f, sp.Pow) and f.exp.is_negative]
            nums.sort(key=self._factor_key)
            parts = [self._entrywise_factor(f) for f in nums] or ["1"]
            text = r" \odot ".join(parts)
            if dens and self.textbook:  # an entrywise quotient: Y ⊘ A, (1 - Y) ⊘ (1 - A)
                text += "".join(rf" \oslash {self._entrywise_factor(f)}" for f in dens)
            elif dens:  # an entrywise quotient prints as a fraction
                num = r" \odot ".join(self._entrywise_factor(f) for f in nums) \
                    if len(nums) > 1 else self._fraction_part(nums[0]) if nums else "1"
                den = r" \odot ".join(self._entrywise_factor(f) for f in dens) \
                    if len(dens) > 1 else self._fraction_part(dens[0])
                text = rf"\frac{{{num}}}{{{den}}}"
            return self._with_coefficient(coeff, text)
        return self._entrywise_factor(term)

    def _fraction_part(self, f) -> str:
        """One side of an entrywise fraction: the fraction bar groups, so no parentheses."""
        if isinstance(f, sp.Symbol) and f in self._bindings:
            return self._print(self._bindings[f])
        return self._entrywise(f)

    def _with_coefficient(self, coeff, text) -> str:
        if coeff == 1:
            return text
        if coeff == -1:
            return f"-{text}"
        num, den = coeff.as_numer_denom()
        if num.could_extract_minus_sign():
            return "-" + self._with_coefficient(-coeff, text)
        if den != 1:
            return rf"\frac{{{self._print(num)}}}{{{self._print(den)}}} {text}"
        return rf"{self.parenthesize(coeff, 50)} {text}"

    def _factor_key(self, f):
        return incoming_first(self._bindings, f)

    def _entrywise_factor(self, f) -> str:
        if isinstance(f, sp.Pow) and f.exp.is_negative:
            return self._entrywise_term(sp.Mul(1, f, evaluate=False)) if f.exp != -1 \
                else rf"\frac{{1}}{{{self._entrywise(f.base)}}}"
        if isinstance(f, sp.Add):
            return self._paren(self._entrywise(f))
        if isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp > 1:
            return rf"{self._entrywise_factor_base(f.base)}^{{\odot {f.exp}}}"
        if isinstance(f, sp.Mul):
            return self._entrywise_term(f)
        if isinstance(f, sp.Pow) and not f.exp.is_Integer:  # √(1 + (A - Y)^⊙2), entrywise
            base = self._entrywise(f.base)
            if f.exp == sp.Rational(1, 2):
                return rf"\sqrt{{{base}}}"
            return rf"{self._paren(base)}^{{\odot {self._print(f.exp)}}}"
        return self._print(f)

    def _entrywise_factor_base(self, b) -> str:
        text = self._entrywise_factor(b)
        if isinstance(b, sp.Symbol) and isinstance(self._bindings.get(b),
                                                   (sp.MatrixSymbol, sp.IndexedBase)):
            return self._paren(text)
        return text

    # --- scalar nodes -----------------------------------------------------------------------
    def _print_KroneckerDelta(self, expr, exp=None):
        sep = "" if all(x.is_Symbol for x in expr.args[:2]) else ", "
        a, b = (self._index(x) for x in expr.args[:2])
        # In the row notation δ names the errors: the delta is an Iverson bracket there.
        text = rf"[{a} = {b}]" if self.rowvec else rf"\delta_{{{a}{sep}{b}}}"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _print_Piecewise(self, expr):
        # An indicator, 1 where the condition holds (relu'): an Iverson bracket.
        if is_indicator(expr):
            return rf"[{self._print(expr.args[0].cond)}]"
        ranged = range_piecewise(expr)
        if ranged is not None:  # a derived index range: Iverson brackets in front
            body, cond = ranged
            text = self._print(body)
            if isinstance(body, sp.Add):
                text = self._paren(text)
            return f"{self._brackets(cond)} \\, {text}" if body != 1 else self._brackets(cond)
        if self.textbook:
            return self._textbook_piecewise(expr)
        return self._cases(expr)

    def _textbook_piecewise(self, expr) -> str:
        """In the documents: (e if c, else 0) as an Iverson bracket, [c] e; the factors every
        piece shares in front of the cases (δ_ik, 1/m)."""
        pieces = list(expr.args)
        if len(pieces) == 2 and pieces[1].cond == sp.true and pieces[1].expr == 0:
            body = pieces[0].expr
            text = self._print(body)
            if isinstance(body, sp.Add):
                text = self._paren(text)
            return rf"[{self._print(pieces[0].cond)}] \, {text}"
        shared = set.intersection(*(set(sp.Mul.make_args(e)) for e, _ in pieces))
        shared = {f for f in shared if f != 1}
        if shared and all(e != 0 for e, _ in pieces):
            front = sp.Mul(*shared)
            rest = sp.Piecewise(*((e / front, c) for e, c in pieces), evaluate=False)
            return rf"{self._print(front)} \, {self._cases(rest)}"
        return self._cases(expr)

    def _cases(self, expr) -> str:
        """A piecewise function as cases, a row per piece (SymPy's form; in the documents
        "if"). A row starting with [ gets {} first, or TeX would read \\\\[ as a length."""
        word, sep = (r"\text{if }", r" \\ ") if self.textbook else (r"\text{for}\: ", r" \\")
        rows = []
        for e, c in expr.args:
            cond = r"\text{otherwise}" if c == sp.true else f"{word}{self._print(c)}"
            row = f"{self._print(e)} & {cond}"
            rows.append(("{}" if row.startswith("[") and rows else "") + row)
        return r"\begin{cases} " + sep.join(rows) + r" \end{cases}"

    def _brackets(self, cond) -> str:
        """[0 <= h + p - s x <= f - 1] for each range the condition bounds."""
        return r" \, ".join(f"[{part}]" for part in self._ranges(cond))

    def _ranges(self, cond) -> list[str]:
        """0 \\leq h + p - s x \\leq f - 1, for each range the condition bounds."""
        parts = []
        for item in range_chains(cond):
            if isinstance(item, tuple):  # low <= mid <= top, or mid <= top
                parts.append(r" \leq ".join(self._index(e) for e in item))
            else:
                parts.append(self._print(item))
        return parts

    def _print_Derivative(self, expr):
        fn = expr.expr
        (var, count), = expr.variable_count
        if count == 1 and isinstance(fn, sp.core.function.AppliedUndef) and fn.args == (var,):
            return rf"{self._print(fn.func)}'({self._print(var)})"
        return rf"\frac{{\partial {self._print(fn)}}}{{\partial {self._print(var)}}}"

    def _print_Sum(self, expr):
        outside = range_outside(expr)
        if outside is not None:
            return self._print(outside)
        body = expr.function
        if self.textbook and all_negative(body):  # -Σ_c Y_c log A_c
            return "-" + self._print(sp.Sum(-body, *expr.limits))
        ranged = range_piecewise(body)
        if ranged is not None and self.textbook:  # every index with its limits, the ranges
            inner, cond = ranged                 # the windows reach as Iverson brackets
            text = self._print_sum_body(inner)
            return rf"{self._sum_sign(expr.limits)} {self._brackets(cond)} \, {text}"
        if ranged is not None:  # a sum over the windows that reach an entry: the ranges below Σ
            inner, cond = ranged
            indices = ",".join(self._print(v) for v, _, _ in expr.limits)
            rows = r" \\ ".join([indices, *self._ranges(cond)])
            return rf"\sum_{{\substack{{{rows}}}}} {self._print_sum_body(inner)}"
        chained = _as_matrix_product(body, [v for v, _, _ in expr.limits])
        text = self._product(chained) if chained else self._print_sum_body(body)
        return f"{self._sum_sign(expr.limits)} {text}"

    def _sum_sign(self, limits) -> str:
        """The summation sign with its indices: ``\\sum_{i}`` (the ranges are the sizes); in
        the documents a sign per index with its limits, ``\\sum_{i=0}^{m-1}``."""
        if self.textbook:
            return r" ".join(rf"\sum_{{{self._print(v)}={self._index(lo)}}}^{{{self._index(hi)}}}"
                             for v, lo, hi in limits)
        indices = ",".join(self._print(v) for v, _, _ in limits)
        return rf"\sum_{{{indices}}}"

    def _print_sum_body(self, body) -> str:
        return self.parenthesize(body, 40) if isinstance(body, sp.Add) else self._print(body)

    def _print_Pow(self, expr, exp=None):
        if self._bindings and self._is_matrix_valued(expr):
            return self._entrywise_term(expr)
        superscripted = isinstance(expr.base, (MatrixElement, sp.MatrixSymbol, sp.Indexed)) \
            or (size_symbol(expr.base) is not None and not self.rowvec)
        if superscripted and expr.exp.is_Integer \
                and expr.exp > 1:  # (A^{[1]}_{r})^{2}: a layer superscript takes no second one
            return rf"({self._print(expr.base)})^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _print_Rational(self, expr):
        return decimal_text(expr) or super()._print_Rational(expr)

    def _print_Function(self, expr, exp=None):
        # An activation by its registry name prints as its operator: \sigma(Z), \tanh(Z).
        name = self._settings["function_names"].get(expr.func.__name__)
        if name is not None:
            args = ", ".join(self._print(a) for a in expr.args)
            # A power of it (tanh² in a local derivative): the exponent on the operator.
            return rf"{name}({args})" if exp is None else rf"{name}^{{{exp}}}({args})"
        if isinstance(expr, sp.core.function.AppliedUndef) and len(expr.args) == 1:
            return rf"{self._print(expr.func)}({self._print(expr.args[0])})"
        func = expr.func.__name__
        if self.textbook and not isinstance(expr, sp.core.function.AppliedUndef) \
                and not hasattr(self, "_print_" + func):  # \tanh(x), \operatorname{erf}(x)
            head = self._hprint_Function(func)
            if exp is not None:
                head = rf"{head}^{{{exp}}}"
            return head + self._paren(", ".join(self._print(a) for a in expr.args))
        return super()._print_Function(expr, exp)

    def _print_log(self, expr, exp=None):
        if not self.textbook:
            return super()._print_log(expr, exp)
        arg = expr.args[0]  # log A_c, as textbooks write it; log(1 - A_c)
        simple = isinstance(arg, (sp.Symbol, MatrixElement, sp.Indexed))
        head = r"\log" if exp is None else rf"\log^{{{exp}}}"
        return rf"{head} {self._print(arg)}" if simple else head + self._paren(self._print(arg))

    def _print_Abs(self, expr, exp=None):
        if not self.textbook or _TALL.search(inner := self._print(expr.args[0])):
            return super()._print_Abs(expr, exp)
        tex = rf"\lvert {inner} \rvert"
        return tex if exp is None else rf"({tex})^{{{exp}}}"

    def _print_Mul(self, expr):
        # 1/m and other scalar fractions in front: (1/m) Σ_i ..., not Σ_i ... / m.
        if self._bindings and self._is_matrix_valued(expr):
            return self._entrywise_term(expr)
        if self.textbook:  # a sum of negative terms: its minus in front, -(1/m) Σ_i ...
            negated = [f for f in sp.Mul.make_args(expr)
                       if isinstance(f, sp.Sum) and all_negative(f.function)]
            if negated:
                f = negated[0]
                return "-" + self._print(expr.xreplace({f: sp.Sum(-f.function, *f.limits)}))
        coeff, rest = expr.as_independent(*entry_atoms(expr), as_Add=False)
        if rest == 1:
            return super()._print_Mul(expr)
        if coeff == 1:
            return self._quotient(sp.Mul.make_args(expr))
        front = self._with_coefficient(coeff, "").strip()
        body = self._product(sorted(sp.Mul.make_args(rest), key=self._factor_order))
        if isinstance(rest, sp.Add):
            body = self._paren(body)
        elif isinstance(rest, sp.Mul):
            body = self._quotient(sp.Mul.make_args(rest))
        if front == "-":
            return f"-{body}"
        return f"{front} {body}"

    def _quotient(self, factors) -> str:
        """Errors and deltas in front, the rest as one fraction: δ_ik dA_ji e^{-Z}/(1+e^{-Z})²."""
        factors = sorted(factors, key=self._factor_order)
        den = [1 / f for f in factors if is_reciprocal(f)]
        if not den:
            return self._product(factors)
        up = [f for f in factors if not is_reciprocal(f)]
        front = [f for f in up if _scalar_factor_key(f)[0] < 2 and not isinstance(f, sp.Add)]
        num = [f for f in up if f not in front]
        frac = rf"\frac{{{self._product(num)}}}{{{self._product(den)}}}"
        return " ".join([self._product(front), frac]) if front else frac

    def ordered_terms(self, expr, order=None) -> list:
        """The terms of a sum in the order they print: sums first (Σ_t W_rt A_tk + b_r)."""
        return sorted(self._as_ordered_terms(expr, order=order),
                      key=lambda t: (not isinstance(t, sp.Sum) and not t.has(sp.Sum)))

    def _print_Add(self, expr, order=None):
        # Sums first (Σ_t W_rt A_tk + b_r), positive terms before negative ones.
        terms = self.ordered_terms(expr, order)
        if self.textbook and entry_atoms(expr):  # not an index expression (T k + t)
            terms = sorted(self._signs_flipped(terms), key=lambda t: (
                not t.has(sp.Sum) or is_negative(t), *self._term_order(t)))

        def show(term):
            text = self._print(term)
            return self._paren(text) if isinstance(term, sp.Add) else text
        return signed_join(terms, show)

    def _factor_order(self, f):
        return textbook_factor_key(f) if self.textbook else _scalar_factor_key(f)

    def _product(self, factors) -> str:
        if not factors:
            return "1"
        parts = []
        for f in factors:
            text = self._print(f)
            if isinstance(f, sp.Add) and len(factors) > 1:
                text = self._paren(text)
            parts.append(text)
        return r" \, ".join(parts)

    # --- helpers for documents ----------------------------------------------------------------
    def shape(self, shape) -> str:
        return r" \times ".join(self._print(n) for n in shape)

    def _print_OutputSize(self, expr):
        num = self._signed_terms(expr.numerator_terms())
        return rf"\left\lfloor \frac{{{num}}}{{{self._print(expr.s)}}} \right\rfloor + 1"

    def _signed_terms(self, terms) -> str:
        out = ""
        for sign, term in terms:
            text = r" \cdot ".join(self._print(a) for a in term.args) \
                if isinstance(term, sp.Mul) and all(a.is_Number for a in term.args) \
                else self._print(term)
            out += (text if not out else f" + {text}") if sign > 0 else f" - {text}"
        return out

    # --- operations on feature maps (tensors.py), one method each ------------------------------
    def _tensor(self, base, sub: str = "") -> str:
        return self._name(tensor_name(base), sub=sub)

    def _stride_padding(self, *sizes) -> str:
        return ", ".join(self._print(n) for n in sizes)

    def _print_Correlate(self, expr):
        star = rf"\star_{{{self._stride_padding(expr.s, expr.p)}}}"
        return f"{self._print(expr.W)} {star} {self._print(expr.A)} + {self._print(expr.b)}"

    def _node_sum(self, node, names) -> str:
        """The summation sign of an operation on whole arrays: over the indices ``names`` of
        its entry formula (their ranges in the documents)."""
        limits = [lim for lim in node.entry(*(sp.Dummy() for _ in range(_arity(node)))).limits
                  if lim[0] in names]
        if self.textbook:
            return self._sum_sign(limits)
        return rf"\sum_{{{','.join(self._print(v) for v, _, _ in limits)}}}"

    def _print_WeightCorrelate(self, expr):
        i = self._print(N.i)
        star = rf"\star_{{{self._stride_padding(expr.s, expr.p)}}}"
        return rf"{self._node_sum(expr, (N.i,))} {self._tensor(expr.A, i)} {star} " \
            rf"{self._tensor(expr.dZ, i)}"

    def _print_ChannelSum(self, expr):
        i, x, y = (self._print(v) for v in (N.i, N.x, N.y))
        return rf"{self._node_sum(expr, (N.i, N.x, N.y))} " \
            rf"{self._tensor(expr.dZ, f'{i}, :, {x}, {y}')}"

    def _print_FullCorrelate(self, expr):
        star = rf"\star^{{\mathrm{{full}}}}_{{{self._stride_padding(expr.s, expr.p)}}}"
        return rf"{self._print(expr.dZ)} {star} \operatorname{{rot180}}" \
            + self._paren(self._print(expr.W))

    def _print_Pool(self, expr):
        return rf"\operatorname{{{expr.how}pool}}_{{{self._stride_padding(expr.f, expr.s)}}}" \
            + self._paren(self._print(expr.A))

    def _print_Unpool(self, expr):
        args = self._print(expr.dA) + (f"; {self._print(expr.M)}" if expr.M is not None else "")
        return rf"\operatorname{{{expr.how}unpool}}_{{{self._stride_padding(expr.f, expr.s)}}}" \
            + self._paren(args)

    def _print_Flatten(self, expr):
        return r"\operatorname{flatten}" + self._paren(self._print(expr.A))

    def _print_Unflatten(self, expr):
        return r"\operatorname{unflatten}" + self._paren(self._print(expr.dA))

    def _print_Scaled(self, expr):
        from ..tensors import Plus

        text = self._print(expr.node)
        if isinstance(expr.node, Plus):
            text = self._paren(text)
        front = self._scalar_factor(expr.factor)
        return rf"{front} \, {text}" if front and front != "-" else f"{front}{text}"

    def _print_Plus(self, expr):
        return " + ".join(self._print(t) for t in expr.args)

    # --- operations on sequences (recurrent layers), one method each ---------------------------
    # A sequence at step t is a matrix of vectors in the document's notation: a column per
    # example (Z_t = W X_t + U H_{t-1} + b 1ᵀ), or a row per example (Z_t = X_t Wᵀ + ...).
    def _at(self, base, step, sup: str = "") -> str:
        """Sequence ``base`` at ``step``: H^{[1]}_{t}, H^{[1]\top}_{t-1}."""
        return self._name(tensor_name(base), sub=self._index(step), sup=sup)

    def _transposed(self, base) -> str:
        return self._name(tensor_name(base), sup=r"\top")

    def _ones(self, row: bool = False) -> str:
        """1_m, or 1_mᵀ (``row``): a vector of ones over the examples."""
        return self._print_OneMatrix(sp.OneMatrix(*((1, N.m) if row else (N.m, 1))))

    def _print_AtStep(self, expr):
        return self._at(expr.base, expr.step)

    def _print_StepColumns(self, expr):
        return self._name(expr.matrix.name, sub=rf"\langle {self._index(expr.step)} \rangle")

    def _print_Recurrence(self, expr):
        t = N.t
        X, H = self._at(expr.X, t), self._at(expr.H, t - 1)
        if self.rowvec:
            return (rf"{X} \, {self._transposed(expr.W)} + {H} \, {self._transposed(expr.U)} "
                    rf"+ {self._ones()} \, {self._transposed(expr.b)}")
        return (rf"{self._print(expr.W)} \, {X} + {self._print(expr.U)} \, {H} + "
                rf"{self._print(expr.b)} \, {self._ones(row=True)}")

    def _print_LastStep(self, expr):
        return self._at(expr.H, expr.steps - 1)

    def _print_EveryStep(self, expr):
        return self._at(expr.H, N.t)

    def _print_BackThroughTime(self, expr):
        t, last = N.t, expr.steps - 1
        following = self._at(expr.dZ, t + 1)
        through = rf"{following} \, {self._print(expr.U)}" if self.rowvec else \
            rf"{self._transposed(expr.U)} \, {following}"
        exists = rf"[{self._index(t + 1)} \leq {self._index(last)}]"
        passed = self._print(StepColumns(expr.dA, t)) if expr.every_step else \
            rf"[{self._index(t)} = {self._index(last)}] \, {self._print(expr.dA)}"
        return rf"{exists} \, {through} + {passed}"

    def _print_StepOuter(self, expr):
        t = N.t
        top, step = r"\top", t - expr.lag
        product = (self._at(expr.dZ, t, top), self._at(expr.A, step)) if self.rowvec else \
            (self._at(expr.dZ, t), self._at(expr.A, step, top))
        return rf"{self._node_sum(expr, (t,))} {product[0]} \, {product[1]}"

    def _print_StepSum(self, expr):
        t = N.t
        dZ = self._at(expr.dZ, t, sup=r"\top" if self.rowvec else "")
        return rf"{self._node_sum(expr, (t,))} {dZ} \, {self._ones()}"


def incoming_first(bindings, f):
    """Sort key of the factors of an entrywise product: the incoming error first (A - Y, dA,
    W^T dZ), then the local derivative, as textbooks write dZ = dA ⊙ g'(Z)."""
    bound = [bindings[s] for s in f.free_symbols if s in bindings]
    bound = [b.base if isinstance(b, AtStep) else b for b in bound]  # a sequence at a step
    errorish = any(not isinstance(b, (sp.MatrixSymbol, sp.IndexedBase))
                   or N.split(_matrix_name(b))[0] in _ERRORS
                   or _matrix_name(b) == "Y" for b in bound)
    return (0 if errorish else 1, sp.default_sort_key(f))


def _matrix_name(M) -> str:
    return tensor_name(M) if isinstance(M, sp.IndexedBase) else M.name


def _is_plain_power(e) -> bool:
    return isinstance(e, sp.Pow) and not e.exp.is_negative


def _as_matrix_product(body, summed):
    """Σ_t W_rt A_tk: the two entries in the order of the matrix product they form, or None."""
    factors = sp.Mul.make_args(body)
    if len(factors) != 2 or not all(isinstance(f, MatrixElement) for f in factors):
        return None
    f, g = factors
    for a, b in ((f, g), (g, f)):
        if a.indices[1] == b.indices[0] and a.indices[1] in summed:
            return [a, b]
    return None


def _arity(node) -> int:
    """How many indices a node's entry takes."""
    import inspect

    return len(inspect.signature(node.entry).parameters)


def constants_positive(terms) -> list:
    """The terms of a sum, each sum inside a term written with its constant positive: the
    term c (Y - 1) rest as -c (1 - Y) rest, so -Y ⊘ A - (Y - 1) ⊘ (1 - A) reads
    -Y ⊘ A + (1 - Y) ⊘ (1 - A) (the documents' form)."""
    out = []
    for term in terms:
        factors = list(sp.Mul.make_args(term))
        for n, f in enumerate(factors):
            if isinstance(f, sp.Add) and any(t.is_Number and t < 0 for t in f.args):
                factors[n] = -f
                factors.append(sp.Integer(-1))
        if len(factors) > len(sp.Mul.make_args(term)):
            coeff = sp.Mul(*[f for f in factors if f.is_Number])
            rest = [f for f in factors if not f.is_Number]
            term = sp.Mul(*(([coeff] if coeff != 1 else []) + rest), evaluate=False)
        out.append(term)
    return out


def term_order(term):
    """The order of the terms of a sum in the documents: the simpler first (a Kronecker
    delta as simple as a symbol), then positive before negative (A - Y; δ_jr - A_r;
    -Y ⊘ A + (1 - Y) ⊘ (1 - A); Y log A + (1 - Y) log(1 - A))."""
    plain = term.xreplace({e: sp.Symbol("delta") for e in term.atoms(sp.KroneckerDelta)})
    return (sp.count_ops(plain), is_negative(term), sp.default_sort_key(term))


def all_negative(expr) -> bool:
    """Whether every term of a sum reads with a minus, its sums' constants positive (the body
    of -Σ_c (Y log A + (1 - Y) log(1 - A)))."""
    def positive_constants(term):
        return all(not (isinstance(f, sp.Add) and any(t.is_Number and t < 0 for t in f.args))
                   for f in sp.Mul.make_args(term))
    return all(t.could_extract_minus_sign() and positive_constants(t)
               for t in sp.Add.make_args(expr))


def textbook_factor_key(f):
    """Sort key of a product's factors in the documents: _scalar_factor_key, an entry before
    the functions of entries it weights (Y_c log A_c)."""
    key = _scalar_factor_key(f)
    return (*key[:3], not isinstance(f, (MatrixElement, sp.Indexed)), *key[3:])


def _scalar_factor_key(f):
    """Errors first (dZ_ri), then deltas, then local derivatives and entries."""
    if (isinstance(f, MatrixElement) and N.split(f.parent.name)[0] in _ERRORS) or \
            (isinstance(f, sp.Derivative) and f.expr == N.J) or \
            (isinstance(f, sp.Indexed) and is_tensor(f.base)
             and N.split(tensor_name(f.base))[0] in _ERRORS):
        rank = 0
    elif isinstance(f, sp.Add) and any(isinstance(e, MatrixElement) and e.parent.name == "Y"
                                       for e in sp.preorder_traversal(f)):
        rank = 0  # the output error, A - Y
    elif isinstance(f, sp.KroneckerDelta):
        rank = 1
    elif not f.free_symbols or all(not isinstance(e, MatrixElement)
                                   and not (isinstance(e, sp.Indexed) and is_tensor(e.base))
                                   for e in sp.preorder_traversal(f)):
        rank = 2 if not isinstance(f, sp.Derivative) else 3
    else:
        rank = 3
    # Among entries of feature arrays, the kernel (W, M) before the map it weights.
    weights_first = not (isinstance(f, sp.Indexed) and is_tensor(f.base)
                         and N.split(tensor_name(f.base))[0] in ("W", "U", "M"))
    return (rank, isinstance(f, sp.Add), weights_first, sp.default_sort_key(f))


def latex(expr, notation: str = "ng", textbook: bool = False) -> str:
    """LaTeX of one derivation expression (as ``sympy.latex`` for the derivation's nodes);
    ``textbook``: as the derivation documents print it."""
    return DerivationLatexPrinter({"notation": notation, "textbook": textbook}).doprint(expr)
