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

Image networks (conv, max and average pooling, flatten before the dense layers) are proven at
the spec's own feature-map sizes (``naming.feature_sizes``; the dense layers after flatten
shrink as above). A feature layer's equations are entry formulas (``Equation.entry_rhs``: index
expressions with sums over ranges and Piecewise range conditions); ``_Entries`` substitutes the
concrete sizes and evaluates them entry by entry, a feature map read outside its rows and
columns giving 0 (the zero padding) and any other array read outside its shape a failure. The
independent sides are written here from the definitions: the convolution over the input with
its padding as explicit zeros, max pooling as a real max over each window (the first maximum in
row-major order on ties, as torch routes the gradient), average pooling, flatten in channel,
row, column order. The lemmas hold the layer's inputs as free symbols (a max-pooling window's
arg-max indicator M too: the lemma holds for every arg-max); at the random points the direct
side differentiates the whole expanded network forward-mode, and the derived side computes M
from the point. Points whose max-pooling windows tie are drawn again (``TIE_TRIES`` times);
where ties remain, the report counts them.

Recurrent networks (an rnn layer after a sequence input, then the dense head) are proven at
T = min(T, MAX_STEPS) time steps, at most MAX_UNITS input features and hidden units (the dense
layers shrink as above): the first step (H_{-1} = 0), a middle one and the last (the boundary of
the recursion). The rnn layer's equations are entry formulas too: the recurrence Z and H = g(Z)
are evaluated step by step forward in time (step τ reads the states of τ - 1; H_{k,-1,·} is 0,
every other read outside an array a failure), what the layer passes on (the last state, or
every state as column T k + τ), then the derived BPTT entry dH and BP4 dZ step by step backward
in time (step τ reads dZ of τ + 1, which must be there already), and dW, dU, db from them. The
independent side unrolls the recurrence concretely (Z_τ = W x_τ + U H_{τ-1} + b with no U term
at τ = 0, H_τ = g(Z_τ)), runs the dense head on the last state (or on every state, J averaging
the loss over the m T (example, step) pairs, with the penalty (λ/2mT) Σ ‖W‖² of every W and U),
and differentiates the whole cost forward-mode: dH = m ∂J/∂H and dZ = m ∂J/∂Z hold every other
entry of H and Z fixed, so they are the errors of each step's state and pre-activation (m is
m T for ':all'). The lemmas hold the layer's inputs, weights, states and errors as free
symbols: Z through the recurrence and what is passed on (the two uses of H_t), BPTT as
m ∂/∂H of (1/m) (Σ dZ ⊙ Z + Σ dA ⊙ A), dW, dU, db through Z with the penalty, all polynomial
identities; H = g(Z) and BP4 by SymPy.

Both are at concrete sizes: the engine derives with symbolic sizes, and the proof covers the
sizes it runs at. An equality at random points is evidence, not an identity; the lemmas are
the identities, and the report says which of them SymPy closed.
"""
from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product

import mpmath
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

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
MAX_STEPS = 3  # the proof's time steps: the first, a middle one, the last
MAX_EXAMPLES = 64  # the most examples -m may ask for
EXACT_BITS = 4096  # rationals longer than this: exact arithmetic gives way to digits
DENOMINATOR = 64  # random rationals of a point are k / DENOMINATOR
TRIES = 20  # points drawn to find one inside the loss's domain
TIE_TRIES = 4  # points drawn again to find one whose max-pooling windows do not tie

GRADIENT = ("BP1", "BPU", "BP2")  # the equations whose entries are the gradient (dW, dU, db)
# Why a check holds, as reports say it.
EQUATIONS = {
    "forward": "the forward pass",
    "loss": "dA of the output layer, from the loss",
    "BP4": "dZ = dA ⊙ g'(Z) (dH ⊙ g'(Z) in an rnn layer)",
    "output": "the simplified output error dZ",
    "BP1": "dW",
    "BP2": "db",
    "BP3": "dA of the layer before",
    "BPTT": "dH, backward in time: through the next step and what is passed on",
    "BPU": "dU",
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
    note: str = ""  # why an entry has no derived value (it reads outside an array's shape)

    @property
    def ok(self) -> bool:
        return self.method != "FAIL"

    @property
    def is_gradient(self) -> bool:
        return self.equation in GRADIENT

    def as_dict(self) -> dict:
        out = {"name": self.name, "equation": self.equation, "point": self.point,
               "method": self.method, "ok": self.ok,
               "derived": _text(self.derived), "direct": _text(self.direct)}
        if self.note:
            out["note"] = self.note
        return out


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


@dataclass(repr=False)
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
    ties: list[int] = field(default_factory=list)  # max-pooling windows that tie, per point
    proof: Architecture | None = None  # the network at the proof's sizes (``proof_arch``)

    @property
    def shapes(self) -> tuple:
        """An image network's proof sizes, layer by layer: feature maps (C, H, W), then the
        flattened size and the dense layers' sizes; a recurrent network's input (T, n), its
        hidden units and the dense layers' sizes; () for a dense network."""
        if self.arch.image is None and self.arch.sequence is None:
            return ()
        proof = self.proof or self.arch
        return (*proof.shapes()[: proof.offset], *((n,) for n in self.sizes))

    @property
    def steps(self) -> int | None:
        """T of the proof of a recurrent network, else None."""
        proof = self.proof or self.arch
        return proof.sequence[0] if proof.sequence is not None else None

    @property
    def pools_max(self) -> bool:
        return any(f.kind == "maxpool" for f in self.arch.features)

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
        sizes = "-".join("x".join(map(str, shape)) for shape in self.shapes) \
            if self.shapes else "-".join(map(str, self.sizes))
        verdict = "PROVEN" if self.ok else "FAILED"
        grad = self.gradient
        rest = [c for c in self.checks if not c.is_gradient]
        penalty = f", l2 {self.arch.l2}" if self.arch.l2 else ""
        steps = f", T = {self.steps}" if self.steps is not None else ""
        on_the_way = "Z, H, A, dZ, dH, dA" if self.steps is not None else "Z, A, dZ, dA"
        symbolic = sum(lemma.method == "symbolic" for lemma in self.lemmas)
        return (f"{verdict}: {self.arch.spec()} loss {self.arch.loss}{penalty} ({self.notation}): "
                f"{sum(c.ok for c in grad)} of {len(grad)} gradient entries equal direct "
                f"differentiation, and {sum(c.ok for c in rest)} of {len(rest)} entries of "
                f"{on_the_way} on the way ({len(self.checks)} checks: {self.count('exact')} exact, "
                f"{self.count('digits')} to {DIGITS} digits) at sizes {sizes}, "
                f"m = {self.m}{steps}, "
                f"{self.points} random points; {symbolic} of {len(self.lemmas)} layer equations "
                f"proven symbolic identities")

    def method_text(self) -> str:
        """How the values were computed and compared, in one sentence."""
        how = {"exact": "exact rational arithmetic, equal",
               "digits": f"{WORKING_DIGITS}-digit arithmetic, agreeing to {DIGITS} "
                         "significant digits"}
        points = "; ".join(f"point {number}: {how[name]}{self._tie_text(number - 1)}"
                           for number, name in enumerate(self.arithmetic, start=1))
        images = ("; feature layers from their entry formulas at the concrete sizes, against "
                  "the network expanded from the definitions (zero padding, a real max over "
                  "each max-pooling window)") if self.arch.image is not None else ""
        if self.arch.sequence is not None:
            images = (f"; the rnn layer from its entry formulas at T = {self.steps}, the "
                      "recurrence forward in time and BPTT backward in time, against the "
                      "recurrence unrolled from H_{-1} = 0 and differentiated forward-mode")
        return ("each layer's equations as symbolic identities (SymPy simplifies derived - "
                "direct to 0), and the engine's equations against forward-mode differentiation "
                f"of the cost at random rational points (k/{DENOMINATOR}){images}; {points}")

    def _tie_text(self, number) -> str:
        if not self.pools_max or number >= len(self.ties):
            return ""
        tied = self.ties[number]
        if not tied:
            return ", no max-pooling window ties"
        return (f", {tied} max-pooling window{'s' if tied > 1 else ''} tie (the gradient "
                "goes to the first maximum in row-major order, as torch routes it)")

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
        for number, tied in enumerate(self.ties if self.pools_max else (), start=1):
            if tied:
                lines.append(f"  point {number}: {tied} max-pooling window"
                             f"{'s' if tied > 1 else ''} tie; the gradient goes to the first "
                             "maximum in row-major order, as torch routes it")
        failures = self.failures
        if failures:
            first = failures[0]
            lines.append(f"  first difference: layer {_equation_layer(first)} "
                         f"{first.equation} ({EQUATIONS[first.equation]}), "
                         f"point {first.point + 1}")
        for c in failures[:20]:
            derived = c.note if c.note else f"derived {sp.N(c.derived, 15)}"
            lines.append(f"  {c.name} ({c.equation}): {derived} != "
                         f"direct {sp.N(c.direct, 15)}")
        if len(failures) > 20:
            lines.append(f"  ... and {len(failures) - 20} more")
        return "\n".join(lines)

    def __repr__(self) -> str:
        verdict = "PROVEN" if self.ok else "FAILED"
        failed = len(self.failures)
        tail = f", {failed} differ" if failed else ""
        return (f"<VerifyReport {verdict}: {self.arch.spec()} loss {self.arch.loss}, "
                f"{len(self.checks)} checks at m = {self.m}, {len(self.lemmas)} layer "
                f"equations{tail}>")

    def _repr_markdown_(self) -> str:
        """Jupyter: the verdict in bold, then the report's lines."""
        head, *rest = str(self).splitlines()
        verdict, _, detail = head.partition(": ")
        lines = [f"**{verdict}**: {detail}"]
        if rest:
            lines += ["", "```", *rest, "```"]
        return "\n".join(lines) + "\n"

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
            **({"shapes": [list(shape) for shape in self.shapes]} if self.shapes else {}),
            **({"ties": list(self.ties)} if self.pools_max else {}),
            **({"steps": self.steps} if self.steps is not None else {}),
        }


def _layer_of(name: str) -> str:
    return name.split("[", 2)[1].rstrip("]")


def _equation_layer(check: Check) -> str:
    """The layer whose equation gave the entry: BP3 of layer l gives dA^[l-1]."""
    label = _layer_of(check.name)
    return str(int(label) + 1) if check.equation == "BP3" and label.isdigit() else label


def _text(value) -> str:
    if isinstance(value, sp.Rational):
        return str(value)
    return sp.Float(value, DIGITS + 5).__str__() if value.is_number else str(value)


def proof_arch(arch: Architecture, units: int | None = None) -> Architecture:
    """The network the proof runs: an image network's input and conv layers with at most
    MAX_UNITS channels (rows, columns, kernels, strides and padding as the spec has them);
    a recurrent network at most MAX_STEPS time steps of at most MAX_UNITS features, its rnn
    layer ``units`` hidden units (default at most MAX_UNITS); a dense network itself."""
    if arch.sequence is not None:
        steps, features = arch.sequence
        rnn = arch.recurrent
        rnn = dataclasses.replace(rnn, units=units or min(rnn.units, MAX_UNITS))
        return Architecture(arch.sizes[1:], arch.activations, arch.loss, arch.definitions,
                            arch.l2, sequence=(min(steps, MAX_STEPS), min(features, MAX_UNITS)),
                            features=(rnn,))
    if arch.image is None:
        return arch
    channels, height, width = arch.image
    features = tuple(dataclasses.replace(f, channels=min(f.channels, MAX_UNITS))
                     if f.kind == "conv" else f for f in arch.features)
    return Architecture(arch.sizes[1:], arch.activations, arch.loss, arch.definitions, arch.l2,
                        image=(min(channels, MAX_UNITS), height, width), features=features)


def small_sizes(arch: Architecture) -> tuple[int, ...]:
    """The concrete sizes of the proof: at most MAX_UNITS units a layer (an image network's
    flattened size is its feature maps'; a recurrent network's first size is its hidden
    units)."""
    if arch.image is not None:
        return (arch.sizes[0], *(min(size, MAX_UNITS) for size in arch.sizes[1:]))
    return tuple(min(size, MAX_UNITS) for size in arch.sizes)


def verify(arch: Architecture, m: int = 2, seed: int = 0, notation: str = "ng",
           sizes: tuple[int, ...] | None = None, points: int = 2,
           progress=None) -> VerifyReport:
    """Prove ``derive(arch, notation)`` against direct differentiation at concrete sizes.

    ``progress``, if given, is called with a short line of text as the proof moves on.
    """
    say = progress or (lambda text: None)
    proof = proof_arch(arch)
    sizes = tuple(sizes) if sizes is not None else small_sizes(proof)
    if arch.sequence is not None and sizes and sizes[0] >= 1 and sizes[0] != proof.sizes[0]:
        proof = proof_arch(arch, units=sizes[0])  # the rnn layer's units are sizes[0]
    if len(sizes) != len(arch.sizes) or any(s < 1 for s in sizes) \
            or (arch.image is not None and sizes[0] != proof.sizes[0]):
        raise VerificationError(f"sizes {sizes} do not fit {arch.spec()}")
    if not 1 <= m <= MAX_EXAMPLES:
        raise VerificationError(f"m must be between 1 and {MAX_EXAMPLES} examples, got {m}")
    if points < 1:
        raise VerificationError(f"points must be at least 1, got {points}")
    start = time.perf_counter()
    say(f"deriving {arch.spec()} ({notation})")
    d = derive(arch, notation)
    if len(d.layers) + len(d.features) != arch.depth or len(d.features) != arch.offset:
        raise VerificationError(f"the derivation has {len(d.layers) + len(d.features)} layers, "
                                f"{arch.spec()} has {arch.depth}")
    report = VerifyReport(arch, sizes, m, notation, points=points, seed=seed, proof=proof)
    report.timings["derive"] = time.perf_counter() - start
    began = time.perf_counter()
    report.lemmas = _Lemmas(proof, d, sizes, min(m, 2)).run(say)
    report.timings["lemmas"] = time.perf_counter() - began
    rng = random.Random(seed)
    models = {}
    for number in range(points):
        began = time.perf_counter()
        name, checks, ties = _prove_at_a_point(proof, d, sizes, m, rng, number, points, models,
                                               say)
        report.arithmetic.append(name)
        report.checks.extend(checks)
        report.ties.append(ties)
        report.timings[f"point {number + 1}"] = time.perf_counter() - began
    report.timings["total"] = time.perf_counter() - start
    return report


def _prove_at_a_point(arch, d, sizes, m, rng, number, points, models, say):
    """(arithmetic, checks, ties) at one random point: exact where every value is rational,
    else digits; a point outside the cost's domain is drawn again, and so is one whose
    max-pooling windows tie (TIE_TRIES times; then the ties stay, counted). ``arch`` (not
    ``d.arch``) defines the direct side."""
    redraws = TIE_TRIES
    for _ in range(TRIES):
        point = _random_point(arch, sizes, m, rng)
        for arithmetic in (_EXACT, _DIGITS):
            where = f"point {number + 1} of {points} ({arithmetic.name})"
            key = arithmetic.name
            if key not in models:
                models[key] = (_Direct(arch, sizes, m, arithmetic),
                               _Derived(d, sizes, m, arithmetic, arch))
            direct, derived = models[key]
            try:
                with arithmetic.context():
                    truth = direct.run(point, lambda text, w=where: say(f"{w}: direct, {text}"),
                                       refuse_ties=redraws > 0)
                    return arithmetic.name, derived.compare(
                        point, truth, number,
                        lambda text, w=where: say(f"{w}: derived, {text}")), direct.ties
            except _NotRational:
                continue
            except _OutOfDomain:
                break
            except _Tied:
                redraws -= 1
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


class _Tied(Exception):
    """Two entries of a max-pooling window are its maximum: this point is drawn again."""


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

    def total(self, terms):
        return sp.Add(*terms)


_SYMBOLIC = _Symbolic()


class _NotPolynomial(Exception):
    """A value is no polynomial (a function of an entry, a division by a variable)."""


class _Poly:
    """A polynomial with rational coefficients, {monomial: coefficient}: a monomial is the
    sorted tuple of its variables' names, each repeated as often as its power. Two are equal
    as functions exactly when their coefficients are; the feature layers' lemmas that are
    polynomial identities are decided so, without SymPy's expression trees."""

    __slots__ = ("terms",)

    def __init__(self, terms):
        self.terms = terms  # no zero coefficients

    @staticmethod
    def lift(value) -> _Poly:
        if isinstance(value, _Poly):
            return value
        if isinstance(value, (int, Fraction)):
            return _Poly({(): Fraction(value)} if value else {})
        raise _NotPolynomial

    @staticmethod
    def sum(values) -> _Poly:
        out = {}
        for value in values:
            for monomial, c in _Poly.lift(value).terms.items():
                out[monomial] = out.get(monomial, 0) + c
        return _Poly({k: c for k, c in out.items() if c})

    def __add__(self, other):
        return _Poly.sum((self, other))

    __radd__ = __add__

    def __neg__(self):
        return _Poly({k: -c for k, c in self.terms.items()})

    def __sub__(self, other):
        return _Poly.sum((self, -_Poly.lift(other)))

    def __rsub__(self, other):
        return _Poly.sum((other, -self))

    def __mul__(self, other):
        if isinstance(other, (int, Fraction)):
            return _Poly({k: c * other for k, c in self.terms.items()} if other else {})
        other = _Poly.lift(other)
        out = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                monomial = tuple(sorted(m1 + m2))
                out[monomial] = out.get(monomial, 0) + c1 * c2
        return _Poly({k: c for k, c in out.items() if c})

    __rmul__ = __mul__

    def __pow__(self, n):
        if not isinstance(n, int) or n < 0:
            raise _NotPolynomial
        out = _Poly.lift(1)
        for _ in range(n):
            out = out * self
        return out

    def constant(self) -> Fraction:
        if any(self.terms.keys() - {()}):
            raise _NotPolynomial  # a division by a variable
        return self.terms.get((), Fraction(0))

    def __truediv__(self, other):
        divisor = _Poly.lift(other).constant()
        if not divisor:
            raise _NotPolynomial
        return self * (1 / divisor)

    def __rtruediv__(self, other):
        divisor = self.constant()
        if not divisor:
            raise _NotPolynomial
        return _Poly.lift(other) * (1 / divisor)

    def _compare(self, other):
        raise _NotPolynomial  # a condition on values: the lemma needs SymPy

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __eq__(self, other):
        try:
            return self.terms == _Poly.lift(other).terms
        except _NotPolynomial:
            return NotImplemented

    __hash__ = None

    def gradient(self) -> dict:
        """{name: ∂self/∂name} by the power rule, for every variable in it."""
        out = {}
        for monomial, c in self.terms.items():
            for name in set(monomial):
                rest = list(monomial)
                rest.remove(name)
                part = out.setdefault(name, {})
                key = tuple(rest)
                part[key] = part.get(key, 0) + c * monomial.count(name)
        return {name: _Poly({k: c for k, c in terms.items() if c})
                for name, terms in out.items()}

    def as_expr(self, symbols) -> sp.Expr:
        """The polynomial in SymPy, each name its symbol in ``symbols``."""
        return sp.Add(*(sp.Rational(c.numerator, c.denominator)
                        * sp.Mul(*(symbols[name] for name in monomial))
                        for monomial, c in self.terms.items()))


class _Polynomial:
    """_Poly values: the arithmetic of the feature layers' polynomial lemmas."""

    name = "polynomial"

    def context(self):
        return _NoContext()

    def number(self, q: Fraction):
        return _Poly.lift(q)

    def constant(self, expr):
        if not expr.is_Rational:
            raise _NotPolynomial
        return _Poly.lift(Fraction(int(expr.p), int(expr.q)))

    def function(self, variables, expr):
        raise _NotPolynomial

    def total(self, terms):
        return _Poly.sum(terms)


_POLYNOMIAL = _Polynomial()


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

    An image network's feature layers (``feature``), at the spec's sizes, with the layer's
    input, kernel, bias, Z, dA, dZ (and max pooling's arg-max indicator M) free symbols:
      conv     Z = b + Σ W P (P the input with its zero padding written out), A = g(Z), BP4 as
               above, dW, db, dA^[l-1] through Z (with the penalty);
      pooling  A = Σ M P over each window (max: for every arg-max M) or its mean, and
               dA^[l-1] = m ∂/∂A^[l-1] of (1/m) Σ dA ⊙ A;
      flatten  A^[l] the maps' entries in channel, row, column order, and dA^[l-1] through it.
    """

    def __init__(self, arch, d, sizes, m):
        self.arch, self.d, self.sizes, self.m = arch, d, sizes, m
        self.derived = _Derived(d, sizes, m, _SYMBOLIC, arch)
        self.columns = self.derived.columns  # of the dense layers: m, or m T (every step)
        self.polynomials = _Entries(self.derived.array_sizes, _POLYNOMIAL, {}) \
            if arch.image is not None or arch.sequence is not None else None
        self.zero_cache = {}
        self.rng = random.Random(1)
        loss = arch.loss_entry  # the loss's inputs and targets are sampled where it is defined
        self.domains = {"a": loss.a_domain, "y": loss.y_domain}

    def run(self, say) -> list[Lemma]:
        out = []
        depth = len(self.d.features) + len(self.d.layers)
        for layer in reversed(self.d.layers):
            say(f"lemmas, layer {layer.index} of {depth}")
            out.extend(self.layer(layer))
        for layer in reversed(self.d.features):
            say(f"lemmas, layer {layer.index} of {depth}")
            out.extend(self.feature(layer))
        return out

    def layer(self, layer) -> list[Lemma]:
        d, m, sizes = self.d, self.columns, self.sizes
        l = layer.index
        pos = l - len(d.features)  # the position of the layer in ``sizes``
        n, n_prev = sizes[pos], sizes[pos - 1]
        act = self.arch.activation_entries[pos - 1]  # the registry's, not the engine's copy
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
        holding = {}  # each input, and the terms of Σ dZ ⊙ Z that hold it (the same ∂)
        for r, k in product(range(n), range(m)):
            for term in sp.Add.make_args(Zx[r][k]):
                for v in term.free_symbols:
                    holding.setdefault(v, []).append(dZ[r][k] * term)

        def through(v):  # the part of (1/m) Σ dZ ⊙ Z that depends on v
            return sum(holding.get(v, ()), sp.Integer(0)) / m
        lam = sp.Rational(self.arch.l2.numerator, self.arch.l2.denominator)

        def penalty(w):  # the part of (λ/2m) Σ W² that depends on w
            return lam / (2 * m) * w ** 2
        lemma("BP1", layer.backward["BP1"],
              [[sp.diff(through(W[r][s]) + penalty(W[r][s]), W[r][s]) for s in range(n_prev)]
               for r in range(n)])
        lemma("BP2", layer.backward["BP2"], [[sp.diff(through(b[r][0]), b[r][0])]
                                             for r in range(n)])
        lemma("BP3", layer.backward["BP3"],
              [[m * sp.diff(through(P[s][k]), P[s][k]) for k in range(m)]
               for s in range(n_prev)])
        return lemmas

    def feature(self, layer) -> list[Lemma]:
        """The equations of feature layer ``layer`` at the proof's sizes (``arch``'s layer of
        the same label defines the direct side). Polynomial lemmas (Z, dW, db, dA^[l-1],
        pooling, flatten) are decided in exact polynomial arithmetic (``_Poly``), those with
        g (A = g(Z), BP4) by SymPy; SymPy takes over a derived formula that is no
        polynomial."""
        if layer.kind.needs == "sequence":
            return self.recurrent(layer)
        arch, m = self.arch, self.m
        l = layer.index
        f = arch.features[l - 1]
        shapes = arch.shapes()
        space = _LayerLemmas(self, layer)
        free, lemma, through = space.free, space.lemma, space.through
        spaces, symbols, lemmas = space.spaces, space.symbols, space.lemmas
        sym = layer.symbols
        P = free("A_prev", "p", (m, *shapes[l - 1]), padded=True)
        names = lambda variables: {i: next(iter(v.terms))[0] for i, v in variables.items()}
        if f.kind == "conv":
            (Cp, Hp, Wp), (C, H, Wd) = shapes[l - 1], shapes[l]
            K, S, Pd = f.kernel, f.stride, f.padding
            W = free("W", "w", (C, Cp, K, K))
            b = free("b", "b", (C,))
            dZ = free("dZ", "dz", (m, C, H, Wd))
            zero = _Poly({})
            padded = {(k, c, h, w): (P[(k, c, h - Pd, w - Pd)] if Pd <= h < Hp + Pd
                                     and Pd <= w < Wp + Pd else zero)
                      for k, c, h, w in product(range(m), range(Cp), range(Hp + 2 * Pd),
                                                range(Wp + 2 * Pd))}
            Zx = {(k, r, x, y): _Poly.sum([b[(r,)], *(W[(r, t, u, v)]
                                                      * padded[(k, t, S * x + u, S * y + v)]
                                                      for t, u, v in product(range(Cp), range(K),
                                                                             range(K)))])
                  for k, r, x, y in dZ}
            lemma("forward", layer.forward[0], Zx)
            # A = g(Z) and BP4 in SymPy: g is the registry's expression
            act = arch.activation_entry(f.activation)
            Z = {i: symbols[name] for i, name in names(free("Z", "z", (m, C, H, Wd))).items()}
            dA = {i: symbols[name] for i, name in names(free("dA", "da", (m, C, H, Wd))).items()}
            A = {i: act.expr.xreplace({z_var: z}) for i, z in Z.items()}
            base = sym["A"]
            spaces["symbolic"].arrays[base.name] = _Array(
                base.name, spaces["symbolic"].shape(base), A, sp.Integer(0))
            lemma("forward", layer.forward[1], A)
            lemma("BP4", layer.backward["BP4"], {i: dA[i] * sp.diff(A[i], Z[i]) for i in Z})
            lam = Fraction(arch.l2)
            penalty = [(w * Fraction(lam, 2), w) for w in W.values()]  # (λ/2m) Σ W²
            grads = through([*((dZ[i], Zx[i]) for i in dZ), *penalty],
                            {**{("W", i): n for i, n in names(W).items()},
                             **{("b", i): n for i, n in names(b).items()},
                             **{("P", i): n for i, n in names(P).items()}})
            lemma("BP1", layer.backward["BP1"], {i: grads[("W", i)] for i in W})
            lemma("BP2", layer.backward["BP2"], {i: grads[("b", i)] for i in b})
            lemma("BP3", layer.backward["BP3"], {i: grads[("P", i)] * m for i in P})
        elif f.kind in ("maxpool", "avgpool"):
            C, H, Wd = shapes[l]
            K, S = f.kernel, f.stride
            dA = free("dA", "da", (m, C, H, Wd))
            if f.kind == "maxpool":  # any arg-max indicator M: the lemma holds for each
                M = free("M", "mx", (m, C, H, Wd, K, K))
                weight = lambda k, c, x, y, u, v: M[(k, c, x, y, u, v)]
            else:
                weight = lambda k, c, x, y, u, v: Fraction(1, K * K)
            pooled = {(k, c, x, y): _Poly.sum(weight(k, c, x, y, u, v)
                                              * P[(k, c, S * x + u, S * y + v)]
                                              for u, v in product(range(K), range(K)))
                      for k, c, x, y in dA}
            lemma("forward", layer.forward[0], pooled)
            grads = through(((dA[i], pooled[i]) for i in dA), names(P))
            lemma("BP3", layer.backward["BP3"], {i: grads[i] * m for i in P})
        else:  # flatten: unit u of example k is the u-th entry in channel, row, column order
            C, H, Wd = shapes[l - 1]
            flat = {}
            for unit, (c, h, w) in enumerate(product(range(C), range(H), range(Wd))):
                for k in range(m):
                    flat[(k, unit) if self.derived.rowvec else (unit, k)] = P[(k, c, h, w)]
            dA = free("dA", "da", spaces["symbolic"].shape(sym["dA"]))
            lemma("forward", layer.forward[0], flat)
            grads = through(((dA[i], v) for i, v in flat.items()), names(P))
            lemma("BP3", layer.backward["BP3"], {i: grads[i] * m for i in P})
        return lemmas

    def recurrent(self, layer) -> list[Lemma]:
        """The rnn layer's equations at the proof's sizes, with the input X, W, U, b, the
        states H, Z and the errors dZ, dH, dA free variables (H_{k,-1,·} = 0):
          forward  Z_kτr = b_r + Σ_q W_rq X_kτq + Σ_s U_rs H_{k,τ-1,s} (no U term at τ = 0);
                   A = H at the last step of each example (or column T k + τ = H_kτ·);
          BPTT     dH = m ∂/∂H of (1/m) (Σ dZ ⊙ Z + Σ dA ⊙ A): H_t is used by the next step's
                   Z and by what is passed on, and dZ, dA are m ∂J/∂ of those;
          BP1, BPU, BP2  dW, dU, db = ∂/∂W, ∂/∂U, ∂/∂b of (1/m) Σ dZ ⊙ Z (+ (λ/2m) Σ W², U²);
          H = g(Z) and BP4 dZ_kτr = dH_kτr ∂g(Z_kτr)/∂Z_kτr in SymPy, g the registry's.
        m is the dense head's columns: m, or m T where it applies at every step."""
        arch = self.arch
        m, scale = self.m, self.columns
        steps, n_in = arch.sequence
        units = self.sizes[0]
        space = _LayerLemmas(self, layer)
        free, symbols, sym = space.free, space.symbols, layer.symbols
        seq = (m, steps, units)
        before = [(k, -1, r) for k, r in product(range(m), range(units))]  # H_{k,-1,·} = 0
        X = free("A_prev", "x", (m, steps, n_in))
        W, U = free("W", "w", (units, n_in)), free("U", "u", (units, units))
        b = free("b", "b", (units,))
        H = free("H", "h", seq, initial=before)
        dZ, dH = free("dZ", "dz", seq), free("dH", "dh", seq)
        dA = free("dA", "da", space.spaces["polynomial"].shape(sym["dA"]))
        Zx = {(k, tau, r): _Poly.sum([b[(r,)],
                                      *(W[(r, q)] * X[(k, tau, q)] for q in range(n_in)),
                                      *(U[(r, s)] * H[(k, tau - 1, s)]
                                        for s in range(units) if tau > 0)])
              for k, tau, r in dZ}
        passed = [(k, tau) for k in range(m)
                  for tau in (range(steps) if arch.every_step else (steps - 1,))]
        Ax = {(col, r) if self.derived.rowvec else (r, col): H[(k, tau, r)]
              for col, (k, tau) in enumerate(passed) for r in range(units)}
        names = lambda variables: {i: next(iter(v.terms))[0] for i, v in variables.items()}
        z_eq, h_eq, a_eq = layer.forward
        back = layer.backward
        space.lemma("forward", z_eq, Zx)
        space.lemma("forward", a_eq, Ax)
        grads = space.through([*((dZ[i], Zx[i]) for i in dZ), *((dA[i], Ax[i]) for i in dA)],
                              names(H))
        space.lemma("BPTT", back["BPTT"], {i: grads[i] * scale for i in H})
        lam = Fraction(arch.l2)
        penalty = [(w * Fraction(lam, 2), w) for w in (*W.values(), *U.values())]
        grads = space.through([*((dZ[i], Zx[i]) for i in dZ), *penalty],
                              {**{("W", i): v for i, v in names(W).items()},
                               **{("U", i): v for i, v in names(U).items()},
                               **{("b", i): v for i, v in names(b).items()}})
        space.lemma("BP1", back["BP1"], {i: grads[("W", i)] for i in W})
        space.lemma("BPU", back["BPU"], {i: grads[("U", i)] for i in U})
        space.lemma("BP2", back["BP2"], {i: grads[("b", i)] for i in b})
        # H = g(Z) and BP4 in SymPy, H now g of free Z (the engine may write g' through H)
        act = arch.activation_entry(layer.feature.activation)
        Z = {i: symbols[v] for i, v in names(free("Z", "z", seq)).items()}
        Hg = {i: act.expr.xreplace({z_var: z}) for i, z in Z.items()}
        symbolic = space.spaces["symbolic"]
        symbolic.arrays[sym["H"].name] = _Array(sym["H"].name, symbolic.shape(sym["H"]),
                                                {**Hg, **dict.fromkeys(before, sp.Integer(0))})
        dHs = {i: symbols[v] for i, v in names(dH).items()}
        space.lemma("forward", h_eq, Hg)
        space.lemma("BP4", back["BP4"], {i: dHs[i] * sp.diff(Hg[i], Z[i]) for i in Z})
        order = [eq.lhs.name for eq in (*layer.forward, *back.values())]
        return sorted(space.lemmas, key=lambda lemma: order.index(lemma.lhs))

    def identity(self, expr) -> str:
        """As ``zero``, with the polynomial identities of feature layers closed by expand."""
        if sp.expand(expr) == 0:
            return "symbolic"
        return self.zero(expr)

    def zero(self, expr) -> str:
        """"symbolic" if expr is 0 for all values, "FAIL" if not at some point, else "sampled"."""
        free = sorted(expr.free_symbols, key=sp.default_sort_key)
        canonical = expr.xreplace({v: sp.Symbol(f"{v.name.split('_')[0]}_{pos}", real=True)
                                   for pos, v in enumerate(free)})
        if canonical not in self.zero_cache:
            self.zero_cache[canonical] = _zero(canonical, self.rng, self.domains)
        return self.zero_cache[canonical]


class _LayerLemmas:
    """The free variables of one feature (or rnn) layer's lemmas, held in both spaces (SymPy
    symbols, and _Poly variables), and its lemmas as they are decided."""

    def __init__(self, lemmas, layer):
        self.owner, self.layer = lemmas, layer
        self.spaces = {"symbolic": lemmas.derived.entries, "polynomial": lemmas.polynomials}
        self.symbols = {}  # name -> SymPy symbol, of every free variable of this layer
        self.lemmas = []
        self.scale = lemmas.columns  # m of J = (1/m) Σ ...: the dense head's columns
        for space in self.spaces.values():
            space.arrays.clear()

    def free(self, key, name, shape, padded=False, initial=()):
        """Free variables for the array layer.symbols[key]: {index: _Poly name_i_j...}, and
        that array in both spaces (``padded``: 0 outside its shape; ``initial``: indices
        outside it that are 0, the state before a recurrent layer's first step)."""
        variables = _symbol_array(name, shape)
        self.symbols.update((v.name, v) for v in variables.values())
        polys = {i: _Poly({(v.name,): Fraction(1)}) for i, v in variables.items()}
        if key is not None:
            base = self.layer.symbols[key]
            for space, values, zero in ((self.spaces["symbolic"], variables, sp.Integer(0)),
                                        (self.spaces["polynomial"], polys, _Poly({}))):
                space.arrays[base.name] = _Array(
                    base.name, space.shape(base), {**values, **dict.fromkeys(initial, zero)},
                    zero if padded else None)
        return polys

    def lemma(self, equation, eq, direct):
        """``direct``: {index: _Poly} (a polynomial lemma) or {index: SymPy expression}."""
        method = None
        spaces = self.spaces
        if all(isinstance(v, _Poly) for v in direct.values()):
            try:
                derived = spaces["polynomial"].evaluate(eq)
                method = ("FAIL" if _failed(derived, len(direct)) or set(derived) != set(direct)
                          or any(derived[i] != v for i, v in direct.items()) else "symbolic")
            except _NotPolynomial:
                direct = {i: v.as_expr(self.symbols) for i, v in direct.items()}
        if method is None:
            derived = spaces["symbolic"].evaluate(eq)
            if _failed(derived, len(direct)) or set(derived) != set(direct):
                method = "FAIL"
            else:
                methods = {self.owner.identity(derived[i] - v) for i, v in direct.items()}
                method = ("FAIL" if "FAIL" in methods else
                          "sampled" if "sampled" in methods else "symbolic")
        self.lemmas.append(Lemma(self.layer.index, equation, eq.lhs.name, len(direct), method))

    def through(self, pairs, gradient_of):
        """m ∂/∂v of (1/m) Σ dV ⊙ V (+ the penalty) for v in ``gradient_of``: {name: ∂}."""
        total = _Poly.sum(dv * v for dv, v in pairs) * Fraction(1, self.scale)
        gradient = total.gradient()
        return {v: gradient.get(name, _Poly({})) for v, name in gradient_of.items()}


def _symbol_array(name, shape) -> dict:
    """{index: the real symbol name_i_j_...} over every index of ``shape``."""
    return {index: sp.Symbol("_".join((name, *map(str, index))), real=True)
            for index in product(*map(range, shape))}


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
    in columns-are-examples layout. An image network's X and kernels are arrays keyed by their
    indices (``_image_point``), and so are a recurrent network's X, W, U, b
    (``_sequence_point``)."""
    if arch.image is not None:
        return _image_point(arch, sizes, m, rng)
    if arch.sequence is not None:
        return _sequence_point(arch, sizes, m, rng)
    point = {"X": [[_rational(rng, -1, 1) for _ in range(m)] for _ in range(sizes[0])]}
    for l in range(1, len(sizes)):
        point[("W", l)] = [[_rational(rng, -1, 1) for _ in range(sizes[l - 1])]
                           for _ in range(sizes[l])]
        point[("b", l)] = [[_rational(rng, -1, 1)] for _ in range(sizes[l])]
    point["Y"] = _targets(arch, sizes, m, rng)
    return point


def _image_point(arch, sizes, m, rng) -> dict:
    """X {(k, c, h, w): value} (m examples of C x H x W), each conv layer's W {(r, c, u, v)}
    and b {(r,)}, then the dense layers' W[l], b[l] and Y as ``_random_point`` draws them."""
    def array(shape):
        return {index: _rational(rng, -1, 1) for index in product(*map(range, shape))}
    shapes = arch.shapes()
    point = {"X": array((m, *arch.image))}
    for l, f in enumerate(arch.features, start=1):
        if f.kind == "conv":
            point[("W", l)] = array((f.channels, shapes[l - 1][0], f.kernel, f.kernel))
            point[("b", l)] = array((f.channels,))
    for pos, l in enumerate(arch.dense_labels, start=1):
        point[("W", l)] = [[_rational(rng, -1, 1) for _ in range(sizes[pos - 1])]
                           for _ in range(sizes[pos])]
        point[("b", l)] = [[_rational(rng, -1, 1)] for _ in range(sizes[pos])]
    point["Y"] = _targets(arch, sizes, m, rng)
    return point


def _sequence_point(arch, sizes, m, rng) -> dict:
    """X {(k, τ, q)} (m sequences of T steps of n features), the rnn layer's W {(r, q)},
    U {(r, s)}, b {(r,)}; the dense layers' W[l], b[l] and Y (n_L × m, or n_L × m T with
    example k at step τ in column T k + τ, where the head applies at every step)."""
    def array(shape):
        return {index: _rational(rng, -1, 1) for index in product(*map(range, shape))}
    steps, features = arch.sequence
    units = sizes[0]
    point = {"X": array((m, steps, features)), ("W", 1): array((units, features)),
             ("U", 1): array((units, units)), ("b", 1): array((units,))}
    for pos, l in enumerate(arch.dense_labels, start=1):
        point[("W", l)] = [[_rational(rng, -1, 1) for _ in range(sizes[pos - 1])]
                           for _ in range(sizes[pos])]
        point[("b", l)] = [[_rational(rng, -1, 1)] for _ in range(sizes[pos])]
    point["Y"] = _targets(arch, sizes, m * steps if arch.every_step else m, rng)
    return point


def _targets(arch, sizes, m, rng):
    """Y (n_L × m): targets inside the loss's domain (a distribution per example where the
    loss says so)."""
    loss = arch.loss_entry
    lo, hi = loss.y_domain
    columns = []
    for _ in range(m):
        if loss.targets_sum_to_one:  # a probability distribution per example
            weights = [Fraction(1 + 3 * rng.randrange(4)) for _ in range(sizes[-1])]
            column = [w / sum(weights) for w in weights]
        else:
            column = [_rational(rng, Fraction(lo), Fraction(hi)) for _ in range(sizes[-1])]
        columns.append(column)
    return [list(row) for row in zip(*columns)]


# --- the direct side: forward-mode differentiation of J ---------------------------------------

class _Direct:
    """J and its derivatives with respect to every W, b, Z and A entry, by dual numbers.

    Each forward value carries a sparse tangent {seed: ∂value/∂seed}; a seed is one entry of a
    weight, a bias, or of Z^[l] or A^[l] held as an independent variable (the derivative of J
    with respect to Z^[l] with everything before it fixed). Values and local derivatives come
    from the registry's expressions: g(z) and sympy.diff(g, z), ℓ(a, y) and sympy.diff(ℓ, a),
    a vector activation's entries and their sympy.diff by each input. An image network's
    feature layers are written out from their definitions (``_features``), a recurrent
    network's rnn layer unrolled over its time steps (``_recurrent``).

    ``m`` is the number of examples; the dense layers have ``columns`` of them: m, or m T
    (example, step) pairs where the dense head applies at every step, over which J averages.
    """

    def __init__(self, arch, sizes, m, arithmetic):
        self.arch, self.sizes, self.m, self.ar = arch, sizes, m, arithmetic
        self.columns = m * arch.sequence[0] if arch.every_step else m
        self.cache = {}
        self.layers = []
        for l, act in enumerate(arch.activation_entries, start=1):
            self.layers.append(self._activation(act, sizes[l]))
        self.feature_activations = {  # of a conv or rnn layer
            l: self._activation(arch.activation_entry(f.activation), 1)[1:]
            for l, f in enumerate(arch.features, start=1) if f.activation}
        loss = arch.loss_entry
        term = loss.term.xreplace({n_var: sizes[-1]})
        self.loss = _compiled(self.cache, arithmetic, (a_var, y_var), term)
        self.dloss = _compiled(self.cache, arithmetic, (a_var, y_var), sp.diff(term, a_var))
        self.seeds = {}
        self.ties = 0
        self.refuse_ties = False

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

    def run(self, point, say, refuse_ties=False) -> dict:
        """{("Z", l) | ("A", l): values, ("dZ", l) | ("dA", l): m ∂J/∂·, ("dW", l) | ("db", l):
        ∂J/∂·}, every matrix n_l × m (or W's, b's shape), columns are examples; an image
        network's feature maps, kernels and biases as arrays {index: value}.
        ``refuse_ties``: raise _Tied where a max-pooling window ties."""
        ar, m, sizes = self.ar, self.columns, self.sizes
        num = ar.number
        out = {}
        one = num(Fraction(1))
        zero = num(Fraction(0))
        offset = self.arch.offset
        self.ties, self.refuse_ties = 0, refuse_ties
        if self.arch.image is not None:
            A, TA = self._features(point, out, say)
        elif self.arch.sequence is not None:
            A, TA = self._recurrent(point, out, say)
        else:
            A = [[num(v) for v in row] for row in point["X"]]
            TA = [[{} for _ in row] for row in A]
        for pos, (kind, f, fp) in enumerate(self.layers, start=1):
            l = offset + pos
            say(f"layer {l} of {offset + len(self.layers)}")
            out[("A", l - 1)] = A
            for s, row in enumerate(TA):  # A^[l-1] entries as variables
                for k, t in enumerate(row):
                    t[self.seed(("A", l - 1, s, k))] = one
            W = [[num(v) for v in row] for row in point[("W", l)]]
            b = [num(row[0]) for row in point[("b", l)]]
            Z, TZ = [], []
            for r in range(sizes[pos]):
                zrow, trow = [], []
                for k in range(m):
                    value = b[r]
                    tangent = {}
                    for s in range(sizes[pos - 1]):
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
        L = offset + len(self.layers)
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
            for l in range(offset + 1, L + 1):  # d/dW_rs of (λ/2m) W_rs² is (λ/m) W_rs
                for r, row in enumerate(point[("W", l)]):
                    for s, w in enumerate(row):
                        key = self.seed(("W", l, r, s))
                        dJ[key] = dJ.get(key, zero) + lam * inv_m * num(w)
            for l, f in enumerate(self.arch.features, start=1):  # and every kernel, W and U
                for name in ("W", "U"):
                    for index, w in point.get((name, l), {}).items():
                        key = self.seed((name, l, *index))
                        dJ[key] = dJ.get(key, zero) + lam * inv_m * num(w)
        scale = num(Fraction(m))

        def grad(kind, l, rows, cols, factor):
            return [[factor * dJ.get(self.seed((kind, l, r, s)), zero) for s in range(cols)]
                    for r in range(rows)]
        for pos in range(1, len(self.layers) + 1):
            l = offset + pos
            out[("dW", l)] = grad("W", l, sizes[pos], sizes[pos - 1], one)
            out[("db", l)] = [[dJ.get(self.seed(("b", l, r)), zero)] for r in range(sizes[pos])]
            out[("dZ", l)] = grad("Z", l, sizes[pos], m, scale)
        for pos in range(len(self.layers) + 1):
            out[("dA", offset + pos)] = grad("A", offset + pos, sizes[pos], m, scale)

        def array_grad(kind, l, indices, factor):
            return {index: factor * dJ.get(self.seed((kind, l, *index)), zero)
                    for index in indices}
        if self.arch.sequence is not None:  # no gradient of the input sequence
            out[("dW", 1)] = array_grad("W", 1, point[("W", 1)], one)
            out[("dU", 1)] = array_grad("U", 1, point[("U", 1)], one)
            out[("db", 1)] = array_grad("b", 1, point[("b", 1)], one)
            out[("dZ", 1)] = array_grad("Z", 1, out[("Z", 1)], scale)
            out[("dH", 1)] = array_grad("H", 1, out[("H", 1)], scale)
            return out
        for l, f in enumerate(self.arch.features, start=1):
            if f.kind == "conv":
                out[("dW", l)] = array_grad("W", l, point[("W", l)], one)
                out[("db", l)] = array_grad("b", l, point[("b", l)], one)
                out[("dZ", l)] = array_grad("Z", l, out[("Z", l)], scale)
            out[("dA", l - 1)] = array_grad("A", l - 1, out[("A", l - 1)], scale)
        return out

    # recurrent networks: the rnn layer unrolled over its time steps ------------------------
    def _recurrent(self, point, out, say):
        """Z_τ = b + W x_τ + U H_{τ-1} and H_τ = g(Z_τ) for τ = 0 .. T-1, from H_{-1} = 0 (the
        first step has no U term), each example on its own; every entry of Z and H a seed
        (the derivative of J by it, the others fixed). Returns (A, TA): the matrix the dense
        head reads, n × columns, and its tangents: the last state of each example, or (with
        ':all') every state, example k at step τ in column T k + τ."""
        num, arch = self.ar.number, self.arch
        one, zero = num(Fraction(1)), num(Fraction(0))
        steps, n_in = arch.sequence
        units, examples = self.sizes[0], self.m
        say(f"layer 1 of {arch.depth}")
        X = {index: num(v) for index, v in point["X"].items()}
        W, U, b = ({index: num(v) for index, v in point[(name, 1)].items()}
                   for name in ("W", "U", "b"))
        g, gp = self.feature_activations[1]
        Z, H, TH = {}, {}, {}
        for k, tau in product(range(examples), range(steps)):
            for r in range(units):
                value, tangent = b[(r,)], {}
                if tau > 0:  # U H_{τ-1}: the state of the step before, and its tangent
                    for s in range(units):
                        h = H[(k, tau - 1, s)]
                        value = value + U[(r, s)] * h
                        _add_scaled(tangent, U[(r, s)], TH[(k, tau - 1, s)], zero)
                        key = self.seed(("U", 1, r, s))  # U is in H_{τ-1} too: add
                        tangent[key] = tangent.get(key, zero) + h
                for q in range(n_in):
                    value = value + W[(r, q)] * X[(k, tau, q)]
                    key = self.seed(("W", 1, r, q))
                    tangent[key] = tangent.get(key, zero) + X[(k, tau, q)]
                key = self.seed(("b", 1, r))
                tangent[key] = tangent.get(key, zero) + one
                tangent[self.seed(("Z", 1, k, tau, r))] = one
                Z[(k, tau, r)] = value
                H[(k, tau, r)] = g(value)
                TH[(k, tau, r)] = _scaled(gp(value), tangent)
                TH[(k, tau, r)][self.seed(("H", 1, k, tau, r))] = one
            _check_length([[H[(k, tau, r)] for r in range(units)]])
        out[("Z", 1)], out[("H", 1)] = Z, H
        passed = [(k, tau) for k in range(examples)
                  for tau in (range(steps) if arch.every_step else (steps - 1,))]
        A = [[H[(k, tau, r)] for k, tau in passed] for r in range(units)]
        TA = [[dict(TH[(k, tau, r)]) for k, tau in passed] for r in range(units)]
        return A, TA

    # image networks: each feature layer from its definition --------------------------------
    def _features(self, point, out, say):
        """The feature layers forward, from the input image to flatten's output: (A, TA), the
        flattened maps n × m (columns are examples) and their tangents."""
        num, arch = self.ar.number, self.arch
        one = num(Fraction(1))
        shapes = arch.shapes()
        A = {index: num(v) for index, v in point["X"].items()}
        TA = {index: {} for index in A}
        for l, f in enumerate(arch.features, start=1):
            say(f"layer {l} of {arch.depth}")
            out[("A", l - 1)] = A
            for index, t in TA.items():  # A^[l-1] entries as variables
                t[self.seed(("A", l - 1, *index))] = one
            if f.kind == "flatten":
                return self._flatten(A, TA, shapes[l - 1])
            if f.kind == "conv":
                A, TA = self._conv(l, f, A, TA, point, out, shapes[l - 1], shapes[l])
            else:
                A, TA = self._pool(f, A, TA, shapes[l])
            _check_length([list(A.values())])
        raise VerificationError(f"{arch.spec()}: no flatten before the dense layers")

    def _conv(self, l, f, A, TA, point, out, shape_in, shape_out):
        """Z_krxy = b_r + Σ_t Σ_u Σ_v W_rtuv P_{k,t,S x+u,S y+v}, P the input with P rows and
        columns of zeros written around it; then A = g(Z) entry by entry."""
        num, m = self.ar.number, self.m
        zero, one = num(Fraction(0)), num(Fraction(1))
        K, S, P = f.kernel, f.stride, f.padding
        (Cp, Hp, Wp), (C, H, Wd) = shape_in, shape_out
        padded = {}
        for k, c, h, w in product(range(m), range(Cp), range(Hp + 2 * P), range(Wp + 2 * P)):
            inside = P <= h < Hp + P and P <= w < Wp + P
            padded[(k, c, h, w)] = ((A[(k, c, h - P, w - P)], TA[(k, c, h - P, w - P)])
                                    if inside else (zero, {}))
        W = {index: num(v) for index, v in point[("W", l)].items()}
        b = {index: num(v) for index, v in point[("b", l)].items()}
        Z, TZ = {}, {}
        for k, r, x, y in product(range(m), range(C), range(H), range(Wd)):
            value = b[(r,)]
            tangent = {}
            for t, u, v in product(range(Cp), range(K), range(K)):
                a, ta = padded[(k, t, S * x + u, S * y + v)]
                w = W[(r, t, u, v)]
                value = value + w * a
                _add_scaled(tangent, w, ta, zero)
                tangent[self.seed(("W", l, r, t, u, v))] = a
            tangent[self.seed(("b", l, r))] = one
            tangent[self.seed(("Z", l, k, r, x, y))] = one
            Z[(k, r, x, y)] = value
            TZ[(k, r, x, y)] = tangent
        out[("Z", l)] = Z
        g, gp = self.feature_activations[l]
        return ({index: g(z) for index, z in Z.items()},
                {index: _scaled(gp(z), TZ[index]) for index, z in Z.items()})

    def _pool(self, f, A, TA, shape_out):
        """Each K x K window at stride S: its real maximum (the tangent of its first maximum
        in row-major order, where entries tie) or its mean."""
        ar, m = self.ar, self.m
        num = ar.number
        K, S = f.kernel, f.stride
        C, H, Wd = shape_out
        zero, inv = num(Fraction(0)), num(Fraction(1, K * K))
        out_A, out_T = {}, {}
        for k, c, x, y in product(range(m), range(C), range(H), range(Wd)):
            window = [(k, c, S * x + u, S * y + v) for u in range(K) for v in range(K)]
            if f.kind == "maxpool":
                maxima = _maxima(ar, [A[index] for index in window])
                if len(maxima) > 1:
                    self.ties += 1
                    if self.refuse_ties:
                        raise _Tied
                first = window[maxima[0]]
                out_A[(k, c, x, y)], out_T[(k, c, x, y)] = A[first], dict(TA[first])
            else:
                total, tangent = zero, {}
                for index in window:
                    total = total + A[index]
                    _add_scaled(tangent, inv, TA[index], zero)
                out_A[(k, c, x, y)], out_T[(k, c, x, y)] = total * inv, tangent
        return out_A, out_T

    def _flatten(self, A, TA, shape_in):
        """The maps as vectors, channel by channel, row by row, column by column."""
        C, H, Wd = shape_in
        rows, trows = [], []
        for c, h, w in product(range(C), range(H), range(Wd)):
            rows.append([A[(k, c, h, w)] for k in range(self.m)])
            trows.append([dict(TA[(k, c, h, w)]) for k in range(self.m)])
        return rows, trows


def _maxima(ar, values) -> list[int]:
    """The positions of a window's maximum, in row-major order (more than one: a tie)."""
    top = max(values)
    return [pos for pos, value in enumerate(values) if ar.same(value, top)]


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

    def __init__(self, d, sizes, m, arithmetic, arch=None):
        self.d, self.sizes, self.m, self.ar = d, sizes, m, arithmetic
        self.arch = arch if arch is not None else d.arch  # whose feature sizes the proof has
        offset = len(d.features)
        self.scalars = {N.units(offset + label): size for label, size in enumerate(sizes)}
        self.scalars[N.m] = m  # d.m is m T where the dense head applies at every step
        if self.arch.sequence is not None:
            self.scalars[N.T] = self.arch.sequence[0]
        self.scalars[N.lam] = sp.sympify(d.l2)  # the derivation's own λ
        self.columns = int(sp.sympify(d.m).xreplace(self.scalars))  # the dense layers' columns
        self.rowvec = d.notation == "rowvec"
        self.cache = {}
        self._entries = None

    @property
    def entries(self) -> _Entries:
        """The interpreter of the feature layers' entry formulas at the concrete sizes (made
        on first use, inside the arithmetic's context)."""
        if self._entries is None:
            self._entries = _Entries(self.array_sizes, self.ar, self.cache)
        return self._entries

    @property
    def array_sizes(self) -> dict:
        """The size symbols of the feature (or rnn) layers' arrays and the scalars, concrete."""
        arch = self.arch
        sizes = N.sequence_sizes(arch) if arch.sequence is not None else N.feature_sizes(arch)
        return {**sizes, **self.scalars}

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
                    if isinstance(v, _Failed):
                        checks.append(Check(f"{symbol.name}[{r}, {s}]", sp.nan, ar.sympy(e),
                                            "FAIL", equation, number, v.note))
                        continue
                    method = ar.name if ar.same(v, e) else "FAIL"
                    checks.append(Check(f"{symbol.name}[{r}, {s}]", ar.sympy(v), ar.sympy(e),
                                        method, equation, number))

        def check_array(equation, name, values, expected):
            for index in sorted(expected):
                e, v = expected[index], values.get(index, _NOT_DEFINED)
                entry = f"{name}[{', '.join(map(str, index))}]"
                if isinstance(v, _Failed):
                    checks.append(Check(entry, sp.nan, ar.sympy(e), "FAIL", equation, number,
                                        v.note))
                    continue
                method = ar.name if ar.same(v, e) else "FAIL"
                checks.append(Check(entry, ar.sympy(v), ar.sympy(e), method, equation, number))

        num = lambda matrix: [[ar.number(v) for v in row] for row in matrix]
        env = {d.Y.name: self.layout(num(point["Y"]))}
        recurrent = self.arch.sequence is not None
        if d.features:
            forward = self.recurrent_forward if recurrent else self.features_forward
            flat = forward(point, truth, check, check_array, say)
            if flat is None:  # a forward formula failed: nothing after it can be compared
                return checks
            env[d.layers[0].A_prev.name] = flat
        else:
            env[d.X.name] = self.layout(num(point["X"]))
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
            say(f"layer {l} of {len(d.features) + len(d.layers)}")
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
        if d.features:
            backward = self.recurrent_backward if recurrent else self.features_backward
            backward(env, truth, check_array, say)
        return checks

    # image networks: the feature layers' entry formulas ------------------------------------
    def features_forward(self, point, truth, check, check_array, say):
        """Every feature layer's forward formulas, entry by entry, each map checked; returns
        flatten's output in the derivation's layout (None where a formula failed)."""
        ar, d, E = self.ar, self.d, self.entries
        zero = ar.number(Fraction(0))
        arrays = E.arrays
        arrays.clear()
        X = d.X
        arrays[X.name] = _Array(X.name, E.shape(X),
                                {index: ar.number(v) for index, v in point["X"].items()}, zero)
        for fl in d.features:
            l, sym = fl.index, fl.symbols
            say(f"layer {l} of {len(d.features) + len(d.layers)}")
            for name in ("W", "b"):
                if name in sym:
                    base = sym[name]
                    arrays[base.name] = _Array(base.name, E.shape(base), {
                        index: ar.number(v) for index, v in point[(name, l)].items()})
            if "M" in sym:
                arrays[sym["M"].name] = _arg_max(ar, sym["M"].name, E.shape(sym["M"]),
                                                 arrays[sym["A_prev"].name], E.sizes[sym["s"]])
            for eq in fl.forward:
                values = E.evaluate(eq)
                kind = N.split(eq.lhs.name)[0]
                if isinstance(eq.lhs, sp.MatrixSymbol):  # flatten: the dense layers' input
                    rows, cols = E.shape(eq.lhs)
                    flat = [[values.get((r, c), _NOT_DEFINED) for c in range(cols)]
                            for r in range(rows)]
                    check("forward", eq.lhs, flat, truth[(kind, l)])
                    return None if _failed(values, rows * cols) else flat
                check_array("forward", eq.lhs.name, values, truth[(kind, l)])
                if _failed(values, len(truth[(kind, l)])):
                    return None
                arrays[eq.lhs.name] = _Array(eq.lhs.name, E.shape(eq.lhs), values,
                                             zero if kind == "A" else None)
        raise VerificationError(f"{d.arch.spec()}: the derivation has no flatten")

    def features_backward(self, env, truth, check_array, say):
        """Every feature layer's gradients, flatten's first, each read from the arrays the
        formulas before it gave (an entry they could not give fails each one that reads it)."""
        d, E = self.d, self.entries
        arrays = E.arrays
        dA = d.features[-1].symbols["dA"]  # the dense layers' error of flatten's output
        arrays[dA.name] = _Array(dA.name, E.shape(dA), {
            (r, c): v for r, row in enumerate(env[dA.name]) for c, v in enumerate(row)})
        for fl in reversed(d.features):
            l = fl.index
            say(f"layer {l} of {len(d.features) + len(d.layers)}")
            for name, kind, at in (("BP4", "dZ", l), ("BP1", "dW", l), ("BP2", "db", l),
                                   ("BP3", "dA", l - 1)):
                if name not in fl.backward:
                    continue
                eq = fl.backward[name]
                values = E.evaluate(eq)
                arrays[eq.lhs.name] = _Array(eq.lhs.name, E.shape(eq.lhs), values)
                check_array(name, eq.lhs.name, values, truth[(kind, at)])

    # recurrent networks: the rnn layer's entry formulas, step by step -----------------------
    def recurrent_forward(self, point, truth, check, check_array, say):
        """The rnn layer's forward formulas: those of an entry at a time step (Z, H) step by
        step forward in time, in the derivation's order, each step reading the arrays the steps
        before it gave (H_{k,-1,·} = 0, the state before the first step), each step's entries
        compared as they come; then what it passes on. Returns that, the dense head's input,
        in the derivation's layout (None where a formula failed)."""
        ar, d, E = self.ar, self.d, self.entries
        zero = ar.number(Fraction(0))
        arrays = E.arrays
        arrays.clear()
        fl = d.features[0]
        sym = fl.symbols
        say(f"layer {fl.index} of {len(d.features) + len(d.layers)}")
        X = sym["A_prev"]
        arrays[X.name] = _Array(X.name, E.shape(X),
                                {index: ar.number(v) for index, v in point["X"].items()})
        for name in ("W", "U", "b"):
            base = sym[name]
            arrays[base.name] = _Array(base.name, E.shape(base), {
                index: ar.number(v) for index, v in point[(name, fl.index)].items()})
        H = sym["H"]
        m, _, units = E.shape(H)
        before = {(k, -1, r): zero for k, r in product(range(m), range(units))}
        values = [{} for _ in fl.forward]
        failed = False
        for pos, step, found in self._in_time(fl.forward, range(E.sizes[N.T]),
                                              {H.name: before}):
            eq = fl.forward[pos]
            values[pos].update(found)
            if isinstance(eq.lhs, sp.IndexedBase):
                expected = _at_step(eq, truth[(N.split(eq.lhs.name)[0], fl.index)], step)
                check_array("forward", eq.lhs.name, found, expected)
                failed = failed or _failed(found, len(expected))
        for eq, found in zip(fl.forward, values):
            if isinstance(eq.lhs, sp.MatrixSymbol):  # what the dense head reads
                rows, cols = E.shape(eq.lhs)
                passed = [[found.get((r, c), _NOT_DEFINED) for c in range(cols)]
                          for r in range(rows)]
                check("forward", eq.lhs, passed, truth[(N.split(eq.lhs.name)[0], fl.index)])
                return None if failed or _failed(found, rows * cols) else passed
        raise VerificationError(f"{d.arch.spec()}: the rnn layer passes nothing on")

    def recurrent_backward(self, env, truth, check_array, say):
        """The rnn layer's gradients: those of an entry at a time step (BPTT dH, BP4 dZ) step
        by step backward in time, the last step first, each step reading what the steps after
        it gave and compared as it comes (the first difference names the equation and the
        step); then dW, dU, db from them."""
        d, E = self.d, self.entries
        fl = d.features[0]
        say(f"layer {fl.index} of {len(d.features) + len(d.layers)}")
        dA = fl.symbols["dA"]  # the dense head's error of what the layer passes on
        E.arrays[dA.name] = _Array(dA.name, E.shape(dA), {
            (r, c): v for r, row in enumerate(env[dA.name]) for c, v in enumerate(row)})
        equations = list(fl.backward.values())
        for pos, step, found in self._in_time(equations, reversed(range(E.sizes[N.T])), {}):
            eq = equations[pos]
            expected = _at_step(eq, truth[(N.split(eq.lhs.name)[0], fl.index)], step)
            check_array(eq.name, eq.lhs.name, found, expected)

    def _in_time(self, equations, steps, initial) -> list[tuple]:
        """(position of the equation, step, {index: value}) as they are evaluated: the
        equations whose entries have a time step (τ in the lhs) step by step in the order of
        ``steps``, each in turn at each step; then the others (step None) at once. Each result
        becomes an array the formulas after it read; ``initial``: entries an array has before
        any step (by the array's name)."""
        E = self.entries
        for eq in equations:
            if isinstance(eq.lhs, sp.IndexedBase):
                E.arrays[eq.lhs.name] = _Array(eq.lhs.name, E.shape(eq.lhs),
                                               initial.get(eq.lhs.name, {}))
        in_time = [N.tau in eq.entry_lhs.free_symbols for eq in equations]
        order = [(pos, step) for step in steps for pos in range(len(equations)) if in_time[pos]]
        order += [(pos, None) for pos in range(len(equations)) if not in_time[pos]]
        out = []
        for pos, step in order:
            eq = equations[pos]
            found = E.evaluate(eq, {N.tau: step} if step is not None else None)
            if isinstance(eq.lhs, sp.IndexedBase):
                E.arrays[eq.lhs.name].update(found)
            out.append((pos, step, found))
        return out

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


def _at_step(eq, values, step) -> dict:
    """The entries of ``values`` (keyed as eq's lhs) at time step ``step`` (None: all)."""
    if step is None:
        return values
    where = list(eq.entry_lhs.indices).index(N.tau)
    return {index: v for index, v in values.items() if index[where] == step}


def _transpose(matrix):
    return [list(col) for col in zip(*matrix)]


# --- the feature layers' entry formulas at concrete sizes --------------------------------------

class _Failed:
    """An entry a formula could not give, and why."""

    __slots__ = ("note",)

    def __init__(self, note):
        self.note = note

    def __repr__(self) -> str:
        return f"_Failed({self.note!r})"


_NOT_DEFINED = _Failed("its equation does not define this entry")


def _failed(values, expected) -> bool:
    return len(values) < expected or any(isinstance(v, _Failed) for v in values.values())


class _Undefined(Exception):
    """A formula read an entry that has no value: outside the array, or one that failed."""


class _Array:
    """Values of an array keyed by their indices. ``zero``: the value outside its shape (a
    feature map's zero padding); None: a read outside it is a failure of the formula."""

    __slots__ = ("failed", "name", "shape", "values", "zero")

    def __init__(self, name, shape, values, zero=None):
        self.name, self.shape, self.zero = name, tuple(shape), zero
        self.values, self.failed = {}, {}
        self.update(values)

    def update(self, values) -> None:
        """Add entries (a recurrent layer's arrays grow step by step)."""
        for i, v in values.items():
            (self.failed if isinstance(v, _Failed) else self.values)[i] = v

    def __getitem__(self, index):
        try:
            return self.values[index]  # a negative index is not a key: no wrap-around
        except KeyError:
            pass
        where = f"{self.name}[{', '.join(map(str, index))}]"
        if index in self.failed:
            raise _Undefined(f"reads {where}, which its own equation could not give") from None
        inside = len(index) == len(self.shape) and all(
            0 <= i < n for i, n in zip(index, self.shape))
        if self.zero is not None and len(index) == len(self.shape) and not inside:
            return self.zero
        if inside:  # a recurrent layer's entry of a step not computed yet
            raise _Undefined(f"reads {where}, which nothing before it gives") from None
        raise _Undefined(f"reads {where}, outside its shape "
                         f"{'x'.join(map(str, self.shape))}") from None


def _arg_max(ar, name, shape, A_prev, stride) -> _Array:
    """M: 1 at the first maximum (row-major) of each window of A_prev, else 0."""
    one, zero = ar.number(Fraction(1)), ar.number(Fraction(0))
    m, C, H, W, f, _ = shape
    values = {}
    for k, c, x, y in product(range(m), range(C), range(H), range(W)):
        window = list(product(range(f), range(f)))
        try:
            first = window[_maxima(ar, [A_prev[(k, c, stride * x + u, stride * y + v)]
                                        for u, v in window])[0]]
        except _Undefined as exc:
            for u, v in window:
                values[(k, c, x, y, u, v)] = _Failed(str(exc))
            continue
        for u, v in window:
            values[(k, c, x, y, u, v)] = one if (u, v) == first else zero
    return _Array(name, shape, values)


_RELATIONS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
              ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


class _Entries:
    """A small interpreter of the index expressions the engine writes for feature layers.

    ``evaluate(eq)`` substitutes the concrete ``sizes`` (sizes, m, λ) into the equation's entry
    formula and evaluates it at every entry of its left-hand side: sums loop over their
    ranges, Piecewise range conditions are tested on the indices, arrays are read from
    ``arrays`` (``_Array``s by name); any other function of values (g, g') is evaluated by the
    arithmetic, as ``_Derived.evaluate`` evaluates an entry-by-entry map.
    """

    def __init__(self, sizes, arithmetic, cache):
        self.sizes, self.ar, self.cache = sizes, arithmetic, cache
        self.arrays = {}
        self.plans = {}
        self.zero = arithmetic.number(Fraction(0))
        self.symbolic = arithmetic is _SYMBOLIC

    def shape(self, base) -> tuple[int, ...]:
        return tuple(int(sp.sympify(n).xreplace(self.sizes)) for n in base.shape)

    def evaluate(self, eq, at=None) -> dict:
        """{index of the lhs: value, or _Failed where the formula reads what has no value}.
        ``at``: {index variable: value}, the entries of the lhs where that index has that
        value (one time step of a recurrent layer)."""
        key = (eq.entry_lhs, eq.entry_rhs)
        if key not in self.plans:
            self.plans[key] = self._plan(eq)
        positions, variables, ranges, value = self.plans[key]
        if at:
            ranges = [(at[v],) if v in at else span for v, span in zip(variables, ranges)]
        out = {}
        for values in product(*ranges):
            idx = dict(zip(variables, values))
            index = tuple(f(idx) for f in positions)
            try:
                out[index] = value(idx)
            except _Undefined as exc:
                out[index] = _Failed(str(exc))
            except KeyError as exc:  # an array no equation before gave, an index none binds
                out[index] = _Failed(f"uses {exc.args[0]}, which nothing before it gives")
        return out

    def _plan(self, eq):
        lhs = eq.entry_lhs.xreplace(self.sizes)
        rhs = eq.entry_rhs.xreplace(self.sizes)
        if isinstance(lhs, sp.Indexed):
            indices = lhs.indices
        elif isinstance(lhs, MatrixElement):
            indices = (lhs.i, lhs.j)
        else:
            raise VerificationError(f"{eq.name}: verify has no rule to read the entry {lhs}")
        variables = sorted({v for i in indices for v in i.free_symbols}, key=sp.default_sort_key)
        arrays = [lhs, *sorted(rhs.atoms(sp.Indexed) | rhs.atoms(MatrixElement),
                               key=sp.default_sort_key)]
        ranges = [range(self._extent(eq, v, arrays)) for v in variables]
        return [self._index(i) for i in indices], variables, ranges, self._value(rhs)

    @staticmethod
    def _extent(eq, variable, arrays) -> int:
        """How far an index runs: the size of an array it is a plain index of."""
        for e in arrays:
            indices, shape = ((e.indices, e.base.shape) if isinstance(e, sp.Indexed)
                              else ((e.i, e.j), e.parent.shape))
            for i, n in zip(indices, shape):
                if i == variable and sp.sympify(n).is_Integer:
                    return int(n)
        raise VerificationError(f"{eq.name} {eq.entry_lhs}: no array gives the range of "
                                f"the index {variable}")

    def _index(self, e):
        """An index expression: a function of the bound indices giving an int."""
        if e.is_Integer:
            value = int(e)
            return lambda idx: value
        if isinstance(e, sp.Symbol):
            return lambda idx: idx[e]
        linear = _linear(e)
        if linear is not None:  # c0 + Σ c v, as most indices are (s x + u - p): no loops
            c0, terms = linear
            if len(terms) == 1:
                ((v1, c1),) = terms
                return lambda idx: c0 + c1 * idx[v1]
            if len(terms) == 2:
                (v1, c1), (v2, c2) = terms
                return lambda idx: c0 + c1 * idx[v1] + c2 * idx[v2]
            if len(terms) == 3:
                (v1, c1), (v2, c2), (v3, c3) = terms
                return lambda idx: c0 + c1 * idx[v1] + c2 * idx[v2] + c3 * idx[v3]
            return lambda idx: c0 + sum(c * idx[v] for v, c in terms)
        if isinstance(e, (sp.Add, sp.Mul)):
            parts = [self._index(a) for a in e.args]
            if isinstance(e, sp.Add):
                return lambda idx: sum(f(idx) for f in parts)

            def times(idx):
                out = 1
                for f in parts:
                    out *= f(idx)
                return out
            return times
        raise VerificationError(f"verify has no rule to evaluate the index {e}")

    def _condition(self, e):
        """A condition of a Piecewise: on indices (ints), or on values."""
        if e in (sp.true, sp.false):
            truth = bool(e)
            return lambda idx: truth
        if isinstance(e, (sp.And, sp.Or, sp.Not)):
            parts = [self._condition(a) for a in e.args]
            if isinstance(e, sp.Not):
                return lambda idx: not parts[0](idx)
            if isinstance(e, sp.And):
                return lambda idx: all(f(idx) for f in parts)
            return lambda idx: any(f(idx) for f in parts)
        if isinstance(e, sp.core.relational.Relational) and e.rel_op in _RELATIONS:
            side = self._index if not _reads_arrays(e) else self._value
            lhs, rhs, op = side(e.lhs), side(e.rhs), _RELATIONS[e.rel_op]
            return lambda idx: bool(op(lhs(idx), rhs(idx)))
        raise VerificationError(f"verify has no rule to evaluate the condition {e}")

    def _value(self, e):
        """A value expression: a function of the bound indices giving a number."""
        ar = self.ar
        if e.is_Rational:
            value = ar.number(Fraction(int(e.p), int(e.q)))
            return lambda idx: value
        if isinstance(e, sp.Symbol):
            return self._index(e)
        if isinstance(e, (sp.Indexed, MatrixElement)):
            name = e.base.name if isinstance(e, sp.Indexed) else e.parent.name
            where = [self._index(i) for i in (e.indices if isinstance(e, sp.Indexed)
                                              else (e.i, e.j))]
            arrays = self.arrays
            if len(where) == 4:  # a feature map's or a kernel's entry
                f0, f1, f2, f3 = where
                return lambda idx: arrays[name][(f0(idx), f1(idx), f2(idx), f3(idx))]
            return lambda idx: arrays[name][tuple(f(idx) for f in where)]
        if isinstance(e, sp.Add):
            parts = [self._value(a) for a in e.args]
            return lambda idx: self._total([f(idx) for f in parts])
        if isinstance(e, sp.Mul):
            parts = [self._value(a) for a in e.args]

            def times(idx):
                out = parts[0](idx)
                for f in parts[1:]:
                    out = out * f(idx)
                return out
            return times
        if isinstance(e, sp.Pow) and e.exp.is_Integer:
            base, n = self._value(e.base), int(e.exp)
            one = ar.number(Fraction(1))
            return (lambda idx: base(idx) ** n) if n >= 0 else (lambda idx: one / base(idx) ** -n)
        if isinstance(e, sp.Sum):
            return self._sum(e)
        if isinstance(e, sp.KroneckerDelta):  # of indices: 1 where they are equal, else 0
            one, zero = ar.number(Fraction(1)), ar.number(Fraction(0))
            i, j = self._index(e.args[0]), self._index(e.args[1])
            return lambda idx: one if i(idx) == j(idx) else zero
        if isinstance(e, sp.Piecewise) and not (self.symbolic and _reads_arrays(
                sp.Tuple(*(c for _, c in e.args)))):  # SymPy decides conditions on symbols
            branches = [(self._value(v), self._condition(c)) for v, c in e.args]

            def piecewise(idx):
                for value, condition in branches:
                    if condition(idx):
                        return value(idx)
                raise _Undefined(f"no branch of {e} holds")
            return piecewise
        return self._function(e)

    def _sum(self, e):
        body = self._value(e.function)
        limits = [(v, self._index(lo), self._index(hi)) for v, lo, hi in e.limits]
        variables = [v for v, _, _ in limits]

        def total(idx):
            saved = {v: idx[v] for v in variables if v in idx}
            ranges = [range(lo(idx), hi(idx) + 1) for _, lo, hi in limits]
            terms = []
            for values in product(*ranges):
                idx.update(zip(variables, values))
                terms.append(body(idx))
            for v in variables:
                idx.pop(v, None)
            idx.update(saved)
            return self._total(terms)
        return total

    def _function(self, e):
        """g(values): a function the arithmetic evaluates, of the arrays' entries in it."""
        if e.has(sp.Sum):
            raise VerificationError(f"verify has no rule to evaluate {e}")
        atoms = sorted(e.atoms(sp.Indexed) | e.atoms(MatrixElement), key=sp.default_sort_key)
        dummies = [sp.Dummy(f"a{pos}") for pos in range(len(atoms))]
        body = e.xreplace(dict(zip(atoms, dummies)))
        indices = sorted(body.free_symbols - set(dummies), key=sp.default_sort_key)
        variables = [*dummies, *indices]
        call = _compiled(self.cache, self.ar, variables, body)
        reads = [self._value(a) for a in atoms] + [self._index(i) for i in indices]
        return lambda idx: call(*(f(idx) for f in reads))

    def _total(self, terms):
        total = getattr(self.ar, "total", None)
        if total is not None:
            return total(terms)
        out = self.zero
        for term in terms:
            out = out + term
        return out


def _linear(e):
    """(c0, ((v, c), ...)) where e = c0 + Σ c v in integers and symbols, else None."""
    terms = e.as_coefficients_dict()
    if not all(c.is_Integer and (v == 1 or isinstance(v, sp.Symbol))
               for v, c in terms.items()):
        return None
    return int(terms.get(sp.S.One, 0)), tuple(sorted(
        ((v, int(c)) for v, c in terms.items() if v != 1), key=lambda vc: vc[0].name))


def _reads_arrays(e) -> bool:
    return bool(e.atoms(sp.Indexed) or e.atoms(MatrixElement))


def _shape(matrix):
    return (len(matrix), len(matrix[0]) if matrix else 0)


def _matmul(A, B):
    if len(A[0]) != len(B):
        raise VerificationError(f"shapes {_shape(A)} and {_shape(B)} do not multiply")
    cols = list(zip(*B))
    return [[sum((x * y for x, y in zip(row, col)), 0 * row[0]) for col in cols] for row in A]
