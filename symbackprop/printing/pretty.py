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
    AtStep,
    EntrywiseScope,
    StepColumns,
    decimal_text,
    flatten_matmul,
    index_text,
    is_indicator,
    is_negative,
    is_reciprocal,
    is_tensor,
    range_chains,
    range_outside,
    range_piecewise,
    size_symbol,
    tensor_name,
    with_decimals,
)
from .latex import all_negative, constants_positive, incoming_first, term_order, textbook_factor_key


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
                "db": f"∂C/∂b_{label}", "dH": f"δH_{label}",
                "dU": f"∂C/∂U_{label}"}.get(kind, f"{kind}_{label}")

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
        if not all(i.is_Symbol or i.is_Integer for i in idx):  # flatten's unit c n_H n_W + ...
            return prettyForm(f"{name}[{', '.join(self._index(i) for i in idx)}]")
        return prettyForm(f"{name}{sep}{''.join(str(i) for i in idx)}")

    def _index(self, e) -> str:
        """An index on one line: s[1] x + μ - p[1]."""
        return index_text(e, lambda f: self._print(f).render(wrap_line=False))

    def _print_IndexedBase(self, expr):
        if is_tensor(expr):
            return prettyForm(self._name(tensor_name(expr)))
        return super()._print_IndexedBase(expr)

    def _print_Indexed(self, expr):
        if is_tensor(expr.base):  # a feature map's entry: A[1][k, c, h, w]
            indices = ", ".join(self._index(i) for i in expr.indices)
            return prettyForm(f"{self._name(tensor_name(expr.base))}[{indices}]")
        # The loss of example i is C_i in the row notation, as the documents write it.
        rowvec_loss = expr.base == N.L and self._settings["notation"] == "rowvec"
        label = "C" if rowvec_loss else expr.base.label
        return prettyForm(f"{label}_{''.join(str(i) for i in expr.indices)}")

    def _print_Component(self, expr):
        vector, index = expr.args
        return _join(self._print(vector), f"_{index}")

    def _print_KroneckerDelta(self, expr):
        a, b = (self._index(x) for x in expr.args[:2])
        sep = "" if all(x.is_Symbol for x in expr.args[:2]) else ","
        # In the row notation δ names the errors: the delta is an Iverson bracket there.
        return prettyForm(f"[{a}={b}]" if self._settings["notation"] == "rowvec"
                          else f"δ_{a}{sep}{b}")

    def _print_Sum(self, expr):
        # A sign per summed index with its limits, 0-based as everywhere: Σ[i=0..m-1]; a sum
        # of negative terms with its minus in front, -Σ[c=0..n-1] Y log(A).
        outside = range_outside(expr)
        if outside is not None:
            return self._print(outside)
        if all_negative(expr.function):
            return _join("-", self._print(sp.Sum(-expr.function, *expr.limits)))
        signs = " ".join(f"Σ[{self._text(v)}={self._index(lo)}..{self._index(hi)}]"
                         for v, lo, hi in expr.limits)
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = prettyForm(*body.parens())
        return _join(f"{signs} ", body)

    def _print_Mul(self, product):
        if self._bindings and self._is_matrix_valued(product):
            return self._entrywise(product)
        entries = [e for e in sp.preorder_traversal(product) if isinstance(
            e, (MatrixElement, sp.Sum, sp.Derivative, sp.KroneckerDelta, sp.Indexed))]
        negated = [f for f in sp.Mul.make_args(product)
                   if isinstance(f, sp.Sum) and all_negative(f.function)]
        if negated:  # -(1/m) Σ ...: the sum's minus in front
            f = negated[0]
            return _join("-", self._print(product.xreplace({f: sp.Sum(-f.function,
                                                                      *f.limits)})))
        coeff, rest = product.as_independent(*entries, as_Add=False)
        if rest == 1:
            return super()._print_Mul(product)
        factors = sorted(sp.Mul.make_args(rest), key=textbook_factor_key)
        nums = [f for f in factors if not is_reciprocal(f)]
        dens = [1 / f for f in factors if is_reciprocal(f)]
        parts = []
        if coeff == -1:
            parts.append(prettyForm("-"))
        elif coeff != 1:
            parts += [self._print(coeff), prettyForm(" ")]
        # A sum after a coefficient keeps its parentheses: 1/m (A - Y), not 1/m A - Y.
        body = self._juxtapose(nums, parens=coeff not in (1, -1) and not dens) if nums \
            else prettyForm("1")
        if dens:
            body = body / self._juxtapose(dens)
        return _join(*parts, body)

    def _print_Add(self, expr, order=None):
        # A feature map's entry: its sum first, as the operation reads (Σ W A + b).
        terms = list(expr.args)
        if any(isinstance(t, sp.Sum) for t in terms) and any(
                is_tensor(e.base) for e in expr.atoms(sp.Indexed)):
            terms.sort(key=lambda t: (not isinstance(t, sp.Sum), sp.default_sort_key(t)))
            out = self._print(terms[0])
            for t in terms[1:]:
                out = _join(out, " - ", self._print(-t)) if t.could_extract_minus_sign() \
                    else _join(out, " + ", self._print(t))
            return out
        terms = sorted(constants_positive(self._as_ordered_terms(expr, order)),
                       key=lambda t: (not t.has(sp.Sum) or is_negative(t), *term_order(t)))
        out = self._print(terms[0])
        for t in terms[1:]:
            out = _join(out, " - ", self._print(-t)) if t.could_extract_minus_sign() \
                else _join(out, " + ", self._print(t))
        return out

    def _juxtapose(self, factors, parens: bool = False) -> prettyForm:
        forms = []
        for f in factors:
            form = self._print(f)
            if isinstance(f, sp.Add) and (len(factors) > 1 or parens):
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
            if isinstance(bound, (sp.MatrixSymbol, sp.OneMatrix, sp.IndexedBase, AtStep)):
                return form
            return prettyForm(*form.parens())
        if size_symbol(expr) is not None:  # n_C[1], f[1]; n_C_1, f_1 in the row notation
            return prettyForm(self._name(expr.name))
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
        ranged = range_piecewise(expr)
        if ranged is not None:  # a derived index range: Iverson brackets in front
            body, cond = ranged
            form = self._print(body)
            if isinstance(body, sp.Add):
                form = prettyForm(*form.parens())
            return _join(self._brackets(cond), " ", form) if body != 1 else \
                prettyForm(self._brackets(cond))
        return super()._print_Piecewise(expr)

    def _brackets(self, cond) -> str:
        """[0 ≤ h + p[1] - s[1] x ≤ f[1] - 1] for each range the condition bounds."""
        parts = []
        for item in range_chains(cond):
            if isinstance(item, tuple):  # low ≤ mid ≤ top, or mid ≤ top
                parts.append(f"[{' ≤ '.join(self._index(e) for e in item)}]")
            else:
                parts.append(f"[{self._print(item).render(wrap_line=False)}]")
        return " ".join(parts)

    def _print_Derivative(self, deriv):
        fn = deriv.expr
        (var, count), = deriv.variable_count
        if count == 1 and isinstance(fn, sp.core.function.AppliedUndef) and fn.args == (var,):
            return _join(f"{fn.func.__name__}'", prettyForm(*self._print(var).parens()))
        return _join("∂", self._print(fn)) / _join("∂", self._print(var))

    # --- entrywise bodies ---------------------------------------------------------------------
    def _entrywise(self, body) -> prettyForm:
        if isinstance(body, sp.Add):
            terms = sorted(constants_positive(body.args), key=term_order)
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
            form = self._hadamard(nums, grouped=coeff != 1 or bool(dens)) if nums \
                else prettyForm("1")
            for den in dens:  # an entrywise quotient: Y ⊘ A, (1 - Y) ⊘ (1 - A)
                den_form = self._entrywise(den)
                if isinstance(den, (sp.Add, sp.Mul)):
                    den_form = prettyForm(*den_form.parens())
                form = _join(form, " ⊘ ", den_form)
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


    def _print_OutputSize(self, expr):
        num = ""
        for sign, term in expr.numerator_terms():
            text = " ".join(self._text(a) for a in term.args) if isinstance(term, sp.Mul) \
                and not all(a.is_Number for a in term.args) else \
                "·".join(self._text(a) for a in term.args) if isinstance(term, sp.Mul) \
                else self._text(term)
            num += (text if not num else f" + {text}") if sign > 0 else f" - {text}"
        return prettyForm(f"⌊({num})/{self._text(expr.s)}⌋ + 1")

    # --- operations on feature maps (tensors.py), one method each ------------------------------
    def _text(self, e) -> str:
        return self._print(e).render(wrap_line=False)

    def _sub(self, *sizes) -> str:
        return "_{" + ",".join(self._text(n) for n in sizes) + "}"

    def _print_Correlate(self, expr):
        return prettyForm(f"{self._text(expr.W)} ⋆{self._sub(expr.s, expr.p)} "
                          f"{self._text(expr.A)} + {self._text(expr.b)}")

    def _print_WeightCorrelate(self, expr):
        i = self._text(N.i)
        return prettyForm(f"Σ_{i} {self._text(expr.A)}[{i}] ⋆{self._sub(expr.s, expr.p)} "
                          f"{self._text(expr.dZ)}[{i}]")

    def _print_ChannelSum(self, expr):
        i, x, y = (self._text(v) for v in (N.i, N.x, N.y))
        return prettyForm(f"Σ_{i}{x}{y} {self._text(expr.dZ)}[{i}, :, {x}, {y}]")

    def _print_FullCorrelate(self, expr):
        return prettyForm(f"{self._text(expr.dZ)} ⋆full{self._sub(expr.s, expr.p)} "
                          f"rot180({self._text(expr.W)})")

    def _print_Pool(self, expr):
        return prettyForm(f"{expr.how}pool{self._sub(expr.f, expr.s)}({self._text(expr.A)})")

    def _print_Unpool(self, expr):
        args = self._text(expr.dA) + (f"; {self._text(expr.M)}" if expr.M is not None else "")
        return prettyForm(f"{expr.how}unpool{self._sub(expr.f, expr.s)}({args})")

    def _print_Flatten(self, expr):
        return prettyForm(f"flatten({self._text(expr.A)})")

    def _print_Unflatten(self, expr):
        return prettyForm(f"unflatten({self._text(expr.dA)})")

    def _print_Scaled(self, expr):
        from ..tensors import Plus

        form = self._print(expr.node)
        if isinstance(expr.node, Plus):
            form = prettyForm(*form.parens())
        return _join(self._print(expr.factor), " ", form)

    def _print_Plus(self, expr):
        forms = [self._print(t) for t in expr.args]
        return _join(*[p for f in forms for p in (f, " + ")][:-1])

    # --- operations on sequences (recurrent layers), one method each ---------------------------
    # A sequence at step t is a matrix of vectors in the document's notation: a column per
    # example (Z[1]_t = W[1] A[0]_t + ...), or a row per example (Z_{1,t} = A_{0,t} W_1ᵀ + ...).
    def _at(self, base, step, transposed: bool = False) -> str:
        """Sequence ``base`` at ``step``: H[1]_t, H[1]_{t-1}ᵀ; H_{1,t} in the row notation."""
        name, index = self._name(tensor_name(base)), self._index(step)
        if self._settings["notation"] == "rowvec":
            nucleus, _, label = name.rpartition("_")
            text = f"{nucleus}_{{{label},{index}}}"
        else:
            text = f"{name}_{index}" if len(index) == 1 else f"{name}_{{{index}}}"
        return text + ("ᵀ" if transposed else "")

    def _print_AtStep(self, expr):
        return prettyForm(self._at(expr.base, expr.step))

    def _print_StepColumns(self, expr):
        return prettyForm(f"{self._name(expr.matrix.name)}⟨{self._index(expr.step)}⟩")

    def _print_Recurrence(self, expr):
        t = N.t
        X, H = self._at(expr.X, t), self._at(expr.H, t - 1)
        W, U, b = (self._text(x) for x in (expr.W, expr.U, expr.b))
        if self._settings["notation"] == "rowvec":
            return prettyForm(f"{X} {W}ᵀ + {H} {U}ᵀ + 1 {b}ᵀ")
        return prettyForm(f"{W} {X} + {U} {H} + {b} 1ᵀ")

    def _print_LastStep(self, expr):
        return prettyForm(self._at(expr.H, expr.steps - 1))

    def _print_EveryStep(self, expr):
        return prettyForm(self._at(expr.H, N.t))

    def _print_BackThroughTime(self, expr):
        t, last = N.t, expr.steps - 1
        following, U = self._at(expr.dZ, t + 1), self._text(expr.U)
        through = f"{following} {U}" if self._settings["notation"] == "rowvec" else \
            f"{U}ᵀ {following}"
        passed = self._text(StepColumns(expr.dA, t)) if expr.every_step else \
            f"[{self._index(t)} = {self._index(last)}] {self._text(expr.dA)}"
        return prettyForm(f"[{self._index(t + 1)} ≤ {self._index(last)}] {through} + {passed}")

    def _print_StepOuter(self, expr):
        t = N.t
        rowvec = self._settings["notation"] == "rowvec"
        dZ = self._at(expr.dZ, t, transposed=rowvec)
        A = self._at(expr.A, t - expr.lag, transposed=not rowvec)
        return prettyForm(f"Σ_{self._text(t)} {dZ} {A}")

    def _print_StepSum(self, expr):
        t = N.t
        dZ = self._at(expr.dZ, t, transposed=self._settings["notation"] == "rowvec")
        return prettyForm(f"Σ_{self._text(t)} {dZ} 1")


def pretty(expr, notation="ng", function_names=None) -> str:
    printer = DerivationPrettyPrinter({"function_names": function_names or {},
                                       "notation": notation})
    return printer.doprint(expr)


def equation(lhs, rhs, relation="=", function_names=None, notation="ng",
             width: int | None = None) -> str:
    """``lhs = rhs`` as one two-dimensional picture, baselines aligned; with ``width``,
    broken into lines of at most that many columns where it is wider (``broken``)."""
    printer = DerivationPrettyPrinter({"function_names": function_names or {},
                                       "notation": notation})
    left = _join(printer._print(with_decimals(lhs)), f" {relation} ")
    form = _join(left, printer._print(with_decimals(rhs)))
    if width is None:
        return form.render(wrap_line=False)
    rows = form.render(wrap_line=False).split("\n")
    return "\n".join(broken(rows, form.baseline, width, start=left.width()))


# --- long pictures broken across lines -------------------------------------------------------

# Characters that open or close a group in a picture, a tall delimiter's pieces included
# (each row of a tall parenthesis holds one piece of it). A line breaks outside every group:
# never inside Σ[i=0..m - 1], an entry's indices, an Iverson bracket or parentheses. A
# brace of cases opens what nothing closes: a break after it is a last resort, and only
# before the column of the cases' conditions.
_OPENING = set("([{⌊⌈⎛⎜⎝⎡⎢⎣")
_CLOSING = set(")]}⌋⌉⎞⎟⎠⎤⎥⎦")
_CASES = set("⎧⎨⎩")
# What a continuation line starts with by preference: a binary operator or a relation.
_OPERATORS = set("+-⊙⊘=←≤<>")
# Preferences of a place to break, best first.
BEFORE_OPERATOR, BETWEEN_FACTORS, BEFORE_RIGHT_SIDE, IN_CASES = range(4)


def _cuts(rows: list[str], baseline: int, start: int) -> list[tuple[int, int]]:
    """Where a picture may break: (column, preference), a blank column of every row outside
    every group; before the right side (column ``start``) only between it and the relation,
    and a last resort."""
    width = max((len(r) for r in rows), default=0)
    rows = [r.ljust(width) for r in rows]
    depth, cases = [0] * len(rows), False
    out = []
    for col in range(1, width - 1):
        if all(r[col] == " " for r in rows) and not any(depth):
            after = rows[baseline][col + 1:].lstrip()[:1]
            pref = IN_CASES if cases else BEFORE_RIGHT_SIDE if col < start \
                else BEFORE_OPERATOR if after in _OPERATORS else BETWEEN_FACTORS
            if col < start and rows[baseline][col - 1] not in _OPERATORS:
                pass  # inside the left side: never
            elif cases and not any(r[col + 1:].startswith("for ") for r in rows):
                pass  # inside cases only before their conditions' column
            elif not out or out[-1][0] != col - 1:  # of a run of blanks, the first
                out.append((col, pref))
        for n, r in enumerate(rows):
            if r[col] in _OPENING:
                depth[n] += 1
            elif r[col] in _CLOSING and depth[n]:
                depth[n] -= 1
            elif r[col] in _CASES:
                cases = True
    return out


def _slab(rows: list[str], a: int, b: int) -> list[str]:
    """Columns a..b-1 of a picture, its blank rows dropped."""
    out = [r[a:b].rstrip() for r in rows]
    return [r for r in out if r.strip()]


# How far a continuation line is indented where the right side's column leaves too little.
HANG = 4


def broken(rows: list[str], baseline: int, width: int, start: int = 0) -> list[str]:
    """A picture (its rows, its baseline row) in lines of at most ``width`` columns where it
    is wider: broken at blank columns outside every group (``_cuts``), before an operator
    first; each continuation starts under the right side (column ``start``), or HANG
    columns in where that leaves too little room for what follows. A part with no place to
    break in it stays whole: one token."""
    total = max((len(r) for r in rows), default=0)
    if total <= width:
        return [r.rstrip() for r in rows]
    cuts = _cuts(rows, baseline, start)
    out, a, indent = [], 0, 0
    while True:
        room = width - indent
        if total - a <= room:
            break
        later = [(c, pref) for c, pref in cuts if c > a]
        fits = [(c, pref) for c, pref in later if c - a <= room]
        if not fits and indent > HANG and later and later[0][0] - a <= width - HANG:
            indent = HANG  # what follows fits from further left
            continue
        if not fits:
            if not later:  # nothing to break at: the rest stays whole, as far left as needed
                indent = min(indent, max(HANG, width - (total - a)))
                break
            fits = [later[0]]
        # Of the places that fill at least half the line, the most preferred; the latest.
        full = [c for c in fits if c[0] - a >= room // 2] or fits
        best = min(pref for _, pref in full)
        cut = max(c for c, pref in full if pref == best)
        out += [" " * indent + line for line in _slab(rows, a, cut)]
        a = cut + 1
        while a < total and all(r[a:a + 1] in ("", " ") for r in rows):
            a += 1
        indent = start if a > start and start <= width // 2 else HANG
    return out + [" " * indent + line for line in _slab(rows, a, total)]
