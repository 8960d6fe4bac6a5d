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
from .numbers import WORKING_DIGITS, exactly, settle

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
        """The value of ``expr`` at the known values: each entry settled (``numbers.settle``),
        one that needs it computed again from the exact numbers behind the known values."""
        rules = {**self.known, **extra.get("rules", {})}
        result = _compute(expr, rules)
        again = []

        def exact_result():
            if not again:
                again.append(_compute(expr, {key: exactly(value) for key, value in rules.items()}))
            return again[0]
        if isinstance(result, sp.MatrixBase):
            return sp.ImmutableMatrix(result.shape[0], result.shape[1],
                                      lambda i, j: settle(result[i, j],
                                                          lambda: exact_result()[i, j]))
        return settle(result, exact_result)


    def per_column(self, expr, arrays, columns: int = 1, rules: dict | None = None):
        """``expr`` evaluated once for one sample, each array of ``arrays`` (matrix symbols
        whose columns are samples) a block of ``columns`` columns of placeholders: a function
        of the sample k giving its value, each entry settled. One symbolic evaluation, then
        numbers put in per sample: the cost of m samples is m times one sample's."""
        holders, slots = {}, []
        for array in arrays:
            rows = self.known[array].shape[0]
            block = sp.ImmutableMatrix(rows, columns, lambda i, j, a=array: sp.Dummy(
                f"{a.name}_{i}_{j}"))
            holders[array] = block
            slots.append((array, block))
        template = _compute(expr, {**self.known_sizes(), **holders, **(rules or {})})
        if not isinstance(template, sp.MatrixBase):
            from .concrete import expand_sums

            template = sp.ImmutableMatrix([[expand_sums(template)]])
            template = template.applyfunc(lambda e: e.xreplace(_entries_of(e, holders)))
            scalar = True
        else:
            scalar = False

        def at(k):
            values, exact = {}, {}
            for array, block in slots:
                known = self.known[array]
                for i in range(block.shape[0]):
                    for j in range(block.shape[1]):
                        value = known[i, k * columns + j]
                        values[block[i, j]] = value
                        exact[block[i, j]] = exactly(value)

            def done(e, given):
                out = e.xreplace(given)
                return out.doit() if out.has(sp.Piecewise, sp.Sum) else out
            out = sp.ImmutableMatrix(template.shape[0], template.shape[1], lambda i, j: settle(
                done(template[i, j], values), lambda: done(template[i, j], exact)))
            return out[0, 0] if scalar else out
        return at

    def known_sizes(self) -> dict:
        return {key: value for key, value in self.known.items()
                if not isinstance(value, sp.MatrixBase)}


def _entries_of(expr, holders: dict) -> dict:
    """{entry A[c, 0] of an array held by placeholders: its placeholder}."""
    by_name = {array.name: block for array, block in holders.items()}
    out = {}
    for e in expr.atoms(MatrixElement):
        block = by_name.get(e.parent.name)
        if block is not None:
            out[e] = block[int(e.indices[0]), int(e.indices[1])]
    return out


def sample_losses(ev: _Evaluator, d, columns: int) -> tuple:
    """L of each column of Y (each sample, or each (sample, step) pair): the loss's entry for
    one column, its predictions and targets put in column by column."""
    loss = ev.per_column(d.loss_entry.xreplace({d.example_index: 0}), (d.output.A, d.Y))
    return tuple(loss(k) for k in range(columns))


def mean_loss(d, losses, sizes: dict):
    """(1/m) Σ_i L_i, the derivation's cost without its penalty, its sum over the examples
    that of the losses computed."""
    i = d.example_index

    def over_examples(e):  # Σ_i L_i, the loss's own sum over units merged into it or not
        if not (isinstance(e, sp.Sum) and e.limits[-1][0] == i):
            return False
        inner = sp.Sum(e.function, *e.limits[:-1]) if len(e.limits) > 1 else e.function
        return inner == d.loss_entry
    data = (d.cost - d.penalty).replace(over_examples, lambda e: sp.Add(*losses))
    value = data.xreplace(sizes)
    return settle(value, lambda: exactly(value))


def _compute(expr, rules):
    concrete = sp.sympify(expr).xreplace(rules)
    # Ones as explicit matrices too, so that doit multiplies numbers, never symbolic sums.
    concrete = concrete.replace(lambda e: isinstance(e, sp.OneMatrix),
                                lambda e: sp.ImmutableMatrix.ones(*e.shape))
    result = concrete.doit()
    if isinstance(result, sp.MatrixExpr) and not isinstance(result, sp.MatrixBase):
        result = result.as_explicit()
    return result


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

    losses = sample_losses(ev, d, samples.m)
    penalty = ev.evaluate(d.penalty)
    data_cost = mean_loss(d, losses, ev.known_sizes())
    cost = settle(data_cost + penalty, lambda: exactly(data_cost + penalty))

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
    # the loss's part only: the penalty belongs to the whole step, not to a sample
    per_sample = ev.per_column(bp1.rhs, (layer.dZ, layer.A_prev), columns, {N.m: 1, N.lam: 0})
    samples = [per_sample(k) for k in range(m)]
    total = samples[0]
    for part in samples[1:]:
        total = total + part
    mean = sp.ImmutableMatrix(total.shape[0], total.shape[1],
                              lambda i, j: settle(total[i, j] / m,
                                                  lambda: exactly(total[i, j]) / m))
    return Contribution(layer.index, layer.dW, tuple(samples), mean)
