"""What every printer of derivations shares: the scope of an ``Elementwise`` map's placeholders.

Inside ``Elementwise(Lambda((A[2], Y), A[2] - Y), A[2], Y)`` the symbols ``A[2]`` and ``Y`` stand
for whole matrices; while its body prints, ``_bindings`` maps them to those matrices, so that a
printer's ``_entrywise`` can write products as ⊙ and its symbol method can print the matrix.
"""
from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement


class EntrywiseScope:
    """Mixin for a SymPy printer class that defines ``_entrywise(body)``."""

    def __init__(self, settings=None):
        super().__init__(settings)
        self._bindings: dict = {}  # placeholder -> matrix, inside an Elementwise

    def doprint(self, expr):
        # Constants such as SELU's print as the decimals they were given as (see decimal_text).
        return super().doprint(with_decimals(expr))

    def _is_matrix_valued(self, e) -> bool:
        """Inside an Elementwise body: whether ``e`` involves a bound matrix."""
        return bool(e.free_symbols & set(self._bindings))

    def _print_Elementwise(self, expr):
        outer = self._bindings
        self._bindings = {**outer, **expr.bindings()}
        try:
            return self._entrywise(expr.scalar())
        finally:
            self._bindings = outer

    def _print_Map(self, expr):
        """A function of feature maps entry by entry (tensors.Map): its body, as a matrix's."""
        outer = self._bindings
        self._bindings = {**outer, **dict(zip(expr.fn.variables, expr.tensors))}
        try:
            return self._entrywise(expr.fn.expr)
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


def flatten_matmul(expr) -> list:
    """The factors of a matrix product, nested products opened."""
    out = []
    for a in expr.args:
        out.extend(flatten_matmul(a) if isinstance(a, sp.MatMul) else [a])
    return out


def is_reciprocal(f) -> bool:
    return isinstance(f, sp.Pow) and f.exp.is_negative


def entry_atoms(expr) -> list:
    """What makes a product more than a scalar coefficient: entries, sums, derivatives."""
    return [e for e in sp.preorder_traversal(expr)
            if isinstance(e, (MatrixElement, sp.Sum, sp.Derivative, sp.KroneckerDelta,
                              sp.Indexed, sp.Piecewise))]


def is_indicator(expr) -> bool:
    """Piecewise((1, P), (0, True)): the Iverson bracket [P]."""
    return isinstance(expr, sp.Piecewise) and len(expr.args) == 2 \
        and expr.args[1].cond == sp.true and (expr.args[0].expr, expr.args[1].expr) == (1, 0)


def terminating_decimal(value: sp.Rational) -> str | None:
    """``11/20`` -> ``"0.55"``; None when the decimal does not terminate (1/3)."""
    p, q = int(value.p), int(value.q)
    twos = fives = 0
    while q % 2 == 0:
        q //= 2
        twos += 1
    while q % 5 == 0:
        q //= 5
        fives += 1
    if q != 1:
        return None
    places = max(twos, fives)
    scaled = abs(p) * 10 ** places // int(value.q)
    digits = str(scaled).rjust(places + 1, "0")
    whole, frac = digits[: len(digits) - places], digits[len(digits) - places:]
    text = whole + ("." + frac if places else "")
    return ("-" if p < 0 else "") + text


#: A rational with a denominator this large that is a terminating decimal prints as the decimal.
DECIMAL_DENOMINATOR = 1000


def decimal_text(value) -> str | None:
    """A rational with a long terminating decimal expansion, as that decimal (SELU's
    1.0507009873554804934193349852946, GELU's 0.044715); None for other numbers (1/2 and 1/3
    stay fractions)."""
    if not (isinstance(value, sp.Rational) and not value.is_Integer
            and value.q >= DECIMAL_DENOMINATOR):
        return None
    return terminating_decimal(value)


class DecimalNumber(sp.Symbol):
    """A positive rational shown as its exact terminating decimal, by every printer."""

    def __new__(cls, text):
        return super().__new__(cls, text, positive=True)

    def _latex(self, printer):
        return self.name

    def _sympystr(self, printer):
        return self.name

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(self.name)


def with_decimals(expr):
    """expr with every long terminating rational (a decimal_text) as a DecimalNumber."""
    if not isinstance(expr, sp.Basic):
        return expr

    def show(r):
        text = decimal_text(abs(r))
        return DecimalNumber(text) if r > 0 else -DecimalNumber(text)
    return expr.replace(lambda e: isinstance(e, sp.Rational) and decimal_text(e) is not None,
                        show)


# --- feature maps: entries of (example, channel, row, column) arrays and their sizes ------------

def _index_symbols() -> frozenset:
    from .. import naming as N

    return frozenset(getattr(N, name) for name in
                     ("r", "s", "k", "j", "t", "i", "c", "h", "w", "u", "v", "x", "y", "mu",
                      "nu", "tau"))


INDEX_SYMBOLS = _index_symbols()


def size_symbol(expr):
    """(kind, label) of a feature-map size symbol (``n_C[1]`` -> ("n_C", "1")), else None."""
    from .. import naming as N

    if not isinstance(expr, sp.Symbol):
        return None
    kind, label = N.split(expr.name)
    return (kind, label) if label is not None and kind in N.FEATURE_SIZES else None


def tensor_name(base) -> str:
    """The name of a feature map, kernel or bias array (an IndexedBase): ``A[1]``."""
    return str(base.label)


def is_tensor(expr) -> bool:
    """Whether ``expr`` is an array named KIND[LABEL] (a feature map, kernel, bias, M)."""
    from .. import naming as N

    return isinstance(expr, sp.IndexedBase) and N.split(tensor_name(expr))[1] is not None


def _degree(term) -> int:
    return sum(int(e) for b, e in term.as_powers_dict().items()
               if isinstance(b, sp.Symbol) and e.is_Integer)


def index_terms(expr) -> list:
    """The terms of an index expression in reading order: positive terms before negative ones,
    products before single symbols, indices before sizes (s x + μ - p, h + p - s x)."""
    def key(term):
        return (term.could_extract_minus_sign(), -_degree(term),
                not (term.free_symbols & INDEX_SYMBOLS), sp.default_sort_key(term))
    return sorted(sp.Add.make_args(expr), key=key)


def _nonnegative_part(rel):
    """d with ``rel`` equivalent to d >= 0 (integers: d > 0 is d - 1 >= 0), or None."""
    if isinstance(rel, (sp.GreaterThan, sp.StrictGreaterThan)):
        d = rel.lhs - rel.rhs
    elif isinstance(rel, (sp.LessThan, sp.StrictLessThan)):
        d = rel.rhs - rel.lhs
    else:
        return None
    return sp.expand(d - 1 if isinstance(rel, (sp.StrictGreaterThan, sp.StrictLessThan))
                     else d)


def _negatives(expr) -> int:
    return sum(1 for t in sp.Add.make_args(expr) if t.could_extract_minus_sign())


def _upper_bound(d):
    """d >= 0 as ``(e, top)``, e <= top with the indices on the left and the sizes on the
    right as ``size - 1`` (T - τ - 2 >= 0 reads τ + 1 <= T - 1: step τ + 1 exists), where d
    falls with the indices and rises with the sizes; else ``d >= 0``."""
    terms = sp.Add.make_args(d)
    indices = [t for t in terms if t.free_symbols & INDEX_SYMBOLS]
    sizes = [t for t in terms if t.free_symbols and not t.free_symbols & INDEX_SYMBOLS]
    if not indices or not sizes or not all(t.could_extract_minus_sign() for t in indices) \
            or any(t.could_extract_minus_sign() for t in sizes):
        return sp.Ge(d, 0)
    constant = sp.Add(*[t for t in terms if not t.free_symbols])
    return (sp.expand(-sp.Add(*indices) - constant - 1), sp.Add(*sizes) - 1)


def range_chains(cond) -> list:
    """A range condition as chains ``(0, e, top)`` (0 <= e <= top) and single conditions, in
    the order their expressions first appear: the derived 0 <= h + p - s x,
    f >= h + p - s x + 1 read as 0 <= h + p - s x <= f - 1. A lone upper bound is a pair
    ``(e, top)`` (e <= top)."""
    parts = list(cond.args) if isinstance(cond, sp.And) else [cond]
    parts = sorted(parts, key=sp.default_sort_key)
    lows = [(rel, _nonnegative_part(rel)) for rel in parts]
    used, out = set(), []
    for a, (rel, d) in enumerate(lows):
        if a in used:
            continue
        if d is None:
            out.append(rel)
            used.add(a)
            continue
        for b in range(a + 1, len(lows)):
            other = lows[b][1]
            if b in used or other is None:
                continue
            top = sp.expand(d + other)
            if top.free_symbols & INDEX_SYMBOLS:
                continue
            middle = min((d, other), key=lambda e: (_negatives(e), sp.default_sort_key(e)))
            out.append((sp.Integer(0), middle, top))
            used |= {a, b}
            break
        else:
            out.append(_upper_bound(d))
            used.add(a)

    def first_use(item):
        mid = item[-2] if isinstance(item, tuple) else item  # (low, mid, top), (mid, top)
        return sp.default_sort_key(mid)
    return sorted(out, key=first_use)


def range_piecewise(expr):
    """(body, condition) of Piecewise((body, condition), (0, True)) whose condition bounds
    integer indices (a derived range: the entries a window reaches); else None."""
    if not (isinstance(expr, sp.Piecewise) and len(expr.args) == 2
            and expr.args[1].cond == sp.true and expr.args[1].expr == 0):
        return None
    body, cond = expr.args[0]
    parts = cond.args if isinstance(cond, sp.And) else (cond,)
    for part in parts:
        if not isinstance(part, sp.core.relational.Relational):
            return None
        if part.atoms(sp.Indexed) or part.atoms(MatrixElement):
            return None
        if not part.free_symbols or not all(s.is_integer for s in part.free_symbols):
            return None
    return body, cond


def range_outside(total: sp.Sum):
    """A sum whose body is a derived range bounding none of its summed indices, as that
    range in front of the sum ([τ + 1 <= T - 1] Σ_j U_jr dZ_{k,τ+1,j}: the condition is on
    the entry, not on the terms); else None."""
    ranged = range_piecewise(total.function)
    if ranged is None:
        return None
    body, cond = ranged
    if cond.free_symbols & set(total.variables):
        return None
    return sp.Piecewise((sp.Sum(body, *total.limits), cond), (0, True))


def _factor_rank(f) -> tuple:
    """Factors of an index term: numbers, then strides (s x), then indices, then the other
    sizes (c n_H n_W)."""
    size = size_symbol(f)
    rank = 0 if f.is_Number else 1 if size is not None and size[0] == "s" \
        else 2 if f in INDEX_SYMBOLS else 3
    return (rank, sp.default_sort_key(f))


def index_text(e, show) -> str:
    """An index expression on one line, terms in reading order, factors side by side:
    ``s x + μ - p``; ``show`` prints a symbol or number."""
    if isinstance(e, sp.Add):
        terms = index_terms(e)
        out = index_text(terms[0], show)
        for term in terms[1:]:
            out += f" - {index_text(-term, show)}" if term.could_extract_minus_sign() \
                else f" + {index_text(term, show)}"
        return out
    if isinstance(e, sp.Mul):
        if e.could_extract_minus_sign():
            return "-" + index_text(-e, show)
        return " ".join(show(f) for f in sorted(sp.Mul.make_args(e), key=_factor_rank))
    return show(e)


class OutputSize(sp.Expr):
    """⌊(n + 2p - f)/s⌋ + 1, the rows (or columns) a window of f, stride s, padding p leaves
    of n; printed as that formula, whether its arguments are size symbols or numbers. p = 0
    (a pooling layer) leaves its term out."""

    def __new__(cls, n, p, f, s):
        return sp.Expr.__new__(cls, *(sp.sympify(a) for a in (n, p, f, s)))

    n, p, f, s = (property(lambda self, k=k: self.args[k]) for k in range(4))

    def numerator_terms(self) -> list:
        """(sign, term) of n + 2p - f: the padding's term only where there is padding."""
        terms = [(1, self.n)]
        if self.p != 0:
            terms.append((1, sp.Mul(2, self.p, evaluate=False)))
        return [*terms, (-1, self.f)]

    def value(self):
        return sp.floor((self.n + 2 * self.p - self.f) / self.s) + 1


# --- sequences: an (example, step, unit) array at one time step ---------------------------------

class AtStep(sp.Expr):
    """Sequence ``base`` (example, step, unit) at time step ``step`` as a matrix of vectors, in
    the document's notation (a column per example in Ng's, a row per example in the row
    notation): H^{[1]}_t, H^{[1]}_{t-1}, H^{[1]}_{T-1}. Step -1 is 0 (the state before the first
    step)."""

    is_commutative = False

    def __new__(cls, base, step):
        return sp.Expr.__new__(cls, base, sp.sympify(step))

    base, step = (property(lambda self, n=n: self.args[n]) for n in range(2))

    @property
    def name(self) -> str:  # the array's name, as a matrix's (W[1])
        return str(self.base.label)


class StepColumns(sp.Expr):
    """The columns (rows, in the row notation) of the matrix ``matrix`` that hold step ``step``
    of every example (column T k + t for example k): A^{[1]}_{⟨t⟩}, what a recurrent layer
    passes on at step t when the dense head applies at every step."""

    is_commutative = False

    def __new__(cls, matrix, step):
        return sp.Expr.__new__(cls, matrix, sp.sympify(step))

    matrix, step = (property(lambda self, n=n: self.args[n]) for n in range(2))

    @property
    def name(self) -> str:
        return self.matrix.name


def is_sequence(expr) -> bool:
    """Whether ``expr`` is a sequence: an (example, step, unit) array of a recurrent layer."""
    from .. import naming as N

    return isinstance(expr, sp.IndexedBase) and expr.shape is not None \
        and len(expr.shape) == 3 and expr.shape[1] == N.T


class Dims(sp.Expr):
    """A shape in a sentence: n_1 × m, printed as each printer prints shapes."""

    def __new__(cls, *sizes):
        return sp.Expr.__new__(cls, *(sp.sympify(n) for n in sizes))

    def _latex(self, printer):
        return r" \times ".join(printer._print(n) for n in self.args)

    def _sympystr(self, printer):
        return " × ".join(printer._print(n) for n in self.args)

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(" × ".join(printer._print(n).render(wrap_line=False)
                                     for n in self.args))
