"""Layer kinds: one entry each, holding its forward definition in index notation.

A kind says what it computes (``output``, a key of the layer's symbol table) from what
(``inputs``, ``parameters``), entry by entry with symbolic sizes, and which gradients
backpropagation needs through it. The engine derives every gradient of every kind by the same
operations (chain rule over every use of a quantity, ``diff`` of the forward definition, sums
over Kronecker deltas, recognition of vectorised forms); nothing here is a derivative.

A spec layer ``n:g`` is two kinds in a row: ``dense`` (Z = W A + b 1ᵀ, n units) and
``activation`` (A = g(Z), entry by entry, or a map of a whole column such as softmax).

Adding a kind is adding one entry here: its forward definition (a function of the engine's
network, the layer's symbols, its activation entry and the entry's (unit, example) indices),
its gradients, its shape rule and its spec syntax. Its vectorised results are SymPy matrix
expressions; every printer (LaTeX, text, code) prints them by node type.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Gradient:
    """One backward equation of a kind: d``result`` = ∂J/∂``target`` through the kind's output.

    ``position(layout, r, s, k)`` is the entry differentiated; ``per_example``: an error
    (m ∂J/∂X, one example's share) rather than a parameter's gradient; ``penalised``: the L2
    penalty of the cost depends on the target directly.
    """

    name: str  # BP1 .. BP4
    target: str
    result: str
    position: Callable
    per_example: bool = False
    penalised: bool = False


@dataclass(frozen=True)
class LayerKind:
    name: str
    output: str  # key of the symbol table: what the kind computes
    inputs: tuple[str, ...]
    parameters: tuple[str, ...]
    forward: Callable  # (net, symbols, activation, unit, example) -> index expression
    gradients: tuple[Gradient, ...]  # in the order backpropagation computes them
    shape: Callable  # (input units, spec argument) -> output units
    syntax: str  # how a spec writes it
    pattern: re.Pattern  # the spec token, with named groups
    # The local derivative may be restated in terms of the kind's output (σ' = A(1 - A)).
    restates_output: bool = False

    def __repr__(self) -> str:
        return f"LayerKind({self.name}: {self.output} from {', '.join(self.inputs)})"


def _dense_forward(net, sym, activation, unit, example):
    """Z_{unit,example} = Σ_t W_{unit,t} A_{t,example} + b_unit (the layout places indices)."""
    return net.layout.forward_z(sym["W"], sym["A_prev"], sym["b"], sym["prev_units"], unit,
                                example)


def _activation_forward(net, sym, activation, unit, example):
    """A_{unit,example} = g(Z_{unit,example}), or entry ``unit`` of g of a column of Z."""
    return net.a_entry(sym, activation, unit, example)


DENSE = LayerKind(
    name="dense", output="Z", inputs=("A_prev",), parameters=("W", "b"),
    forward=_dense_forward,
    gradients=(
        Gradient("BP1", "W", "dW", lambda lay, r, s, k: lay.weight_pos(r, s), penalised=True),
        Gradient("BP2", "b", "db", lambda lay, r, s, k: lay.bias_pos(r)),
        Gradient("BP3", "A_prev", "dA_prev", lambda lay, r, s, k: lay.pos(s, k),
                 per_example=True),
    ),
    shape=lambda n_in, units: units,
    syntax="N (a positive integer: N units)",
    pattern=re.compile(r"(?P<units>[0-9]+)\Z"),
)

ACTIVATION = LayerKind(
    name="activation", output="A", inputs=("Z",), parameters=(),
    forward=_activation_forward,
    gradients=(Gradient("BP4", "Z", "dZ", lambda lay, r, s, k: lay.pos(r, k),
                        per_example=True),),
    shape=lambda n_in, _: n_in,
    syntax=":NAME after a dense layer's size (an activation of the registry, or defined)",
    pattern=re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\Z"),
    restates_output=True,
)

# A spec layer "n:g", in forward order.
LAYER_KINDS: dict[str, LayerKind] = {kind.name: kind for kind in (DENSE, ACTIVATION)}
SPEC_LAYER = (DENSE, ACTIVATION)
