"""One step of gradient descent with real numbers, computed from a ``Derivation``.

Every number comes from an equation of the derivation: its right-hand side with the known
matrices and sizes substituted, then evaluated by SymPy (``doit``). Nothing here knows what an
activation or a loss computes; the derivation does. The only equation not in the derivation is
the update itself, W <- W - α dW.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import naming as N
from .inputs import Parameters, Samples
from .numbers import settle

#: The learning rate, as the update formula prints it.
ALPHA = sp.Symbol("alpha", positive=True)


@dataclass(frozen=True)
class Value:
    """``symbol = formula``, and its value here. ``rule`` says where the formula comes from."""

    symbol: sp.MatrixSymbol
    formula: sp.Basic | None
    value: sp.ImmutableMatrix
    rule: str = ""

    def __repr__(self) -> str:
        return f"{self.symbol} = {self.value.tolist()}"


@dataclass(frozen=True)
class Contribution:
    """Each sample's own dW^[l] (BP1 with m = 1, on that sample's column) and their mean."""

    layer: int
    gradient: sp.MatrixSymbol  # dW^[l]
    per_sample: tuple[sp.ImmutableMatrix, ...]
    mean: sp.ImmutableMatrix


@dataclass(frozen=True)
class WorkedExample:
    derivation: object
    parameters: Parameters
    samples: Samples
    learning_rate: sp.Rational
    given: tuple[Value, ...]  # W, b of every layer, then X and Y
    forward: tuple[Value, ...]  # Z^[1], A^[1], ..., Z^[L], A^[L]
    losses: tuple[sp.Expr, ...]  # L of each sample
    cost: sp.Expr  # J
    backward: tuple[Value, ...]  # dA^[L], dZ^[L], dW^[L], db^[L], dA^[L-1], ..., db^[1]
    contributions: tuple[Contribution, ...]  # output layer first; empty when m = 1
    updated: tuple[Value, ...]  # W^[l], b^[l] after the step, layer 1 first

    @property
    def m(self) -> int:
        return self.samples.m

    def value_of(self, symbol_name: str) -> sp.ImmutableMatrix:
        """The computed value called ``symbol_name`` (``"dW[2]"``), before any update."""
        for item in (*self.given, *self.forward, *self.backward):
            if item.symbol.name == symbol_name:
                return item.value
        raise KeyError(symbol_name)

    def updated_value(self, symbol_name: str) -> sp.ImmutableMatrix:
        for item in self.updated:
            if item.symbol.name == symbol_name:
                return item.value
        raise KeyError(symbol_name)


class _Evaluator:
    """Known values of matrices and sizes; evaluates matrix expressions of the derivation."""

    def __init__(self, sizes: dict):
        self.known: dict = dict(sizes)

    def __setitem__(self, symbol, value):
        self.known[symbol] = value

    def evaluate(self, expr, **extra):
        rules = {**self.known, **extra.get("rules", {})}
        concrete = sp.sympify(expr).xreplace(rules)
        # Ones as explicit matrices too, so that doit multiplies numbers, never symbolic sums.
        concrete = concrete.replace(lambda e: isinstance(e, sp.OneMatrix),
                                    lambda e: sp.ImmutableMatrix.ones(*e.shape))
        result = concrete.doit()
        if isinstance(result, sp.MatrixExpr) and not isinstance(result, sp.MatrixBase):
            result = result.as_explicit()
        if isinstance(result, sp.MatrixBase):
            return sp.ImmutableMatrix(result.shape[0], result.shape[1],
                                      lambda i, j: settle(result[i, j]))
        return settle(result)


def work_example(derivation, parameters: Parameters, samples: Samples,
                 learning_rate) -> WorkedExample:
    """Forward pass, cost, backward pass and update for these numbers, from ``derivation``."""
    d = derivation
    sizes = N.unit_sizes(d.arch.sizes)
    sizes[d.m] = samples.m
    ev = _Evaluator(sizes)
    given = []
    for layer, W, b in zip(d.layers, parameters.weights, parameters.biases):
        ev[layer.W], ev[layer.b] = W, b
        given += [Value(layer.W, None, W, "given"), Value(layer.b, None, b, "given")]
    ev[d.X], ev[d.Y] = samples.X, samples.Y
    given += [Value(d.X, None, samples.X, "given"), Value(d.Y, None, samples.Y, "given")]

    forward = []
    for layer in d.layers:
        for eq in layer.forward:
            value = ev.evaluate(eq.rhs)
            ev[eq.lhs] = value
            forward.append(Value(eq.lhs, eq.rhs, value, "forward"))

    losses = tuple(ev.evaluate(d.loss_entry.xreplace({d.example_index: k}))
                   for k in range(samples.m))
    cost = ev.evaluate(d.cost)

    backward = []

    def compute(eq, rule):
        value = ev.evaluate(eq.rhs)
        ev[eq.lhs] = value
        backward.append(Value(eq.lhs, eq.rhs, value, rule))

    for layer in reversed(d.layers):
        if layer.is_output:
            compute(layer.backward["loss"], "loss")
        compute(layer.dZ_equation, "BP4")
        compute(layer.backward["BP1"], "BP1")
        compute(layer.backward["BP2"], "BP2")
        if layer is not d.layers[0]:  # dA^[0] is the gradient of the inputs: not needed
            compute(layer.backward["BP3"], "BP3")

    contributions = ()
    if samples.m > 1:
        contributions = tuple(_contribution(ev, layer, samples.m, d.m)
                              for layer in reversed(d.layers))

    updated = []
    for layer in d.layers:
        for param, grad in ((layer.W, layer.dW), (layer.b, layer.db)):
            rule = sp.MatAdd(param, sp.MatMul(-ALPHA, grad))
            value = ev.evaluate(rule, rules={ALPHA: learning_rate})
            updated.append(Value(param, rule, value, "update"))
    return WorkedExample(d, parameters, samples, learning_rate, tuple(given), tuple(forward),
                         losses, cost, tuple(backward), contributions, tuple(updated))


def _contribution(ev: _Evaluator, layer, m: int, m_symbol) -> Contribution:
    """BP1 of one sample: the same equation with m = 1 and that sample's columns."""
    bp1 = layer.backward["BP1"]
    per_sample = []
    for k in range(m):
        column = {layer.dZ: ev.known[layer.dZ][:, k], layer.A_prev: ev.known[layer.A_prev][:, k],
                  m_symbol: 1}
        per_sample.append(ev.evaluate(bp1.rhs, rules=column))
    total = per_sample[0]
    for part in per_sample[1:]:
        total = total + part
    mean = sp.ImmutableMatrix(total.shape[0], total.shape[1],
                              lambda i, j: settle(total[i, j] / m))
    return Contribution(layer.index, layer.dW, tuple(per_sample), mean)
