"""One gradient, explained: the multivariable chain rule path by path, then with caching.

For one example (m = 1), a parameter θ of layer l reaches the loss L through the neurons of the
later layers. Each edge of that computation graph carries a local derivative, obtained here by
differentiating the derivation's own forward definitions (and the loss) entry by entry:

    ∂Z^[l]_p/∂W^[l]_pq = A^[l-1]_q,   ∂A^[k]_c/∂Z^[k]_u = g'(Z^[k]_u) δ_cu (softmax: A_c(δ_cu - A_u)),
    ∂Z^[k+1]_v/∂A^[k]_u = W^[k+1]_vu,  ∂L/∂A^[L]_c.

Derivatives along one path multiply, paths add. Backpropagation computes the same sum by caching
dZ of every later layer once; its steps here are the derivation's BP equations, entry by entry.

With an L2 penalty the cost of the example is J = L + (λ/2) Σ_l ‖W^[l]‖² (m = 1): a weight also
reaches J directly, by one more edge whose derivative is the penalty's, λ W_pq, differentiated
from the derivation's ``penalty``. A bias has no such edge: the penalty holds weights only.
"""
from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from math import prod

import mpmath
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .. import naming as N
from ..engine import deltas_out_of_piecewise, sum_over
from ..errors import SymbackpropError
from ..registry import a as a_var
from ..registry import z as z_var

#: Show every path up to this many; beyond it, the first SHOWN_PATHS and the closed form.
PATH_LIMIT = 20
SHOWN_PATHS = 5
#: Expand and compare path sum and backpropagation symbolically up to this many paths
#: (512 paths take about 3 s).
CHECK_LIMIT = 512

LOSS = sp.Symbol("L")


class ParameterError(SymbackpropError, ValueError):
    """--param names no weight or bias of the network."""


@dataclass(frozen=True)
class Parameter:
    kind: str  # "W" or "b"; "U", an rnn layer's recurrent weights
    layer: int
    row: int  # a dense weight's row; a kernel's output channel r
    col: int | None  # None for a bias; a kernel's input channel c
    offset: tuple[int, ...] = ()  # a kernel's (u, v), its row and column in the window

    def __str__(self) -> str:
        cols = "" if self.col is None else f",{self.col}"
        return f"{self.kind}{self.layer}[{self.row}{cols}{''.join(f',{i}' for i in self.offset)}]"

    @property
    def indices(self) -> tuple[int, ...]:
        """The entry's indices: (row, col), (r, c, u, v) or (row,)."""
        return (self.row, *(() if self.col is None else (self.col,)), *self.offset)


_PARAM = re.compile(r"^\s*([Wb])\s*(\d+)\s*\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]\s*$")


def parse_parameter(text: str, sizes) -> Parameter:
    """``W2[0,1]`` (row 0, column 1 of W^[2]) or ``b1[2]``, checked against the sizes.

    ``sizes``: the layer sizes, or the Architecture. An image network's convolution has
    kernels ``W1[r,c,u,v]`` (out channel, in channel, kernel row, kernel column) and biases
    ``b1[r]``; its pooling layers and flatten have no parameters. A recurrent network's rnn
    layer has input weights ``W1[r,s]``, recurrent weights ``U1[r,s]`` and biases ``b1[r]``."""
    if getattr(sizes, "features", ()):
        return _parse_image_parameter(text, sizes)
    sizes = getattr(sizes, "sizes", sizes)
    depth = len(sizes) - 1
    layers = f"1..{depth}" if depth > 1 else "1"
    match = _PARAM.match(str(text))
    indices = [int(i) for i in match.group(3).split(",")] if match else []
    if not match or len(indices) > 2:
        raise ParameterError(f"cannot read parameter {text!r}; write W<l>[row,col] or "
                             f"b<l>[row] with layer l in {layers}, e.g. W1[0,0] or b{depth}[0]")
    kind, layer, row = match.group(1), int(match.group(2)), indices[0]
    col = indices[1] if len(indices) > 1 else None
    if not 1 <= layer <= depth:
        raise ParameterError(f"{text!r}: no layer {layer}; this network's layers with "
                             f"parameters are {layers}")
    rows, cols = sizes[layer], sizes[layer - 1]
    if kind == "W":
        shape = f"W{layer} has shape ({rows}, {cols}) = (n_{layer}, n_{layer - 1})"
        if col is None:
            raise ParameterError(f"{text!r}: a weight needs a row and a column, "
                                 f"e.g. W{layer}[0,0]; {shape}")
        if not (row < rows and col < cols):
            raise ParameterError(f"{text!r} is out of range: {shape}, so the row is in "
                                 f"0..{rows - 1} and the column in 0..{cols - 1}")
    else:
        if col is not None:
            raise ParameterError(f"{text!r}: a bias has one index, e.g. b{layer}[0]; "
                                 f"b{layer} has {rows} entries (n_{layer} = {rows})")
        if not row < rows:
            raise ParameterError(f"{text!r} is out of range: b{layer} has {rows} entries "
                                 f"(n_{layer} = {rows}), so the index is in 0..{rows - 1}")
    return Parameter(kind, layer, row, col)


_FEATURE_PARAM = re.compile(r"^\s*([WUb])\s*(\d+)\s*\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]\s*$")

#: How a message names an array of each kind, and what its indices are.
_NOUNS = {"b": "a bias", "U": "a recurrent weight"}
_NEEDS = {4: "four indices, [r,c,u,v] (out channel, in channel, kernel row, kernel column)",
          2: "a row and a column", 1: "one index"}


def _parse_image_parameter(text: str, arch) -> Parameter:
    """A parameter of an image or a recurrent network: a kernel W<l>[r,c,u,v], an rnn layer's
    W<l>[r,s] or U<l>[r,s], a bias b<l>[r], a dense layer's W<l>[row,col]."""
    from .inputs import parameter_arrays

    arrays = parameter_arrays(arch)
    labels = ", ".join(map(str, arrays))
    first = next(iter(arrays))
    first_w = {kind: shape for kind, shape, _ in arrays[first]}["W"]
    recurrent = arch.sequence is not None
    match = _FEATURE_PARAM.match(str(text))
    if not match or (match.group(1) == "U" and not recurrent):
        kinds = ("W<l>[row,col] for a weight (the rnn layer's input weights W1[r,s]), "
                 "U<l>[r,s] for its recurrent weights" if recurrent else
                 "W<l>[r,c,u,v] for a convolution's kernel, W<l>[row,col] for a dense layer's "
                 "weight")
        raise ParameterError(f"cannot read parameter {text!r}; write {kinds} or "
                             f"b<l>[row], with l a layer with parameters ({labels}), e.g. "
                             f"{'U' if recurrent else 'W'}{first}"
                             f"[{','.join(['0'] * len(first_w))}] or b{first}[0]")
    kind, layer = match.group(1), int(match.group(2))
    indices = tuple(int(i) for i in match.group(3).split(","))
    if layer not in arrays:
        what = (f"layer {layer} ({arch.features[layer - 1].token()}) has no parameters"
                if 1 <= layer <= arch.offset else f"no layer {layer}")
        raise ParameterError(f"{text!r}: {what}; this network's layers with parameters are "
                             f"{labels}")
    found = {name: (shape, what) for name, shape, what in arrays[layer]}
    if kind not in found:
        raise ParameterError(f"{text!r}: layer {layer} has no {kind}; its parameters are "
                             f"{', '.join(f'{name}{layer}' for name in found)}")
    shape, what = found[kind]
    described = f"{kind}{layer} has shape {shape} = {what}"
    if len(indices) != len(shape):
        example = f"{kind}{layer}[{','.join(['0'] * len(shape))}]"
        noun = _NOUNS.get(kind, "a kernel" if len(found["W"][0]) == 4 else "a weight")
        raise ParameterError(f"{text!r}: {noun} needs {_NEEDS[len(shape)]}, e.g. {example}; "
                             f"{described}")
    if any(i >= n for i, n in zip(indices, shape)):
        ranges = ", ".join(f"0..{n - 1}" for n in shape)
        raise ParameterError(f"{text!r} is out of range: {described}, so the indices are in "
                             f"{ranges}")
    if kind == "b":
        return Parameter("b", layer, indices[0], None)
    return Parameter(kind, layer, indices[0], indices[1], indices[2:])


# --- the model of an explanation -----------------------------------------------------------

@dataclass(frozen=True)
class Edge:
    """``target`` depends on ``source``; ``derivative`` is ∂target/∂source (index form)."""

    source: sp.Basic
    target: sp.Basic
    derivative: sp.Expr
    kind: str  # "parameter", "activation", "weight", "loss" or "penalty" (a weight to J)

    @property
    def lhs(self):
        return sp.Derivative(self.target, self.source, evaluate=False)


@dataclass(frozen=True)
class Path:
    nodes: tuple  # θ, Z^[l]_p, A^[l]_p, Z^[l+1]_u, ..., A^[L]_c, L
    factors: tuple  # the local derivative of each edge, from θ to L

    @property
    def product(self) -> sp.Expr:
        return sp.Mul(*self.factors)


@dataclass(frozen=True)
class CachedStep:
    """One line of backpropagation: ``lhs = rhs`` by ``rule`` (BP1 .. BP4, loss, penalty)."""

    lhs: sp.Basic
    rhs: sp.Expr
    rule: str
    simplified: sp.Expr | None = None  # the output layer's error once dA is substituted


@dataclass(frozen=True)
class Counts:
    """Multiplications per example, for the whole gradient of the architecture."""

    by_paths: int
    by_backprop: int
    for_parameter_by_paths: int  # this parameter's paths alone


@dataclass(frozen=True)
class Explanation:
    derivation: object
    parameter: Parameter
    theta: MatrixElement
    edges: tuple[Edge, ...]  # one edge of each kind along the path, symbolic indices
    path_indices: tuple[tuple[sp.Symbol, int], ...]  # (index, number of values) along a path
    path_count: int
    paths: tuple[Path, ...]  # all of them, or the first SHOWN_PATHS
    path_sum: sp.Expr | None  # the explicit sum, when every path is shown
    closed_form: sp.Expr  # Σ over the path indices of the product along a path
    gradient: sp.Expr | None  # ∂L/∂θ by backprop, cached values substituted (few paths only)
    cached: tuple[CachedStep, ...]  # backpropagation, output layer first
    entry: tuple[sp.Expr, sp.Expr]  # the BP equation's entry for θ over m examples
    agrees: bool | None  # path sum == backpropagation, expanded (None: not checked)
    counts: Counts
    targets_sum_to_one: bool  # the output error's simplification uses Σ_c Y_c = 1
    penalty: sp.Expr  # (λ/2) Σ_l ‖W^[l]‖² of one example; 0: no penalty
    penalty_edge: Edge | None = None  # θ -> J directly, for a weight when there is a penalty

    @property
    def all_shown(self) -> bool:
        return len(self.paths) == self.path_count

    @property
    def penalised(self) -> bool:
        """Whether the cost has an L2 penalty (on the weights; a bias is never penalised)."""
        return self.penalty != 0


# --- building it ---------------------------------------------------------------------------

def _unit(k: int) -> sp.Symbol:
    """The index of a unit of layer k along a path."""
    return sp.Symbol(f"u_{k}", integer=True, nonnegative=True)


def _path_unit(k: int, size: int, indices: list, name=None):
    """The unit of layer k a path passes: an index over its ``size`` units (added to
    ``indices``), or 0 for a layer of one unit (a sum over one value is its term)."""
    if size == 1:
        return sp.Integer(0)
    index = (name or _unit)(k)
    indices.append((index, size))
    return index


def _output_unit(k: int) -> sp.Symbol:
    """The index of an output of a coupled activation (softmax) of layer k."""
    return sp.Symbol(f"v_{k}", integer=True, nonnegative=True)


class _Example:
    """The derivation's entries for one example (m = 1), with the layer sizes filled in."""

    def __init__(self, derivation):
        from .concrete import concrete_sizes

        self.d = derivation
        self.sizes = derivation.arch.sizes
        self.rules = concrete_sizes(derivation.arch)
        self.rules[derivation.m] = 1

    def concrete(self, expr):
        return expr.xreplace(self.rules)

    def matrix(self, M) -> sp.MatrixSymbol:
        return self.concrete(M)

    def layer(self, k):
        return self.d.layer(k)

    def z_entry(self, k, unit):
        return self.concrete(self.layer(k).forward[0].entry_rhs).xreplace({N.r: unit, N.k: 0})

    def a_entry(self, k, unit):
        return self.concrete(self.layer(k).forward[1].entry_rhs).xreplace({N.r: unit, N.k: 0})

    def loss(self):
        return self.concrete(self.d.loss_entry).xreplace({self.d.example_index: 0})

    def equation(self, k, name, **indices):
        """Entry of a backward equation of layer k for this example (sums kept, but a sum
        over one value written as its term)."""
        from .graph import single_sums_out

        eq = self.layer(k).backward[name]
        at = {getattr(N, key): value for key, value in indices.items()}
        return (self.concrete(eq.entry_lhs).xreplace({N.k: 0, **at}),
                single_sums_out(self.concrete(eq.entry_rhs).xreplace({N.k: 0, **at})))


def local(expr, wrt) -> sp.Expr:
    """∂expr/∂wrt, with the Kronecker deltas of inner sums summed out (deltas in the branches
    of a Piecewise, as Huber's, are taken out of it first)."""
    out = sp.diff(expr, wrt)
    return out.replace(lambda e: isinstance(e, sp.Sum) and e.has(sp.KroneckerDelta),
                       lambda e: sum_over(deltas_out_of_piecewise(e.function),
                                          [(v, hi - lo + 1) for v, lo, hi in e.limits]))


def _in_terms_of_output(derivative, ex: _Example, k, out_unit, in_unit):
    """State ∂A_c/∂Z_u through A where the registry knows how (σ' = A(1 - A))."""
    layer = ex.layer(k)
    activation = layer.activation
    Z, A = ex.matrix(layer.Z), ex.matrix(layer.A)
    if activation.elementwise:
        h = activation.derivative_of_output
        if h is not None and derivative == activation.derivative.xreplace({z_var: Z[in_unit, 0]}):
            return h.xreplace({a_var: A[in_unit, 0]})
        return derivative
    # A ratio of the column (softmax): where num(Z_x) stands, A_x times the denominator does.
    numerator, denominator = ex.a_entry(k, out_unit).as_numer_denom()
    S = sp.Dummy("S")
    out = derivative.xreplace({denominator: S}).replace(
        lambda e: e.func == numerator.func and isinstance(e.args[0], MatrixElement)
        and e.args[0].parent == Z,
        lambda e: A[e.args[0].indices] * S)
    out = sp.expand(sp.cancel(out))
    return derivative if out.has(S) or out.has(Z) else out


def explain(derivation, parameter: Parameter, **numbers) -> Explanation:
    """The computation graph from ``parameter`` to the loss, its paths, and backpropagation
    (an image network's: ``graph.explain_image``; a recurrent network's, with the numbers of
    one example, ``parameters`` and ``samples``: ``sequences.explain_sequence``)."""
    if derivation.arch.sequence is not None:
        from .sequences import explain_sequence

        return explain_sequence(derivation, parameter, **numbers)
    if numbers:
        raise ParameterError("weights and inputs for an explanation apply to recurrent "
                             "networks only (the numbers of their Jacobians)")
    if derivation.arch.image is not None:
        from .graph import explain_image

        return explain_image(derivation, parameter)
    d, ex = derivation, _Example(derivation)
    L, l, p = d.arch.depth, parameter.layer, parameter.row
    layer = ex.layer(l)
    W, b = ex.matrix(layer.W), ex.matrix(layer.b)
    theta = W[p, parameter.col] if parameter.kind == "W" else b[p, 0]

    # Edges with symbolic unit indices; the unit of layer l is p.
    edges, indices = [], []
    z_unit = {l: sp.Integer(p)}
    Z_l = ex.matrix(layer.Z)
    edges.append(Edge(theta, Z_l[p, 0], local(ex.z_entry(l, p), theta), "parameter"))
    a_unit = {}
    for k in range(l, L + 1):
        lay = ex.layer(k)
        Z, A = ex.matrix(lay.Z), ex.matrix(lay.A)
        if k > l:
            z_unit[k] = _path_unit(k, ex.sizes[k], indices)
            A_prev = ex.matrix(ex.layer(k - 1).A)
            edges.append(Edge(A_prev[a_unit[k - 1], 0], Z[z_unit[k], 0],
                              local(ex.z_entry(k, z_unit[k]), A_prev[a_unit[k - 1], 0]), "weight"))
        if lay.activation.elementwise:
            a_unit[k] = z_unit[k]
        else:
            a_unit[k] = _path_unit(k, ex.sizes[k], indices, _output_unit)
        derivative = local(ex.a_entry(k, a_unit[k]), Z[z_unit[k], 0])
        derivative = _in_terms_of_output(derivative, ex, k, a_unit[k], z_unit[k])
        edges.append(Edge(Z[z_unit[k], 0], A[a_unit[k], 0], derivative, "activation"))
    A_L = ex.matrix(ex.layer(L).A)
    edges.append(Edge(A_L[a_unit[L], 0], LOSS, local(ex.loss(), A_L[a_unit[L], 0]), "loss"))

    count = prod(size for _, size in indices)
    shown = count if count <= PATH_LIMIT else SHOWN_PATHS
    paths = tuple(itertools.islice(_paths(edges, indices, theta), shown))
    path_sum = sp.Add(*[path.product for path in paths]) if shown == count else None
    body = sp.Mul(*[edge.derivative for edge in edges])
    closed_form = sp.Sum(body, *[(index, 0, size - 1) for index, size in indices]) \
        if indices else body

    penalty = ex.concrete(d.penalty)
    penalty_edge = Edge(theta, N.J, local(penalty, theta), "penalty") \
        if parameter.kind == "W" and penalty != 0 else None

    cached, gradient, penalty_part = _backpropagation(ex, parameter, theta,
                                                      substitute=count <= CHECK_LIMIT)
    direct = penalty_edge.derivative if penalty_edge is not None else sp.Integer(0)
    if sp.expand(penalty_part - direct) != 0:
        raise SymbackpropError(f"internal error: the penalty's part of BP1, {penalty_part}, is "
                               f"not the derivative of the penalty, {direct}")
    agrees = None
    if count <= CHECK_LIMIT:
        explicit = path_sum if path_sum is not None else sp.Add(
            *[path.product for path in _paths(edges, indices, theta)])
        agrees = _same(explicit, gradient, ex)
    entry = _bp_entry(d, parameter)
    counts = Counts(multiplications_by_paths(d), multiplications_by_backprop(d),
                    count * _path_multiplications(L - l, parameter.kind == "b"))
    targets = any(step.rule == "targets" for step in d.output.backward["output"].steps)
    return Explanation(d, parameter, theta, tuple(edges), tuple(indices), count, paths,
                       path_sum, closed_form, gradient, cached, entry, agrees, counts, targets,
                       penalty, penalty_edge)


def _paths(edges, indices, theta):
    """Every path, in lexicographic order of its unit indices."""
    symbols = [index for index, _ in indices]
    for values in itertools.product(*[range(size) for _, size in indices]):
        at = dict(zip(symbols, map(sp.Integer, values)))
        nodes = [theta] + [edge.target.xreplace(at) for edge in edges]
        yield Path(tuple(nodes), tuple(edge.derivative.xreplace(at) for edge in edges))


def _backpropagation(ex: _Example, parameter: Parameter, theta, substitute=True):
    """The cached steps, output layer first; ∂L/∂θ with every cached value substituted (None
    when ``substitute`` is false: for many paths the substituted tree is as large); and the
    penalty's part of BP1, its terms in λ (0 for a bias or without a penalty).

    With the penalty BP1 is ∂J/∂θ: its terms without λ are ∂L/∂θ, the sum over the paths, and
    its terms with λ the penalty's direct derivative."""
    L, l, p = ex.d.arch.depth, parameter.layer, parameter.row
    steps = []
    unit = {k: (sp.Integer(p) if k == l else _path_unit(k, ex.sizes[k], []))
            for k in range(l, L + 1)}
    steps.append(CachedStep(*ex.equation(L, "loss", r=unit[L]), "loss"))
    for k in range(L, l - 1, -1):
        if k < L:
            steps.append(CachedStep(*ex.equation(k + 1, "BP3", s=unit[k]), "BP3"))
        lhs, rhs = ex.equation(k, "BP4", r=unit[k])
        simplified = ex.equation(k, "output", r=unit[k])[1] if k == L else None
        steps.append(CachedStep(lhs, rhs, "BP4", simplified if simplified != rhs else None))
    name = "BP1" if parameter.kind == "W" else "BP2"
    at = {"r": sp.Integer(p)} if parameter.col is None else {"r": sp.Integer(p),
                                                                  "s": sp.Integer(parameter.col)}
    _, rhs = ex.equation(l, name, **at)
    rhs = rhs.doit()
    terms = sp.Add.make_args(rhs)
    through_loss = sp.Add(*[t for t in terms if not t.has(N.lam)])
    penalty_part = sp.Add(*[t for t in terms if t.has(N.lam)])
    steps.append(CachedStep(sp.Derivative(LOSS, theta, evaluate=False), through_loss, name))
    if penalty_part != 0:
        steps.append(CachedStep(sp.Derivative(N.J, theta, evaluate=False), rhs, "penalty"))
    return (tuple(steps), (_substitute_cached(ex, through_loss) if substitute else None),
            penalty_part)


def _substitute_cached(ex: _Example, expr):
    """Replace every dZ and dA entry by its backward equation until none is left."""
    errors = {}
    for k in range(1, ex.d.arch.depth + 1):
        lay = ex.layer(k)
        errors[ex.matrix(lay.dZ).name] = (k, "BP4", "r")
        if lay.is_output:
            errors[ex.matrix(lay.dA).name] = (k, "loss", "r")
        else:
            errors[ex.matrix(lay.dA).name] = (k + 1, "BP3", "s")
    for _ in range(4 * ex.d.arch.depth + 4):
        found = {e for e in sp.preorder_traversal(expr)
                 if isinstance(e, MatrixElement) and e.parent.name in errors}
        if not found:
            return expr
        replace = {}
        for e in found:
            k, name, index = errors[e.parent.name]
            replace[e] = ex.equation(k, name, **{index: e.indices[0]})[1].doit()
        expr = expr.xreplace(replace)
    raise SymbackpropError(f"internal error: backward equations do not close: {expr}")


def _same(first, second, ex: _Example) -> bool:
    """Equal as expressions: as polynomials in the entries and in the functions applied to them
    (distributivity is all that relates the path sum and backpropagation; expanding GELU's g'
    inside a product of eight paths with ``expand`` takes minutes), else expanded in full, else
    after writing every A as g(Z)."""
    from .graph import EXPAND_LIMIT, expanded_terms

    held: dict = {}
    f, g = _hold(first, held), _hold(second, held)
    if max(expanded_terms(f), expanded_terms(g)) > EXPAND_LIMIT:
        return _equal_at_random_points(_in_z(first - second, ex))
    ring, *_ = sp.ring(list(held.values()), sp.QQ) if held else (None,)
    if ring is not None and ring(f) == ring(g):
        return True
    difference = sp.expand(first - second)
    if difference == 0:
        return True
    in_z = _in_z(difference, ex)
    try:
        return sp.simplify(sp.expand(in_z)) == 0
    except (sp.PolynomialError, TypeError, ValueError):
        # An identity the simplifiers cannot handle (log-softmax's Jacobian through sums of
        # exponentials): equal at random points to 40 digits, every entry drawn at random.
        return _equal_at_random_points(in_z)


def _in_z(expr, ex: _Example):
    """``expr`` with every A written as g(Z)."""
    as_z = {}
    for k in range(1, ex.d.arch.depth + 1):
        A = ex.matrix(ex.layer(k).A)
        for u in range(ex.sizes[k]):
            as_z[A[u, 0]] = ex.a_entry(k, u).doit()
    return expr.xreplace(as_z).doit()


def _equal_at_random_points(expr, points: int = 3, atoms=None) -> bool:
    """Whether expr is 0 at random rational values of ``atoms`` (its matrix entries and
    symbols unless given), to 40 digits.

    The tree is compiled once to mpmath (lambdify, its common subexpressions shared) and run at
    60 digits: on the path sums of the tanh-approximated GELU, SymPy's evalf of each point took
    20 s. Where it does not compile or run (a function mpmath lacks, a pole), SymPy evaluates
    that point."""
    if atoms is None:
        atoms = {e for e in expr.atoms(MatrixElement)} | expr.free_symbols
    atoms = sorted(atoms, key=sp.default_sort_key)
    rng = random.Random(0)
    draws = [[sp.Rational(rng.randint(-64, 64), 32) for _ in atoms] for _ in range(points)]
    expr = expr.doit()
    dummies = [sp.Dummy() for _ in atoms]
    try:
        compiled = sp.lambdify(dummies, expr.xreplace(dict(zip(atoms, dummies))), "mpmath",
                               cse=True)
    except (KeyError, NameError, SyntaxError, TypeError, ValueError, NotImplementedError):
        compiled = None
    for values in draws:
        size = _size_at(compiled, values)
        if size is None:
            exact = sp.N(expr.xreplace(dict(zip(atoms, values))).doit(), 60)
            if not (exact.is_number and abs(exact) < sp.Float(10, 60) ** -40):
                return False
        elif not size < mpmath.mpf(10) ** -40:
            return False
    return True


def _size_at(compiled, values):
    """|compiled(values)| at 60 digits, the values rationals; None where there is no function
    or no finite number there."""
    if compiled is None:
        return None
    with mpmath.workdps(60):
        try:
            value = compiled(*(mpmath.mpf(int(v.p)) / int(v.q) for v in values))
        except (ArithmeticError, TypeError, ValueError):
            return None
        finite = isinstance(value, (mpmath.mpf, mpmath.mpc)) and mpmath.isfinite(value)
        return abs(value) if finite else None


def _hold(expr, held: dict):
    """``expr`` as a polynomial with rational coefficients: sums, products and integer powers
    kept, every other node (an entry, tanh(...), a root, a Piecewise) one symbol, the same
    symbol for the same node."""
    if expr.is_Rational:
        return expr
    if isinstance(expr, (sp.Add, sp.Mul)):
        return expr.func(*[_hold(arg, held) for arg in expr.args])
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 0:
        return sp.Pow(_hold(expr.base, held), expr.exp)
    if expr not in held:
        held[expr] = sp.Dummy(f"h{len(held)}")
    return held[expr]


def _bp_entry(d, parameter: Parameter):
    """The BP1 (weights) or BP2 (biases) entry for θ, over the m examples."""
    eq = d.layer(parameter.layer).backward["BP1" if parameter.kind == "W" else "BP2"]
    at = {N.r: sp.Integer(parameter.row)}
    if parameter.col is not None:
        at[N.s] = sp.Integer(parameter.col)
    return eq.entry_lhs.xreplace(at), eq.entry_rhs.xreplace(at)


# --- counting multiplications --------------------------------------------------------------

def _path_multiplications(layers_after: int, is_bias: bool) -> int:
    """A path from layer l has 2(L - l) + 3 factors; a bias path's first factor is 1."""
    factors = 2 * layers_after + 3
    return factors - 1 - (1 if is_bias else 0)


def _fan(d, k) -> int:
    """How many A^[k] entries one Z^[k] entry reaches: 1, or n_k for a coupled activation."""
    return 1 if d.layer(k).activation.elementwise else d.arch.sizes[k]


def paths_from_layer(d, l: int) -> int:
    sizes, L = d.arch.sizes, d.arch.depth
    return prod(_fan(d, k) for k in range(l, L + 1)) * prod(sizes[k] for k in range(l + 1, L + 1))


def multiplications_by_paths(d) -> int:
    """Every parameter's every path multiplied out separately (per example)."""
    sizes, L, total = d.arch.sizes, d.arch.depth, 0
    for l in range(1, L + 1):
        paths = paths_from_layer(d, l)
        weights, biases = sizes[l] * sizes[l - 1], sizes[l]
        total += paths * (weights * _path_multiplications(L - l, False)
                          + biases * _path_multiplications(L - l, True))
    return total


def multiplications_by_backprop(d) -> int:
    """dZ = dA ⊙ g'(Z) (n_k, or n_k² through a Jacobian), dA^[k-1] = W^[k]ᵀ dZ^[k] and
    dW^[k] = dZ^[k] A^[k-1]ᵀ (n_k n_{k-1} each); db = dZ 1 only adds (per example)."""
    sizes, L, total = d.arch.sizes, d.arch.depth, 0
    for k in range(L, 0, -1):
        total += sizes[k] * _fan(d, k)
        total += sizes[k] * sizes[k - 1]  # dW
        if k > 1:
            total += sizes[k] * sizes[k - 1]  # dA^[k-1]
    return total
