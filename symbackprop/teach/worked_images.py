"""One step of gradient descent on an image network, with real numbers, from a ``Derivation``.

A feature layer's every number is its derived entry formula evaluated entry by entry: the
feature sizes filled in, the sums over windows written out, the indices of the entry given
their values, the arrays it reads given theirs (``concrete.Known``). The dense layers after
flatten are evaluated as in a dense network's worked example, from their vectorised equations.
What is not an equation of the derivation: the update W <- W - α dW, and max pooling's arg-max
indicator M (the first maximum of each window, row-major order on ties), which ``tensors.Pool``
defines and the derivation reads.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

from .. import naming as N
from ..errors import SymbackpropError
from .concrete import Known, concrete_sizes, first_max_indicator
from .inputs import Parameters, Samples
from .numbers import settle
from .worked import ALPHA, Contribution, Value, _contribution, _Evaluator


@dataclass(frozen=True)
class MapValue:
    """An array of a feature layer (a feature map, a kernel, a gradient): its vectorised
    definition as derived (a node of ``tensors``), its entry formula with the feature sizes
    filled in, and its value (an NDimArray; flatten's vectors: a Matrix, columns are samples)."""

    symbol: sp.Basic  # IndexedBase, or flatten's MatrixSymbol
    formula: sp.Basic | None
    entry: tuple | None  # (entry_lhs, entry_rhs)
    value: sp.Basic
    rule: str = ""
    layer: int = 0

    def __repr__(self) -> str:
        return f"{self.symbol} = {self.value.tolist()}"


@dataclass(frozen=True)
class Stage:
    """The values one layer computes, in order, with the layer's spec token."""

    layer: int
    token: str
    values: tuple


@dataclass(frozen=True)
class ImageWorkedExample:
    derivation: object
    parameters: Parameters
    samples: Samples
    learning_rate: sp.Rational
    given: tuple  # W, b of every layer with parameters (MapValue or Value), then X, Y
    forward: tuple[Stage, ...]  # layer 1 first
    losses: tuple[sp.Expr, ...]
    cost: sp.Expr
    backward: tuple[Stage, ...]  # output layer first
    contributions: tuple[Contribution, ...]  # output layer first; empty when m = 1
    updated: tuple  # W, b after the step, layer 1 first (MapValue or Value)

    @property
    def m(self) -> int:
        return self.samples.m

    @property
    def l2(self):
        return self.derivation.l2

    def _items(self):
        yield from self.given
        for stage in (*self.forward, *self.backward):
            yield from stage.values

    def value_of(self, symbol_name: str):
        """The computed value called ``symbol_name`` (``"dW[1]"``), before any update."""
        for item in self._items():
            if _name(item.symbol) == symbol_name:
                return item.value
        raise KeyError(symbol_name)

    def updated_value(self, symbol_name: str):
        for item in self.updated:
            if _name(item.symbol) == symbol_name:
                return item.value
        raise KeyError(symbol_name)


def _name(symbol) -> str:
    return str(symbol.label) if isinstance(symbol, sp.IndexedBase) else symbol.name


def _token(arch, label) -> str:
    if label <= arch.offset:
        return arch.features[label - 1].token()
    return f"{arch.size(label)}:{arch.activations[label - arch.offset - 1]}"


def _penalty_value(d, parameters, sizes, m):
    """The cost's L2 penalty (λ/2m) Σ_l ‖W^[l]‖², its definition evaluated at the weights."""
    if not d.l2:
        return sp.Integer(0)
    values = {}
    for label in parameters.labels or range(1, d.arch.depth + 1):
        W = parameters.of(label)[0]
        layer = d.layer(label)
        base = (layer.symbols["W"] if label <= d.arch.offset else layer.W).xreplace(sizes)
        for idx in itertools.product(*map(range, W.shape)):
            values[base[idx]] = W[idx]
    expr = d.penalty.xreplace({**sizes, d.m: m, N.lam: d.l2})
    expr = expr.doit()
    out = expr.xreplace(values)
    if out.free_symbols:
        raise SymbackpropError(f"the penalty {expr} has entries without values")
    return out


def work_image_example(derivation, parameters: Parameters, samples: Samples,
                       learning_rate) -> ImageWorkedExample:
    """Forward pass, cost, backward pass and update of an image network, from ``derivation``."""
    d = derivation
    arch = d.arch
    sizes = concrete_sizes(arch)
    m = samples.m
    known = Known({**sizes, N.m: m, N.lam: d.l2})
    ev = _Evaluator({**sizes, d.m: m, N.lam: d.l2})

    def share(symbol, value):
        """A value both evaluators read: flatten's vectors and their error."""
        known[symbol] = value
        if isinstance(symbol, sp.MatrixSymbol):
            ev[symbol] = value

    def entry(eq):
        return eq.entry_lhs.xreplace(sizes), eq.entry_rhs.xreplace(sizes)

    given = []
    for label in parameters.labels:
        W, b = parameters.of(label)
        layer = d.layer(label)
        if label <= arch.offset:
            W_sym, b_sym = layer.symbols["W"], layer.symbols["b"]
            known[W_sym], known[b_sym] = W, b
            given += [MapValue(W_sym, None, None, W, "given", label),
                      MapValue(b_sym, None, None, b, "given", label)]
        else:
            ev[layer.W], ev[layer.b] = W, b
            given += [Value(layer.W, None, W, "given"), Value(layer.b, None, b, "given")]
    X = samples.maps
    known[d.X] = X
    ev[d.Y] = samples.Y
    given += [MapValue(d.X, None, None, X, "given", 0), Value(d.Y, None, samples.Y, "given")]

    forward = []
    for layer in d.features:
        values = []
        if "M" in layer.symbols:
            M = first_max_indicator(known[layer.symbols["A_prev"]], layer.feature.kernel,
                                    layer.feature.stride)
            known[layer.symbols["M"]] = M
            values.append(MapValue(layer.symbols["M"], None, None, M, "argmax", layer.index))
        for eq in layer.forward:
            value = known.fill(eq)
            share(eq.lhs, value)
            values.append(MapValue(eq.lhs, eq.rhs, entry(eq), value, "forward", layer.index))
        forward.append(Stage(layer.index, _token(arch, layer.index), tuple(values)))
    for layer in d.layers:
        values = []
        for eq in layer.forward:
            value = ev.evaluate(eq.rhs)
            ev[eq.lhs] = value
            values.append(Value(eq.lhs, eq.rhs, value, "forward"))
        forward.append(Stage(layer.index, _token(arch, layer.index), tuple(values)))

    losses = tuple(ev.evaluate(d.loss_entry.xreplace({d.example_index: k})) for k in range(m))
    cost = ev.evaluate(d.cost - d.penalty) + _penalty_value(d, parameters, sizes, m)

    backward = []
    for layer in reversed(d.layers):
        values = []

        def compute(eq, rule, values=values):
            value = ev.evaluate(eq.rhs)
            ev[eq.lhs] = value
            values.append(Value(eq.lhs, eq.rhs, value, rule))
            return value

        if layer.is_output:
            compute(layer.backward["loss"], "loss")
        compute(layer.dZ_equation, "BP4")
        compute(layer.backward["BP1"], "BP1")
        compute(layer.backward["BP2"], "BP2")
        share(layer.dA_prev, compute(layer.backward["BP3"], "BP3"))
        backward.append(Stage(layer.index, _token(arch, layer.index), tuple(values)))
    for layer in reversed(d.features):
        values = []
        for name, eq in layer.backward.items():
            if name == "BP3" and layer.index == 1:
                continue  # dA^[0], the gradient of the inputs: not needed
            value = known.fill(eq)
            known[eq.lhs] = value
            values.append(MapValue(eq.lhs, eq.rhs, entry(eq), value, name, layer.index))
        backward.append(Stage(layer.index, _token(arch, layer.index), tuple(values)))

    contributions = ()
    if m > 1:
        contributions = tuple(
            [_contribution(ev, layer, m, d.m) for layer in reversed(d.layers)]
            + [_map_contribution(known, layer, m) for layer in reversed(d.features)
               if "W" in layer.symbols])

    updated = []
    for label in parameters.labels:
        layer = d.layer(label)
        if label <= arch.offset:
            for key in ("W", "b"):
                param, grad = layer.symbols[key], layer.symbols["d" + key]
                value = _step(known[param], known[grad], learning_rate)
                updated.append(MapValue(param, _rule(param, grad), None, value, "update", label))
        else:
            for param, grad in ((layer.W, layer.dW), (layer.b, layer.db)):
                rule = sp.MatAdd(param, sp.MatMul(-ALPHA, grad))
                value = ev.evaluate(rule, rules={ALPHA: learning_rate})
                updated.append(Value(param, rule, value, "update"))
    return ImageWorkedExample(d, parameters, samples, learning_rate, tuple(given),
                              tuple(forward), losses, cost, tuple(backward), contributions,
                              tuple(updated))


def _rule(param, grad):
    """W <- W - α dW, written with the arrays' names (as matrix symbols, for the printers)."""
    P, G = (sp.MatrixSymbol(_name(x), 1, 1) for x in (param, grad))
    return sp.MatAdd(P, sp.MatMul(-ALPHA, G))


def _step(value, gradient, rate):
    return sp.ImmutableDenseNDimArray([settle(p - rate * g) for p, g in
                                       zip(_flat(value), _flat(gradient))], value.shape)


def _flat(array) -> list:
    return list(sp.flatten(array.tolist())) if array.rank() > 0 else [array]


def _example(array, k):
    """Example ``k`` of a feature map, as a map of one example (shape (1, C, H, W))."""
    _, *rest = array.shape
    return sp.ImmutableDenseNDimArray(_flat(array[k]), (1, *rest))


def _map_contribution(known: Known, layer, m: int) -> Contribution:
    """BP1 of one sample: the same entry formula with m = 1 on that sample's maps."""
    sym = layer.symbols
    per_sample = []
    for k in range(m):
        single = Known({**known.sizes, N.m: 1})
        single.values = dict(known.values)
        single[sym["A_prev"]] = _example(known[sym["A_prev"]], k)
        single[sym["dZ"]] = _example(known[sym["dZ"]], k)
        per_sample.append(single.fill(layer.backward["BP1"]))
    mean = sp.ImmutableDenseNDimArray(
        [settle(sum(values) / m) for values in zip(*[_flat(v) for v in per_sample])],
        per_sample[0].shape)
    return Contribution(layer.index, sym["dW"], tuple(per_sample), mean)
