"""The proof: every derived equation equals direct differentiation of the cost.

SymPy's matrix calculus has silent wrong answers, so no derivation is trusted on its own.
``verify(arch)`` works at small concrete sizes (2-3-1 stays 2-3-1; wider layers shrink to 3
units) and proves the derivation twice, each time against an independent side built from the
registry's expressions and plain ``sympy.diff`` alone, never from the engine:

1. *Lemmas*, one per equation of each layer, every input a free symbol (``_Lemmas``): the
   engine's vectorised right-hand side, evaluated on symbolic matrices, minus what the equation
   claims to be, differentiated directly (dZ = m ∂J/∂Z through g; dW, db, dA^[l-1] through
   Z = W A^[l-1] + b 1ᵀ, with the L2 penalty; the output layer's dA and dZ from the loss).
   SymPy simplifies the difference to 0: the equation holds for all values, branches of
   piecewise functions included. Chained from the output layer down, the lemmas prove every
   gradient at these sizes. Where SymPy cannot simplify to 0 the lemma says "sampled" (it
   vanishes at random points to ``DIGITS`` digits); a counterexample makes it fail.
2. *The whole network at random rational points* (weights, biases, inputs, targets): the
   engine's equations (forward, output error, BP4, BP1, BP2, BP3) evaluated layer by layer as
   backpropagation runs (``_Derived``), against forward-mode differentiation of the cost J
   (``_Direct``): one forward pass that carries with every value its derivative with respect to
   every weight, bias, and every entry of every Z and A (dual numbers), plus the L2 penalty
   (λ/2m) Σ ‖W‖² differentiated entry by entry. Each equation is checked against the quantity it
   claims to be (dZ^[l] = m ∂J/∂Z^[l], dA^[l-1] = m ∂J/∂A^[l-1], dW^[l] = ∂J/∂W^[l],
   db^[l] = ∂J/∂b^[l]); the first failure in backpropagation order names the wrong equation.
   A point costs time quadratic in the depth (each layer's derivatives travel through the
   layers above it), never the size of an expanded expression. Arithmetic, per point:
   - *exact*: where every value is rational (ReLU, leaky ReLU, identity, softsign, squared
     errors, Huber), exact rational arithmetic on both sides, and equality;
   - *digits*: otherwise (e, tanh, erf, π ...), ``WORKING_DIGITS``-digit arithmetic (mpmath)
     on both sides, agreeing to ``DIGITS`` significant digits (entries below
     10^-(WORKING_DIGITS - 10) in absolute value count as 0).

Both are at concrete sizes: the engine derives with symbolic sizes, and the proof covers the
sizes it runs at. An equality at random points is evidence, not an identity; the lemmas are
the identities, and the report says which of them SymPy closed.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import sympy as sp

from . import naming as N
from .engine import derive
from .errors import VerificationError
from .matrices import Elementwise
from .registry import a as a_var
from .registry import c_idx, zvec
from .registry import n as n_var
from .registry import y as y_var
from .registry import z as z_var
from .spec import Architecture

DIGITS = 50  # significant digits two inexact values must share
WORKING_DIGITS = 100  # precision of the arithmetic where values are not rational
MAX_UNITS = 3  # the proof's width of a layer
MAX_EXAMPLES = 64  # the most examples -m may ask for
EXACT_BITS = 4096  # rationals longer than this: exact arithmetic gives way to digits
DENOMINATOR = 64  # random rationals of a point are k / DENOMINATOR
TRIES = 20  # points drawn to find one inside the loss's domain

GRADIENT = ("BP1", "BP2")  # the equations whose entries are the gradient (dW, db)
# Why a check holds, as reports say it.
EQUATIONS = {
    "forward": "the forward pass",
    "loss": "dA of the output layer, from the loss",
    "BP4": "dZ = dA ⊙ g'(Z)",
    "output": "the simplified output error dZ",
    "BP1": "dW",
    "BP2": "db",
    "BP3": "dA of the layer before",
}


@dataclass(frozen=True)
class Check:
    """One entry: its derived value, its directly differentiated value, and how they agree."""

    name: str  # e.g. "dW[2][0, 1]", in the notation's layout
    derived: sp.Expr
    direct: sp.Expr
    method: str  # "exact" | "digits" | "FAIL"
    equation: str = ""  # a key of EQUATIONS
    point: int = 0  # which random point (0, 1, ...)

    @property
    def ok(self) -> bool:
        return self.method != "FAIL"

    @property
    def is_gradient(self) -> bool:
        return self.equation in GRADIENT

    def as_dict(self) -> dict:
        return {"name": self.name, "equation": self.equation, "point": self.point,
                "method": self.method, "ok": self.ok,
                "derived": _text(self.derived), "direct": _text(self.direct)}


@dataclass(frozen=True)
class Lemma:
    """One equation of one layer, at the proof's sizes, with every input a free symbol.

    ``method``: "symbolic" (derived - direct simplifies to 0: it holds for all values),
    "sampled" (SymPy could not simplify the difference to 0, and it vanishes at random points
    to ``DIGITS`` digits; the network's points then decide), or "FAIL" (a counterexample).
    """

    layer: int
    equation: str  # a key of EQUATIONS
    lhs: str  # the matrix it gives, e.g. "dZ[2]"
    entries: int
    method: str

    @property
    def ok(self) -> bool:
        return self.method != "FAIL"

    def as_dict(self) -> dict:
        return {"layer": self.layer, "equation": self.equation, "lhs": self.lhs,
                "entries": self.entries,
                "method": self.method, "ok": self.ok}


@dataclass
class VerifyReport:
    arch: Architecture
    sizes: tuple[int, ...]
    m: int
    notation: str
    checks: list[Check] = field(default_factory=list)
    lemmas: list[Lemma] = field(default_factory=list)  # one per equation of each layer
    points: int = 0
    seed: int = 0
    arithmetic: list[str] = field(default_factory=list)  # "exact" or "digits", per point
    timings: dict = field(default_factory=dict)  # seconds: derive, each point, total

    @property
    def ok(self) -> bool:
        return (bool(self.checks) and all(c.ok for c in self.checks)
                and all(lemma.ok for lemma in self.lemmas))

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def gradient(self) -> list[Check]:
        """The checks of dW and db entries."""
        return [c for c in self.checks if c.is_gradient]

    def count(self, method: str) -> int:
        return sum(c.method == method for c in self.checks)

    def summary(self) -> str:
        sizes = "-".join(map(str, self.sizes))
        verdict = "PROVEN" if self.ok else "FAILED"
        grad = self.gradient
        rest = [c for c in self.checks if not c.is_gradient]
        penalty = f", l2 {self.arch.l2}" if self.arch.l2 else ""
        symbolic = sum(lemma.method == "symbolic" for lemma in self.lemmas)
        return (f"{verdict}: {self.arch.spec()} loss {self.arch.loss}{penalty} ({self.notation}): "
                f"{sum(c.ok for c in grad)} of {len(grad)} gradient entries equal direct "
                f"differentiation, and {sum(c.ok for c in rest)} of {len(rest)} entries of "
                f"Z, A, dZ, dA on the way ({len(self.checks)} checks: {self.count('exact')} exact, "
                f"{self.count('digits')} to {DIGITS} digits) at sizes {sizes}, m = {self.m}, "
                f"{self.points} random points; {symbolic} of {len(self.lemmas)} layer equations "
                f"proven symbolic identities")

    def method_text(self) -> str:
        """How the values were computed and compared, in one sentence."""
        how = {"exact": "exact rational arithmetic, equal",
               "digits": f"{WORKING_DIGITS}-digit arithmetic, agreeing to {DIGITS} "
                         "significant digits"}
        points = "; ".join(f"point {number}: {how[name]}"
                           for number, name in enumerate(self.arithmetic, start=1))
        return ("each layer's equations as symbolic identities (SymPy simplifies derived - "
                "direct to 0), and the engine's equations against forward-mode differentiation "
                f"of the cost at random rational points (k/{DENOMINATOR}); {points}")

    def __str__(self) -> str:
        lines = [self.summary()]
        for lemma in self.lemmas:
            what = (f"layer {lemma.layer} {lemma.equation} {lemma.lhs} "
                    f"({EQUATIONS[lemma.equation]})")
            if lemma.method == "FAIL":
                lines.append(f"  {what}: not an identity, it differs from direct "
                             "differentiation at a random point")
            elif lemma.method == "sampled":
                lines.append(f"  {what}: SymPy did not simplify the difference to 0; it "
                             f"vanishes at random points to {DIGITS} digits")
        failures = self.failures
        if failures:
            first = failures[0]
            lines.append(f"  first difference: layer {_layer_of(first.name)} "
                         f"{first.equation} ({EQUATIONS[first.equation]}), "
                         f"point {first.point + 1}")
        for c in failures[:20]:
            lines.append(f"  {c.name} ({c.equation}): derived {sp.N(c.derived, 15)} != "
                         f"direct {sp.N(c.direct, 15)}")
        if len(failures) > 20:
            lines.append(f"  ... and {len(failures) - 20} more")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """The report as JSON-ready data."""
        return {
            "verdict": "PROVEN" if self.ok else "FAILED",
            "arch": self.arch.spec(),
            "loss": self.arch.loss,
            "l2": str(self.arch.l2),
            "definitions": [str(d) for d in self.arch.used_definitions()],
            "notation": self.notation,
            "sizes": list(self.sizes),
            "m": self.m,
            "points": self.points,
            "seed": self.seed,
            "method": self.method_text(),
            "arithmetic": list(self.arithmetic),
            "precision": {"exact": "rational arithmetic, equality",
                          "digits": {"working_digits": WORKING_DIGITS,
                                     "agreeing_digits": DIGITS,
                                     "zero_below": f"1e-{WORKING_DIGITS - 10}"}},
            "counts": {"checks": len(self.checks), "failures": len(self.failures),
                       "lemmas": len(self.lemmas),
                       "symbolic": sum(x.method == "symbolic" for x in self.lemmas),
                       "gradient": len(self.gradient), "exact": self.count("exact"),
                       "digits": self.count("digits")},
            "lemmas": [lemma.as_dict() for lemma in self.lemmas],
            "checks": [c.as_dict() for c in self.checks],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def _layer_of(name: str) -> str:
    return name.split("[", 2)[1].rstrip("]")


def _text(value) -> str:
    if isinstance(value, sp.Rational):
        return str(value)
    return sp.Float(value, DIGITS + 5).__str__() if value.is_number else str(value)


def small_sizes(arch: Architecture) -> tuple[int, ...]:
    """The concrete sizes of the proof: at most MAX_UNITS units a layer."""
    return tuple(min(size, MAX_UNITS) for size in arch.sizes)


def verify(arch: Architecture, m: int = 2, seed: int = 0, notation: str = "ng",
           sizes: tuple[int, ...] | None = None, points: int = 2,
           progress=None) -> VerifyReport:
    """Prove ``derive(arch, notation)`` against direct differentiation at concrete sizes.

    ``progress``, if given, is called with a short line of text as the proof moves on.
    """
    say = progress or (lambda text: None)
    sizes = tuple(sizes) if sizes is not None else small_sizes(arch)
    if len(sizes) != len(arch.sizes) or any(s < 1 for s in sizes):
        raise VerificationError(f"sizes {sizes} do not fit {arch.spec()}")
    if not 1 <= m <= MAX_EXAMPLES:
        raise VerificationError(f"m must be between 1 and {MAX_EXAMPLES} examples, got {m}")
    if points < 1:
        raise VerificationError(f"points must be at least 1, got {points}")
    start = time.perf_counter()
    say(f"deriving {arch.spec()} ({notation})")
    d = derive(arch, notation)
    if len(d.layers) != arch.depth:
        raise VerificationError(f"the derivation has {len(d.layers)} layers, {arch.spec()} "
                                f"has {arch.depth}")
    report = VerifyReport(arch, sizes, m, notation, points=points, seed=seed)
    report.timings["derive"] = time.perf_counter() - start
    began = time.perf_counter()
    report.lemmas = _Lemmas(arch, d, sizes, min(m, 2)).run(say)
    report.timings["lemmas"] = time.perf_counter() - began
    rng = random.Random(seed)
    models = {}
    for number in range(points):
        began = time.perf_counter()
        name, checks = _prove_at_a_point(arch, d, sizes, m, rng, number, points, models, say)
        report.arithmetic.append(name)
        report.checks.extend(checks)
        report.timings[f"point {number + 1}"] = time.perf_counter() - began
    report.timings["total"] = time.perf_counter() - start
    return report


def _prove_at_a_point(arch, d, sizes, m, rng, number, points, models, say):
    """(arithmetic, checks) at one random point: exact where every value is rational, else
    digits; a point outside the cost's domain is drawn again. ``arch`` (not ``d.arch``)
    defines the direct side."""
    for _ in range(TRIES):
        point = _random_point(arch, sizes, m, rng)
        for arithmetic in (_EXACT, _DIGITS):
            where = f"point {number + 1} of {points} ({arithmetic.name})"
            key = arithmetic.name
            if key not in models:
                models[key] = (_Direct(arch, sizes, m, arithmetic),
                               _Derived(d, sizes, m, arithmetic))
            direct, derived = models[key]
            try:
                with arithmetic.context():
                    truth = direct.run(point, lambda text, w=where: say(f"{w}: direct, {text}"))
                    return arithmetic.name, derived.compare(
                        point, truth, number, lambda text, w=where: say(f"{w}: derived, {text}"))
            except _NotRational:
                continue
            except _OutOfDomain:
                break
    raise VerificationError(
        f"no random point out of {TRIES} keeps {arch.spec()} with loss {arch.loss} inside "
        "the domain where the cost is a finite real number: the output layer's activation "
        "must give values where the loss is defined (e.g. sigmoid outputs for a loss of "
        "probabilities)")


# --- arithmetic: exact rationals, or many digits ------------------------------------------

class _NotRational(Exception):
    """A value is not rational (or too long): this point needs the digits arithmetic."""


class _OutOfDomain(Exception):
    """A value is not a finite real number: this point is outside the cost's domain."""


class _Exact:
    """Python Fractions; SymPy evaluates functions at them and must return a rational."""

    name = "exact"

    def context(self):
        return _NoContext()

    def number(self, q: Fraction):
        return q

    def constant(self, expr):
        return self.wrap(expr)

    def wrap(self, value):
        if isinstance(value, (sp.Integer, sp.Rational)) and value.is_Rational:
            p, q = int(value.p), int(value.q)
            if p.bit_length() > EXACT_BITS or q.bit_length() > EXACT_BITS:
                raise _NotRational
            return Fraction(p, q)
        raise _NotRational

    def function(self, variables, expr):
        """expr as a function of ``variables``, evaluated by SymPy at exact rationals."""
        def call(*values):
            table = {v: sp.Rational(x.numerator, x.denominator) for v, x in zip(variables, values)}
            return self.wrap(expr.xreplace(table))
        return call

    def same(self, derived, direct) -> bool:
        return derived == direct

    def sympy(self, value):
        return sp.Rational(value.numerator, value.denominator)


class _NoContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Digits:
    """mpmath numbers at WORKING_DIGITS significant digits."""

    name = "digits"

    def context(self):
        return mpmath.workdps(WORKING_DIGITS)

    def number(self, q: Fraction):
        return mpmath.mpf(q.numerator) / q.denominator

    def constant(self, expr):
        return self.wrap(mpmath.mpmathify(sp.N(expr, WORKING_DIGITS + 10)))

    def wrap(self, value):
        if isinstance(value, (int, Fraction)):
            value = self.number(Fraction(value))
        if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value):
            raise _OutOfDomain
        return value

    def function(self, variables, expr):
        f = sp.lambdify(variables, expr, modules="mpmath")

        def call(*values):
            try:
                return self.wrap(f(*values))
            except (ZeroDivisionError, ValueError, TypeError):
                raise _OutOfDomain from None
        return call

    def same(self, derived, direct) -> bool:
        tolerance = mpmath.mpf(10) ** -DIGITS * max(abs(derived), abs(direct)) \
            + mpmath.mpf(10) ** -(WORKING_DIGITS - 10)
        return abs(derived - direct) <= tolerance

    def sympy(self, value):
        return sp.Float(value, WORKING_DIGITS)


_EXACT, _DIGITS = _Exact(), _Digits()


def _compiled(cache, arithmetic, variables, expr):
    """One compiled function per (arithmetic, expression); variables become dummies."""
    key = (arithmetic.name, tuple(variables), expr)
    if key not in cache:
        dummies = [sp.Dummy(f"x{pos}") for pos in range(len(variables))]
        body = expr.xreplace(dict(zip(variables, dummies)))
        cache[key] = arithmetic.function(dummies, body)
    return cache[key]


# --- lemmas: each layer's equations as identities in symbols -------------------------------

class _Symbolic:
    """SymPy expressions: the lemmas' arithmetic."""

    name = "symbolic"

    def context(self):
        return _NoContext()

    def number(self, q: Fraction):
        return sp.Rational(q.numerator, q.denominator)

    def constant(self, expr):
        return expr

    def function(self, variables, expr):
        return lambda *values: expr.xreplace(dict(zip(variables, values)))

    def sympy(self, value):
        return value


_SYMBOLIC = _Symbolic()


def _symbols(name, rows, cols, **assumptions):
    return [[sp.Symbol(f"{name}_{r}_{k}", real=True, **assumptions) for k in range(cols)]
            for r in range(rows)]


class _Lemmas:
    """The equations of every layer, each against plain sympy.diff of what it claims to be.

    For layer l with W, b, A^[l-1], Z, dA, dZ and Y all free symbols:
      forward  Z = W A^[l-1] + b 1ᵀ and A = g(Z), g from the registry;
      BP4      dZ_rk = Σ_{c,i} dA_ci ∂g(Z)_ci/∂Z_rk;
      BP1..3   dW, db, dA^[l-1] = ∂/∂W, ∂/∂b, m ∂/∂A^[l-1] of (1/m) Σ dZ ⊙ Z (+ the L2 penalty):
               J depends on them through Z only, and dZ = m ∂J/∂Z;
      loss     dA_rk = ∂/∂A_rk Σ_{c,i} ℓ(A_ci, Y_ci);
      output   dZ_rk = ∂/∂Z_rk Σ_{c,i} ℓ(g(Z)_ci, Y_ci), with each Y column summing to 1 where
               the loss says so.
    Chained from the output layer down, these give every gradient for all values at these sizes.
    """

    def __init__(self, arch, d, sizes, m):
        self.arch, self.d, self.sizes, self.m = arch, d, sizes, m
        self.derived = _Derived(d, sizes, m, _SYMBOLIC)
        self.zero_cache = {}
        self.rng = random.Random(1)
        loss = arch.loss_entry  # the loss's inputs and targets are sampled where it is defined
        self.domains = {"a": loss.a_domain, "y": loss.y_domain}

    def run(self, say) -> list[Lemma]:
        out = []
        for layer in reversed(self.d.layers):
            say(f"lemmas, layer {layer.index} of {len(self.d.layers)}")
            out.extend(self.layer(layer))
        return out

    def layer(self, layer) -> list[Lemma]:
        d, m, sizes = self.d, self.m, self.sizes
        l = layer.index
        n, n_prev = sizes[l], sizes[l - 1]
        act = self.arch.activation_entries[l - 1]  # the registry's, not the engine's copy
        lay = self.derived.layout
        W = _symbols("w", n, n_prev)
        b = _symbols("b", n, 1)
        P = _symbols("p", n_prev, m)
        Z = _symbols("z", n, m)
        dA = _symbols("da", n, m)
        dZ = _symbols("dz", n, m)
        Y = _symbols("y", n, m)
        A = _apply_activation(act, Z)
        env = {layer.W.name: lay(W), layer.b.name: lay(b), layer.A_prev.name: lay(P),
               layer.Z.name: lay(Z), layer.A.name: lay(A), layer.dA.name: lay(dA),
               layer.dZ.name: lay(dZ), d.Y.name: lay(Y)}
        lemmas = []

        def lemma(equation, eq, direct, env=env, rewrite=None):
            derived = self.derived.evaluate(eq.rhs, env)
            expected = lay(direct)
            diffs = [dv - ev for drow, erow in zip(derived, expected)
                     for dv, ev in zip(drow, erow)]
            if rewrite is not None:
                diffs = [e.xreplace(rewrite) for e in diffs]
            methods = [self.zero(e) for e in diffs]
            method = ("FAIL" if "FAIL" in methods else
                      "sampled" if "sampled" in methods else "symbolic")
            lemmas.append(Lemma(l, equation, eq.lhs.name, len(diffs), method))

        Zx = [[sum((W[r][s] * P[s][k] for s in range(n_prev)), b[r][0]) for k in range(m)]
              for r in range(n)]
        lemma("forward", layer.forward[0], Zx)
        lemma("forward", layer.forward[1], A, env={**env, layer.A.name: None})
        # BP4: dZ from dA through g.
        lemma("BP4", layer.backward["BP4"],
              [[sum((dA[c][i] * sp.diff(A[c][i], Z[r][k]) for c in range(n) for i in range(m)),
                    sp.Integer(0)) for k in range(m)] for r in range(n)])
        if layer.is_output:
            loss = self.arch.loss_entry
            term = loss.term.xreplace({n_var: n})
            As = _symbols("a", n, m)
            total_a = sum((term.xreplace({a_var: As[c][i], y_var: Y[c][i]})
                           for c in range(n) for i in range(m)), sp.Integer(0))
            lemma("loss", layer.backward["loss"],
                  [[sp.diff(total_a, As[r][k]) for k in range(m)] for r in range(n)],
                  env={**env, layer.A.name: lay(As)})
            total = sum((term.xreplace({a_var: A[c][i], y_var: Y[c][i]})
                         for c in range(n) for i in range(m)), sp.Integer(0))
            rewrite = None
            if loss.targets_sum_to_one:  # the last target of each example is 1 - the others
                rewrite = {Y[n - 1][i]: 1 - sum((Y[c][i] for c in range(n - 1)), sp.Integer(0))
                           for i in range(m)}
            lemma("output", layer.backward["output"],
                  [[sp.diff(total, Z[r][k]) for k in range(m)] for r in range(n)],
                  rewrite=rewrite)
        # BP1..BP3: through Z = W A^[l-1] + b 1ᵀ, with dZ = m ∂J/∂Z.
        through = sum((dZ[r][k] * Zx[r][k] for r in range(n) for k in range(m)),
                      sp.Integer(0)) / m
        lam = sp.Rational(self.arch.l2.numerator, self.arch.l2.denominator)
        penalty = lam / (2 * m) * sum((w ** 2 for row in W for w in row), sp.Integer(0))
        lemma("BP1", layer.backward["BP1"],
              [[sp.diff(through + penalty, W[r][s]) for s in range(n_prev)] for r in range(n)])
        lemma("BP2", layer.backward["BP2"], [[sp.diff(through, b[r][0])] for r in range(n)])
        lemma("BP3", layer.backward["BP3"],
              [[m * sp.diff(through, P[s][k]) for k in range(m)] for s in range(n_prev)])
        return lemmas

    def zero(self, expr) -> str:
        """"symbolic" if expr is 0 for all values, "FAIL" if not at some point, else "sampled"."""
        free = sorted(expr.free_symbols, key=sp.default_sort_key)
        canonical = expr.xreplace({v: sp.Symbol(f"{v.name.split('_')[0]}_{pos}", real=True)
                                   for pos, v in enumerate(free)})
        if canonical not in self.zero_cache:
            self.zero_cache[canonical] = _zero(canonical, self.rng, self.domains)
        return self.zero_cache[canonical]


def _apply_activation(act, Z):
    """g applied to a matrix of expressions, from the registry's expression."""
    if act.elementwise:
        return [[act.expr.xreplace({z_var: v}) for v in row] for row in Z]
    units = len(Z)
    out = [[None] * len(Z[0]) for _ in Z]
    for k in range(len(Z[0])):
        for c in range(units):
            entry = act.expr.xreplace({c_idx: c, n_var: units}).doit()
            out[c][k] = entry.replace(lambda e: isinstance(e, sp.Indexed) and e.base == zvec,
                                      lambda e, k=k: Z[int(e.indices[0])][k])
    return out


def _zero(expr, rng, domains) -> str:
    """"symbolic" if SymPy simplifies expr to 0, "FAIL" if it is not 0 at a random point,
    else "sampled". ``domains``: where to sample a symbol, by its prefix ("a", "y")."""
    if expr == 0:
        return "symbolic"
    free = sorted(expr.free_symbols, key=sp.default_sort_key)
    with mpmath.workdps(WORKING_DIGITS):
        try:
            f = sp.lambdify(free, expr, modules="mpmath")
        except (KeyError, NameError, SyntaxError, TypeError, ValueError):
            f = None  # e.g. a branch holding zoo (log 0) that NumPy-style printers cannot print

        def counterexample(tries):
            for _ in range(tries if f is not None else 0):
                values = []
                for v in free:
                    lo, hi = domains.get(v.name.split("_")[0], (-2, 2))
                    values.append(mpmath.mpf(lo) + (mpmath.mpf(hi) - lo)
                                  * rng.randint(1, 255) / 256)
                try:
                    value = f(*values)
                except (ZeroDivisionError, ValueError, TypeError):
                    continue  # outside the domain of one side: not a counterexample
                if isinstance(value, mpmath.mpf) and mpmath.isfinite(value) \
                        and abs(value) > mpmath.mpf(10) ** -DIGITS:
                    return True
            return False

        if counterexample(3):
            return "FAIL"
        for attempt in (sp.expand, sp.cancel, _rewritten, sp.simplify):
            try:
                if attempt(expr) == 0:
                    return "symbolic"
            except (sp.PolynomialError, NotImplementedError, TypeError, ValueError):
                continue
        return "FAIL" if counterexample(30) else "sampled"


def _rewritten(expr):
    """tanh, cosh, sinh as exponentials, then the rational function of them cancelled."""
    return sp.cancel(sp.expand(sp.piecewise_fold(expr).rewrite(sp.exp)))


# --- random points ---------------------------------------------------------------------------

def _rational(rng, lo, hi, denominator=DENOMINATOR) -> Fraction:
    """A random rational in [lo, hi] with the given denominator, never exactly 0."""
    while True:
        value = Fraction(rng.randint(int(lo * denominator), int(hi * denominator)), denominator)
        if value != 0 and lo <= value <= hi:
            return value


def _random_point(arch, sizes, m, rng) -> dict:
    """Weights W[l] (n_l × n_{l-1}), biases b[l] (n_l × 1), X (n_0 × m), Y (n_L × m): rationals,
    in columns-are-examples layout."""
    loss = arch.loss_entry
    point = {"X": [[_rational(rng, -1, 1) for _ in range(m)] for _ in range(sizes[0])]}
    for l in range(1, len(sizes)):
        point[("W", l)] = [[_rational(rng, -1, 1) for _ in range(sizes[l - 1])]
                           for _ in range(sizes[l])]
        point[("b", l)] = [[_rational(rng, -1, 1)] for _ in range(sizes[l])]
    lo, hi = loss.y_domain
    columns = []
    for _ in range(m):
        if loss.targets_sum_to_one:  # a probability distribution per example
            weights = [Fraction(1 + 3 * rng.randrange(4)) for _ in range(sizes[-1])]
            column = [w / sum(weights) for w in weights]
        else:
            column = [_rational(rng, Fraction(lo), Fraction(hi)) for _ in range(sizes[-1])]
        columns.append(column)
    point["Y"] = [list(row) for row in zip(*columns)]
    return point


# --- the direct side: forward-mode differentiation of J ---------------------------------------

class _Direct:
    """J and its derivatives with respect to every W, b, Z and A entry, by dual numbers.

    Each forward value carries a sparse tangent {seed: ∂value/∂seed}; a seed is one entry of a
    weight, a bias, or of Z^[l] or A^[l] held as an independent variable (the derivative of J
    with respect to Z^[l] with everything before it fixed). Values and local derivatives come
    from the registry's expressions: g(z) and sympy.diff(g, z), ℓ(a, y) and sympy.diff(ℓ, a),
    a vector activation's entries and their sympy.diff by each input.
    """

    def __init__(self, arch, sizes, m, arithmetic):
        self.arch, self.sizes, self.m, self.ar = arch, sizes, m, arithmetic
        self.cache = {}
        self.layers = []
        for l, act in enumerate(arch.activation_entries, start=1):
            self.layers.append(self._activation(act, sizes[l]))
        loss = arch.loss_entry
        term = loss.term.xreplace({n_var: sizes[-1]})
        self.loss = _compiled(self.cache, arithmetic, (a_var, y_var), term)
        self.dloss = _compiled(self.cache, arithmetic, (a_var, y_var), sp.diff(term, a_var))
        self.seeds = {}

    def _activation(self, act, units):
        ar = self.ar
        if act.elementwise:
            g = _compiled(self.cache, ar, (z_var,), act.expr)
            gp = _compiled(self.cache, ar, (z_var,), sp.diff(act.expr, z_var))
            return ("elementwise", g, gp)
        zs = [sp.Symbol(f"z{c}", real=True) for c in range(units)]
        entries = []
        for c in range(units):
            entry = act.expr.xreplace({c_idx: c, n_var: units}).doit()
            entries.append(entry.replace(lambda e: isinstance(e, sp.Indexed) and e.base == zvec,
                                         lambda e: zs[int(e.indices[0])]))
        values = [_compiled(self.cache, ar, zs, e) for e in entries]
        jacobian = [[_compiled(self.cache, ar, zs, sp.diff(e, zj)) for zj in zs] for e in entries]
        return ("vector", values, jacobian)

    def seed(self, key) -> int:
        return self.seeds.setdefault(key, len(self.seeds))

    def run(self, point, say) -> dict:
        """{("Z", l) | ("A", l): values, ("dZ", l) | ("dA", l): m ∂J/∂·, ("dW", l) | ("db", l):
        ∂J/∂·}, every matrix n_l × m (or W's, b's shape), columns are examples."""
        ar, m, sizes = self.ar, self.m, self.sizes
        num = ar.number
        out = {}
        A = [[num(v) for v in row] for row in point["X"]]
        TA = [[{} for _ in row] for row in A]
        one = num(Fraction(1))
        zero = num(Fraction(0))
        for l, (kind, f, fp) in enumerate(self.layers, start=1):
            say(f"layer {l} of {len(self.layers)}")
            out[("A", l - 1)] = A
            for s, row in enumerate(TA):  # A^[l-1] entries as variables
                for k, t in enumerate(row):
                    t[self.seed(("A", l - 1, s, k))] = one
            W = [[num(v) for v in row] for row in point[("W", l)]]
            b = [num(row[0]) for row in point[("b", l)]]
            Z, TZ = [], []
            for r in range(sizes[l]):
                zrow, trow = [], []
                for k in range(m):
                    value = b[r]
                    tangent = {}
                    for s in range(sizes[l - 1]):
                        value = value + W[r][s] * A[s][k]
                        w = W[r][s]
                        for key, v in TA[s][k].items():
                            tangent[key] = tangent.get(key, zero) + w * v
                        tangent[self.seed(("W", l, r, s))] = A[s][k]
                    tangent[self.seed(("b", l, r))] = one
                    tangent[self.seed(("Z", l, r, k))] = one
                    zrow.append(value)
                    trow.append(tangent)
                Z.append(zrow)
                TZ.append(trow)
            out[("Z", l)] = Z
            if kind == "elementwise":
                A = [[f(v) for v in row] for row in Z]
                TA = [[_scaled(fp(v), t) for v, t in zip(zrow, trow)]
                      for zrow, trow in zip(Z, TZ)]
            else:
                A = [[None] * m for _ in Z]
                TA = [[None] * m for _ in Z]
                for k in range(m):
                    column = [Z[j][k] for j in range(len(Z))]
                    for c in range(len(Z)):
                        A[c][k] = f[c](*column)
                        tangent = {}
                        for j in range(len(Z)):
                            _add_scaled(tangent, fp[c][j](*column), TZ[j][k], zero)
                        TA[c][k] = tangent
            _check_length(A)
        L = len(self.layers)
        out[("A", L)] = A
        for c, row in enumerate(TA):
            for k, t in enumerate(row):
                t[self.seed(("A", L, c, k))] = one
        # J = (1/m) Σ_k Σ_c ℓ(A_ck, Y_ck) + (λ/2m) Σ_l Σ W²
        inv_m = num(Fraction(1, m))
        dJ = {}
        for c, row in enumerate(A):
            for k, value in enumerate(row):
                target = num(point["Y"][c][k])
                self.loss(value, target)  # inside the loss's domain, or _OutOfDomain
                _add_scaled(dJ, inv_m * self.dloss(value, target), TA[c][k], zero)
        lam = num(Fraction(self.arch.l2))
        if lam:
            for l in range(1, L + 1):  # d/dW_rs of (λ/2m) W_rs² is (λ/m) W_rs
                for r, row in enumerate(point[("W", l)]):
                    for s, w in enumerate(row):
                        key = self.seed(("W", l, r, s))
                        dJ[key] = dJ.get(key, zero) + lam * inv_m * num(w)
        scale = num(Fraction(m))

        def grad(kind, l, rows, cols, factor):
            return [[factor * dJ.get(self.seed((kind, l, r, s)), zero) for s in range(cols)]
                    for r in range(rows)]
        for l in range(1, L + 1):
            out[("dW", l)] = grad("W", l, sizes[l], sizes[l - 1], one)
            out[("db", l)] = [[dJ.get(self.seed(("b", l, r)), zero)] for r in range(sizes[l])]
            out[("dZ", l)] = grad("Z", l, sizes[l], m, scale)
        for l in range(L + 1):
            out[("dA", l)] = grad("A", l, sizes[l], m, scale)
        return out


def _scaled(factor, tangent):
    return {key: factor * v for key, v in tangent.items()}


def _add_scaled(into, factor, tangent, zero):
    for key, v in tangent.items():
        into[key] = into.get(key, zero) + factor * v


def _check_length(matrix):
    """Exact rationals whose digits grow layer by layer (softsign) give way to digits."""
    for row in matrix:
        for v in row:
            if isinstance(v, Fraction) and (v.numerator.bit_length() > EXACT_BITS
                                            or v.denominator.bit_length() > EXACT_BITS):
                raise _NotRational


# --- the derived side: the engine's equations on concrete matrices ------------------------

class _Derived:
    """Evaluates a Derivation's vectorised equations on concrete matrices (lists of rows)."""

    def __init__(self, d, sizes, m, arithmetic):
        self.d, self.sizes, self.m, self.ar = d, sizes, m, arithmetic
        self.scalars = N.unit_sizes(sizes)
        self.scalars[d.m] = m
        self.scalars[N.lam] = sp.sympify(d.l2)  # the derivation's own λ
        self.rowvec = d.notation == "rowvec"
        self.cache = {}

    def layout(self, matrix):
        """A columns-are-examples matrix in the derivation's layout."""
        return _transpose(matrix) if self.rowvec else matrix

    def compare(self, point, truth, number, say) -> list[Check]:
        ar, d = self.ar, self.d
        checks = []

        def check(equation, symbol, value, expected):
            expected = self.layout(expected)
            if _shape(value) != _shape(expected):
                raise VerificationError(
                    f"{symbol.name}: derived shape {_shape(value)} != {_shape(expected)}")
            for r, row in enumerate(value):
                for s, v in enumerate(row):
                    e = expected[r][s]
                    method = ar.name if ar.same(v, e) else "FAIL"
                    checks.append(Check(f"{symbol.name}[{r}, {s}]", ar.sympy(v), ar.sympy(e),
                                        method, equation, number))

        num = lambda matrix: [[ar.number(v) for v in row] for row in matrix]
        env = {d.X.name: self.layout(num(point["X"])), d.Y.name: self.layout(num(point["Y"]))}
        for layer in d.layers:
            l = layer.index
            env[layer.W.name] = self.layout(num(point[("W", l)]))
            env[layer.b.name] = self.layout(num(point[("b", l)]))
            for eq in layer.forward:
                env[eq.lhs.name] = self.evaluate(eq.rhs, env)
            check("forward", layer.Z, env[layer.Z.name], truth[("Z", l)])
            check("forward", layer.A, env[layer.A.name], truth[("A", l)])
        for layer in reversed(d.layers):
            l = layer.index
            say(f"layer {l} of {len(d.layers)}")
            if layer.is_output:  # both routes: dA from the loss then BP4, and the simplified one
                env[layer.dA.name] = self.evaluate(layer.backward["loss"].rhs, env)
                check("loss", layer.dA, env[layer.dA.name], truth[("dA", l)])
                via_bp4 = self.evaluate(layer.backward["BP4"].rhs, env)
                check("BP4", layer.dZ, via_bp4, truth[("dZ", l)])
            env[layer.dZ.name] = self.evaluate(layer.dZ_equation.rhs, env)
            check(layer.dZ_equation.name, layer.dZ, env[layer.dZ.name], truth[("dZ", l)])
            for name, truth_key in (("BP1", "dW"), ("BP2", "db"), ("BP3", "dA")):
                eq = layer.backward[name]
                env[eq.lhs.name] = self.evaluate(eq.rhs, env)
                at = l - 1 if name == "BP3" else l
                check(name, eq.lhs, env[eq.lhs.name], truth[(truth_key, at)])
        return checks

    # a small interpreter of the matrix expressions the engine writes ------------------------
    def size(self, value) -> int:
        return int(sp.sympify(value).xreplace(self.scalars))

    def evaluate(self, expr, env):
        ar = self.ar
        if isinstance(expr, sp.MatrixSymbol):
            return env[expr.name]
        if isinstance(expr, sp.OneMatrix):
            rows, cols = map(self.size, expr.shape)
            return [[ar.number(Fraction(1))] * cols for _ in range(rows)]
        if isinstance(expr, sp.ZeroMatrix):
            rows, cols = map(self.size, expr.shape)
            return [[ar.number(Fraction(0))] * cols for _ in range(rows)]
        if isinstance(expr, sp.Identity):
            n = self.size(expr.rows)
            return [[ar.number(Fraction(int(r == s))) for s in range(n)] for r in range(n)]
        if isinstance(expr, sp.Transpose):
            return _transpose(self.evaluate(expr.arg, env))
        if isinstance(expr, sp.MatAdd):
            terms = [self.evaluate(arg, env) for arg in expr.args]
            return [[sum(vals[1:], vals[0]) for vals in zip(*rows)] for rows in zip(*terms)]
        if isinstance(expr, sp.MatMul):
            scalars = [arg for arg in expr.args if not getattr(arg, "is_Matrix", False)]
            matrices = [self.evaluate(arg, env) for arg in expr.args
                        if getattr(arg, "is_Matrix", False)]
            out = matrices[0]
            for other in matrices[1:]:
                out = _matmul(out, other)
            if scalars:
                factor = ar.constant(sp.Mul(*scalars).xreplace(self.scalars))
                out = [[factor * v for v in row] for row in out]
            return out
        if isinstance(expr, Elementwise):
            fn = expr.fn
            call = _compiled(self.cache, ar, fn.variables, fn.expr.xreplace(self.scalars))
            mats = [self.evaluate(M, env) for M in expr.mats]
            return [[call(*vals) for vals in zip(*rows)] for rows in zip(*mats)]
        raise VerificationError(f"verify has no rule to evaluate {type(expr).__name__}: {expr}")


def _transpose(matrix):
    return [list(col) for col in zip(*matrix)]


def _shape(matrix):
    return (len(matrix), len(matrix[0]) if matrix else 0)


def _matmul(A, B):
    if len(A[0]) != len(B):
        raise VerificationError(f"shapes {_shape(A)} and {_shape(B)} do not multiply")
    cols = list(zip(*B))
    return [[sum((x * y for x, y in zip(row, col)), 0 * row[0]) for col in cols] for row in A]
