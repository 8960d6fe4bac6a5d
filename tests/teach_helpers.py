"""Helpers of the teaching tests: numbers read back from what ``symbackprop example`` prints,
and a network's cost computed from the registry's definitions alone (``Network``)."""
from __future__ import annotations

import itertools
import re
from fractions import Fraction

import mpmath
import sympy as sp

from symbackprop import registry

_ROW = re.compile(r"\[ ([-0-9./e+ ]+) \]")


def number(text: str) -> Fraction:
    return Fraction(text)


def block(text: str, lhs: str, after: str | None = None) -> list[str]:
    """The lines of the equation whose left-hand side is ``lhs`` (after the heading ``after``)."""
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(n for n, line in enumerate(lines) if line.startswith(after))
    for n in range(start, len(lines)):
        stripped = lines[n].lstrip()
        if stripped.startswith(lhs + " "):
            indent = len(lines[n]) - len(stripped)
            out = [lines[n]]
            for line in lines[n + 1:]:
                if not line.strip() or len(line) - len(line.lstrip()) <= indent:
                    break
                out.append(line)
            return out
    raise AssertionError(f"no equation for {lhs!r} in the output")


def matrix(text: str, lhs: str, after: str | None = None) -> list[list[Fraction]]:
    """The matrix printed as the value of ``lhs`` (its last ``[ ... ]`` rows)."""
    rows = [_ROW.findall(line) for line in block(text, lhs, after)]
    rows = [found[-1] for found in rows if found]
    assert rows, f"no matrix printed for {lhs!r}"
    return [[number(x) for x in row.split()] for row in rows]


def scalar(text: str, lhs: str, after: str | None = None) -> Fraction:
    line = " ".join(block(text, lhs, after))
    return number(re.split(r" [=≈] ", line)[-1].strip())


# --- an independent cost: the registry's definitions evaluated in mpmath, no derivation -------
#
# The worked example and the explanation compute gradients from the derivation (the engine's
# chain rule). Here the same network's cost is computed from the entries' own expressions only
# (g(z) and the loss term, never a derivative), at 50 digits, and differentiated by central
# differences: with h = 1e-20 their error is far below the 1e-20 the checks allow.


DIGITS = 50
WORKING = 70  # digits mpmath works with here
STEP = mpmath.mpf("1e-20")


def activation_function(act, size):
    """The activation ``act`` of a layer of ``size`` units, column -> column, in mpmath."""
    if act.elementwise:
        g = sp.lambdify(registry.z, act.expr, "mpmath")
        return lambda column: [g(v) for v in column]
    # a map of the whole column (softmax): entry c in z_0 .. z_{n-1}
    xs = [sp.Dummy(f"z{k}") for k in range(size)]
    entries = []
    for c in range(size):
        entry = act.expr.xreplace({registry.n: size, registry.c_idx: c}).doit()
        entry = entry.replace(lambda e: isinstance(e, sp.Indexed) and e.base == registry.zvec,
                              lambda e: xs[int(e.indices[0])])
        entries.append(sp.lambdify(xs, entry, "mpmath"))
    return lambda column: [f(*column) for f in entries]


def loss_function(loss, size):
    """L of one sample: Σ_c term(a_c, y_c), in mpmath."""
    term = sp.lambdify((registry.a, registry.y), loss.term.xreplace({registry.n: size}), "mpmath")
    return lambda a, y: mpmath.fsum(term(p, q) for p, q in zip(a, y))


class Network:
    """The cost J of ``arch`` at given parameters, in mpmath, from the definitions alone."""

    def __init__(self, arch):
        self.arch = arch
        self.acts = [activation_function(act, size) for act, size in
                     zip(arch.activation_entries, arch.sizes[1:])]
        self.loss = loss_function(arch.loss_entry, arch.sizes[-1])
        self.l2 = mp(arch.l2)

    def forward(self, W, b, x):
        """(Zs, As) of one sample (lists of numbers): Zs[l - 1] is Z^[l], As[l] is A^[l]."""
        with mpmath.workdps(WORKING):
            Zs, As = [], [list(x)]
            for Wl, bl, g in zip(W, b, self.acts):
                Zs.append([mpmath.fsum(Wl[r][t] * As[-1][t] for t in range(len(As[-1])))
                           + bl[r] for r in range(len(bl))])
                As.append(g(Zs[-1]))
            return Zs, As

    def cost(self, W, b, X, Y):
        """J = (1/m) Σ_i L(A^[L]_i, Y_i) + (λ/2m) Σ_l ‖W^[l]‖²; X, Y: lists of samples."""
        with mpmath.workdps(WORKING):
            m = len(X)
            data = mpmath.fsum(self.loss(self.forward(W, b, x)[1][-1], y)
                               for x, y in zip(X, Y)) / m
            penalty = self.l2 / (2 * m) * mpmath.fsum(v ** 2 for Wl in W for row in Wl
                                                      for v in row)
            return data + penalty

    def gradient(self, W, b, X, Y, kind, layer, row, col=None):
        """∂J/∂W^[layer]_{row,col} or ∂J/∂b^[layer]_row by central differences."""
        def at(delta):
            W2 = [[list(r) for r in Wl] for Wl in W]
            b2 = [list(bl) for bl in b]
            if kind == "W":
                W2[layer - 1][row][col] += delta
            else:
                b2[layer - 1][row] += delta
            return self.cost(W2, b2, X, Y)
        with mpmath.workdps(WORKING):
            return (at(STEP) - at(-STEP)) / (2 * STEP)


def mp(value):
    """An exact (Rational, Fraction, int) or 50-digit SymPy number as an mpmath number."""
    with mpmath.workdps(WORKING):
        value = sp.sympify(value)
        if value.is_Rational:
            return mpmath.mpf(int(value.p)) / int(value.q)
        return mpmath.mpf(sp.Float(value, DIGITS)._mpf_)


def to_mp(matrix):
    """A SymPy matrix (or a list of rows) as rows of mpmath numbers."""
    rows = matrix.tolist() if hasattr(matrix, "tolist") else matrix
    return [[mp(v) for v in row] for row in rows]


def parameters_of(params):
    """Parameters (teach.inputs) as lists of mpmath rows (W) and columns (b)."""
    W = [to_mp(M) for M in params.weights]
    b = [[row[0] for row in to_mp(v)] for v in params.biases]
    return W, b


def every_parameter(sizes):
    """("W", l, r, c) and ("b", l, r, None) for every weight and bias."""
    for l in range(1, len(sizes)):
        for r, c in itertools.product(range(sizes[l]), range(sizes[l - 1])):
            yield "W", l, r, c
        for r in range(sizes[l]):
            yield "b", l, r, None
