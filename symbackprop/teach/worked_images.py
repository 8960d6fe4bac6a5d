"""One step of gradient descent on an image or a recurrent network, with real numbers, from a
``Derivation``.

A feature layer's every number is its derived entry formula evaluated entry by entry: the
feature sizes filled in, the sums over windows written out, the indices of the entry given
their values, the arrays it reads given theirs (``concrete.Known``). A layer's equations are
filled together, each entry once the entries it reads are known: an rnn layer's Z and H go
forward step by step, its dH and dZ backward in time, as the derived definitions order them.
The dense layers after flatten (or after the rnn layer) are evaluated as in a dense network's
worked example, from their vectorised equations. What is not an equation of the derivation: the
update W <- W - α dW, and max pooling's arg-max indicator M (the first maximum of each window,
row-major order on ties), which ``tensors.Pool`` defines and the derivation reads.
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
from .worked import ALPHA, Contribution, Value, _contribution, _Evaluator, mean_loss, sample_losses


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


def _array_symbol(d, kind, label):
    """The symbol of parameter array ``kind`` (W, U, b) of layer ``label``, or of its gradient
    (dW, dU, db)."""
    layer = d.layer(label)
    if label <= d.arch.offset:
        return layer.symbols[kind]
    return getattr(layer, kind)


def _penalty_value(d, parameters, sizes, m):
    """The cost's L2 penalty (λ/2m) Σ_l ‖W^[l]‖² (an rnn layer's U too), its definition
    evaluated at the weights."""
    if not d.l2:
        return sp.Integer(0)
    values = {}
    for kind, label, W in parameters.named():
        if kind == "b":
            continue
        base = _array_symbol(d, kind, label).xreplace(sizes)
        for idx in itertools.product(*map(range, W.shape)):
            values[base[idx]] = W[idx]
    expr = d.penalty.xreplace({**sizes, N.m: m, N.lam: d.l2})
    expr = expr.doit()
    out = expr.xreplace(values)
    if out.free_symbols:
        raise SymbackpropError(f"the penalty {expr} has entries without values")
    return out


def work_image_example(derivation, parameters: Parameters, samples: Samples,
                       learning_rate) -> ImageWorkedExample:
    """Forward pass, cost, backward pass and update of an image or a recurrent network, from
    ``derivation``."""
    d = derivation
    arch = d.arch
    sizes = concrete_sizes(arch)
    m = samples.m
    known = Known({**sizes, N.m: m, N.lam: d.l2})
    ev = _Evaluator({**sizes, N.m: m, N.lam: d.l2})

    def share(symbol, value):
        """A value both evaluators read: flatten's vectors and their error."""
        known[symbol] = value
        if isinstance(symbol, sp.MatrixSymbol):
            ev[symbol] = value

    def entry(eq):
        return eq.entry_lhs.xreplace(sizes), eq.entry_rhs.xreplace(sizes)

    given = []
    for kind, label, value in parameters.named():
        symbol = _array_symbol(d, kind, label)
        if label <= arch.offset:
            known[symbol] = value
            given.append(MapValue(symbol, None, None, value, "given", label))
        else:
            ev[symbol] = value
            given.append(Value(symbol, None, value, "given"))
    X = samples.sequences if arch.sequence is not None else samples.maps
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
        for eq, value in zip(layer.forward, known.fill_together(layer.forward)):
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

    losses = sample_losses(ev, d, samples.Y.shape[1])
    cost = mean_loss(d, losses, ev.known_sizes()) + _penalty_value(d, parameters, sizes, m)

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
        # dA^[0], the gradient of the inputs, is not needed
        eqs = [(name, eq) for name, eq in layer.backward.items()
               if not (name == "BP3" and layer.index == 1)]
        values = []
        for (name, eq), value in zip(eqs, known.fill_together([eq for _, eq in eqs])):
            known[eq.lhs] = value
            values.append(MapValue(eq.lhs, eq.rhs, entry(eq), value, name, layer.index))
        backward.append(Stage(layer.index, _token(arch, layer.index), tuple(values)))

    contributions = ()
    if m > 1:
        contributions = tuple(
            [_contribution(ev, layer, m, samples.Y.shape[1] // m) for layer in reversed(d.layers)]
            + [part for layer in reversed(d.features) for part in
               _map_contributions(known, layer, m)])

    updated = []
    for kind, label, _ in parameters.named():
        param = _array_symbol(d, kind, label)
        grad = _array_symbol(d, "d" + kind, label)
        if label <= arch.offset:
            value = _step(known[param], known[grad], learning_rate)
            updated.append(MapValue(param, _rule(param, grad), None, value, "update", label))
        else:
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


def _map_contributions(known: Known, layer, m: int) -> list[Contribution]:
    """Each weight gradient of a feature layer (a kernel's dW; an rnn's dW and dU), one sample
    at a time: the same entry formula with m = 1 on that sample's maps or sequences."""
    sym = layer.symbols
    out = []
    for stage in layer.kind.stages_of(layer.feature):
        for grad in stage.gradients:
            if grad.per_example or grad.target == "b":
                continue
            eq = layer.backward[grad.name]
            per_example = [a for a in eq.entry_rhs.atoms(sp.Indexed)
                           if a.base.shape and a.base.shape[0] == N.m]
            per_sample = []
            for k in range(m):
                single = Known({**known.sizes, N.m: 1})
                single.values = dict(known.values)
                for base in sorted({a.base for a in per_example}, key=sp.default_sort_key):
                    single[base] = _example(known[base], k)
                per_sample.append(single.fill(eq))
            mean = sp.ImmutableDenseNDimArray(
                [settle(sum(values) / m) for values in zip(*[_flat(v) for v in per_sample])],
                per_sample[0].shape)
            out.append(Contribution(layer.index, sym[grad.result], tuple(per_sample), mean))
    return out
