"""Printing derived expressions as NumPy code.

Two printers, both driven by the derivation's SymPy expressions (nothing here knows an
activation or a loss by name):

- ``KernelPrinter`` (a ``NumPyPrinter``) turns the scalar body of an ``Elementwise`` map into
  in-place ufunc calls, each writing into a preallocated buffer given positionally
  (``np.multiply(dA1, H1, dZ1)``), after SymPy's ``cse``. One ``_emit_<Node>`` method per node
  type, found through the class's MRO as SymPy's own printers do.
- ``matrix_text`` prints a matrix expression of the derivation with code names, in the layout
  it was derived in (``W2.T @ dZ2``) or transposed for rows-are-examples code
  (``dZ2 @ W2``); the comments above the generated blocks quote it.

Numerical stability comes from general identities applied to the scalar bodies by SymPy
(``stable``: the rows of ``STABLE_FORMS`` and its companions, each proven by a test), from
clamping each branch of a Piecewise into its condition, and from shifting a reduction of
``exp`` by its maximum wherever SymPy proves every kernel that reads the shifted matrix
unchanged by the shift (``shift_invariant``). ``check_printable`` says whether an expression
prints at all.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.printing.numpy import NumPyPrinter

from ..errors import GenerationError
from ..matrices import Elementwise
from ..naming import code_name
from .ops import Op, op


class GuardedPiecewise(sp.Piecewise):
    """A Piecewise with a branch that is not finite everywhere outside its condition, and a
    condition no clamp of one variable can enforce: each branch is evaluated only where it is
    selected (ufuncs with ``where=``), slower than the 0/1 masks but exact and silent."""


# --- stability: identities SymPy applies to every scalar body -------------------------------

def _bounded_above(e) -> bool:
    """Is e bounded above by its form, so that e^e cannot overflow: -k|x|, k min(0, x),
    -k max(0, x), -k x^2 (k > 0), or k min(c, x) with k c at most SATURATION (k > 0)?"""
    factors = sp.Mul.make_args(e)
    k = sp.Mul(*[f for f in factors if f.is_number])
    rest = sp.Mul(*[f for f in factors if not f.is_number])
    if isinstance(rest, sp.Min) and k.is_positive:
        return any(c.is_number and k * c <= SATURATION for c in rest.args)
    if isinstance(rest, sp.Abs) or isinstance(rest, sp.Max) and 0 in rest.args \
            or rest.is_Pow and rest.exp.is_even:
        return k.is_negative
    return False


_u = sp.Wild("u")
_v = sp.Wild("v", properties=[lambda e: not _bounded_above(e)])  # e^v may overflow
_p = sp.Wild("p", properties=[lambda e: e.is_number and e.is_negative])
_w = sp.Wild("w", properties=[lambda e: e.is_Add and 1 in e.args])  # 1 + x: w - 1 is x


# An argument beyond which the functions of SATURATED_FORMS round to their limit in float32 and
# float64 (1/(1 + e^-u) to 1 for u > 38.2), and at which e^u is finite in both (below 88.7).
SATURATION = sp.Integer(40)


class erfc(sp.erfc):
    """erfc(x), kept as written: SymPy's erfc(-x) evaluates to 2 - erfc(x), the cancellation
    the erfc form is there to avoid."""

    @classmethod
    def eval(cls, arg):
        return None


class Identity:
    """``lhs = rhs`` for every real value of the wild symbols, ``rhs`` finite where ``lhs`` is
    and computed without overflow; ``why`` says what goes wrong with ``lhs``.
    test_codegen proves every row with SymPy."""

    def __init__(self, lhs, rhs, why: str):
        self.lhs, self.rhs, self.why = lhs, rhs, why
        # the functions lhs is made of: a node without them cannot match (a quick test first)
        self.heads = tuple({type(f) for f in lhs.atoms(sp.Function)})

    def __repr__(self) -> str:
        return f"{self.lhs} -> {self.rhs}"

    def apply(self, expr):
        if self.heads and not expr.has(*self.heads):
            return expr

        def query(e):
            return e.func == self.lhs.func and all(e.has(h) for h in self.heads) \
                and e.match(self.lhs) is not None
        return expr.replace(query, lambda e: self.rhs.xreplace(e.match(self.lhs)))


class Saturation(Identity):
    """``lhs = rhs`` for u <= SATURATION, where rhs is lhs in a form that reads u through
    min(u, SATURATION) only, so that e^u cannot overflow; for u > SATURATION lhs is monotone
    and within half a unit in the last place of its limit, so that lhs(u) and rhs round to
    the same float32 and float64. Applied only to a body with no other exp: a neighbouring
    factor e^w, merged with it, could overflow where lhs does not. test_codegen proves every
    row with SymPy and mpmath."""

    def __init__(self, lhs, rhs, why: str, note: str):
        super().__init__(lhs, rhs, why)
        self.note = note  # what the generated code's comment says about the clamp

    def apply(self, expr):
        if not expr.has(sp.exp):
            return expr
        lhs, found = self.lhs, {}
        for e in sp.preorder_traversal(expr):
            if e.func == lhs.func and (not lhs.is_Pow or e.exp == lhs.exp):
                match = e.match(lhs)
                if match is not None:
                    found[e] = self.rhs.xreplace(match)
        if not found or expr.xreplace({e: sp.Dummy() for e in found}).has(sp.exp):
            return expr
        return expr.xreplace(found)

    @staticmethod
    def unsaturated(expr):
        """expr with every min(u, SATURATION) read as u: the exact function again."""
        return expr.replace(lambda e: _clamp_of(e) is not None, _clamp_of)


def _clamp_of(e):
    """u where e is min(u, SATURATION), else None."""
    if isinstance(e, sp.Min) and len(e.args) == 2 and SATURATION in e.args:
        return next(a for a in e.args if a != SATURATION)
    return None


_clamped = sp.exp(sp.Min(_u, SATURATION))

# Functions that reach their limit within rounding at u = SATURATION: clamped there, e^u is
# finite, in fewer calls than the exact STABLE_FORMS row computing the same values.
SATURATED_FORMS = (
    Saturation(1 / (1 + sp.exp(-_u)), _clamped / (1 + _clamped),
               "e^-u overflows for u < -709, and the exact form exp(min(0, u))/(1 + exp(-|u|)) "
               "takes six calls; e^u/(1 + e^u) with u clamped at 40 takes four, and the "
               "values it changes (u > 40) round to 1 either way",
               "1/(1 + exp(-{u})) rounds to 1 for {u} > 40, where {u} is clamped"),
)

# Applied in this order, to every scalar body and inside every function of it.
STABLE_FORMS = (
    Identity(sp.log(sp.cosh(_u)), sp.Abs(_u) + log1p(sp.exp(-2 * sp.Abs(_u))) - sp.log(2),
             "cosh overflows for |u| > 710 in float64"),
    Identity(sp.log(1 + sp.exp(_v)), sp.Max(_v, 0) + log1p(sp.exp(-sp.Abs(_v))),
             "e^u overflows for large u; log1p keeps the relative accuracy of small values "
             "(np.logaddexp is exact too, but some 100 times slower on large arrays)"),
    Identity(1 + sp.erf(_u), erfc(-_u), "1 + erf(u) cancels to 0 for u < -6"),
    Identity(1 - sp.erf(_u), erfc(_u), "1 - erf(u) cancels to 0 for u > 6"),
    Identity(1 + sp.tanh(_u), 2 / (1 + sp.exp(-2 * _u)),
             "1 + tanh(u) cancels to 0 for u < -19 (then the next row makes it finite)"),
    Identity(1 - sp.tanh(_u), 2 / (1 + sp.exp(2 * _u)), "1 - tanh(u) cancels to 0 for u > 19"),
    *SATURATED_FORMS,
    Identity((1 + sp.exp(_v)) ** _p, sp.exp(_p * sp.Max(_v, 0)) * (1 + sp.exp(-sp.Abs(_v))) ** _p,
             "e^u overflows for large u; the tanh form (1 - tanh(u/2))/2 of 1/(1 + e^u) is "
             "finite but returns 0 where the value is below 1e-17 (relative error 1)"),
    Identity(sp.exp(_u) - 1, expm1(_u), "e^u - 1 cancels for small u"),
    Identity(1 - sp.exp(_u), -expm1(_u), "1 - e^u cancels for small u"),
    Identity(sp.sqrt(_w) - 1, (_w - 1) / (sp.sqrt(_w) + 1), "sqrt(1 + x) - 1 cancels for small x"),
)

# Identities applied to products (SymPy's subs finds them among the factors of a Mul).
PRODUCT_FORMS = (
    Identity(sp.sinh(_u) / sp.cosh(_u), sp.tanh(_u),
             "sinh and cosh overflow for |u| > 710; their ratio does not"),
    Identity(_u * sp.sign(_u), sp.Abs(_u), "one call instead of two (sign is a slow ufunc)"),
)

# Sums of max/min that the rows above leave (exp(u) exp(-max(u, 0)) = exp(u - max(u, 0))).
MINMAX_FORMS = (
    Identity(_u - sp.Max(_u, 0), sp.Min(_u, 0), "one call instead of two"),
    Identity(_u - sp.Min(_u, 0), sp.Max(_u, 0), "one call instead of two"),
    Identity(2 * sp.Min(_u, 0) - _u, -sp.Abs(_u), "one call instead of three"),
    Identity(_u - 2 * sp.Max(_u, 0), -sp.Abs(_u), "one call instead of three"),
    Identity(-sp.Max(-_u, 0), sp.Min(_u, 0), "no negations"),
    Identity(-sp.Min(-_u, 0), sp.Max(_u, 0), "no negations"),
)


def unsaturated(expr: sp.Expr) -> sp.Expr:
    """expr with every SATURATED_FORMS clamp min(u, SATURATION) read as u: the exact function
    that ``stable`` computed it from, to compare with."""
    return Saturation.unsaturated(expr)


def computed_form(body: sp.Expr, names: dict | None = None) -> str:
    """What the form the calls evaluate is to the equation they implement: the same function,
    or, where a SATURATED_FORMS row clamped an argument, the same rounded values. ``names``:
    code names of the body's symbols, for the arguments the note names."""
    clamped = sorted({_clamp_of(e) for e in body.atoms(sp.Min)} - {None},
                     key=sp.default_sort_key)
    products = [set(sp.Mul.make_args(e)) for e in sp.preorder_traversal(body) if e.is_Mul]
    notes = []
    for u in clamped:
        for row in SATURATED_FORMS:
            wild = row.lhs.atoms(sp.Wild).pop()
            if any(set(sp.Mul.make_args(row.rhs.xreplace({wild: u}))) <= p for p in products):
                notes.append(row.note.format(u=scalar_text(u, names or {})))
    if not notes:
        return "the same function in the form the calls below evaluate"
    return (f"the same values in float32 and float64 ({'; '.join(notes)}), in the form the "
            "calls below evaluate")


def stable(expr: sp.Expr) -> sp.Expr:
    """expr in a form that evaluates without overflow and with the relative accuracy of each
    part: the STABLE_FORMS rows, exps of one product merged, Piecewise factors pulled out and
    branches clamped into their conditions. Every step is an equality of functions, but for
    the SATURATED_FORMS rows: equal up to SATURATION, and beyond it equal once rounded to
    float32 or float64 (``unsaturated`` gives the exact function back)."""
    expr = expr.replace(lambda e: isinstance(e, sp.Heaviside), lambda e: e.rewrite(sp.Piecewise))
    # |x| of a subclass (the registry's, for its derivative) prints, and cancels, as SymPy's
    expr = _flatten_piecewise(expr.replace(lambda e: isinstance(e, sp.Abs), lambda e: sp.Abs(*e.args)))
    for _ in range(3):
        before = expr
        expr = _group_unit_offsets(expr)
        for row in STABLE_FORMS:
            expr = row.apply(expr)
        expr = _product_forms(expr)
        expr = _merge_exps(expr)
        expr = _minmax_forms(expr)
        if expr == before:
            break
    expr = factor_piecewise(expr)
    return _minmax_forms(_clamp_piecewise(expr))


def _rewrite_nodes(expr, test, rule):
    """expr with rule(node) for every node where test(node), innermost first."""
    if not expr.args:
        return expr
    args = [_rewrite_nodes(a, test, rule) for a in expr.args]
    if any(a is not b for a, b in zip(args, expr.args)):
        expr = expr.func(*args)
    return rule(expr) if test(expr) else expr


def _group_unit_offsets(expr):
    """c + c f(u) and c - c f(u), for f = erf and tanh, and c e^u - c: c times the STABLE_FORMS
    row of 1 + f(u), 1 - f(u) or e^u - 1 (SymPy keeps c + c f(u) as a sum, which no row
    matches)."""
    def group(add):
        consts = [t for t in add.args if t.is_number]
        if len(consts) != 1:
            return add
        c = consts[0]
        for t in add.args:
            k, f = t.as_coeff_Mul()
            if t is c or not isinstance(f, (sp.erf, sp.tanh, sp.exp)):
                continue
            if isinstance(f, sp.exp):
                inner = f - 1 if k == -c else None
            else:
                inner = 1 + f if k == c else 1 - f if k == -c else None
            if inner is None:
                continue
            out = inner
            for row in STABLE_FORMS:
                out = row.apply(out)
            if out == inner:
                continue
            scale = k if isinstance(f, sp.exp) else c
            rest = [x for x in add.args if x is not c and x is not t]
            return sp.Add(sp.Mul(scale, out, evaluate=False) if out.is_Add else scale * out,
                          *rest)
        return add
    return _rewrite_nodes(expr, lambda e: e.is_Add, group)


def _product_forms(expr):
    for row in PRODUCT_FORMS:
        head = type(row.lhs.atoms(sp.Function).pop()) if row.lhs.atoms(sp.Function) else None
        for atom in sorted(expr.atoms(head), key=sp.default_sort_key):
            u = atom.args[0]
            expr = expr.subs(row.lhs.xreplace({_u: u}), row.rhs.xreplace({_u: u}))
    return expr


def _merge_exps(expr):
    """exp(a) exp(b) -> exp(a + b), and exp(c) (x + e^u) -> x exp(c) + exp(c + u): a product
    of an overflowing exp and one that decays is finite once they are one exp."""
    def merge(mul):
        exps = [f for f in mul.args if isinstance(f, sp.exp)]
        if not exps:
            return mul
        rest = [f for f in mul.args if not isinstance(f, sp.exp)]
        power = sp.Add(*[f.args[0] for f in exps])
        sums = [f for f in rest if f.is_Add and any(_exp_factor(t) for t in f.args)]
        if not sums and len(exps) == 1:
            return mul
        if not sums:
            return sp.Mul(*rest, sp.exp(power))
        add = sums[0]
        others = [f for f in rest if f is not add]
        plain = sp.Add(*[t for t in add.args if not _exp_factor(t)])
        terms = [sp.Mul(*others, plain, sp.exp(power))]
        for t in add.args:
            if _exp_factor(t):
                terms.append(merge(sp.Mul(*others, t, sp.exp(power))))
        return sp.Add(*terms)
    return _rewrite_nodes(expr, lambda e: e.is_Mul, merge)


def _exp_factor(term) -> bool:
    return any(isinstance(f, sp.exp) for f in sp.Mul.make_args(term))


def _minmax_forms(expr):
    """The MINMAX_FORMS rows, matched exactly: a row applies where k times its terms, for its
    u one argument (or its negation) of a Max or Min with 0 in the sum, are terms of the sum.
    (A pattern with a wild symbol matches too much here: Max(0, |x|) evaluates to |x|.)"""
    def tidy(e):
        terms = list(sp.Add.make_args(e))
        nodes = [f for t in terms for f in sp.Mul.make_args(t)
                 if isinstance(f, (sp.Max, sp.Min)) and len(f.args) == 2 and 0 in f.args]
        for row in range(len(MINMAX_FORMS)):
            for node in nodes:
                x = node.args[1] if node.args[0] == 0 else node.args[0]
                for u in (x, -x):
                    pattern, result = _minmax_row(row, u)
                    if type(node) not in pattern[1]:
                        continue
                    found = _scaled_terms(terms, pattern[0])
                    if found is not None:
                        k, used = found
                        rest = [t for i, t in enumerate(terms) if i not in used]
                        return tidy(sp.Add(k * result, *rest))
        return e
    return _rewrite_nodes(expr, lambda e: e.is_Add or e.is_Mul, tidy)


@lru_cache(maxsize=4096)
def _minmax_row(row: int, u):
    """((terms of the row's lhs at u, the Max/Min types in it), its rhs at u)."""
    lhs = MINMAX_FORMS[row].lhs.xreplace({_u: u})
    kinds = {type(f) for f in sp.preorder_traversal(lhs) if isinstance(f, (sp.Max, sp.Min))}
    return (sp.Add.make_args(lhs), frozenset(kinds)), MINMAX_FORMS[row].rhs.xreplace({_u: u})


def _scaled_terms(terms, pattern):
    """(k, positions) when k p is among ``terms`` for every term p of ``pattern``, else None."""
    for t in terms:
        k = t / pattern[0]
        if not k.is_number or (len(pattern) == 1 and not k.is_positive):
            continue  # -Max(-u, 0) -> Min(u, 0) only where the sign is there to drop
        used = []
        for p in pattern:
            at = [i for i, x in enumerate(terms) if x == k * p and i not in used]
            if not at:
                break
            used.append(at[0])
        else:
            return k, used
    return None


def _flatten_piecewise(expr):
    """A Piecewise in a branch of a Piecewise is spliced into it (first match wins)."""
    def flat(pw):
        branches = []
        for value, cond in pw.args:
            if isinstance(value, sp.Piecewise):
                branches += [(v, sp.And(cond, c)) for v, c in value.args]
            else:
                branches.append((value, cond))
        return sp.Piecewise(*branches) if branches != list(pw.args) else pw
    return _rewrite_nodes(expr, lambda e: isinstance(e, sp.Piecewise), flat)


def factor_piecewise(expr: sp.Expr) -> sp.Expr:
    """Piecewise((z, c), (z/100, True)) -> z * Piecewise((1, c), (1/100, True)).

    The factor left is a function of the condition alone: a 0/1 (or two-valued) mask that the
    backward pass can reuse. A factor pulled out is computed everywhere, so only one that
    cannot fail is (not exp(z) of a branch that holds for z <= 0).
    """
    def pull(pw):
        values = [branch.expr for branch in pw.args]
        common = values[0]
        try:
            for value in values[1:]:
                common = sp.gcd(common, value)
        except (sp.PolynomialError, NotImplementedError):  # pragma: no cover
            return pw
        # only factors finite everywhere: the factor is evaluated where its branch is not
        common = sp.Mul(*[f for f in sp.Mul.make_args(common)
                          if not f.is_number and not may_fail(f)])
        if common == 1:
            return pw
        return common * sp.Piecewise(*[(sp.cancel(b.expr / common), b.cond) for b in pw.args])
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), pull)


# --- Piecewise: every branch finite everywhere, or evaluated only where selected ----------

_OVERFLOWING = (sp.exp, expm1, sp.sinh, sp.cosh, sp.log, log1p, sp.tan)


def may_fail(expr) -> bool:
    """Can expr overflow, divide by zero or leave its domain for some real input? (A
    syntactic over-approximation: exp, log, division, roots, ... anywhere in it.)"""
    for e in sp.preorder_traversal(expr):
        if isinstance(e, _OVERFLOWING):
            return True
        if e.is_Pow and not (e.exp.is_Integer and e.exp >= 0):
            return True
    return False


def exclusive(pw: sp.Piecewise) -> list:
    """The branches of pw with conditions that exclude each other: (value, condition)."""
    out, earlier = [], []
    for value, cond in pw.args:
        others = [sp.Not(c) for c in earlier]
        out.append((value, sp.And(*others) if cond == sp.true else sp.And(cond, *others)))
        earlier.append(cond)
    return out


def _bounds(cond):
    """{x: (lo, hi)} when cond bounds single symbols by numbers (None: that side open), else
    None. Strictness is dropped: a branch is clamped to the closure of its region."""
    parts = cond.args if isinstance(cond, sp.And) else (cond,)
    bounds = {}
    for part in parts:
        if not isinstance(part, (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan,
                                 sp.LessThan, sp.Equality)):
            return None
        lhs, rhs, rel = part.lhs, part.rhs, type(part)
        if lhs.is_number and isinstance(rhs, sp.Symbol):
            lhs, rhs, rel = rhs, lhs, type(part.reversed)
        if not (isinstance(lhs, sp.Symbol) and rhs.is_number and rhs.is_finite):
            return None
        lo, hi = bounds.get(lhs, (None, None))
        if rel in (sp.StrictGreaterThan, sp.GreaterThan, sp.Equality):
            lo = rhs if lo is None else sp.Max(lo, rhs)
        if rel in (sp.StrictLessThan, sp.LessThan, sp.Equality):
            hi = rhs if hi is None else sp.Min(hi, rhs)
        bounds[lhs] = (lo, hi)
    return bounds


def _clamped(value, bounds):
    """value with each bounded symbol clamped into its bounds, or None where value is not
    finite at a bound (log(z) on z > 0: log(0))."""
    rep = {}
    for x, (lo, hi) in bounds.items():
        if not value.has(x):
            continue
        for edge in (lo, hi):
            if edge is not None and _bad(value.xreplace({x: edge})):
                return None
        inner = x if lo is None else sp.Max(x, lo)
        rep[x] = inner if hi is None else sp.Min(inner, hi)
    return value.xreplace(rep)


def _bad(value) -> bool:
    return value.has(sp.zoo, sp.nan, sp.oo, -sp.oo) or value.is_finite is False


def _clamp_piecewise(expr):
    """Each Piecewise with a branch that may fail elsewhere: the branch evaluated at its
    variable clamped into its condition (exp(z) on z <= 0 -> exp(min(z, 0))), equal where it
    is selected and finite everywhere; a Piecewise continuous at its one threshold becomes
    f1(max(z, c)) + f2(min(z, c)) - f(c), with no mask at all. Where no clamp can do it, a
    GuardedPiecewise."""
    def clamp(pw):
        branches = exclusive(pw)
        if all(v.is_number for v, _ in branches):
            return pw
        joined = _continuous(branches)
        if joined is not None:
            return joined
        out = []
        for (value, cond), (_, written) in zip(branches, pw.args):
            if not may_fail(value):
                out.append((value, written))
                continue
            bounds = _bounds(cond)
            new = _clamped(value, bounds) if bounds else None
            if new is None:
                return GuardedPiecewise(*pw.args)
            out.append((new, written))
        return sp.Piecewise(*out)
    return _rewrite_nodes(expr, lambda e: isinstance(e, sp.Piecewise)
                          and not isinstance(e, GuardedPiecewise), clamp)


def _continuous(branches):
    """Two branches split at z = c and equal there: f1(max(z, c)) + f2(min(z, c)) - f1(c)."""
    if len(branches) != 2:
        return None
    (f1, c1), (f2, c2) = branches
    b1, b2 = _bounds(c1), _bounds(c2)
    if not b1 or not b2 or len(b1) != 1 or set(b1) != set(b2):
        return None
    (x, (lo1, hi1)), = b1.items()
    lo2, hi2 = b2[x]
    edge = lo1 if lo1 is not None else hi1
    if (lo1 is None) == (hi1 is None) or edge not in (lo2, hi2) or (lo2 is None) == (hi2 is None):
        return None
    v1, v2 = f1.xreplace({x: edge}), f2.xreplace({x: edge})
    if _bad(v1) or _bad(v2) or sp.simplify(v1 - v2) != 0:
        return None
    g1, g2 = _clamped(f1, b1), _clamped(f2, b2)
    if g1 is None or g2 is None:
        return None
    return g1 + g2 - v1


def expand_logs(expr: sp.Expr) -> sp.Expr:
    """log(f) -> the expanded log of f over a common denominator: log(e^z / s) = z - log(s).

    A log of a probability that underflowed to 0 is -inf; written through the pre-activation
    it stays finite.
    """
    def expand(e):
        return sp.expand_log(sp.log(sp.cancel(e.args[0])), force=True)
    return expr.replace(lambda e: isinstance(e, sp.log), expand)


def shift_invariant(body: sp.Expr, z: sp.Symbol, reductions: dict) -> bool:
    """Is ``body`` unchanged when z becomes z + c in it and in its reductions of exp(z)?

    ``reductions`` maps a placeholder to the scalar body summed into it. The check is exact
    (SymPy), so shifting z by its row maximum before evaluating changes no value.
    """
    c = sp.Dummy("c", real=True)
    scaled = {}
    for var, inner in reductions.items():
        if not inner.has(z):
            continue
        ratio = sp.simplify(sp.expand_log(inner.xreplace({z: z + c}) / inner, force=True))
        if sp.simplify(ratio - sp.exp(c)) != 0:
            return False
        scaled[var] = var * sp.exp(c)
    shifted = body.xreplace({z: z + c, **scaled})
    diff = sp.expand_log(shifted - body, force=True)
    return sp.simplify(diff) == 0


def check_printable(expr: sp.Expr, variables=()) -> None:
    """Raise GenerationError, saying why, if expr or its derivative by any of ``variables``
    has no NumPy form in a generated trainer; return None if both print."""
    if expr.has(sp.I, sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise GenerationError(f"{expr} is not a finite real expression")
    count = iter(range(10**9))

    def temp(shape):
        return f"t{next(count)}"
    for form in [expr, *[sp.diff(expr, v) for v in variables]]:
        body = stable(form)
        names = {s: f"x{k}" for k, s in enumerate(sorted(body.free_symbols, key=str))}
        KernelPrinter(names, temp).emit(body, "out")


# --- elementwise kernels as in-place ufunc calls --------------------------------------------

_COMPARE = {
    sp.StrictGreaterThan: "greater", sp.GreaterThan: "greater_equal",
    sp.StrictLessThan: "less", sp.LessThan: "less_equal",
    sp.Equality: "equal", sp.Unequality: "not_equal",
}
# Functions whose NumPy name is not SymPy's (np.minimum and np.maximum take out= by keyword).
_UFUNCS = {"Abs": "absolute", "Min": "minimum", "Max": "maximum"}
# Kernels of ``kernels`` that functions without a ufunc call: SymPy name -> kernel.
_KERNELS = {"erf": "_erf", "erfc": "_erfc"}


def number(value) -> str:
    """A numeric literal in Python: 1/2 -> 0.5, 2 -> 2.0."""
    return repr(float(value))


def decimal(value) -> str:
    """A number as the shortest decimal that reads back to its float: 1/1000 -> 0.001."""
    return repr(float(value)).removesuffix(".0")


class KernelPrinter(NumPyPrinter):
    """Scalar SymPy body -> the plan's ops (``ops.Op``), each writing a preallocated buffer.

    ``names`` maps each placeholder symbol to the code name of its array; ``temp(shape)``
    returns the name of a free scratch buffer of that shape ("full" or "column", or "mask"
    for a boolean one). ``column`` holds the placeholders that are per-example columns (m, 1).
    ``kernels`` collects the kernels of ``kernels`` the calls use.
    """

    printmethod = "_numpycode"

    def __init__(self, names: dict, temp, column=frozenset(), constant=None):
        super().__init__({"fully_qualified_modules": True})
        self.names = names
        self.temp = temp
        self.constant = constant or number
        self.column = set(column)
        self.preferred = None  # the symbol to read first (it shares its buffer with dest)
        self.ops: list[Op] = []
        self.kernels: set[str] = set()
        self.where = None  # a boolean mask every call is restricted to (GuardedPiecewise)

    @property
    def lines(self) -> list[str]:
        """The ops as the NumPy backend prints them."""
        from .backends import NUMPY

        return NUMPY.lines(self.ops)

    # helpers ---------------------------------------------------------------------------------
    def number(self, value) -> str:
        """A constant operand: a literal, or the name of a 0-d array of the buffers' dtype
        (NumPy converts a Python float on every call, which costs as much as the operation
        on a small array)."""
        return self.constant(value)

    def call(self, fn: str, *args) -> None:
        """One ufunc call; its last argument is the buffer it writes."""
        self.ops.append(op(fn, *args, where=None if fn.startswith("_") else self.where))

    def shape_of(self, expr) -> str:
        """'column' if expr depends only on per-example columns, else 'full'."""
        leaves = {s for s in expr.free_symbols if s in self.names}
        return "column" if leaves and leaves <= self.column else "full"

    def is_leaf(self, expr) -> bool:
        return expr in self.names or expr.is_number

    def operand(self, expr) -> str:
        """Where the value of expr is: an array name, a literal, or a freshly computed temp."""
        if expr in self.names:
            return self.names[expr]
        if expr.is_number:
            return self.number(self._value(expr))
        dest = self.temp(self.shape_of(expr))
        self.emit(expr, dest)
        return dest

    @staticmethod
    def _value(expr):
        value = sp.N(expr, 20)
        if not (value.is_real and value.is_finite):
            raise GenerationError(f"the constant {expr} is not a finite real number")
        return value

    def emit(self, expr, dest: str) -> str:
        """Write the value of expr into the buffer ``dest``."""
        if expr.is_number and expr not in self.names:
            self.call("copyto", self.number(self._value(expr)), dest)
            return dest
        for cls in type(expr).__mro__:
            method = getattr(self, f"_emit_{cls.__name__}", None)
            if method is not None:
                method(expr, dest)
                return dest
        raise GenerationError(f"no NumPy rule for {type(expr).__name__} in {expr}")

    # nodes -----------------------------------------------------------------------------------
    def _emit_Symbol(self, expr, dest):
        if expr not in self.names:
            raise GenerationError(f"{expr} is not bound to an array")
        self.call("copyto", self.names[expr], dest)

    def _emit_Add(self, expr, dest):
        const = sum((t for t in expr.args if t.is_number), sp.Integer(0))
        terms = [t for t in expr.args if not t.is_number]
        signed = [(t.could_extract_minus_sign(), -t if t.could_extract_minus_sign() else t)
                  for t in terms]
        # Start from a term that needs computing (it can be built in dest), positive first.
        signed.sort(key=lambda st: (st[1] != self.preferred, st[0], self.is_leaf(st[1])))
        (neg, first), rest = signed[0], signed[1:]
        if not self.is_leaf(first):
            self.emit(first, dest)
        elif not rest and const != 0:  # c + x or c - x: one call
            if neg:
                self.call("subtract", self.number(const), self.operand(first), dest)
            else:
                self.call("add", self.operand(first), self.number(const), dest)
            return
        elif rest:
            (neg2, second), rest = rest[0], rest[1:]
            a, b = self.operand(first), self.operand(second)
            if neg and neg2:
                self.call("add", a, b, dest)
                self.call("negative", dest, dest)
            elif neg:
                self.call("subtract", b, a, dest)
            else:
                self.call("subtract" if neg2 else "add", a, b, dest)
            neg = False
        else:
            self.call("copyto", self.operand(first), dest)
        if neg:
            if const != 0:
                self.call("subtract", self.number(const), dest, dest)
                const = sp.Integer(0)
            else:
                self.call("negative", dest, dest)
        for neg_t, term in rest:
            self.call("subtract" if neg_t else "add", dest, self.operand(term), dest)
        if const != 0:
            self.call("add", dest, self.number(const), dest)

    def _emit_Mul(self, expr, dest):
        coeff, factors = expr.as_coeff_mul()
        coeff = coeff * sp.Mul(*[f for f in factors if f.is_number])
        factors = tuple(f for f in factors if not f.is_number)
        sums = [f for f in factors if f.is_Add]
        if coeff.is_negative and sums:  # -(a - 1) b -> (1 - a) b: the sign costs no call
            coeff, factors = -coeff, tuple(-f if f is sums[0] else f for f in factors)
        if coeff.is_negative and len(factors) == 1 and isinstance(factors[0], sp.Abs):
            # -c |x| -> copysign(x, -1), times c: one call for the sign and the magnitude
            arg = factors[0].args[0]
            source = self.operand(arg) if self.is_leaf(arg) else self.emit(arg, dest)
            self.call("copysign", source, self.number(-1), dest)
            if coeff != -1:
                self.call("multiply", dest, self.number(-coeff), dest)
            return
        num = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        den = [f.base ** -f.exp for f in factors if f.is_Pow and f.exp.is_negative]
        num.sort(key=lambda f: (f != self.preferred, self.is_leaf(f)))
        if num:
            # Divisors first, into their own buffers: then the first write to dest can be the
            # last read of the array dest may share memory with (the numerator's, in place).
            den = [self.names.get(f) or self.operand(f) if not self.is_leaf(f) else f
                   for f in den]
            first, rest = num[0], num[1:]
            if not self.is_leaf(first):
                self.emit(first, dest)
            elif rest:
                self.call("multiply", self.operand(first), self.operand(rest[0]), dest)
                rest = rest[1:]
            elif den:
                divisor = den[0] if isinstance(den[0], str) else self.operand(den[0])
                self.call("divide", self.operand(first), divisor, dest)
                den = den[1:]
            elif coeff == -1:
                self.call("negative", self.operand(first), dest)
                coeff = sp.Integer(1)
            else:
                self.call("multiply", self.operand(first), self.number(coeff), dest)
                coeff = sp.Integer(1)
            for f in rest:
                self.call("multiply", dest, self.operand(f), dest)
        else:
            first, den = den[0], den[1:]
            if self.is_leaf(first):
                self.call("divide", self.number(coeff), self.operand(first), dest)
            else:
                self.emit(first, dest)
                self.call("divide", self.number(coeff), dest, dest)
            coeff = sp.Integer(1)
        for f in den:
            self.call("divide", dest, f if isinstance(f, str) else self.operand(f), dest)
        if coeff == -1:
            self.call("negative", dest, dest)
        elif coeff != 1:
            self.call("multiply", dest, self.number(coeff), dest)

    def _emit_Pow(self, expr, dest):
        base, exp = expr.args
        rules = {2: ("square",), sp.Rational(1, 2): ("sqrt",), -1: ("reciprocal",),
                 -2: ("square", "reciprocal"), sp.Rational(-1, 2): ("sqrt", "reciprocal")}
        source = self.operand(base) if self.is_leaf(base) else self.emit(base, dest)
        if exp in rules:
            for fn in rules[exp]:
                self.call(fn, source, dest)
                source = dest
        elif exp.is_number:
            self.call("power", source, self.number(self._value(exp)), dest)
        else:
            self.call("power", source, self.operand(exp), dest)

    def _emit_Function(self, expr, dest):
        kind = type(expr).__name__
        if kind in _KERNELS:
            return self._kernel(_KERNELS[kind], expr.args[0], dest)
        name = _UFUNCS.get(kind) or self.known_functions.get(kind, "")
        if not name.startswith("numpy.") and kind not in _UFUNCS:
            raise GenerationError(f"no NumPy ufunc for {kind} in {expr}")
        name = name.removeprefix("numpy.")
        args = list(expr.args)
        if kind in ("Min", "Max") and len(args) > 2:  # np.minimum is binary: fold
            self.emit(type(expr)(*args[:2]), dest)
            for a in args[2:]:
                self.call(name, dest, self.operand(a), dest)
            return
        if len(args) == 1 and not self.is_leaf(args[0]):
            self.emit(args[0], dest)
            self.call(name, dest, dest)
            return
        leaves = sorted(args, key=lambda a: not self.is_leaf(a) or a.is_number)
        if len(args) == 2 and kind in ("Min", "Max") and not self.is_leaf(leaves[-1]):
            other, inner = leaves  # build the computed argument in dest, then one call
            self.emit(inner, dest)
            self.call(name, dest, self.operand(other), dest)
            return
        self.call(name, *[self.operand(a) for a in args], dest)

    def _emit_MinMaxBase(self, expr, dest):
        self._emit_Function(expr, dest)

    def _kernel(self, kernel, arg, dest):
        """A kernel of ``kernels`` (erf, erfc): the argument, scratch buffers, then dest."""
        from . import kernels

        source = self.operand(arg) if self.is_leaf(arg) else self.emit(arg, dest)
        shape = self.shape_of(arg)
        scratch = [self.temp(shape) for _ in range(kernels.SCRATCH[kernel])]
        self.kernels.update(kernels.needed([kernel]))
        self.call(kernel, source, *scratch, dest)

    # conditions as 0/1 masks ------------------------------------------------------------------
    def mask(self, cond, dest) -> None:
        """dest = 1.0 where cond holds, else 0.0 (dest is a float buffer, or a boolean one)."""
        if cond in self.names:
            self.call("copyto", self.names[cond], dest)
        elif type(cond) in _COMPARE:
            self.call(_COMPARE[type(cond)], self.operand(cond.lhs), self.operand(cond.rhs), dest)
        elif isinstance(cond, sp.Not):
            self.mask(cond.args[0], dest)
            self.call("logical_not", dest, dest)
        elif isinstance(cond, (sp.And, sp.Or)):
            parts = sorted(cond.args, key=sp.default_sort_key)
            self.mask(parts[0], dest)
            fn = "logical_and" if isinstance(cond, sp.And) else "logical_or"
            for part in parts[1:]:
                other = self.temp(self.shape_of_cond(part))
                self.mask(part, other)
                self.call(fn, dest, other, dest)
        elif cond in (sp.true, sp.false):
            self.call("copyto", self.number(1 if cond == sp.true else 0), dest)
        elif isinstance(cond, sp.logic.boolalg.BooleanFunction) and cond.to_nnf() != cond:
            self.mask(cond.to_nnf(), dest)  # ITE, Xor, Implies: in and, or, not
        else:
            raise GenerationError(f"no NumPy rule for the condition {cond}")

    def shape_of_cond(self, cond) -> str:
        leaves = {s for s in cond.free_symbols if s in self.names}
        return "column" if leaves and leaves <= self.column else "full"

    def _emit_Relational(self, expr, dest):
        self.mask(expr, dest)

    def _emit_BooleanFunction(self, expr, dest):
        self.mask(expr, dest)

    def _emit_Piecewise(self, expr, dest):
        """sum over the branches of value times a 0/1 mask of its (exclusive) condition.

        Constant values: c0 + (c1 - c0) [c1] for two. Every value is finite everywhere
        (``stable`` clamped them), so a 0 times the value not selected is 0: exact."""
        if expr.args[-1].cond != sp.true:
            raise GenerationError(f"the Piecewise {expr} has no branch for 'otherwise'")
        shape = self.shape_of(expr)
        if len(expr.args) == 2 and all(v.is_number for v, _ in expr.args):
            (c1, cond), (c0, _) = expr.args
            self.mask(cond, dest)
            if c1 - c0 != 1:
                self.call("multiply", dest, self.number(c1 - c0), dest)
            if c0 != 0:
                self.call("add", dest, self.number(c0), dest)
            return
        started = False
        for value, mask in self._branch_masks(expr, shape):
            if value == 0:
                continue
            term = dest if not started else self.temp(shape)
            if value.is_number:
                self.call("multiply", mask, self.number(self._value(value)), term)
            else:
                self.emit(value, term)
                self.call("multiply", term, mask, term)
            if started:
                self.call("add", dest, term, dest)
            started = True
        if not started:
            self.call("copyto", self.number(0), dest)

    def _branch_masks(self, pw, shape):
        """(value, name of its mask) for each branch, conditions made exclusive: a branch
        holds where its condition does and no earlier one did. ``shape`` "mask": boolean
        masks (for where=), else 0/1 floats."""
        taken = None  # where an earlier branch holds
        for k, (value, cond) in enumerate(pw.args):
            if cond == sp.true and taken is not None:
                mask = self.temp(shape)
                self.call("logical_not", taken, mask)
            else:
                mask = self.mask_operand(cond, shape)
                if taken is not None:
                    free = self.temp(shape)
                    self.call("logical_not", taken, free)
                    self.call("logical_and", mask, free, free)
                    mask = free
            if k < len(pw.args) - 1:  # a later branch excludes this one
                if taken is None:
                    taken = mask
                else:
                    union = self.temp(shape)
                    self.call("logical_or", taken, mask, union)
                    taken = union
            yield value, mask

    def mask_operand(self, cond, shape) -> str:
        """The name of a buffer holding cond's mask: a saved 0/1 one, or a fresh temp."""
        if cond in self.names and shape != "mask":
            return self.names[cond]
        mask = self.temp(shape)
        if cond in self.names:  # a saved 0/1 mask as a boolean one
            self.call("not_equal", self.names[cond], self.number(0), mask)
        else:
            self.mask(cond, mask)
        return mask

    def _emit_GuardedPiecewise(self, expr, dest):
        """Each branch computed where it is selected only (``where=`` a boolean mask), then
        copied there: no value outside a branch's condition is ever computed."""
        if self.where is not None:
            raise GenerationError(f"no NumPy rule for a guarded Piecewise inside another: {expr}")
        if expr.args[-1].cond != sp.true:
            raise GenerationError(f"the Piecewise {expr} has no branch for 'otherwise'")
        for value, mask in self._branch_masks(expr, "mask"):
            self.where = mask
            try:
                if value.is_number:
                    self.call("copyto", self.number(self._value(value)), dest)
                else:
                    term = self.names.get(value) or self.temp("full")
                    if value not in self.names:
                        self.emit(value, term)
                    self.call("copyto", term, dest)
            finally:
                self.where = None


# --- matrix expressions as text, for the comments ------------------------------------------

def _is_matrix(e) -> bool:
    return getattr(e, "is_Matrix", False)


def factors(term) -> list:
    """The factors of a (possibly nested) matrix product, scalars included, in order."""
    if isinstance(term, sp.MatMul):
        return [f for arg in term.args for f in factors(arg)]
    return [term]


def scalar_text(expr, names: dict) -> str:
    """A scalar body with placeholders shown by their code names: ``dA1*(1 - A1**2)``."""
    shown = {var: sp.Symbol(name) for var, name in names.items()}
    return sp.sstr(expr.xreplace(shown))


def matrix_text(expr, m, rows_are_examples: bool, transposed: bool | None = None) -> str:
    """``W2.T @ dZ2`` as derived (columns are examples), or ``dZ2 @ W2`` for row-major code.

    In row-major code an activation-sized array holds the transpose of its symbol, so the
    code for a matrix with m columns is the code of its transpose. ``transposed`` overrides
    that choice. ``OneMatrix`` factors print as what they do: a sum, or a broadcast bias.
    """
    def name(M):
        return code_name(M.name)

    def text(e, transposed):
        if isinstance(e, sp.MatrixSymbol):
            stored_t = rows_are_examples and m in e.shape
            return name(e) + (".T" if transposed != stored_t and 1 not in e.shape else "")
        if isinstance(e, sp.Transpose):
            return text(e.arg, not transposed)
        if isinstance(e, sp.MatAdd):
            return " + ".join(text(a, transposed) for a in e.args)
        if isinstance(e, sp.MatMul):
            scalars = [a for a in factors(e) if not _is_matrix(a)]
            mats = [a for a in factors(e) if _is_matrix(a)]
            prefix = f"({sp.sstr(sp.Mul(*scalars))}) * " if scalars else ""
            ones = [a for a in mats if isinstance(a, sp.OneMatrix)]
            rest = [a for a in mats if not isinstance(a, sp.OneMatrix)]
            if ones and len(rest) == 1:
                inner = text(rest[0], rows_are_examples and m in rest[0].shape)
                example_axis, unit_axis = (0, 1) if rows_are_examples else (1, 0)
                if ones[0].shape == (1, m):
                    return prefix + inner  # b 1ᵀ: the bias, broadcast over the examples
                if ones[0].shape == (m, 1):
                    return f"{prefix}{inner}.sum(axis={example_axis})"
                return f"{prefix}{inner}.sum(axis={unit_axis}, keepdims=True)"
            order = list(reversed(rest)) if transposed else rest
            return prefix + " @ ".join(text(a, transposed) for a in order)
        if isinstance(e, Elementwise):
            local = {var: text(M, transposed) if not isinstance(M, sp.MatrixSymbol) else name(M)
                     for var, M in e.bindings().items()}
            return scalar_text(e.scalar(), local)
        raise GenerationError(f"no text rule for {type(e).__name__} in {e}")

    if transposed is None:
        transposed = rows_are_examples and m in expr.shape
    return text(expr, transposed)
