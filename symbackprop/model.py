"""The derivation as plain data: the one input of every printer and generator.

A ``Derivation`` holds the network's symbols, its cost, and for every layer the forward
definitions and the backward equations, each with the chain-rule steps that produced it.
All mathematics in it is SymPy; nothing in it is text but the rule keys of the steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp


@dataclass(frozen=True)
class Step:
    """One line of a derivation: ``lhs = rhs`` by ``rule``: a key of
    ``printing.rules.RULES``, where each rule is stated as documents print it."""

    lhs: sp.Basic
    rhs: sp.Basic
    rule: str

    def __repr__(self) -> str:
        from .printing.linear import text

        return f"{text(self.lhs)} = {text(self.rhs)}    [{self.rule}]"


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs`` as matrices, with the entry formula it came from and its steps."""

    name: str  # BP1 .. BP4, "loss" (dA of the output layer), "output" (dZ of the output layer)
    layer: int | str
    lhs: sp.MatrixSymbol
    rhs: sp.MatrixExpr
    entry_lhs: sp.Expr
    entry_rhs: sp.Expr
    steps: tuple[Step, ...] = ()

    def __repr__(self) -> str:
        from .printing.linear import text

        return f"{self.name}: {text(self.lhs)} = {text(self.rhs)}"

    def to_latex(self) -> str:
        """``lhs = rhs`` in symbackprop's LaTeX (no math delimiters)."""
        from .printing.latex import latex

        return f"{latex(self.lhs)} = {latex(self.rhs)}"

    def _repr_latex_(self) -> str:
        """Jupyter: the equation, displayed."""
        return f"$${self.to_latex()}$$"


@dataclass(frozen=True)
class Layer:
    """Layer l: its symbols, forward definitions and backward equations."""

    index: int | str
    units: sp.Symbol  # n_l
    activation: object | None  # registry Activation, or None for a generic g
    W: sp.MatrixSymbol
    b: sp.MatrixSymbol
    Z: sp.MatrixSymbol
    A: sp.MatrixSymbol
    A_prev: sp.MatrixSymbol
    dZ: sp.MatrixSymbol
    dA: sp.MatrixSymbol
    dW: sp.MatrixSymbol
    db: sp.MatrixSymbol
    dA_prev: sp.MatrixSymbol
    forward: tuple[Equation, ...]  # Z = W A_prev + b 1ᵀ, A = g(Z)
    backward: dict[str, Equation] = field(default_factory=dict)  # keyed by Equation.name
    is_output: bool = False

    def __repr__(self) -> str:
        name = self.activation.name if self.activation is not None else "g"
        return f"Layer({self.index}: {self.units} units, {name})"

    def equation(self, name: str) -> Equation:
        return self.backward[name]

    @property
    def dZ_equation(self) -> Equation:
        """dZ of this layer: BP4 for a hidden layer, the simplified output error otherwise."""
        return self.backward["output" if self.is_output else "BP4"]


@dataclass(frozen=True)
class FeatureLayer:
    """Layer l of an image network before its dense layers: a convolution, a pooling layer or
    flatten (``feature``, the spec's layer; ``kind``, its entry of ``kinds.FEATURE_KINDS``).

    ``symbols`` holds its arrays (``IndexedBase`` feature maps (m, n_C, n_H, n_W), kernels,
    biases; flatten's output is a matrix) and sizes (``n_C``, ``n_H``, ``n_W``, ``f``, ``s``,
    ``p`` of naming.feature_size); ``forward`` the definition of each stage, ``backward`` the
    gradients keyed BP1 (dW), BP2 (db), BP3 (the input's error), BP4 (dZ), each with its
    rhs a node of ``tensors``.

    The rnn layer of a recurrent network is one too: ``symbols`` holds the sequences X
    (``A_prev``), Z, H and their errors (m, T, n_l), the weights W, U and the bias b, and the
    matrix A of what it passes on; ``forward`` defines Z (Recurrence), H (Map) and A (LastStep
    or EveryStep), ``backward`` holds BPTT (dH, backward in time), BP4 (dZ), BP1 (dW), BPU
    (dU) and BP2 (db).
    """

    index: int
    feature: object  # spec.Feature
    kind: object  # kinds.FeatureKind
    activation: object | None  # registry Activation after a convolution, else None
    symbols: dict
    forward: tuple[Equation, ...]
    backward: dict[str, Equation] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"FeatureLayer({self.index}: {self.feature.token()})"

    def equation(self, name: str) -> Equation:
        return self.backward[name]


@dataclass(frozen=True)
class Derivation:
    """Backpropagation for one architecture, derived in index notation with symbolic sizes."""

    arch: object  # spec.Architecture
    notation: str  # "ng" (columns are examples) or "rowvec" (rows are examples)
    m: sp.Symbol
    X: sp.MatrixSymbol  # A[0]
    Y: sp.MatrixSymbol
    cost: sp.Expr  # J in index form
    loss_entry: sp.Expr  # L of example i in index form
    example_index: sp.Symbol
    layers: tuple[Layer, ...]
    general: Layer  # a hidden layer l with an unspecified activation g: BP1 .. BP4 in general
    l2: sp.Rational = sp.S.Zero  # λ of the L2 penalty (naming.lam in the equations); 0: none
    penalty: sp.Expr = sp.S.Zero  # (λ/2m) Σ_l Σ_{j,t} (W^[l]_jt)², part of ``cost``
    features: tuple[FeatureLayer, ...] = ()  # an image network's layers before its dense ones

    def __repr__(self) -> str:
        return f"Derivation({self.arch.spec()}, loss={self.arch.loss}, notation={self.notation})"

    def _repr_markdown_(self) -> str:
        """Jupyter's one display of a derivation: what it is, the backpropagation equations
        of every layer as one display, and where the whole derivation is. (One representation
        only: a notebook given several picks one by its own order, so two would show
        differently in different frontends.)"""
        from .printing.document import latex_summary

        return (f"**Backpropagation for {self.arch.spec()}**, loss {self.arch.loss} "
                f"({self.notation} notation)\n\n{latex_summary(self)}\n"
                "The whole derivation, step by step: `.to_markdown()`, `.to_latex()`, "
                "`.to_text()`.\n")

    def _in(self, notation):
        if notation is None or notation == self.notation:
            return self
        from .engine import derive

        return derive(self.arch, notation)

    def to_latex(self, standalone: bool = False, notation: str | None = None,
                 steps: bool = True, diagram: bool = True, label_prefix: str | None = None,
                 heading: str = "section") -> str:
        """The LaTeX document ``symbackprop derive --format latex`` writes: a fragment to
        ``\\input``, or with ``standalone`` a document that compiles on its own; labels
        ``label_prefix:BP1`` ... (default from the architecture), its own heading a
        ``heading`` (section, subsection or none)."""
        from .printing.document import latex_document

        return latex_document(self._in(notation), standalone=standalone, steps=steps,
                              diagram=diagram, label_prefix=label_prefix, heading=heading)

    def to_markdown(self, notation: str | None = None, steps: bool = True,
                    diagram: bool = True, heading: str = "section") -> str:
        """The Markdown document ``symbackprop derive --format markdown`` writes."""
        from .printing.document import markdown_document

        return markdown_document(self._in(notation), steps=steps, diagram=diagram,
                                 heading=heading)

    def to_text(self, notation: str | None = None, steps: bool = True,
                diagram: bool = True, width: int | None = None) -> str:
        """The text document ``symbackprop derive`` prints, in lines of at most ``width``
        columns (at least 40; default: the terminal's width, 80 when standard output is no
        terminal, as the command does)."""
        from .printing.text import derivation_text, terminal_width

        return derivation_text(self._in(notation), steps=steps, diagram=diagram,
                               width=terminal_width() if width is None else width)

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    def layer(self, index: int):
        """Layer ``index`` (1-based, as the spec numbers them): a Layer or a FeatureLayer."""
        if index <= len(self.features):
            return self.features[index - 1]
        return self.layers[index - 1 - len(self.features)]

    def equations(self):
        """Every backward equation, output layer first, as backpropagation runs."""
        for layer in reversed(self.layers):
            yield from layer.backward.values()
        for layer in reversed(self.features):
            yield from layer.backward.values()
