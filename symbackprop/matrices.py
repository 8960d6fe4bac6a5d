"""Matrix forms of index expressions.

``Elementwise`` is the one matrix node symbackprop adds to SymPy: a scalar function applied entry
by entry to same-shaped matrices (``A ⊙ (1 - A)`` is ``Elementwise(Lambda(a, a*(1 - a)), A)``).
Its scalar function is what the code generator prints and what documents print with ⊙.

``vectorise`` turns the entry formula the engine derives -- an expression in matrix entries with
free row and column indices -- into a matrix expression:
- a sum over a shared index of a product of two entries becomes a matrix product, through SymPy's
  ``convert_indexed_to_array`` / ``convert_array_to_matrix`` (``Σ_i dZ_ri A_si`` -> ``dZ Aᵀ``);
  a sum of one entry becomes a product with a ones vector (``Σ_i dZ_ri`` -> ``dZ 1``);
- a sum over a unit index of an elementwise expression (the softmax coupling) becomes a product
  with a ones matrix, which sums each column and broadcasts it back;
- what remains, entries all at the same position, becomes an ``Elementwise`` map; a bias entry
  ``b_r`` in a matrix context is broadcast as ``b 1ᵀ``.
Scalar factors stay outside SymPy's converter (it can drop them) and are put back here.
"""
from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.tensor.array.expressions import convert_array_to_matrix, convert_indexed_to_array

from .errors import DerivationError


class Elementwise(sp.MatrixExpr):
    """``fn`` applied entry by entry: ``Elementwise(Lambda((a, y), a - y), A, Y)`` is ``A - Y``."""

    def __new__(cls, fn: sp.Lambda, *mats):
        mats = [sp.sympify(M) for M in mats]
        if not mats or any(M.shape != mats[0].shape for M in mats):
            raise DerivationError("Elementwise needs matrices of one shape")
        return sp.Basic.__new__(cls, fn, *mats)

    @property
    def fn(self) -> sp.Lambda:
        return self.args[0]

    @property
    def mats(self) -> tuple:
        return self.args[1:]

    @property
    def shape(self):
        return self.args[1].shape

    def _entry(self, i, j, **kwargs):
        return self.fn(*[M[i, j] for M in self.mats])

    def doit(self, **hints):
        mats = [M.doit(**hints) for M in self.mats]
        if all(isinstance(M, sp.MatrixBase) for M in mats):
            rows, cols = mats[0].shape
            return sp.ImmutableMatrix(rows, cols, lambda i, j: self.fn(*[M[i, j] for M in mats]))
        return Elementwise(self.fn, *mats)

    def scalar(self) -> sp.Expr:
        """The scalar function's body, in its placeholder variables."""
        return self.fn.expr

    # SymPy's own printers (str, sympy.latex) print the map as mathematics, as symbackprop's
    # printers do: A[2] - Y, not Elementwise(Lambda(...)).
    def _sympystr(self, printer):
        return readable(self, printer, "text")

    def _latex(self, printer):
        return readable(self, printer, "latex")

    def bindings(self) -> dict:
        """Placeholder variable -> the matrix it stands for."""
        return dict(zip(self.fn.variables, self.mats))


def readable(expr, printer, kind: str) -> str:
    """``expr`` as symbackprop's printer of ``kind`` prints it; a printer with its own rule
    for the node (symbackprop's, which SymPy would otherwise bypass) applies that rule."""
    own = getattr(printer, f"_print_{type(expr).__name__}", None)
    if own is not None:
        return own(expr)
    if kind == "latex":
        from .printing.latex import latex

        return latex(expr)
    from .printing.linear import text

    return text(expr)


def placeholder(matrix) -> sp.Symbol:
    """The scalar variable that stands for one entry of ``matrix`` inside an Elementwise map."""
    name = matrix.name if isinstance(matrix, sp.MatrixSymbol) else str(matrix)
    return sp.Symbol(name)


def elements(expr) -> set:
    return {e for e in sp.preorder_traversal(expr) if isinstance(e, MatrixElement)}


def _position_ok(elem, rows, cols) -> bool:
    return tuple(elem.indices) == (rows, cols)


def vectorise(expr, rows, cols, shape) -> sp.MatrixExpr:
    """The matrix M of the given shape with ``M[rows, cols] == expr``.

    ``rows`` / ``cols`` are the free index symbols, or ``sp.Integer(0)`` on the side of a vector.
    """
    expr = sp.sympify(expr)
    coeff, rest = expr.as_independent(*elements(expr), *(x for x in (rows, cols)
                                                         if isinstance(x, sp.Symbol)))
    if rest == 1:
        raise DerivationError(f"no matrix entry in {expr}")
    result = None
    if isinstance(rest, sp.Sum):
        inner_coeff, rest_sum = _pull_constants(rest)
        if _is_contraction(rest_sum, rows, cols):
            result = _scale(coeff * inner_coeff, _contract(rest_sum, rows, cols, shape))
    if result is None:
        result = _elementwise(expr, rows, cols, shape)
    if tuple(result.shape) != tuple(shape):
        raise DerivationError(f"{expr} vectorised to shape {result.shape}, expected {shape}")
    return result


def _pull_constants(s: sp.Sum):
    """Σ c·f -> (c, Σ f) for the factors c free of the summed indices."""
    outside, inside = s.function.as_independent(*s.variables, as_Add=False)
    return outside, sp.Sum(inside, *s.limits)


def _scale(coeff, M):
    return M if coeff == 1 else sp.MatMul(coeff, M)


def _is_contraction(s: sp.Sum, rows, cols) -> bool:
    """A matrix product: one or two entries, and the sum keeps every free index."""
    free = {x for x in (rows, cols) if isinstance(x, sp.Symbol)}
    if not free <= s.free_symbols:
        return False
    factors = [f for f in sp.Mul.make_args(s.function) if f.free_symbols or isinstance(f, MatrixElement)]
    return 1 <= len(factors) <= 2 and all(isinstance(f, MatrixElement) for f in factors)


def _contract(s: sp.Sum, rows, cols, shape):
    """Σ over shared indices of one or two entries -> a matrix product (SymPy's converter)."""
    free = [x for x in (rows, cols) if isinstance(x, sp.Symbol)]
    summand = s.function
    if len(free) == 1 and 1 in shape:
        # Σ_i X_ri: a ones vector makes it a matrix product, X 1 (or 1ᵀ X for a row).
        (var, lo, hi), = s.limits
        size = hi - lo + 1
        column = shape[1] == 1
        ones = sp.MatrixSymbol("_ones", *((size, 1) if column else (1, size)))
        s = sp.Sum(summand * (ones[var, 0] if column else ones[0, var]), *s.limits)
        return _convert(s, free, column).xreplace({ones: sp.OneMatrix(*ones.shape)})
    return _convert(s, free)


def _convert(s, free, free_is_row=True):
    """SymPy's converter; ``free_is_row``: the free index of a vector result is its row."""
    try:
        M = convert_array_to_matrix(convert_indexed_to_array(s, first_indices=free))
    except (ValueError, TypeError, AssertionError, IndexError, NotImplementedError) as exc:
        raise DerivationError(f"cannot write {s} as a matrix product: {exc!r}") from None
    if isinstance(M, MatrixElement):  # (dZ*1)[r, 0] -> dZ*1; (1ᵀ dZᵀ)[0, r] -> dZ*1
        free_at_row = M.indices[0] in free
        M = M.parent if free_at_row == free_is_row else sp.transpose(M.parent)
    if not isinstance(M, sp.MatrixExpr):
        raise DerivationError(f"cannot write {s} as a matrix product: got {M}")
    return M


def _elementwise(expr, rows, cols, shape):
    bound: dict[sp.Symbol, sp.MatrixExpr] = {}

    def bind(matrix, name=None):
        var = sp.Symbol(name) if name else placeholder(matrix)
        if bound.get(var, matrix) != matrix:
            raise DerivationError(f"two matrices named {var}")
        bound[var] = matrix
        return var

    # Sums inside: matrix products (Σ_t W_rt A_tk), or column reductions (Σ_j X_jk in ng,
    # Σ_j X_kj in rowvec) of an elementwise expression, which broadcast back.
    sums = sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)
    replace = {}
    for number, s in enumerate(sums):
        coeff, inner = _pull_constants(s)
        if _is_contraction(inner, rows, cols):
            matrix = _scale(coeff, _contract(inner, rows, cols, shape))
        else:
            matrix = _reduction(s, rows, cols, shape)
        replace[s] = bind(matrix, f"_s{number}")
    expr = expr.xreplace(replace)

    entries = {}
    for elem in sorted(elements(expr), key=sp.default_sort_key):
        M = elem.parent
        if _position_ok(elem, rows, cols):
            entries[elem] = bind(M)
        elif tuple(elem.indices) == (rows, 0) and M.shape[1] == 1 and shape[1] != 1:
            entries[elem] = bind(sp.MatMul(M, sp.OneMatrix(1, shape[1])), f"{M.name}_bc")
        elif tuple(elem.indices) == (0, cols) and M.shape[0] == 1 and shape[0] != 1:
            entries[elem] = bind(sp.MatMul(sp.OneMatrix(shape[0], 1), M), f"{M.name}_bc")
        else:
            raise DerivationError(
                f"entry {elem} is not at position ({rows}, {cols}): no elementwise form for {expr}")
    body = expr.xreplace(entries)
    if body.free_symbols & {rows, cols} or elements(body):
        raise DerivationError(f"free indices left in {body}")
    if isinstance(body, sp.Symbol):
        return bound[body]
    if isinstance(body, sp.Add) and all(isinstance(t, sp.Symbol) for t in body.args):
        return sp.MatAdd(*[bound[t] for t in sorted(body.args, key=sp.default_sort_key)])
    variables = sorted(bound, key=sp.default_sort_key)
    used = [v for v in variables if body.has(v)]
    return Elementwise(sp.Lambda(tuple(used), body), *[bound[v] for v in used])


def _reduction(s: sp.Sum, rows, cols, shape):
    """Σ_j f(X_jk, ...) with k free -> 1 1ᵀ F (ng), or the transposed pattern (rowvec)."""
    if len(s.limits) != 1:
        raise DerivationError(f"no rule for the nested sum {s}")
    (var, lo, hi), = s.limits
    size = hi - lo + 1
    pos = {tuple(e.indices) for e in elements(s.function)}
    if pos == {(var, cols)}:
        inner = vectorise(s.function.xreplace({var: rows}), rows, cols, (size, shape[1]))
        return sp.MatMul(sp.OneMatrix(shape[0], size), inner)
    if pos == {(rows, var)}:
        inner = vectorise(s.function.xreplace({var: cols}), rows, cols, (shape[0], size))
        return sp.MatMul(inner, sp.OneMatrix(size, shape[1]))
    raise DerivationError(f"no rule to vectorise the sum {s}")
