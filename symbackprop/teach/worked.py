"""One step of gradient descent with real numbers, computed from a ``Derivation``.

Every number comes from an equation of the derivation: its right-hand side with the known
matrices, sizes and λ substituted, then evaluated by SymPy (``doit``). Nothing here knows what an
activation or a loss computes; the derivation does. The only equation not in the derivation is
the update itself, W <- W - α dW.

With an L2 penalty (λ > 0) the derivation's cost and BP1 carry λ. Their parts are told apart
by λ itself: the terms of BP1's entry without λ are the loss's part (1/m) dZ Aᵀ, the terms with
it the penalty's (λ/m) W; the cost's penalty is the derivation's ``penalty``.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .. import naming as N
from ..errors import SymbackpropError
from ..matrices import vectorise
from .inputs import Parameters, Samples
from .numbers import WORKING_DIGITS, settle

#: The learning rate, as the update formula prints it.
ALPHA = sp.Symbol("alpha", positive=True)


@dataclass(frozen=True)
class Value:
    """``symbol = formula``, and its value here. ``rule`` says where the formula comes from."""

    symbol: sp.MatrixSymbol
    formula: sp.Basic | None
    value: sp.ImmutableMatrix
    rule: str = ""
    # With the L2 penalty: dW as its two parts (the loss's, the penalty's), each a Value; and
    # a weight's update written W - α (λ/m) W - α (1/m) dZ Aᵀ, the penalty's term apart.
    parts: tuple = ()
    expanded: sp.Basic | None = None

    def __repr__(self) -> str:
        return f"{self.symbol} = {self.value.tolist()}"


@dataclass(frozen=True)
class Contribution:
    """Each sample's own dW^[l] (BP1 with m = 1, on that sample's column) and their mean.

    With the L2 penalty these are the loss's part of dW only; dW adds (λ/m) W to the mean."""

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
    data_cost: sp.Expr  # (1/m) Σ_i L_i, the part of J that the samples give
    penalty: sp.Expr  # (λ/2m) Σ_l ‖W^[l]‖², 0 without the penalty
    backward: tuple[Value, ...]  # dA^[L], dZ^[L], dW^[L], db^[L], dA^[L-1], ..., db^[1]
    contributions: tuple[Contribution, ...]  # output layer first; empty when m = 1
    updated: tuple[Value, ...]  # W^[l], b^[l] after the step, layer 1 first
    decay: sp.Expr | None = None  # 1 - αλ/m, the factor the penalty scales the weights by

    @property
    def m(self) -> int:
        return self.samples.m

    @property
    def l2(self) -> sp.Rational:
        """λ of the L2 penalty; 0 when there is none."""
        return self.derivation.l2

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
    """Forward pass, cost, backward pass and update for these numbers, from ``derivation``
    (an image or a recurrent network's: ``worked_images.work_image_example``)."""
    d = derivation
    if d.features:
        from .worked_images import work_image_example

        return work_image_example(d, parameters, samples, learning_rate)
    sizes = N.unit_sizes(d.arch.sizes)
    sizes[d.m] = samples.m
    sizes[N.lam] = d.l2
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
    penalty = ev.evaluate(d.penalty)
    data_cost = ev.evaluate(d.cost - d.penalty)

    backward = []

    def compute(eq, rule):
        value = ev.evaluate(eq.rhs)
        ev[eq.lhs] = value
        parts = _penalised_parts(ev, eq) if rule == "BP1" and d.l2 else ()
        backward.append(Value(eq.lhs, eq.rhs, value, rule, parts))

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
        contributions = tuple(_contribution(ev, layer, samples.m)
                              for layer in reversed(d.layers))

    updated, decay = [], None
    parts = {v.symbol: v.parts for v in backward if v.parts}
    for layer in d.layers:
        for param, grad in ((layer.W, layer.dW), (layer.b, layer.db)):
            rule = sp.MatAdd(param, sp.MatMul(-ALPHA, grad))
            value = ev.evaluate(rule, rules={ALPHA: learning_rate})
            expanded = None
            if grad in parts:
                rate = _penalty_rate(layer)
                expanded = sp.MatAdd(param, sp.MatMul(-ALPHA * rate, param),
                                     sp.MatMul(-ALPHA, parts[grad][0].formula))
                if not _agree(ev.evaluate(expanded, rules={ALPHA: learning_rate}), value):
                    raise SymbackpropError(f"internal error: the update of {param} with its "
                                           "penalty's term differs from W - α dW")
                decay = ev.evaluate(1 - ALPHA * rate, rules={ALPHA: learning_rate})
            updated.append(Value(param, rule, value, "update", expanded=expanded))
    return WorkedExample(d, parameters, samples, learning_rate, tuple(given), tuple(forward),
                         losses, cost, data_cost, penalty, tuple(backward), contributions,
                         tuple(updated), decay)


def _split_bp1(eq) -> tuple[sp.Expr, sp.Expr]:
    """The entry of BP1 as (the loss's part, the penalty's part), told apart by λ."""
    terms = sp.Add.make_args(eq.entry_rhs)
    return (sp.Add(*[t for t in terms if not t.has(N.lam)]),
            sp.Add(*[t for t in terms if t.has(N.lam)]))


def _penalised_parts(ev: _Evaluator, eq) -> tuple[Value, Value]:
    """BP1 with the penalty as its two parts, the loss's (1/m) dZ Aᵀ and the penalty's
    (λ/m) W, each with its formula and value."""
    rows, cols = eq.entry_lhs.indices
    out = tuple(Value(eq.lhs, formula, ev.evaluate(formula), "BP1")
                for formula in (vectorise(entry, rows, cols, eq.lhs.shape)
                                for entry in _split_bp1(eq)))
    if not _agree(out[0].value + out[1].value, ev.known[eq.lhs]):
        raise SymbackpropError(f"internal error: the parts of {eq.lhs} do not add up to it")
    return out


def _agree(first, second) -> bool:
    """Equal matrices: exactly where rational, to the working precision where not."""
    tolerance = sp.Rational(1, 10 ** (WORKING_DIGITS - 10))
    return all(p == q or abs(p - q) <= tolerance * max(1, abs(q))
               for p, q in zip(first, second))


def _penalty_rate(layer) -> sp.Expr:
    """λ/m: BP1's penalty part divided by W, entry by entry (a scalar free of entries)."""
    eq = layer.backward["BP1"]
    rows, cols = eq.entry_lhs.indices
    rate = sp.cancel(_split_bp1(eq)[1] / layer.W[rows, cols])
    if rate.atoms(MatrixElement):
        raise SymbackpropError(f"internal error: the penalty's part of {eq.lhs} is not a "
                               f"multiple of {layer.W}")
    return rate


def _contribution(ev: _Evaluator, layer, m: int, columns: int = 1) -> Contribution:
    """BP1 of one sample: the same equation with m = 1 and that sample's columns (``columns``
    of them: a recurrent head at every step has one per step)."""
    bp1 = layer.backward["BP1"]
    per_sample = []
    for k in range(m):
        # the loss's part only: the penalty belongs to the whole step, not to a sample
        own = slice(k * columns, (k + 1) * columns)
        column = {layer.dZ: ev.known[layer.dZ][:, own],
                  layer.A_prev: ev.known[layer.A_prev][:, own], N.m: 1, N.lam: 0}
        per_sample.append(ev.evaluate(bp1.rhs, rules=column))
    total = per_sample[0]
    for part in per_sample[1:]:
        total = total + part
    mean = sp.ImmutableMatrix(total.shape[0], total.shape[1],
                              lambda i, j: settle(total[i, j] / m))
    return Contribution(layer.index, layer.dW, tuple(per_sample), mean)
