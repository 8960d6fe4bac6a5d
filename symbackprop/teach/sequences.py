"""One gradient of a recurrent network, explained through time on its unrolled graph.

An rnn layer unrolled over its T steps is a computation graph like any other (``graph.Graph``:
every entry of Z_τ, H_τ and the dense head a node, defined by the derivation's entries with the
sizes filled in). A weight of the rnn layer is shared by every step: U[r,s] enters Z_τ[r] at
each step τ >= 1 (at τ = 0 it multiplies H_{-1}[s] = 0), W[r,s] and b[r] at every step. From
Z_τ[r] a path goes through one hidden unit at each later step, since Z_{τ+1}[p] reads every
H_τ[q] through U[p,q], to the last hidden state and through the head to the loss: the number of
paths grows geometrically with T. Backpropagation through time sums them by caching dH_τ and
dZ_τ once per step, backward in time; its steps are the derivation's BPTT, BP4 and BPU entries.

Along a path, the two edges from H_τ[q] to H_{τ+1}[p] multiply to one entry of the Jacobian
∂H_{τ+1}/∂H_τ = diag(g'(Z_{τ+1})) U (the local derivatives of the derivation's definitions), and
summed over the units a path can pass, the paths from step τ to the last step carry the matrix
product ∂H_{T-1}/∂H_τ = J_{T-1} ⋯ J_{τ+1}. Its norm over the number of steps a path spans is
what makes gradients vanish (norms below 1 multiply towards 0) or explode (above 1). Those
numbers are computed for one concrete example: weights, inputs and targets as ``example`` takes
them, the forward and backward values from the worked example (the derivation's entries), the
Jacobians from the graph's edges at those values.

With the head at every step (':all') the head reads every hidden state: a path leaves for it at
any step from its use on, the loss of the one example is the mean of its steps' losses (J with
m = 1), and every step's error dH_τ comes from its own head as well as from the next step.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import mpmath
import sympy as sp

from .. import naming as N
from ..errors import SymbackpropError
from .concrete import Known, concrete, zero_padding
from .graph import Graph, _longest_after, explain_image, theta_of
from .numbers import WORKING_DIGITS, settle
from .paths import Parameter, local

#: How many more time steps the table of path counts goes beyond the network's own T, and the
#: most hidden states (steps × units) an unrolled graph of another T is built with for it.
MORE_STEPS = 3
TABLE_STATES = 120
#: The numbers of the Jacobians are worked out for networks of at most this many hidden
#: units, and hidden states in all (steps × units): their matrices are shown in full.
NUMBERS_UNITS = 8
NUMBERS_STATES = 64
#: Longer sequences for which the bound on a Jacobian product is evaluated.
LONG_SEQUENCES = (10, 50)
#: The index symbols of a Jacobian's entry, ∂H_{τ+1}[p]/∂H_τ[q].
P_IDX, Q_IDX = sp.symbols("p q", integer=True, nonnegative=True)
#: Inputs drawn for an explanation without --x: from -1 to 1 in steps of 0.5.
INPUT_CHOICES = tuple(sp.Rational(k, 2) for k in range(-2, 3))


class SequenceError(SymbackpropError, ValueError):
    """A recurrent network this explanation does not cover."""


@dataclass(frozen=True)
class StepUse:
    """θ's use at step ``tau``: the edge into Z_τ, the paths from it, and their length."""

    tau: int
    edge: object  # graph.Edge θ -> Z[1][τ, r]
    paths: int
    factors: int  # local derivatives along each of these paths


@dataclass(frozen=True)
class StepRows:
    """The backward equations at one step τ: dH_τ and dZ_τ (their entries, τ filled in)."""

    tau: int
    rows: tuple  # ((lhs, rhs, rule), ...)


@dataclass(frozen=True)
class Jacobian:
    """∂H_τ/∂H_{τ-1} at step τ (``tau``), its value and its spectral norm; ``slope`` the
    largest |g'(Z_τ)| of the step."""

    tau: int
    value: sp.ImmutableMatrix
    norm: sp.Float
    slope: sp.Float


@dataclass(frozen=True)
class Product:
    """∂H_{T-1}/∂H_τ: the product of the ``length`` Jacobians a path from step τ crosses."""

    tau: int
    length: int
    value: sp.ImmutableMatrix
    norm: sp.Float


@dataclass(frozen=True)
class Numbers:
    """The Jacobians and errors of one example, and θ's gradient there."""

    jacobians: tuple[Jacobian, ...]  # τ = 1 .. T-1
    products: tuple[Product, ...]  # τ = T-2 down to 0: ∂H_{T-1}/∂H_τ
    U_norm: sp.Float
    error_norms: tuple[tuple[int, sp.Float], ...]  # (τ, ‖dH_τ‖₂), τ = T-1 down to 0
    contributions: tuple[tuple[int, sp.Expr, sp.Expr], ...]  # (τ, term, its value)
    penalty: tuple | None  # (the L2 penalty's term of the gradient, its value), or None
    gradient: sp.Expr  # ∂J/∂θ at these numbers (∂L/∂θ without a penalty)
    largest: sp.Float  # the largest ‖J_τ‖₂ here
    long_bounds: tuple[tuple[int, sp.Float], ...]  # (steps, largest^(steps - 1))
    worked: object  # the worked example of the numbers (m = 1)
    x_drawn: bool  # the inputs were drawn (no --x)
    y_default: bool  # the targets are the default ones (no --y)


@dataclass(frozen=True)
class SequenceExplanation:
    graph: object  # graph.ImageExplanation: definitions, paths, sums, backpropagation
    steps: int  # T
    units: int  # n_1
    in_rnn: bool  # θ is a parameter of the rnn layer (else of the dense head)
    uses: tuple[StepUse, ...]  # by step, in order of τ
    head_paths: int  # paths from one entry of the last hidden state to L
    counts_by_steps: tuple[tuple[int, int], ...]  # (T', paths of θ with T' steps)
    backward_in_time: tuple[StepRows, ...]  # τ = T-1 down to 0
    jacobian_entry: tuple  # (∂H_{τ+1}[p]/∂H_τ[q], its local derivative)
    numbers: Numbers | None  # None: a network larger than NUMBERS_UNITS, NUMBERS_STATES

    @property
    def derivation(self):
        return self.graph.derivation

    @property
    def parameter(self) -> Parameter:
        return self.graph.parameter

    @property
    def path_count(self) -> int:
        return self.graph.path_count


def default_samples(arch, seed: int, x: str | None, y: str | None):
    """--x and --y of an explanation, or else inputs drawn from ``seed`` (from -1 to 1 in
    steps of 0.5) and the target 1 for the first output unit, 0 for the others (one-hot, so
    that every loss takes it). Returns (samples, whether x was drawn, whether y was the
    default)."""
    from .inputs import parse_samples_of, sample_form

    form = sample_form(arch)
    x_drawn, y_default = x is None, y is None
    if x_drawn:
        rng = random.Random(f"x{seed}")
        x = ", ".join(str(rng.choice(INPUT_CHOICES)) for _ in range(form.n_in))
    if y_default:
        head = arch.sizes[-1]
        y = ", ".join((["1"] + ["0"] * (head - 1)) * (form.n_out // head))
    return parse_samples_of(form, x, y), x_drawn, y_default


def explain_sequence(derivation, parameter: Parameter, parameters=None, samples=None,
                     drawn=(False, False)) -> SequenceExplanation:
    """The paths of ``parameter`` through time, backpropagation through time, and the
    Jacobians from step to step at one example's numbers (``parameters``, ``samples``: those
    of ``example``; by default drawn with seed 0)."""
    from .inputs import draw_parameters

    d = derivation
    arch = d.arch
    if samples is None:
        samples, x_drawn, y_default = default_samples(arch, 0, None, None)
    else:
        x_drawn, y_default = drawn
    if parameters is None:
        parameters = draw_parameters(0, arch)
    if samples.m != 1:
        raise SequenceError(f"explain works one example through time; --x has {samples.m} "
                            "samples: give one")
    g = Graph(d)
    e = explain_image(d, parameter, g)
    steps, units = arch.sequence[0], arch.sizes[0]
    rnn = d.features[0]
    H = rnn.symbols["H"].xreplace(g.rules)
    count = g.paths_from()
    head_paths = count[H[0, steps - 1, 0]]
    in_rnn = parameter.layer == 1

    uses = []
    longest = _longest_after(g)  # the longest path from a use (all alike without ':all')
    if in_rnn:
        for edge in e.uses:
            tau = int(edge.target.indices[1])
            uses.append(StepUse(tau, edge, count[edge.target], 1 + longest[edge.target]))
        uses.sort(key=lambda use: use.tau)
    counts_by_steps = tuple(
        (T, unrolled.path_count(theta_of(unrolled, parameter)))
        for T in range(2, steps + MORE_STEPS + 1) if T == steps or T * units <= TABLE_STATES
        for unrolled in ((g if T == steps else Graph(d, steps=T)),))

    jacobian_entry = _jacobian_entry(g, rnn)
    numbers = None
    if units <= NUMBERS_UNITS and steps * units <= NUMBERS_STATES:
        numbers = _numbers(d, parameter, g, jacobian_entry[1], parameters, samples,
                           (x_drawn, y_default))
    return SequenceExplanation(
        e, steps, units, in_rnn, tuple(uses), head_paths, counts_by_steps,
        tuple(_backward_in_time(g, rnn, steps)), jacobian_entry, numbers)


def _numbers(d, parameter, g: Graph, entry, parameters, samples, drawn) -> Numbers:
    """The example worked from the derivation's entries; the Jacobians at its values."""
    from .worked import work_example

    steps, units = d.arch.sequence[0], d.arch.sizes[0]
    rnn = d.features[0]
    H, Z = (rnn.symbols[name].xreplace(g.rules) for name in ("H", "Z"))
    worked = work_example(d, parameters, samples, sp.Rational(1, 10))
    known = _known(worked, g)
    jacobians = tuple(_jacobian(g, known, entry, Z, H, tau, units) for tau in range(1, steps))
    products, total = [], sp.eye(units)
    for jac in reversed(jacobians):
        total = _settled(total * jac.value)
        products.append(Product(jac.tau - 1, steps - jac.tau, total, _norm(total)))
    dH = worked.value_of(str(rnn.symbols["dH"].label))
    error_norms = tuple((tau, _norm(sp.ImmutableMatrix([dH[0, tau, r] for r in range(units)])))
                        for tau in reversed(range(steps)))
    U = parameters.get("U", 1)
    contributions, penalty, gradient = _contributions(d, parameter, g, known, worked)
    largest = max(jac.norm for jac in jacobians) if jacobians else sp.Float(0, WORKING_DIGITS)
    return Numbers(jacobians, tuple(products), _norm(sp.ImmutableMatrix(U.tolist())),
                   error_norms, contributions, penalty, gradient, largest,
                   tuple((n, settle(largest ** (n - 1))) for n in LONG_SEQUENCES), worked,
                   *drawn)


def _known(worked, g: Graph) -> Known:
    """Every value of the worked example, by name, for evaluating the graph's entries."""
    known = Known(g.sizes)
    items = [*worked.given, *[item for stage in (*worked.forward, *worked.backward)
                              for item in stage.values]]
    for item in items:
        known[item.symbol] = item.value
    return known


def _settled(M) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix(M.shape[0], M.shape[1], lambda i, j: settle(M[i, j]))


def _norm(M) -> sp.Float:
    """The spectral norm ‖M‖₂, the largest singular value, at the working precision."""
    with mpmath.workdps(WORKING_DIGITS + 10):
        A = mpmath.matrix([[mpmath.mpf(sp.Float(v, WORKING_DIGITS + 10)._mpf_) for v in row]
                           for row in M.tolist()])
        values = mpmath.svd_r(A, compute_uv=False)
        return sp.Float(max(values), WORKING_DIGITS)


def _jacobian(g: Graph, known: Known, entry, Z, H, tau: int, units: int) -> Jacobian:
    """∂H_τ/∂H_{τ-1} at the example's values: entry (p, q) the derivative of the definitions
    from H_{τ-1}[q] to H_τ[p] (``entry``, in τ, p, q) at step τ - 1."""
    value = sp.ImmutableMatrix(units, units, lambda p, q: settle(known.substitute(
        entry.xreplace({N.tau: tau - 1, P_IDX: p, Q_IDX: q})).doit()))
    slopes = [abs(settle(known.substitute(g.edge(Z[0, tau, p], H[0, tau, p]).derivative)
                         .doit())) for p in range(units)]
    return Jacobian(tau, value, _norm(value), max(slopes))


def _jacobian_entry(g: Graph, rnn) -> tuple:
    """∂H_{τ+1}[p]/∂H_τ[q] from the derivation's definitions of one example, τ, p and q
    symbolic: the activation's derivative times the recurrence's (U[p,q])."""
    tau = N.tau
    Z_eq, H_eq = rnn.forward[0], rnn.forward[1]
    rules = g.example_rules
    at_next = {N.tau: tau + 1, N.r: P_IDX}
    source = rnn.symbols["H"].xreplace(rules)[0, tau, Q_IDX]
    middle = Z_eq.entry_lhs.xreplace(rules).xreplace(at_next)
    target = H_eq.entry_lhs.xreplace(rules).xreplace(at_next)
    through_z = local(Z_eq.entry_rhs.xreplace(rules).xreplace(at_next), source)
    through_g = local(H_eq.entry_rhs.xreplace(rules).xreplace(at_next), middle)
    return (sp.Derivative(target, source, evaluate=False),
            _tidy(sp.Mul(through_g, through_z)))


def _tidy(expr):
    """An entry with its step filled in: conditions decided, sums of nothing dropped."""
    from .graph import single_sums_out

    expr = zero_padding(expr)
    return single_sums_out(expr.replace(lambda e: isinstance(e, sp.Sum) and e.function == 0,
                                        lambda e: sp.Integer(0)))


def _backward_in_time(g: Graph, rnn, steps: int):
    """dH_τ and dZ_τ at every step, last step first: the derivation's entries with τ given."""
    names = [name for name in rnn.backward if rnn.backward[name].lhs in
             (rnn.symbols["dH"], rnn.symbols["dZ"])]
    for tau in reversed(range(steps)):
        rows = []
        for name in names:
            eq = rnn.backward[name]
            at = {N.tau: sp.Integer(tau)}
            rows.append((eq.entry_lhs.xreplace(g.example_rules).xreplace(at),
                         _tidy(eq.entry_rhs.xreplace(g.example_rules).xreplace(at)), name))
        yield StepRows(tau, tuple(rows))


def _contributions(d, parameter: Parameter, g: Graph, known: Known, worked):
    """θ's gradient as the derivation's entry gives it: one term per step t of its sum over
    steps, each at the example's values; the L2 penalty's term (the entry's terms in λ), or
    None; and the whole gradient."""
    from .graph import _at, gradient_name

    eq = d.layer(parameter.layer).backward[gradient_name(d, parameter)]
    entry = eq.entry_rhs.xreplace(g.example_rules).xreplace(_at(eq, parameter))
    parts = sp.Add.make_args(entry)
    penalty_part = sp.Add(*[t for t in parts if t.has(N.lam)])
    terms = []
    for part in parts:
        sums = [x for x in sp.Mul.make_args(part)
                if isinstance(x, sp.Sum) and N.t in [v for v, _, _ in x.limits]]
        if not sums or parameter.layer != 1:
            continue
        total = sums[0]
        scale = part / total
        _, low, high = next(limit for limit in total.limits if limit[0] == N.t)
        others = [limit for limit in total.limits if limit[0] != N.t]
        summand = scale * (sp.Sum(total.function, *others) if others else total.function)
        for t in range(int(low), int(high) + 1):
            term = _tidy(concrete(summand, {}, {N.t: t}))
            if term != 0:
                terms.append((t, term, settle(known.substitute(term).doit())))
    penalty = None
    if penalty_part != 0:
        penalty = (penalty_part,
                   settle(known.substitute(penalty_part.xreplace({N.lam: d.l2})).doit()))
    value = worked.value_of(f"d{parameter.kind}[{parameter.layer}]")
    index = (parameter.row, 0) if parameter.kind == "b" and parameter.layer > d.arch.offset \
        else parameter.indices
    return tuple(terms), penalty, value[index]
