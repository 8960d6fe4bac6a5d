"""One gradient of an image network, explained path by path on its concrete computation graph.

For one example (m = 1) every entry of every layer is a node: its definition is the layer's
forward entry with the sizes filled in, the sums over windows written out and the zero padding
dropped (``concrete``). A node depends on the entries its definition reads; the local
derivative on that edge is the definition's derivative. A kernel's weight is shared: it enters
the pre-activation at every output position whose window puts its offset on the input, so it
has one first edge per position, and every path from one of them to the loss is a path of the
weight. Backpropagation sums the same paths by caching each position's error dZ once; its
steps are the derivation's BP equations, entry by entry. Their agreement is checked: the
backpropagated entry, every cached error substituted, against the sum over the paths.

Counting multiplications: a path of k factors takes k - 1, a bias's first factor (1) and
flatten's (1) being no multiplication; backpropagation takes one per edge of the graph
(dL/dsource += local · dL/dtarget), but none for a bias, for flatten, for the loss's edges,
nor for edges out of the input. On a dense network these are ``paths.multiplications_by_paths``
and ``paths.multiplications_by_backprop``.
"""
from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .. import naming as N
from ..errors import SymbackpropError
from ..model import Layer
from .concrete import concrete, concrete_sizes, entry_positions
from .paths import (
    CHECK_LIMIT,
    LOSS,
    PATH_LIMIT,
    SHOWN_PATHS,
    Parameter,
    ParameterError,
    _Example,
    _hold,
    _in_terms_of_output,
    _output_unit,
    _unit,
    local,
)

#: What each kind of edge is, in words (the templates print them beside the derivative).
EDGE_NOTES = {
    "parameter": "the parameter enters a pre-activation",
    "activation": "the activation's derivative",
    "weight": "the next layer's pre-activation, through a weight",
    "recurrence": "the next step's pre-activation, through the recurrent weight",
    "pool": "the pooling window's derivative",
    "flatten": "flatten only renames the entry",
    "pass": "the rnn layer passes its hidden state on: a renaming",
    "loss": "the loss's derivative",
}

#: The kind of the edges into the entries of each stage of a feature kind (kinds.Stage.name).
STAGE_EDGES = {"correlation": "weight", "activation": "activation", "maxpool": "pool",
               "avgpool": "pool", "flatten": "flatten", "recurrence": "recurrence",
               "pass": "pass"}
#: Edges that only rename an entry: no multiplication along a path or in backpropagation.
RENAMING = ("flatten", "pass")


@dataclass(frozen=True)
class Stage:
    """One forward equation of one layer: the entries it defines are a stage of the graph."""

    label: int
    kind: str  # the kind of the edges into it: "weight", "activation", "pool", "flatten"
    equation: object
    dense: bool  # a dense layer's (its activation's g' may be stated through A)


@dataclass(frozen=True)
class Edge:
    source: sp.Basic
    target: sp.Basic
    derivative: sp.Expr
    kind: str

    @property
    def lhs(self):
        return sp.Derivative(self.target, self.source, evaluate=False)


@dataclass(frozen=True)
class Path:
    nodes: tuple
    factors: tuple

    @property
    def product(self) -> sp.Expr:
        return sp.Mul(*self.factors)


@dataclass(frozen=True)
class Axis:
    """The output rows (or columns) where a kernel entry reads the input: ``index`` (x or y)
    runs over ``values``, those with 0 <= ``read`` <= ``last`` of the input's size ``size``."""

    index: sp.Symbol
    read: sp.Expr  # s x + u - p, the input row read
    last: int  # the input's size - 1
    values: tuple[int, ...]
    size: sp.Symbol  # n_H^[l] (or n_W^[l]), the output rows
    count: int  # its number


@dataclass(frozen=True)
class CachedStep:
    lhs: sp.Basic
    rhs: sp.Expr
    rule: str
    simplified: sp.Expr | None = None


@dataclass(frozen=True)
class Counts:
    by_paths: int
    by_backprop: int
    for_parameter_by_paths: int


@dataclass(frozen=True)
class ImageExplanation:
    derivation: object
    parameter: Parameter
    theta: sp.Basic
    definitions: tuple  # (entry lhs, entry rhs) of every stage from θ's layer on, and L
    first_path_edges: tuple[Edge, ...]  # one edge of each stage, along path 1
    uses: tuple[Edge, ...]  # θ's first edges: one per position it is used at
    axes: tuple[Axis, ...]  # a kernel weight's rows and columns (empty otherwise)
    per_use: tuple[int, ...]  # paths from each use to L
    fans: tuple | None  # ((array, fan), ...) when every entry of a stage reaches as many
    path_count: int
    paths: tuple[Path, ...]
    path_sum: sp.Expr | None
    grouped: tuple  # (∂use/∂θ, ∂L/∂use) of every use: their products sum to ∂L/∂θ
    cached: tuple[CachedStep, ...]
    expanded: sp.Expr  # backpropagation's entry for θ with its sums written out
    entry: tuple  # the BP equation's entry over m examples (symbolic sizes), general
    entry_at: tuple  # ... and at θ
    agrees: bool | None
    checked_by: str  # "expanded" or "points": how the agreement was established
    counts: Counts
    targets_sum_to_one: bool

    @property
    def all_shown(self) -> bool:
        return len(self.paths) == self.path_count

    @property
    def shared(self) -> bool:
        return len(self.uses) > 1


class Graph:
    """The computation graph of one example: every stage's entries, their definitions, and
    who reads what. ``steps``: a recurrent network unrolled over that many time steps instead
    of its T (the derivation holds for every T)."""

    def __init__(self, derivation, steps=None):
        self.d = derivation
        self.ex = _Example(derivation)
        self.sizes = concrete_sizes(derivation.arch, 1, steps)
        # k is the example (0: one example); with an rnn's head at every step (':all') it is
        # also the column of the head's arrays, one per step, so it is left to each entry
        self.columns = derivation.arch.every_step
        self.rules = dict(self.sizes) if self.columns else {**self.sizes, N.k: sp.Integer(0)}
        self.stages: list[Stage] = []
        for layer in derivation.features:
            for stage, eq in zip(layer.kind.stages_of(layer.feature), layer.forward):
                self.stages.append(Stage(layer.index, STAGE_EDGES[stage.name], eq, False))
        for layer in derivation.layers:
            self.stages.append(Stage(layer.index, "weight", layer.forward[0], True))
            self.stages.append(Stage(layer.index, "activation", layer.forward[1], True))
        self._edges: dict = {}
        self.definition: dict = {}
        self.stage_of: dict = {}
        self.nodes: list = []  # by stage, in each stage lexicographically
        self.readers: dict = {}
        for pos, stage in enumerate(self.stages):
            for at in entry_positions(stage.equation.entry_lhs, stage.equation.entry_rhs,
                                      self.rules):
                at = {N.k: sp.Integer(0), **at}
                node = stage.equation.entry_lhs.xreplace(self.rules).xreplace(at)
                self._add(node, concrete(stage.equation.entry_rhs, self.rules, at), pos)
        self._add(LOSS, concrete(self.loss(), self.rules), len(self.stages))
        self.nodes = self._in_dependency_order()

    def shown(self, dense: bool) -> dict:
        """The sizes an entry is shown with: one example's (k = 0); with the head at every step
        a dense layer's column k is the step, shown as τ."""
        if not self.columns:
            return self.rules
        return {**self.rules, N.k: N.tau} if dense else self.example_rules

    @property
    def example_rules(self) -> dict:
        """The sizes and the one example's index k = 0 (the rnn layer's entries)."""
        return {**self.rules, N.k: sp.Integer(0)}

    def loss(self):
        """L of the one example: its loss (the head at every step: the mean of its steps'
        losses, J with m = 1), sizes filled in."""
        d = self.d
        if not self.columns:
            return d.loss_entry.xreplace({d.example_index: 0}).xreplace(self.rules)
        return (d.cost - d.penalty).xreplace(self.rules)

    def in_column(self, expr, column):
        """An entry formula of a dense layer at one example's column 0 (``_Example``'s arrays
        of one column) in ``column`` of the graph's arrays (a step's, with ':all')."""
        if not self.columns:
            return expr
        arrays = {}
        for layer in self.d.layers:
            for M in (layer.Z, layer.A, layer.dZ, layer.dA):
                arrays[M.name] = M.xreplace(self.rules)
        arrays[self.d.Y.name] = self.d.Y.xreplace(self.rules)
        return expr.xreplace({e: arrays[e.parent.name][e.indices[0], column]
                              for e in expr.atoms(MatrixElement) if e.parent.name in arrays})

    def _in_dependency_order(self) -> list:
        """The nodes with every node after the entries its definition reads, otherwise in the
        order they were added (stage by stage; an rnn's steps interleave its stages)."""
        position = {node: n for n, node in enumerate(self.nodes)}
        waiting = {node: len({e for e in _entries(self.definition[node])
                              if e in self.definition}) for node in self.nodes}
        ready = [position[node] for node in self.nodes if waiting[node] == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            node = self.nodes[heapq.heappop(ready)]
            out.append(node)
            for reader in dict.fromkeys(self.readers.get(node, [])):
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    heapq.heappush(ready, position[reader])
        return out

    def _add(self, node, definition, stage):
        self.definition[node] = definition
        self.stage_of[node] = stage
        self.nodes.append(node)
        for entry in _entries(definition):
            self.readers.setdefault(entry, []).append(node)

    def kind(self, target) -> str:
        pos = self.stage_of[target]
        return "loss" if pos == len(self.stages) else self.stages[pos].kind

    def successors(self, node) -> list:
        return self.readers.get(node, [])

    def edge(self, source, target, first=False) -> Edge:
        key = (source, target)
        if key not in self._edges:
            kind = "parameter" if first else self.kind(target)
            stage = self.stages[self.stage_of[target]] if target is not LOSS else None
            if kind == "activation" and stage.dense:
                derivative = self._dense_activation(stage.label, target, source)
            else:
                derivative = _diff(self.definition[target], source)
            if kind == "loss" and self.columns:  # the mean over the steps' losses: 1/T in front
                derivative = _mean_in_front(derivative, self.sizes[N.T])
            self._edges[key] = Edge(source, target, derivative, kind)
        return self._edges[key]

    def _dense_activation(self, label, target, source):
        """A dense activation's edge as a dense network's explanation has it: g' from the
        derivation's entry, stated through A where the registry knows how; a coupled one
        (softmax) with distinct units first, then these."""
        ex, out_unit, in_unit = self.ex, target.indices[0], source.indices[0]
        column = target.indices[1]
        Z = ex.matrix(ex.layer(label).Z)
        if ex.layer(label).activation.elementwise:
            derivative = local(ex.a_entry(label, out_unit), Z[in_unit, 0])
            return self.in_column(_in_terms_of_output(derivative, ex, label, out_unit, in_unit),
                                  column)
        u, v = _unit(label), _output_unit(label)
        derivative = local(ex.a_entry(label, v), Z[u, 0])
        derivative = _in_terms_of_output(derivative, ex, label, v, u)
        return self.in_column(derivative.xreplace({v: out_unit, u: in_unit}), column)

    def parameters(self):
        """Every weight and bias entry the graph reads, with whether it is a bias."""
        for layer in (*self.d.features, *self.d.layers):
            if isinstance(layer, Layer):
                arrays = ((layer.W, False), (layer.b, True))
            else:
                arrays = tuple((layer.symbols[name], name == "b")
                               for name in layer.kind.parameters)
            for array, is_bias in arrays:
                for entry in self.readers:
                    if _array_of(entry) == _name(array):
                        yield entry, is_bias

    # counting ------------------------------------------------------------------------------
    def counts(self, theta) -> Counts:
        """Multiplications per example for the whole gradient, path by path and by backprop;
        and this parameter's paths alone."""
        paths, factors = {LOSS: 1}, {LOSS: 0}
        for node in reversed(self.nodes):
            if node is LOSS:
                continue
            p = f = 0
            for target in self.successors(node):
                p += paths[target]
                f += factors[target] + (self.kind(target) not in RENAMING) * paths[target]
            paths[node], factors[node] = p, f
        by_paths = by_backprop = 0
        own = 0
        for entry, is_bias in sorted(self.parameters(), key=lambda e: sp.default_sort_key(e[0])):
            count = total = 0
            for target in self.successors(entry):
                count += paths[target]
                total += factors[target] + (0 if is_bias else 1) * paths[target]
                by_backprop += 0 if is_bias else 1
            by_paths += total - count
            if entry == theta:
                own = total - count
        for node in self.nodes:
            if node is LOSS:
                continue
            kind = self.kind(node)
            if kind in RENAMING:
                continue
            by_backprop += sum(1 for source in _entries(self.definition[node])
                               if source in self.definition)
        return Counts(by_paths, by_backprop, own)

    def paths_from(self) -> dict:
        """{node: the number of paths from it to L}."""
        count: dict = {LOSS: 1}
        for node in reversed(self.nodes):
            if node is not LOSS:
                count[node] = sum(count[t] for t in self.successors(node))
        return count

    def path_count(self, theta) -> int:
        """The number of paths from the parameter entry θ to L."""
        count = self.paths_from()
        return sum(count[t] for t in self.successors(theta))


def _mean_in_front(derivative, steps: int):
    """(1/T) times the derivative of one step's loss, as a product written that way."""
    inner = sp.Add(*[sp.factor_terms(term * steps) for term in sp.Add.make_args(derivative)])
    return sp.Mul(sp.Rational(1, steps), inner, evaluate=False)


def _diff(expr, source):
    """∂expr/∂source; of a sum, only its terms that hold the source (a dense layer's entry
    after flatten sums hundreds of products, one of which holds it)."""
    if isinstance(expr, sp.Add):
        return sp.Add(*[sp.diff(term, source) for term in expr.args if term.has(source)])
    return sp.diff(expr, source)


def _entries(expr):
    return sorted(expr.atoms(sp.Indexed) | expr.atoms(MatrixElement), key=sp.default_sort_key)


def _name(array) -> str:
    return str(array.label) if isinstance(array, sp.IndexedBase) else array.name


def _array_of(entry) -> str:
    return _name(entry.base) if isinstance(entry, sp.Indexed) else entry.parent.name


# --- the explanation ------------------------------------------------------------------------

def theta_of(g: Graph, parameter: Parameter):
    """The entry of the graph that ``parameter`` names."""
    d = g.d
    layer = d.layer(parameter.layer)
    if parameter.layer <= d.arch.offset:
        return layer.symbols[parameter.kind].xreplace(g.rules)[parameter.indices]
    array = (layer.W if parameter.kind == "W" else layer.b).xreplace(g.rules)
    return array[parameter.indices if parameter.kind == "W" else (parameter.row, 0)]


def gradient_name(d, parameter: Parameter) -> str:
    """The backward equation of the parameter's gradient: BP1 (W), BP2 (b), or the one its
    layer kind names for its target (an rnn's BPU for U)."""
    layer = d.layer(parameter.layer)
    if parameter.layer > d.arch.offset:
        return "BP1" if parameter.kind == "W" else "BP2"
    return next(grad.name for stage in layer.kind.stages_of(layer.feature)
                for grad in stage.gradients if grad.target == parameter.kind)


def explain_image(derivation, parameter: Parameter, graph: Graph | None = None
                  ) -> ImageExplanation:
    """The paths of ``parameter`` on the concrete graph of one example (``graph``, else built
    here), their sum, and backpropagation's cached form of it."""
    d = derivation
    g = graph if graph is not None else Graph(d)
    layer = d.layer(parameter.layer)
    is_map = parameter.layer <= d.arch.offset
    theta = theta_of(g, parameter)
    uses = tuple(g.edge(theta, target, first=True) for target in g.successors(theta))
    if not uses:
        raise ParameterError(f"{parameter} multiplies only the zero padding of this network: "
                             "it reaches no pre-activation, and its gradient is 0")

    # paths: from each use to L, lexicographically
    count_from = g.paths_from()
    per_use = tuple(count_from[edge.target] for edge in uses)
    path_count = sum(per_use)
    shown = path_count if path_count <= PATH_LIMIT else SHOWN_PATHS
    paths = tuple(itertools.islice(_paths(g, theta, uses), shown))
    path_sum = sp.Add(*[p.product for p in paths]) if shown == path_count else None

    # grouped by use: Σ ∂use/∂θ · ∂L/∂use
    grouped = tuple((edge.derivative, sp.Derivative(LOSS, edge.target, evaluate=False))
                    for edge in uses)

    cached, bp_entry = _backpropagation(g, parameter, theta)
    expanded = concrete(bp_entry, g.rules)
    agrees, how = None, ""
    after = _longest_after(g)
    longest = 1 + max((after[edge.target] for edge in uses), default=0)
    if path_count <= CHECK_LIMIT and path_count * longest <= CHECK_FACTORS:
        explicit = path_sum if path_sum is not None else sp.Add(
            *[p.product for p in _paths(g, theta, uses)])
        agrees, how = _same(g, concrete(explicit, g.rules),
                            _substitute_cached(g, expanded))

    eq = layer.backward[gradient_name(d, parameter)]
    entry = (eq.entry_lhs, eq.entry_rhs)
    at = _at(eq, parameter)
    entry_at = (eq.entry_lhs.xreplace(at), eq.entry_rhs.xreplace(at))
    targets = any(step.rule == "targets" for step in d.output.backward["output"].steps)
    kernel = is_map and d.arch.image is not None
    return ImageExplanation(
        d, parameter, theta, _definitions(g, parameter.layer),
        tuple(_first_path_edges(g, theta, uses)), uses, _axes(d, parameter) if kernel else (),
        per_use, _fans(g, uses), path_count, paths, path_sum, grouped, tuple(cached), expanded,
        entry, entry_at, agrees, how, g.counts(theta), targets)


#: Compare the paths' sum and backpropagation while the paths have at most this many local
#: derivatives in all (100 paths of a 100-step rnn, 10,000 factors, take over a minute).
CHECK_FACTORS = 4_096


def _longest_after(g: Graph) -> dict:
    """{node: the local derivatives along the longest path from it to L}."""
    longest = {LOSS: 0}
    for entry in reversed(g.nodes):
        if entry is not LOSS:
            longest[entry] = 1 + max((longest[t] for t in g.successors(entry)), default=0)
    return longest


def _at(eq, parameter: Parameter) -> dict:
    """{index: value} putting θ's indices into the entry of its BP equation."""
    return {i: sp.Integer(v) for i, v in zip(eq.entry_lhs.indices, parameter.indices)
            if i.is_Symbol}


def _paths(g: Graph, theta, uses):
    """Every path from θ to L, the uses in order, each continued lexicographically."""
    def walk(node, nodes, factors):
        if node is LOSS:
            yield Path(tuple(nodes), tuple(factors))
            return
        for target in g.successors(node):
            edge = g.edge(node, target)
            yield from walk(target, [*nodes, target], [*factors, edge.derivative])
    for edge in uses:
        yield from walk(edge.target, [theta, edge.target], [edge.derivative])


def _first_path_edges(g: Graph, theta, uses):
    node, edge = uses[0].target, uses[0]
    yield edge
    while node is not LOSS:
        target = g.successors(node)[0]
        edge = g.edge(node, target)
        yield edge
        node = target


def _fans(g: Graph, uses):
    """((stage's array, fan), ...) when every entry reached at a stage reaches as many entries
    of the next: then the paths from each use are the product of the fans; else None."""
    frontier = [edge.target for edge in uses]
    fans = []
    while frontier and frontier[0] is not LOSS:
        counts = {len(g.successors(node)) for node in frontier}
        if len(counts) != 1:
            return None
        following = []
        for node in frontier:
            for target in g.successors(node):
                if target not in following:
                    following.append(target)
        fans.append((following[0], counts.pop()))
        frontier = following
    return tuple(fans)


def _axes(d, parameter: Parameter) -> tuple[Axis, ...]:
    """Where a kernel entry W[r,c,u,v] reads the input: the output rows x with
    0 <= s x + u - p <= n_H^[l-1] - 1, and so the columns y; a bias: every row and column."""
    layer = d.layer(parameter.layer)
    feature = layer.feature
    shapes = d.arch.shapes()
    (_, rows_in, cols_in), (_, rows, cols) = shapes[parameter.layer - 1], shapes[parameter.layer]
    out = []
    for index, size_kind, size_in, size_out, offset in (
            (N.x, "n_H", rows_in, rows, parameter.offset[0] if parameter.offset else None),
            (N.y, "n_W", cols_in, cols, parameter.offset[1] if parameter.offset else None)):
        if offset is None:
            read, values = index, tuple(range(size_out))
        else:
            read = feature.stride * index + offset - feature.padding
            values = tuple(v for v in range(size_out)
                           if 0 <= feature.stride * v + offset - feature.padding <= size_in - 1)
        out.append(Axis(index, read, size_in - 1, values,
                        N.feature_size(size_kind, parameter.layer), size_out))
    return tuple(out)


def _definitions(g: Graph, label: int) -> list:
    """(lhs, rhs) of each stage's entry from layer ``label`` on (sizes in, one example), and the
    loss."""
    out = []
    for stage in g.stages:
        if stage.label >= label:
            eq, rules = stage.equation, g.shown(stage.dense)
            out.append((eq.entry_lhs.xreplace(rules),
                        single_sums_out(eq.entry_rhs.xreplace(rules))))
    out.append((LOSS, single_sums_out(g.loss())))
    return out


def _layer_errors(g: Graph):
    """{error array's name: (equation, its name)}: every error is defined by one equation;
    an output error through BP4 and the loss's dA (not the simplified form)."""
    errors = {}
    for layer in g.d.layers:
        errors[layer.dZ.name] = (layer.backward["BP4"], "BP4")
        if layer.is_output:
            errors[layer.dA.name] = (layer.backward["loss"], "loss")
        errors[layer.dA_prev.name] = (layer.backward["BP3"], "BP3")
    for layer in g.d.features:
        for name in _errors_of(layer):
            eq = layer.backward[name]
            errors[str(eq.lhs.label) if isinstance(eq.lhs, sp.IndexedBase) else eq.lhs.name] = \
                (eq, name)
    return errors


def _errors_of(layer) -> list[str]:
    """The names of a feature layer's per-example errors (BP4, BP3; an rnn's BPTT, BP4), in
    the order backpropagation computes them."""
    per_example = {grad.name for stage in layer.kind.stages_of(layer.feature)
                   for grad in stage.gradients if grad.per_example}
    return [name for name in layer.backward if name in per_example]


def _backpropagation(g: Graph, parameter: Parameter, theta):
    """The cached steps, output layer first, each the derivation's entry (sizes in, one
    example); and the entry of BP1 (BP2) at θ."""
    d = g.d
    steps = []

    def step(eq, rule, simplified=None):
        rules = g.shown(any(eq is x for x in dense))
        lhs, rhs = eq.entry_lhs.xreplace(rules), single_sums_out(eq.entry_rhs.xreplace(rules))
        simple = single_sums_out(simplified.entry_rhs.xreplace(rules)) \
            if simplified is not None else None
        steps.append(CachedStep(lhs, rhs, rule, simple if simple != rhs else None))

    label = parameter.layer
    dense = [eq for layer in d.layers for eq in layer.backward.values()]
    for layer in reversed(d.layers):
        if layer.index < label:
            break
        if layer.is_output:
            step(layer.backward["loss"], "loss")
        step(layer.backward["BP4"], "BP4", layer.backward["output"] if layer.is_output else None)
        if layer.index > label:
            step(layer.backward["BP3"], "BP3")
    for layer in reversed(d.features):
        if layer.index < label:
            break
        for name in _errors_of(layer):
            if name != "BP3" or layer.index > label:
                step(layer.backward[name], name)
    name = gradient_name(d, parameter)
    eq = d.layer(label).backward[name]
    at = _at(eq, parameter)
    rhs = single_sums_out(eq.entry_rhs.xreplace(g.rules).xreplace(at))
    # With the L2 penalty the entry is ∂J/∂θ: its terms without λ are ∂L/∂θ, the paths' sum.
    terms = sp.Add.make_args(rhs)
    through_loss = sp.Add(*[t for t in terms if not t.has(N.lam)])
    steps.append(CachedStep(sp.Derivative(LOSS, theta, evaluate=False), through_loss, name))
    if through_loss != rhs:
        steps.append(CachedStep(sp.Derivative(N.J, theta, evaluate=False), rhs, "penalty"))
    return steps, through_loss


def single_sums_out(expr):
    """Sums over one value (Σ over the one example, over a layer of one unit) written as that
    term."""
    def drop(s):
        keep = [(v, lo, hi) for v, lo, hi in s.limits if lo != hi]
        body = s.function.xreplace({v: lo for v, lo, hi in s.limits if lo == hi})
        return sp.Sum(body, *keep) if keep else body
    return expr.replace(lambda e: isinstance(e, sp.Sum), drop)


def _substitute_cached(g: Graph, expr):
    """Every error entry replaced by its backward equation, until none is left."""
    errors = _layer_errors(g)
    for _ in range(len(g.nodes) + 4):  # at most one round per node along the longest chain
        found = [e for e in _entries(expr) if _array_of(e) in errors]
        if not found:
            return expr
        replace = {}
        for e in found:
            eq, _ = errors[_array_of(e)]
            at = {i: v for i, v in zip(eq.entry_lhs.indices, e.indices) if i.is_Symbol}
            replace[e] = concrete(eq.entry_rhs, g.rules, at)
        expr = expr.xreplace(replace)
    raise SymbackpropError(f"internal error: backward equations do not close: {expr}")


def _same(g: Graph, first, second) -> tuple[bool, str]:
    """Equal as polynomials in the entries (and functions of them), else as expanded
    expressions; else, every node written through the inputs, equal at random points."""
    held: dict = {}
    f, s = _hold(first, held), _hold(second, held)
    if max(expanded_terms(f), expanded_terms(s)) > EXPAND_LIMIT:
        # expanding would take too long (a product of (1 - tanh²) over 20 steps has 2^20
        # terms): the numbers of the graph decide
        return _zero_on_the_graph(g, first - second), "points"
    if held:
        ring, *_ = sp.ring(list(held.values()), sp.QQ)
        if ring(f) == ring(s):
            return True, "expanded"
    difference = sp.expand(first - second)
    if difference == 0:
        return True, "expanded"
    return _zero_on_the_graph(g, difference), "points"


#: Expand a path sum and backpropagation's form to compare them while they have at most this
#: many terms expanded; beyond it they are compared at random points.
EXPAND_LIMIT = 20_000


def expanded_terms(expr, limit: int = EXPAND_LIMIT) -> int:
    """How many terms ``expr`` (a polynomial of ``_hold``) has when multiplied out, at most
    about ``limit + 1`` (counted without expanding)."""
    if isinstance(expr, sp.Add):
        return min(limit + 1, sum(expanded_terms(a, limit) for a in expr.args))
    if isinstance(expr, sp.Mul):
        out = 1
        for a in expr.args:
            out = min(limit + 1, out * expanded_terms(a, limit))
        return out
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 0:
        return min(limit + 1, expanded_terms(expr.base, limit) ** int(expr.exp))
    return 1


def _zero_on_the_graph(g: Graph, expr, points: int = 3) -> bool:
    """Whether ``expr``, in entries of the graph, is 0 at random points: every input, parameter,
    target (and arg-max indicator) drawn at random, every node computed from its definition
    at them in turn, to 60 digits (the numbers of ``expr`` written through the inputs, without
    writing out the expression, which grows with every layer a path crosses)."""
    leaves = {a for node in g.nodes for a in _entries(g.definition[node])
              if a not in g.definition} | {a for a in _entries(expr) if a not in g.definition}
    symbols = {x for node in g.nodes for x in g.definition[node].free_symbols
               if not isinstance(x, sp.Indexed)} | {x for x in expr.free_symbols
                                                      if not isinstance(x, sp.Indexed)}
    atoms = sorted(leaves | symbols, key=sp.default_sort_key)
    rng = random.Random(0)
    for _ in range(points):
        values = {x: sp.Rational(rng.randint(-64, 64), 32) for x in atoms}
        for node in g.nodes:
            values[node] = sp.N(g.definition[node].xreplace(values).doit(), 60)
        value = sp.N(expr.xreplace(values).doit(), 60)
        if not (value.is_number and abs(value) < sp.Float(10, 60) ** -40):
            return False
    return True


def _equal_at_random_points(expr, points: int = 3) -> bool:
    """paths' check, over the entries of feature maps too."""
    from .paths import _equal_at_random_points as equal

    return equal(expr, points, set(_entries(expr)) | {s for s in expr.free_symbols
                                                      if not isinstance(s, sp.Indexed)})
