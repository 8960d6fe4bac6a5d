"""The proof: every derived gradient equals direct differentiation of the expanded cost.

SymPy's matrix calculus has silent wrong answers, so no derivation is trusted on its own.
``verify(arch)`` picks small concrete sizes (2-3-1 stays 2-3-1; wider layers shrink to 3 units),
builds the whole cost J as one scalar expression in every weight, bias, input and target --
from the registry's expressions and SymPy matrix arithmetic alone, not from the engine -- and
differentiates it directly with respect to every weight and bias. It then evaluates the
engine's vectorised equations (forward, output error, BP4, BP1, BP2, BP3) on the same concrete
matrices and compares entry by entry at random rational points:

- *exact*: both sides are rational numbers and equal, or equal once every transcendental
  constant (e^{3/4}, tanh(1/2), ...) is replaced by the same random rational on both sides
  (equal as rational functions of those constants: Schwartz-Zippel, two points);
- *digits*: otherwise, both sides evaluated in 60-digit floating point at the same point agree
  to ``DIGITS`` significant digits. Networks with a vector activation (softmax) go this way
  directly: SymPy merges exp(a)·exp(b) into exp(a+b) on one side and not the other, so the
  constants cannot be matched one to one;
- anything else is a failure.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp

from . import naming as N
from .engine import derive
from .errors import VerificationError
from .registry import c_idx, zvec
from .registry import a as a_var
from .registry import n as n_var
from .registry import y as y_var
from .registry import z as z_var
from .spec import Architecture

DIGITS = 50
MAX_UNITS = 3


@dataclass(frozen=True)
class Check:
    name: str  # e.g. "dW[2][0, 1]"
    derived: sp.Expr
    direct: sp.Expr
    method: str  # "exact" | "digits" | "FAIL"

    @property
    def ok(self) -> bool:
        return self.method != "FAIL"


@dataclass
class VerifyReport:
    arch: Architecture
    sizes: tuple[int, ...]
    m: int
    notation: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def count(self, method: str) -> int:
        return sum(c.method == method for c in self.checks)

    def summary(self) -> str:
        sizes = "-".join(map(str, self.sizes))
        verdict = "PROVEN" if self.ok else "FAILED"
        return (f"{verdict}: {self.arch.spec()} loss {self.arch.loss} ({self.notation}): "
                f"{len(self.checks) - len(self.failures)} of {len(self.checks)} gradient entries "
                f"equal direct differentiation ({self.count('exact')} exact, "
                f"{self.count('digits')} to {DIGITS} digits) at sizes {sizes}, m = {self.m}")

    def __str__(self) -> str:
        lines = [self.summary()]
        for c in self.failures:
            lines.append(f"  {c.name}: derived {sp.N(c.derived, 15)} != direct {sp.N(c.direct, 15)}")
        return "\n".join(lines)


def small_sizes(arch: Architecture) -> tuple[int, ...]:
    """The concrete sizes of the proof: at most MAX_UNITS units a layer."""
    return tuple(min(size, MAX_UNITS) for size in arch.sizes)


def verify(arch: Architecture, m: int = 2, seed: int = 0, notation: str = "ng",
           sizes: tuple[int, ...] | None = None, points: int = 2) -> VerifyReport:
    """Prove ``derive(arch)`` against direct differentiation at concrete sizes."""
    sizes = tuple(sizes) if sizes is not None else small_sizes(arch)
    if len(sizes) != len(arch.sizes) or any(s < 1 for s in sizes):
        raise VerificationError(f"sizes {sizes} do not fit {arch.spec()}")
    d = derive(arch, notation)
    report = VerifyReport(arch, sizes, m, notation)
    net = _ScalarNetwork(arch, sizes, m)
    rng = random.Random(seed)
    exact_first = all(act.elementwise for act in arch.activation_entries)
    for _ in range(points):
        point = net.random_point(rng)
        checks = []
        if exact_first:
            derived = _evaluate_derivation(d, sizes, m, point, net, rng)
            checks = [_compare(name, derived[name], net.gradient(symbol).xreplace(point), rng)
                      for name, symbol in net.parameters()]
        if not checks or any(c.method != "exact" for c in checks):
            floats = {sym: sp.Float(value, DIGITS + 10) for sym, value in point.items()}
            derived = _evaluate_derivation(d, sizes, m, floats, net, rng)
            checks = [_compare_floats(name, derived[name], net.gradient(symbol).xreplace(floats))
                      for name, symbol in net.parameters()]
        report.checks.extend(checks)
    return report


# --- the independent side: the whole network as scalars ----------------------------------

class _ScalarNetwork:
    """The network at concrete sizes as scalar SymPy expressions (ng layout: columns = examples)."""

    def __init__(self, arch, sizes, m):
        self.arch, self.sizes, self.m = arch, sizes, m
        self.loss = arch.loss_entry
        self.X = sp.Matrix(sizes[0], m, lambda r, i: sp.Symbol(f"x_{r}_{i}"))
        self.Y = sp.Matrix(sizes[-1], m, lambda r, i: sp.Symbol(f"y_{r}_{i}"))
        self.W, self.b = [], []
        for l in range(1, len(sizes)):
            self.W.append(sp.Matrix(sizes[l], sizes[l - 1],
                                    lambda r, s, l=l: sp.Symbol(f"w{l}_{r}_{s}")))
            self.b.append(sp.Matrix(sizes[l], 1, lambda r, _, l=l: sp.Symbol(f"b{l}_{r}")))
        A = self.X
        for W, b, act in zip(self.W, self.b, arch.activation_entries):
            Z = W * A + b * sp.ones(1, m)
            A = _apply(act, Z)
        term = self.loss.term.xreplace({n_var: sizes[-1]})
        self.J = sp.Rational(1, m) * sum(
            (term.xreplace({a_var: A[c, i], y_var: self.Y[c, i]})
             for c in range(sizes[-1]) for i in range(m)), sp.Integer(0))
        self._grads = {}

    def parameters(self):
        for l, (W, b) in enumerate(zip(self.W, self.b), start=1):
            for r in range(W.rows):
                for s in range(W.cols):
                    yield f"dW[{l}][{r}, {s}]", W[r, s]
            for r in range(b.rows):
                yield f"db[{l}][{r}, 0]", b[r, 0]

    def gradient(self, symbol):
        if symbol not in self._grads:
            self._grads[symbol] = sp.diff(self.J, symbol)
        return self._grads[symbol]

    def random_point(self, rng) -> dict:
        point = {}
        for W, b in zip(self.W, self.b):
            for sym in list(W) + list(b):
                point[sym] = _rational(rng, -1, 1)
        for sym in self.X:
            point[sym] = _rational(rng, -1, 1)
        lo, hi = self.loss.y_domain
        for i in range(self.m):
            column = [_rational(rng, lo, hi) for _ in range(self.Y.rows)]
            if self.loss.targets_sum_to_one:  # a probability distribution per example
                column = [sp.Rational(1 + 3 * rng.randrange(4), 1) for _ in column]
                total = sum(column)
                column = [v / total for v in column]
            for r, v in enumerate(column):
                point[self.Y[r, i]] = v
        return point


def _apply(activation, Z):
    if activation.elementwise:
        return Z.applyfunc(lambda v: activation.expr.xreplace({z_var: v}))
    # A vector activation, column by column, from its expression over zvec.
    out = sp.zeros(*Z.shape)
    n_units = Z.rows
    for i in range(Z.cols):
        for c in range(n_units):
            entry = activation.expr.xreplace({c_idx: c, n_var: n_units})
            entry = entry.doit().replace(lambda e: isinstance(e, sp.Indexed) and e.base == zvec,
                                         lambda e, i=i: Z[int(e.indices[0]), i])
            out[c, i] = entry
    return out


def _rational(rng, lo, hi, denominator=8) -> sp.Rational:
    """A random rational in [lo, hi] with a small denominator, never exactly 0."""
    while True:
        value = Fraction(rng.randint(int(lo * denominator), int(hi * denominator)), denominator)
        if value != 0 and lo <= value <= hi:
            return sp.Rational(value.numerator, value.denominator)


# --- the derived side: the engine's equations on concrete matrices ------------------------

def _evaluate_derivation(d, sizes, m, point, net, rng) -> dict:
    """Every dW and db entry, from the derivation's vectorised equations at ``point``."""
    size_map = N.unit_sizes(sizes)
    size_map[d.m] = m
    env = {}
    X = net.X.xreplace(point)
    Y = net.Y.xreplace(point)
    if d.notation == "rowvec":
        X, Y = X.T, Y.T
    env[d.X.name] = sp.ImmutableMatrix(X)
    env[d.Y.name] = sp.ImmutableMatrix(Y)
    for layer, W, b in zip(d.layers, net.W, net.b):
        W, b = W.xreplace(point), b.xreplace(point)
        if d.notation == "rowvec":
            W, b = W.T, b.T
        env[layer.W.name], env[layer.b.name] = sp.ImmutableMatrix(W), sp.ImmutableMatrix(b)
        for eq in layer.forward:
            env[eq.lhs.name] = _evaluate(eq.rhs, env, size_map)
    grads = {}
    for layer in reversed(d.layers):
        env[layer.dZ.name] = _evaluate(layer.dZ_equation.rhs, env, size_map)
        if layer.is_output:  # the unsimplified route, dA from the loss then BP4, must agree
            env[layer.dA.name] = _evaluate(layer.backward["loss"].rhs, env, size_map)
            via_bp4 = _evaluate(layer.backward["BP4"].rhs, env, size_map)
            compare = _compare if _is_exact(via_bp4) else (lambda n, a, b, _: _compare_floats(n, a, b))
            for (r, s), value in zip(_indices(via_bp4), via_bp4):
                if not compare("dZ", value, env[layer.dZ.name][r, s], rng).ok:
                    raise VerificationError(
                        f"layer {layer.index}: the simplified dZ differs from dA ⊙ g'(Z) at "
                        f"({r}, {s})")
        for name in ("BP1", "BP2", "BP3"):
            eq = layer.backward[name]
            env[eq.lhs.name] = _evaluate(eq.rhs, env, size_map)
        for kind, matrix in (("dW", env[layer.dW.name]), ("db", env[layer.db.name])):
            if d.notation == "rowvec":
                matrix = matrix.T
            for r in range(matrix.rows):
                for s in range(matrix.cols):
                    grads[f"{kind}[{layer.index}][{r}, {s}]"] = matrix[r, s]
    return grads


def _indices(matrix):
    return [(r, s) for r in range(matrix.rows) for s in range(matrix.cols)]


def _is_exact(matrix) -> bool:
    return not any(isinstance(v, sp.Float) or v.has(sp.Float) for v in matrix)


def _evaluate(expr, env, size_map):
    concrete = expr.xreplace(size_map)
    concrete = concrete.replace(lambda e: isinstance(e, sp.MatrixSymbol),
                                lambda e: env[e.name])
    value = concrete.doit()
    if not isinstance(value, sp.MatrixBase):
        value = value.as_explicit()
    return sp.ImmutableMatrix(value)


# --- comparison ----------------------------------------------------------------------------

def _compare(name, derived, direct, rng) -> Check:
    if derived == direct:
        return Check(name, derived, direct, "exact")
    def same_at_random_constants():
        table: dict = {}
        return _atomize(derived, table, rng) == _atomize(direct, table, rng)

    if all(same_at_random_constants() for _ in range(2)):
        return Check(name, derived, direct, "exact")
    return Check(name, derived, direct, "FAIL")


def _compare_floats(name, derived, direct) -> Check:
    """Both sides already evaluated at a 60-digit floating-point point."""
    derived, direct = sp.N(derived, DIGITS + 10), sp.N(direct, DIGITS + 10)
    scale = max(abs(direct), 1)
    if abs(derived - direct) <= scale * sp.Float(10, DIGITS + 10) ** (-DIGITS):
        return Check(name, derived, direct, "digits")
    return Check(name, derived, direct, "FAIL")


def _atomize(expr, table, rng):
    """expr with each transcendental constant f(rational) replaced by a random rational."""
    if expr.is_Rational or not expr.args:
        return expr
    args = [_atomize(arg, table, rng) for arg in expr.args]
    if isinstance(expr, sp.Function) and all(arg.is_Rational for arg in args):
        value = expr.func(*args)
        if value.is_Rational:
            return value
        key = (expr.func, tuple(args))
        if key not in table:
            table[key] = sp.Rational(rng.randint(1, 10 ** 6), rng.randint(1, 10 ** 6))
        return table[key]
    return expr.func(*args)
