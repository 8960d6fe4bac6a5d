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
(``stable``), and from shifting a reduction of ``exp`` by its maximum wherever SymPy proves
every kernel that reads the shifted matrix unchanged by the shift (``shift_invariant``).
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ..errors import SymbackpropError
from ..matrices import Elementwise
from ..naming import code_name


class GenerationError(SymbackpropError):
    """An expression of the derivation has no rule in the code generator."""


class logaddexp(sp.Function):
    """log(exp(x) + exp(y)), evaluated without overflow (``np.logaddexp``)."""

    nargs = 2


# --- stability: identities SymPy applies to every scalar body -------------------------------

_u = sp.Wild("u")

# Each row: a pattern, an equal expression that stays finite (and silent) for every real u.
STABLE_FORMS = (
    # 1/(1 + e^u) overflows in e^u for large u; (1 - tanh(u/2))/2 is the same function.
    (1 / (1 + sp.exp(_u)), (1 - sp.tanh(_u / 2)) / 2),
    # log(1 + e^u) overflows for large u; logaddexp(0, u) is the same function.
    (sp.log(1 + sp.exp(_u)), logaddexp(0, _u)),
)


def expand_logs(expr: sp.Expr) -> sp.Expr:
    """log(f) -> the expanded log of f over a common denominator: log(e^z / s) = z - log(s).

    A log of a probability that underflowed to 0 is -inf; written through the pre-activation
    it stays finite.
    """
    def expand(e):
        return sp.expand_log(sp.log(sp.cancel(e.args[0])), force=True)
    return expr.replace(lambda e: isinstance(e, sp.log), expand)


def stable(expr: sp.Expr) -> sp.Expr:
    """expr with every STABLE_FORMS pattern replaced, and Piecewise factors pulled out."""
    for pattern, replacement in STABLE_FORMS:
        expr = expr.replace(pattern, replacement)
    return factor_piecewise(expr)


def factor_piecewise(expr: sp.Expr) -> sp.Expr:
    """Piecewise((z, c), (z/100, True)) -> z * Piecewise((1, c), (1/100, True)).

    The factor left is a function of the condition alone: a 0/1 (or two-valued) mask that the
    backward pass can reuse.
    """
    def pull(pw):
        values = [branch.expr for branch in pw.args]
        common = values[0]
        for value in values[1:]:
            common = sp.gcd(common, value)
        common = sp.Mul(*[f for f in sp.Mul.make_args(common) if not f.is_Number])
        if common == 1:
            return pw
        return common * sp.Piecewise(*[(sp.cancel(b.expr / common), b.cond) for b in pw.args])
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), pull)


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


# --- elementwise kernels as in-place ufunc calls --------------------------------------------

_COMPARE = {
    sp.StrictGreaterThan: "greater", sp.GreaterThan: "greater_equal",
    sp.StrictLessThan: "less", sp.LessThan: "less_equal",
}


def number(value) -> str:
    """A numeric literal in Python: 1/2 -> 0.5, 2 -> 2.0."""
    return repr(float(value))


def format_call(fn: str, args) -> str:
    """``np.fn(args)``; np.copyto takes its destination first."""
    if fn == "copyto":
        args = (args[-1], *args[:-1])
    if fn == "sum_units":  # a sum over the units of each example, kept as a column
        return f"np.add.reduce({args[0]}, 1, None, {args[1]}, True)"
    return f"np.{fn}({', '.join(args)})"


class KernelPrinter(NumPyPrinter):
    """Scalar SymPy body -> lines of in-place NumPy calls writing into preallocated buffers.

    ``names`` maps each placeholder symbol to the code name of its array; ``temp(shape)``
    returns the name of a free scratch buffer of that shape ("full" or "column").
    ``column`` holds the placeholders that are per-example columns (m, 1).
    """

    printmethod = "_numpycode"

    def __init__(self, names: dict, temp, column=frozenset(), constant=None):
        super().__init__({"fully_qualified_modules": True})
        self.names = names
        self.temp = temp
        self.constant = constant or number
        self.column = set(column)
        self.preferred = None  # the symbol to read first (it shares its buffer with dest)
        self.ops: list[tuple[str, tuple[str, ...]]] = []

    @property
    def lines(self) -> list[str]:
        return [format_call(fn, args) for fn, args in self.ops]

    # helpers ---------------------------------------------------------------------------------
    def number(self, value) -> str:
        """A constant operand: a literal, or the name of a 0-d array of the buffers' dtype
        (NumPy converts a Python float on every call, which costs as much as the operation
        on a small array)."""
        return self.constant(value)

    def call(self, fn: str, *args) -> None:
        """One ufunc call; its last argument is the buffer it writes."""
        self.ops.append((fn, args))

    def shape_of(self, expr) -> str:
        """'column' if expr depends only on per-example columns, else 'full'."""
        leaves = {s for s in expr.free_symbols if s in self.names}
        return "column" if leaves and leaves <= self.column else "full"

    def is_leaf(self, expr) -> bool:
        return expr in self.names or expr.is_Number

    def operand(self, expr) -> str:
        """Where the value of expr is: an array name, a literal, or a freshly computed temp."""
        if expr in self.names:
            return self.names[expr]
        if expr.is_Number:
            return self.number(expr)
        dest = self.temp(self.shape_of(expr))
        self.emit(expr, dest)
        return dest

    def emit(self, expr, dest: str) -> str:
        """Write the value of expr into the buffer ``dest``."""
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
        const = sum((t for t in expr.args if t.is_Number), sp.Integer(0))
        terms = [t for t in expr.args if not t.is_Number]
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
        sums = [f for f in factors if f.is_Add]
        if coeff.is_negative and sums:  # -(a - 1) b -> (1 - a) b: the sign costs no call
            coeff, factors = -coeff, tuple(-f if f is sums[0] else f for f in factors)
        num = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        den = [f.base ** -f.exp for f in factors if f.is_Pow and f.exp.is_negative]
        num.sort(key=lambda f: (f != self.preferred, self.is_leaf(f)))
        if num:
            first, rest = num[0], num[1:]
            if not self.is_leaf(first):
                self.emit(first, dest)
            elif rest:
                self.call("multiply", self.operand(first), self.operand(rest[0]), dest)
                rest = rest[1:]
            elif den:
                self.call("divide", self.operand(first), self.operand(den[0]), dest)
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
            self.call("divide", dest, self.operand(f), dest)
        if coeff == -1:
            self.call("negative", dest, dest)
        elif coeff != 1:
            self.call("multiply", dest, self.number(coeff), dest)

    def _emit_Pow(self, expr, dest):
        base, exp = expr.args
        rules = {2: "square", sp.Rational(1, 2): "sqrt", -1: "reciprocal"}
        source = self.operand(base) if self.is_leaf(base) else self.emit(base, dest)
        if exp in rules:
            self.call(rules[exp], source, dest)
        else:
            self.call("power", source, self.number(exp), dest)

    def _emit_Function(self, expr, dest):
        name = self.known_functions.get(type(expr).__name__)
        if name is None and isinstance(expr, logaddexp):
            name = "numpy.logaddexp"
        if name is None or not name.startswith("numpy."):
            raise GenerationError(f"no NumPy ufunc for {type(expr).__name__} in {expr}")
        args = expr.args
        if len(args) == 1 and not self.is_leaf(args[0]):
            self.emit(args[0], dest)
            self.call(name[len("numpy."):], dest, dest)
            return
        self.call(name[len("numpy."):], *[self.operand(a) for a in args], dest)

    def _emit_Piecewise(self, expr, dest):
        """Two constant branches on one comparison: a float mask, c0 + (c1 - c0) [cond]."""
        if len(expr.args) != 2:
            raise GenerationError(f"no NumPy rule for the Piecewise {expr}")
        (c1, cond), (c0, otherwise) = expr.args
        if otherwise != sp.true or not (c1.is_Number and c0.is_Number) \
                or type(cond) not in _COMPARE:
            raise GenerationError(f"no NumPy rule for the Piecewise {expr}")
        self.call(_COMPARE[type(cond)], self.operand(cond.lhs), self.operand(cond.rhs), dest)
        if c1 - c0 != 1:
            self.call("multiply", dest, self.number(c1 - c0), dest)
        if c0 != 0:
            self.call("add", dest, self.number(c0), dest)


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
