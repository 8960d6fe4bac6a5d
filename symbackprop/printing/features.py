"""The feature layers of an image network, written up: what a document says about its
convolutions, pooling layers and flatten, besides the dense head's sections (``document``).

As in ``document``: ``feature_sections(d)`` picks what is said, as SymPy expressions and nodes
of ``tensors`` (each layer's forward definition entry by entry and as its operation, the
chain-rule steps of each gradient, the vectorised gradients, the size of every map);
``feature_context`` prints them with the format's printer; templates only place the pieces.
What each operation is, in words, is one entry of ``OPERATIONS`` per node type.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import naming as N
from ..errors import DerivationError
from ..registry import z as z_var
from ..tensors import Map, Plus, Scaled
from . import diagram as D
from .document import Block, Row, steps_rows
from .entrywise import Dims, OutputSize
from .rules import Glyph, Ref


class Infix(sp.Expr):
    """``left op right`` in a sentence (W ⋆ A), each printed by the format's printer."""

    def __new__(cls, left, op, right):
        return sp.Expr.__new__(cls, left, op, right)

    def _latex(self, printer):
        return " ".join(printer._print(a) for a in self.args)

    def _sympystr(self, printer):
        return " ".join(printer._print(a) for a in self.args)

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(" ".join(printer._print(a).render(wrap_line=False)
                                   for a in self.args))

# What each operation is, in words: a tensors node type (a pool's with its kind) -> the
# sentence a document prints with it. {name} is the node's property of that name, as math.
OPERATIONS = {
    "Correlate": "{star} is the cross-correlation of torch's conv2d: each output channel of "
                 "{W_star_A} sums, over the input channels, the correlation of its kernel with that "
                 "channel, windows {s} apart (the stride); {A} is 0 outside its rows and "
                 "columns (the zero padding, {p} on each side), and each channel's bias adds "
                 "to all of its positions",
    "Map": "the activation, entry by entry",
    "WeightCorrelate": "for each example i, the correlation of its input {A} (zero-padded by "
                       "{p}) with its error {dZ}, windows {s} apart; summed over the examples",
    "ChannelSum": "the error {dZ} summed over the examples and over every position of each "
                  "channel",
    "FullCorrelate": "the full correlation ({full_star}) of the error {dZ}, dilated by the "
                     "stride {s} ({gap} zeros between its entries), with each kernel rotated by "
                     "{half_turn} "
                     "(rot180 flips its rows and its columns), summed over the output channels "
                     "and cropped by the padding {p} on each side; an entry no window reads "
                     "gets 0",
    "Pool/max": "the maximum of each {window} window, windows {s} apart; {M} is the arg-max "
                "indicator: 1 at the first maximum of each window in row-major order and 0 "
                "elsewhere, constant when differentiating",
    "Pool/avg": "the mean of each {window} window, windows {s} apart",
    "Unpool/max": "max-unpooling: each window's error {dA} goes to the entry that was its "
                  "maximum ({M}), the others get 0; where windows overlap, their errors add",
    "Unpool/avg": "average-unpooling: each window's error {dA} is spread evenly over its "
                  "{window} entries; where windows overlap, their errors add",
    "Flatten": "each example's feature map {A} as one vector, channel by channel, row by row "
               "(PyTorch's order)",
    "Unflatten": "the error {dA} of the vectors back in the shape of the feature map {A}, the "
                 "inverse of flatten's order",
    # recurrent layers: each written at one time step {t}
    "Recurrence": "step {t} of every example at once: the input at step {t} through the input "
                  "weights {W}, the hidden state of the step before through the recurrent "
                  "weights {U}, and the bias {b}; the hidden state before the first step is 0",
    "LastStep": "what the layer passes on to the dense head: the hidden state of the last "
                "step, one vector per example",
    "EveryStep": "what the layer passes on to the dense head: the hidden state of every step, "
                 "example {k}'s step {t} as vector {Tk+t} of the {mT} the head reads",
    "BackThroughTime/last": "backpropagation through time: the error of a hidden state comes "
                            "back through both of its uses, the next step (through {U}; the "
                            "last step has none, hence [{next}]) and what the layer passes on "
                            "({dA}, at the last step only)",
    "BackThroughTime/every": "backpropagation through time: the error of a hidden state comes "
                             "back through both of its uses, the next step (through {U}; the "
                             "last step has none, hence [{next}]) and what the layer passes "
                             "on at that step (the error {dA} at step {t})",
    "StepOuter/0": "each step's error {dZ} with that step's input {A}, a matrix product that "
                   "sums over the examples, summed over the steps",
    "StepOuter/1": "each step's error {dZ} with the hidden state {A} of the step before (0 "
                   "before the first step), a matrix product that sums over the examples, "
                   "summed over the steps",
    "StepSum": "the error {dZ} summed over the examples and the steps",
}
# A node type whose sentence depends on one of its arguments: type name -> that variant.
VARIANTS = {
    "Pool": lambda node: node.how, "Unpool": lambda node: node.how,
    "BackThroughTime": lambda node: "every" if node.every_step else "last",
    "StepOuter": lambda node: str(node.lag),
}
# Math a sentence names by {name} besides its operation's properties: the time step t of a
# recurrent layer's operations, what it is about, the operators it is written with, and
# expressions of its properties (a function of the operation).
NAMED = {"t": N.t, "k": N.k, "Tk+t": N.T * N.k + N.t, "mT": N.m * N.T,
         "next": sp.Le(N.t + 1, N.T - 1),
         "star": Glyph(r"\star", "⋆"), "full_star": Glyph(r"\star^{\mathrm{full}}", "⋆full"),
         "half_turn": Glyph(r"180^{\circ}", "180°"),
         "W_star_A": lambda node: Infix(node.W, Glyph(r"\star", "⋆"), node.A),
         "gap": lambda node: node.s - 1, "window": lambda node: Dims(node.f, node.f)}
PENALTY = "; the L2 penalty adds {penalty}"  # (λ/m) W, over the cost's m
ACTIVATION_ERROR = "entry by entry: the error of the activation times its derivative"

# How a layer of each feature kind is named: in a heading, and in the diagram and the table.
TITLES = {
    "conv": lambda f: f"convolution, {f.channels} kernel{'s' if f.channels != 1 else ''} of "
                      f"{f.kernel} × {f.kernel}, stride {f.stride}, padding {f.padding}",
    "maxpool": lambda f: f"max pooling, {f.kernel} × {f.kernel} windows, stride {f.stride}",
    "avgpool": lambda f: f"average pooling, {f.kernel} × {f.kernel} windows, stride {f.stride}",
    "flatten": lambda f: "flatten",
    "rnn": lambda f: f"recurrent (Elman), {f.units} unit{'s' if f.units != 1 else ''}",
}
LABELS = {
    "conv": lambda f: [f"conv {f.kernel}×{f.kernel}, {f.channels}",
                       *([f"s {f.stride}"] if f.stride != 1 else []),
                       *([f"p {f.padding}"] if f.padding else [])],
    "maxpool": lambda f: [f"maxpool {f.kernel}", *([f"s {f.stride}"]
                                                   if f.stride != f.kernel else [])],
    "avgpool": lambda f: [f"avgpool {f.kernel}", *([f"s {f.stride}"]
                                                   if f.stride != f.kernel else [])],
    "flatten": lambda f: ["flatten"],
    "rnn": lambda f: [f"rnn {f.units}" + (", every step" if f.every_step else "")],
}
SIZE_KINDS = ("n_C", "n_H", "n_W")


def _inner(node):
    """The operation inside a scaled or penalised gradient: (1/m) Σ_i A_i ⋆ dZ_i -> the
    correlation."""
    while isinstance(node, (Scaled, Plus)):
        node = node.node if isinstance(node, Scaled) else node.args[0]
    return node


def operation_key(node) -> str:
    """The key of OPERATIONS for a node: its type, with its variant (a pool's kind)."""
    inner = _inner(node)
    name = type(inner).__name__
    return f"{name}/{VARIANTS[name](inner)}" if name in VARIANTS else name


def describe(node) -> tuple:
    """The sentence of ``node``'s operation as pieces: text, and math for each {name} (the
    operation's property of that name; the penalty's W for a penalised gradient)."""
    inner = _inner(node)
    text = OPERATIONS[operation_key(node)]
    values = {}
    if isinstance(node, Plus):  # Plus(Scaled(1/m, operation), Scaled(λ/m, W))
        text += PENALTY
        values["penalty"] = node.args[1]
    pieces, rest = [], text
    while "{" in rest:
        before, _, after = rest.partition("{")
        name, _, rest = after.partition("}")
        value = values[name] if name in values else NAMED[name] if name in NAMED \
            else getattr(inner, name)
        pieces += [before, value(inner) if callable(value) else value]
    pieces.append(rest)
    return tuple(p for p in pieces if not (isinstance(p, str) and not p))


# --- what the document says ----------------------------------------------------------------

@dataclass(frozen=True)
class StepBlock:
    """One gradient of one feature layer, derived: ``lhs`` (dW^[1]) by ``rows``."""

    layer: int
    title: str
    name: str  # BP1 .. BP4
    lhs: sp.Basic
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class FeatureSections:
    forward: tuple[Block, ...]  # per feature layer: its definitions, entry by entry and vectorised
    sizes: tuple[tuple, ...]  # (size symbol, formula, the formula in numbers or None, value)
    steps: tuple[StepBlock, ...]  # per gradient of each feature layer, output side first
    results: tuple[Row, ...]  # the gradients, vectorised, from flatten back to the input


def named_activation(layer):
    """A = g(Z) with g by its registry name, as the dense layers print it."""
    g = sp.Function(layer.activation.name)
    return Map(sp.Lambda(z_var, g(z_var)), layer.symbols["Z"])


def _forward_rows(layer) -> tuple[Row, ...]:
    rows = []
    for eq in layer.forward:
        node = eq.rhs
        if isinstance(node, Map) and layer.activation is not None:
            node = named_activation(layer)
            rows += [Row(eq.entry_lhs, node.entry(*eq.entry_lhs.indices)),
                     Row(eq.lhs, node, note=describe(node))]
            continue
        rows += [Row(eq.entry_lhs, eq.entry_rhs), Row(eq.lhs, node, note=describe(node))]
    return tuple(rows)


def title(feature, arch) -> str:
    """A feature layer in words, its activation by its human name (registry)."""
    words = TITLES[feature.kind](feature)
    if feature.activation:
        words += f", then {arch.activation_entry(feature.activation).human_name}"
    return words


def label(feature, arch) -> tuple[str, str | None]:
    """The short label of a feature layer's operation (conv 3×3, 16, s 2, p 1) and its
    activation by its human name (None for none or the identity)."""
    act = arch.activation_entry(feature.activation).human_name \
        if feature.activation not in ("", "identity") else None
    return ", ".join(LABELS[feature.kind](feature)), act


def all_sizes(arch) -> dict:
    """Every size symbol of an image network -> its number: the feature maps' and kernels'
    (naming.feature_sizes) and the dense layers' units."""
    sizes = dict(N.feature_sizes(arch))
    sizes.update({N.units(label): arch.size(label) for label in arch.dense_labels})
    return sizes


def size_rows(d) -> tuple[tuple, ...]:
    """n_C, n_H, n_W of every feature map, and flatten's units: (symbol, formula, the formula
    in this network's numbers, value). A convolution's rows and columns follow
    ⌊(n + 2p - f)/s⌋ + 1, a pooling layer's the same without padding; each value is checked
    against the architecture's own shapes."""
    sizes = all_sizes(d.arch)
    shapes = d.arch.shapes()
    rows = []
    for layer in d.features:
        l, sym = layer.index, layer.symbols
        if "units" in sym:  # flatten: n_l = n_C n_H n_W
            product = sp.Mul(*sym["prev_sizes"], evaluate=False)
            numbers = sp.Mul(*(sp.Integer(sizes[x]) for x in sym["prev_sizes"]),
                             evaluate=False)
            rows.append((sym["units"], product, numbers, sp.Integer(shapes[l][0])))
            continue
        C, H, W = (N.feature_size(kind, l) for kind in SIZE_KINDS)
        Cp, Hp, Wp = sym["prev_sizes"]
        # A convolution has a channel per kernel; a pooling layer keeps its input's.
        rows.append((C, None, None, sp.Integer(shapes[l][0])) if "W" in sym
                    else (C, Cp, None, sp.Integer(shapes[l][0])))
        p = sym.get("p", sp.Integer(0))
        for out, prev, value in ((H, Hp, shapes[l][1]), (W, Wp, shapes[l][2])):
            rule = OutputSize(prev, p, sym["f"], sym["s"])
            numbers = OutputSize(*(sp.Integer(sizes.get(x, x)) for x in (prev, p, sym["f"],
                                                                          sym["s"])))
            if numbers.value() != value:
                raise DerivationError(f"layer {l}: {out} is {value} but "
                                      f"{rule} gives {numbers.value()}")
            rows.append((out, rule, numbers, sp.Integer(value)))
    return tuple(rows)


def feature_sections(d, with_steps: bool = True) -> FeatureSections:
    forward = tuple(Block(title(layer.feature, d.arch), _forward_rows(layer),
                          name=str(layer.index))
                    for layer in d.features)
    steps = ()
    if with_steps:
        steps = tuple(StepBlock(layer.index, title(layer.feature, d.arch), eq.name, eq.lhs,
                                steps_rows(eq))
                      for layer in reversed(d.features) for eq in layer.backward.values())
    head = d.layers[0].backward["BP3"]  # the error of the flat vectors, from the dense head
    flat_error = (Ref("BP3"), (f" of layer {d.arch.offset + 1}: the error of the flattened "
                  "vectors"))
    results = [Row(head.lhs, head.rhs, note=flat_error)]
    for layer in reversed(d.features):
        for eq in layer.backward.values():
            # dZ = dA ⊙ g'(Z), g' derived; the others one operation each
            note = (ACTIVATION_ERROR,) if eq.name == "BP4" else describe(eq.rhs)
            results.append(Row(eq.lhs, eq.rhs, note=note, tag=(eq.name, layer.index)))
    return FeatureSections(forward, size_rows(d), steps, tuple(results))


# --- printing ------------------------------------------------------------------------------

def _concrete(shape, sizes):
    return tuple(sp.sympify(x).xreplace(sizes) for x in shape)


def feature_table(d, f, acts, text) -> list[list[str]]:
    """The dimensions table: one row per layer, input first; A^[l] (and Z^[l]), W^[l], b^[l]
    in this network's numbers."""
    sizes, none = all_sizes(d.arch), r"\cdot"
    table = [[f.math(sp.Integer(0)), text("input"), none, f.shape(_concrete(d.X.shape, sizes)),
              none, none]]
    for layer in d.features:
        sym = layer.symbols
        act = acts[layer.activation.name] if layer.activation is not None else none
        shapes = [f.shape(_concrete(sym[key].shape, sizes)) if key in sym else none
                  for key in ("A", "W", "b")]
        table.append([f.math(sp.Integer(layer.index)), text(label(layer.feature, d.arch)[0]),
                      act,
                      *shapes])
    for layer in d.layers:
        table.append([f.math(sp.Integer(layer.index)),
                      text(f"dense, {d.arch.size(layer.index)} units"),
                      acts[layer.activation.name], f.shape(_concrete(layer.A.shape, sizes)),
                      f.shape(_concrete(layer.W.shape, sizes)),
                      f.shape(_concrete(layer.b.shape, sizes))])
    return table


def shape_text(shape) -> str:
    return "×".join(str(n) for n in shape)


def chain_parts(d) -> list[tuple[str, list[str]]]:
    """(the shape of each layer's output, the lines of the label of the operation that made
    it: the operation, then its activation), input first with no label: the diagram's
    content."""
    arch = d.arch
    shapes = arch.shapes()
    parts = [(shape_text(shapes[0]), [])]
    for n, feature in enumerate(arch.features, start=1):
        op, act = label(feature, arch)
        parts.append((shape_text(shapes[n]), [op, *([act] if act else [])]))
    for n, act in zip(arch.dense_labels, arch.activations):
        parts.append((shape_text(shapes[n]), ["dense", arch.activation_entry(act).human_name]))
    return parts


def chain_text(d) -> str:
    """The diagram on one line: 1×8×8 → conv 3×3, 16, ReLU → 16×8×8 → ... → 10."""
    out = ""
    for shape, lines in chain_parts(d):
        out += f" → {', '.join(lines)} → {shape}" if lines else shape
    return out


def feature_diagram(d, f, text) -> dict:
    """Where each box, label and arrow of the TikZ chain goes (cm), and its labels."""
    chain = D.chain_layout(d.arch.shapes())
    parts = chain_parts(d)
    op_y = round(chain.top + 0.45, 3)
    shape_y, name_y = round(chain.bottom - 0.3, 3), round(chain.bottom - 0.75, 3)
    names = [d.X] + [layer.symbols["A"] for layer in d.features] + [layer.A for layer in d.layers]
    boxes = []
    for box, (shape, _), A in zip(chain.boxes, parts, names):
        boxes.append({"rectangles": [f"({x0},{y0}) rectangle ({x1},{y1})"
                                     for x0, y0, x1, y1 in box.rectangles()],
                      "shape_at": f"({box.x},{shape_y})", "name_at": f"({box.x},{name_y})",
                      "shape": text(shape.replace("×", " × ")), "name": f.math(A)})
    arrows = []
    for (left, right), (_, label) in zip(chain.arrows(), parts[1:]):
        middle = round((left.right + right.left) / 2, 3)
        arrows.append({"from": f"({round(left.right + 0.08, 3)},0)",
                       "to": f"({round(right.left - 0.08, 3)},0)",
                       "label_at": f"({middle},{op_y})",
                       "label": r" \\ ".join(text(line) for line in label),
                       "width": f"{round(chain.step - 0.2, 3)}cm"})
    return {"boxes": boxes, "arrows": arrows, "text": text(chain_text(d))}


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("s" if n != 1 else "")


def _labels_math(f, labels_) -> str:
    return ", ".join(f.math(sp.Integer(x)) for x in labels_)


def _update_layers(f, conv_labels, first) -> str:
    """Which layers gradient descent updates, in words with math: the convolutions' kernels
    and the dense layers' weights."""
    l = f.math(sp.Symbol("l"))
    dense = "the weights and biases of every dense layer (" \
        + f.inline(f"{l} = {f.math(sp.Integer(first))}, " + r"\dots, L") + ")"
    if not conv_labels:
        return dense
    return (f"the kernels and biases of every convolution ("
            f"{f.inline(f'{l} = {_labels_math(f, conv_labels)}')}) and {dense}")


def feature_context(d, f, text, acts, with_steps: bool, with_diagram: bool) -> dict:
    """The template variables of an image network's feature sections."""
    s = feature_sections(d, with_steps)
    arch = d.arch
    label = "l"
    prev = N.previous(label)
    general = {kind: N.feature_size(kind, label) for kind in (*SIZE_KINDS, "f", "s", "p")}
    prev_C = N.feature_size("n_C", prev)
    map_shape = (d.m, *(general[k] for k in SIZE_KINDS))
    A_l = N.tensor("A", label, map_shape)
    dense_first = arch.offset + 1
    flat = d.features[-1].symbols["A"]
    conv_labels = [layer.index for layer in d.features if "W" in layer.symbols]
    return {
        "feature_notation_template": f"feature_notation_{d.notation}",
        "fnames": {"A": f.math(A_l), "A_prev": f.math(N.tensor("A", prev, map_shape)),
                   "W": f.math(N.tensor("W", label, (1,))),
                   "b": f.math(N.tensor("b", label, (1,))),
                   "Z": f.math(N.tensor("Z", label, map_shape)),
                   "M": f.math(N.tensor("M", label, (1,))),
                   "entry": f.math(A_l[N.k, N.c, N.h, N.w]),
                   **{k: f.math(v) for k, v in general.items()}},
        "fshapes": {"A": f.shape(map_shape), "A0": f.shape(d.X.shape),
                    "W": f.shape((general["n_C"], prev_C, general["f"], general["f"])),
                    "b": f.math(general["n_C"])},
        "offset": arch.offset, "first_dense": dense_first,
        "flat": f.math(flat), "flat_shape": f.shape(flat.shape),
        "features_count": len(d.features), "dense_count": len(d.layers),
        "feature_forward": [{"layer": b.name, "title": text(b.title), "rows": f.rows(b.rows)}
                            for b in s.forward],
        "feature_table": feature_table(d, f, acts, text),
        "feature_sizes": f.fit([{"lhs": f.math(sym),
                                 "end": r" \\" if n < len(s.sizes) - 1 else "",
                                 "rhs": " = ".join(f.math(x) for x in chain if x is not None)}
                                for n, (sym, *chain) in enumerate(s.sizes)]),
        "layer_counts": text(_counted(len(d.features), "feature layer") + ", the last of them "
                             "flatten, then " + _counted(len(d.layers), "dense layer")),
        "update_layers": _update_layers(f, conv_labels, dense_first),
        "feature_diagram": feature_diagram(d, f, text) if with_diagram else None,
        "feature_steps": [{"layer": b.layer, "title": text(b.title), "name": b.name,
                           "lhs": f.math(b.lhs), "rows": f.rows(b.rows)} for b in s.steps],
        "feature_results": f.rows(s.results),
        "conv_labels": ", ".join(str(x) for x in conv_labels),
        "has_conv": bool(conv_labels),
    }
