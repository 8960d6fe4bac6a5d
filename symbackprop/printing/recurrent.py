"""The recurrent layer of a sequence network, written up: what a document says about an Elman
layer and backpropagation through time, besides the dense head's sections (``document``).

As in ``features``: ``recurrent_sections(d)`` picks what is said, as SymPy expressions and nodes
of ``tensors`` (the layer's forward definitions entry by entry and at a time step, the
chain-rule steps of each gradient, the vectorised gradients in the order to compute them, the
shape of every array); ``recurrent_context`` prints them with the format's printer; templates
only place the pieces. A gradient's vectorised form is written at one time step t where the
operation acts step by step (``AT_STEP``, one entry per node type); what each operation is, in
words, is one entry of ``features.OPERATIONS`` per node type.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import naming as N
from ..tensors import BackThroughTime, EveryStep, Map, Node, Recurrence
from . import diagram as D
from .document import Block, Row, steps_rows
from .entrywise import AtStep, Dims, StepColumns, is_sequence
from .features import ACTIVATION_ERROR, describe, named_activation
from .rules import Ref

# How an operation of a recurrent layer is written at time step t: node type -> (the left
# side's form, whether the node's sequences are read at step t). A type not listed (a weight's
# gradient, summed over the steps; what the last step passes on) keeps its left side whole.
AT_STEP = {
    Recurrence: (lambda lhs: AtStep(lhs, N.t), False),  # Z_t = W X_t + U H_{t-1} + b 1ᵀ
    Map: (lambda lhs: AtStep(lhs, N.t), True),  # H_t = g(Z_t), dZ_t = dH_t ⊙ g'(Z_t)
    BackThroughTime: (lambda lhs: AtStep(lhs, N.t), False),  # dH_t = Uᵀ dZ_{t+1} + ...
    EveryStep: (lambda lhs: StepColumns(lhs, N.t), False),  # A⟨t⟩ = H_t
}

# What a document says about each gradient before its steps: the name of a backward equation
# of the rnn kind -> the sentence (text, and math pieces the layer's symbols fill in).
GRADIENT_NOTES = {
    "BPTT": lambda s: (
        "the hidden state ", s["H"], " is used twice: by the next step's pre-activation ",
        s["Z"], " (through the recurrent weights ", s["U"],
        ") and by what the layer passes on, ", s["A"],
        ". The chain rule sums over both uses; the sum over the steps picks step ",
        N.tau + 1, ", which exists only where ", sp.Le(N.tau + 1, N.T - 1),
        ", so at the last step the hidden state reaches the cost through ", s["A"], " alone"),
    "BPU": lambda s: (
        "the recurrent weights ", s["U"],
        (" are shared by every step: the sum over the steps collects each step's part; at "
         "step 0 it reads the state before the first step, which is 0")),
    "BP1": lambda s: (
        "the input weights ", s["W"],
        " are shared by every step: the sum over the steps collects each step's part"),
}

# What the layer passes on to the dense head, in words: every_step -> the sentence, a vector
# being a ``place`` (column or row) of a matrix.
PASSED_ON = {
    False: lambda s, Y, place: (
        "The layer passes on its last hidden state, ",
        sp.Eq(s["A"], AtStep(s["H"], N.T - 1), evaluate=False), " (", Dims(*s["A"].shape),
        (f"), a {place} per example: many-to-one, the dense head and the loss apply once "
         "per example")),
    True: lambda s, Y, place: (
        "The layer passes on every hidden state: ", s["A"], " is ", Dims(*s["A"].shape),
        f", its {place}s are the ", N.m * N.T, f" (example, step) pairs, {place} ",
        N.T * N.k + N.t, " holding example ", N.k, " at step ", N.t, ", and ",
        StepColumns(s["A"], N.t), " stands for its ", N.m, f" {place}s of step ", N.t,
        f". The dense head applies to every {place}, so ", Y,
        " has a target per example and step and ", N.J, " averages the loss over the ",
        N.m * N.T, " pairs"),
}

# Where a vector sits in a matrix of vectors, by notation.
PLACE = {"ng": "column", "rowvec": "row"}


@dataclass(frozen=True)
class StepBlock:
    """One gradient of the recurrent layer, derived: ``lhs`` (dH^[1]) by ``rows``."""

    layer: int
    title: str
    name: str  # BPTT, BP4, BP1, BPU, BP2
    lhs: sp.Basic
    note: tuple  # what to keep in mind first (GRADIENT_NOTES), or ()
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class RecurrentSections:
    forward: Block  # the layer's definitions, entry by entry and at a time step
    steps: tuple[StepBlock, ...]  # each gradient, in the order backpropagation computes them
    head: Row  # the error of what the layer passes on, from the dense head (its BP3)
    recursion: tuple[Row, ...]  # the errors backward in time, at one step
    sums: tuple[Row, ...]  # the parameters' gradients, summed over the steps


def layer_title(layer, arch) -> str:
    from .features import title

    return title(layer.feature, arch)


def at_step(lhs, node):
    """(lhs, rhs) of a recurrent operation at time step t, as ``AT_STEP`` writes it; other
    operations as they are."""
    form = next((v for k, v in AT_STEP.items() if isinstance(_inner(node), k)), None)
    if form is None:
        return lhs, node
    side, reads_steps = form
    if reads_steps:
        node = node.xreplace({x: AtStep(x, N.t) for x in node.tensors if is_sequence(x)})
    return side(lhs), node


def _inner(node):
    from .features import _inner as inner

    return inner(node)


def _stepped(row: Row, uses: int) -> Row:
    """A step of a gradient through ``uses`` uses of its target: an operation written at time
    step t; a sum over several uses with a term per line."""
    if isinstance(row.rhs, Node) and row.lhs is not None:
        lhs, rhs = at_step(row.lhs, row.rhs)
        return Row(lhs, rhs, row.rule, row.note)
    return Row(row.lhs, row.rhs, row.rule, row.note, split=uses > 1)


def _uses(layer) -> dict:
    """Gradient name -> how many stages use its target (the chain rule's sums over them)."""
    return {g.name: max(len(g.through), 1) for stage in layer.kind.stages_of(layer.feature)
            for g in stage.gradients}


def _forward_rows(layer) -> tuple[Row, ...]:
    """Each stage: its entry, then the operation at step t with its sentence; the state before
    the first step is 0."""
    s = layer.symbols
    rows = []
    for eq in layer.forward:
        node = named_activation(layer) if isinstance(eq.rhs, Map) else eq.rhs
        entry = node.entry(*eq.entry_lhs.indices) if isinstance(eq.rhs, Map) else eq.entry_rhs
        rows.append(Row(eq.entry_lhs, entry))
        if isinstance(node, Recurrence):
            rows.append(Row(s["H"][N.k, -1, N.nu], sp.Integer(0),
                            note=("the state before the first step",)))
        lhs, rhs = at_step(eq.lhs, node)
        note = ("the activation, entry by entry",) if isinstance(node, Map) else describe(node)
        rows.append(Row(lhs, rhs, note=note))
    return tuple(rows)


def _per_example(layer) -> dict:
    """Gradient name -> whether it is an error (computed step by step) rather than a
    parameter's gradient (a sum over the steps), as the kind's stages say."""
    return {g.name: g.per_example for stage in layer.kind.stages_of(layer.feature)
            for g in stage.gradients}


def recurrent_sections(d, with_steps: bool = True) -> RecurrentSections:
    (layer,) = d.features
    s = layer.symbols
    title = layer_title(layer, d.arch)
    forward = Block(title, _forward_rows(layer), name=str(layer.index))
    steps = ()
    if with_steps:
        uses = _uses(layer)
        steps = tuple(StepBlock(layer.index, title, eq.name, eq.lhs,
                                GRADIENT_NOTES[eq.name](s) if eq.name in GRADIENT_NOTES else (),
                                tuple(_stepped(r, uses[eq.name]) for r in steps_rows(eq)))
                      for eq in layer.backward.values())
    first = d.layers[0].backward["BP3"]
    head = Row(first.lhs, first.rhs, note=(
        Ref("BP3"), (f" of layer {d.arch.offset + 1}: the error of what the recurrent layer "
        "passes on")))
    errors = _per_example(layer)
    recursion, sums = [], []
    for eq in layer.backward.values():
        lhs, rhs = at_step(eq.lhs, eq.rhs)
        note = (ACTIVATION_ERROR,) if isinstance(eq.rhs, Map) else describe(eq.rhs)
        (recursion if errors[eq.name] else sums).append(Row(lhs, rhs, note=note,
                                                            tag=(eq.name, layer.index)))
    return RecurrentSections(forward, steps, head, tuple(recursion), tuple(sums))


# --- the dimensions ------------------------------------------------------------------------

def sizes(arch) -> dict:
    """Every size symbol of a recurrent network -> its number."""
    out = dict(N.sequence_sizes(arch))
    out.update({N.units(label): arch.size(label) for label in arch.dense_labels})
    out[N.m] = N.m
    return out


def _concrete(shape, numbers):
    return tuple(sp.sympify(x).xreplace(numbers) for x in shape)


def _units(n: int) -> str:
    return f"{n} unit{'s' if n != 1 else ''}"


def table(d, f, text, acts) -> list[list[str]]:
    """The dimensions table, one row per layer, input first: its operation, activation, and the
    shapes of its output (H, Z for the rnn layer), W, U, b in this network's numbers."""
    numbers, none = sizes(d.arch), r"\cdot"
    (layer,) = d.features
    s = layer.symbols
    rows = [[f.math(sp.Integer(0)), text("input"), none,
             f.shape(_concrete(d.X.shape, numbers)), none, none, none]]
    rows.append([f.math(sp.Integer(layer.index)),
                 text(f"rnn, {_units(layer.feature.units)}"), acts[layer.activation.name],
                 *(f.shape(_concrete(s[k].shape, numbers)) for k in ("H", "W", "U", "b"))])
    for dense in d.layers:
        rows.append([f.math(sp.Integer(dense.index)),
                     text(f"dense, {_units(d.arch.size(dense.index))}"),
                     acts[dense.activation.name], f.shape(_concrete(dense.A.shape, numbers)),
                     f.shape(_concrete(dense.W.shape, numbers)), none,
                     f.shape(_concrete(dense.b.shape, numbers))])
    return rows


def step_shapes(d) -> dict:
    """The shape of a sequence at one step, and of what the layer passes on: symbolic."""
    (layer,) = d.features
    n0, n1 = layer.symbols["prev_units"], layer.symbols["units"]
    rowvec = d.notation == "rowvec"
    return {"X": (N.m, n0) if rowvec else (n0, N.m), "H": (N.m, n1) if rowvec else (n1, N.m)}


# --- the diagram ---------------------------------------------------------------------------

def unrolled_picture(d, name) -> list[str]:
    """The network unrolled in time as a small text picture: the inputs below, the hidden
    states left to right, what the dense head computes above (at the last step, or at every
    step). ``name`` prints a symbol on one line."""
    (layer,) = d.features
    s, every = layer.symbols, layer.feature.every_step
    out = d.output.A
    unrolled = D.unrolled(d.arch.sequence[0], every)
    cells = []
    for step in unrolled.steps:
        if step.step is None:
            cells.append(("", "…", "", ""))
            continue
        head = name(StepColumns(out, step.step) if every else out) if step.head else ""
        cells.append((head, name(AtStep(s["H"], step.step)), name(AtStep(d.X, step.step)),
                      "↑" if step.head else ""))
    start = name(sp.Integer(0))
    widths = [max(len(c) for c in cell) for cell in cells]
    lines = {"head": " " * (len(start) + 3), "up": " " * (len(start) + 3),
             "state": f"{start} → ", "in_up": " " * (len(start) + 3),
             "input": " " * (len(start) + 3)}
    for n, (cell, width) in enumerate(zip(cells, widths)):
        head, state, x, up = cell
        gap = "" if n == len(cells) - 1 else "   "
        arrow = "" if n == len(cells) - 1 else " → "
        lines["head"] += head.center(width) + gap
        lines["up"] += up.center(width) + gap
        lines["state"] += state.center(width) + arrow
        lines["in_up"] += ("↑" if x else "").center(width) + gap
        lines["input"] += x.center(width) + gap
    return [lines[k].rstrip() for k in ("head", "up", "state", "in_up", "input")]


def head_words(arch) -> str:
    """The dense head in words: dense layer 2, dense layers 2-3."""
    labels = list(arch.dense_labels)
    if len(labels) == 1:
        return f"dense layer {labels[0]}"
    return f"dense layers {labels[0]}–{labels[-1]}"


def tikz_diagram(d, f, text) -> dict:
    """Where each node and arrow of the unrolled network goes (cm), and their labels (TeX)."""
    (layer,) = d.features
    s, every = layer.symbols, layer.feature.every_step
    out = d.output.A
    unrolled = D.unrolled(d.arch.sequence[0], every)
    y_in, y_state, y_head = D.UNROLL_ROWS

    def math(expr):
        return f"${f.math(expr)}$"
    nodes = [{"name": "(s)", "at": f"({unrolled.start},{y_state})", "style": "start",
              "label": math(sp.Integer(0))}]
    arrows, previous = [], "(s)"
    last_head = max(n for n, step in enumerate(unrolled.steps) if step.head)
    for n, step in enumerate(unrolled.steps):
        here = f"({step.x},{y_state})"
        if step.step is None:  # the steps left out
            nodes.append({"name": f"(d{n})", "at": here, "style": "start",
                          "label": r"$\cdots$"})
            arrows.append({"from": previous, "to": f"(d{n})", "label": math(s["U"]),
                           "side": "above"})
            previous = f"(d{n})"
            continue
        h, x = f"(h{n})", f"(x{n})"
        nodes += [{"name": h, "at": here, "style": "state",
                   "label": math(AtStep(s["H"], step.step))},
                  {"name": x, "at": f"({step.x},{y_in})", "style": "io",
                   "label": math(AtStep(d.X, step.step))}]
        arrows += [{"from": x, "to": h, "label": math(s["W"]), "side": "right"},
                   {"from": previous, "to": h, "label": math(s["U"]), "side": "above"}]
        if step.head:
            nodes.append({"name": f"(y{n})", "at": f"({step.x},{y_head})", "style": "io",
                          "label": math(StepColumns(out, step.step) if every else out)})
            arrows.append({"from": h, "to": f"(y{n})", "side": "left",
                           "label": text(head_words(d.arch)) if n == last_head else ""})
        previous = h
    return {"nodes": nodes, "arrows": arrows}


# --- printing ------------------------------------------------------------------------------

def recurrent_context(d, f, text, acts, with_steps: bool, with_diagram: bool) -> dict:
    """The template variables of a recurrent network's sections."""
    sec = recurrent_sections(d, with_steps)
    (layer,) = d.features
    s = layer.symbols
    shapes = step_shapes(d)
    first = d.arch.offset + 1
    dense_count = len(d.layers)
    return {
        "rnn_notation_template": f"rnn_notation_{d.notation}",
        "rnames": {k: f.math(s[k]) for k in ("W", "U", "b", "Z", "H", "dZ", "dH", "dW",
                                              "dU", "db", "A", "dA")},
        "rnames_step": {"X": f.math(AtStep(d.X, N.t)), "H": f.math(AtStep(s["H"], N.t)),
                        "Z": f.math(AtStep(s["Z"], N.t)), "dZ": f.math(AtStep(s["dZ"], N.t)),
                        "dH": f.math(AtStep(s["dH"], N.t)),
                        "start": f.math(AtStep(s["H"], -1))},
        "rentry": {"X": f.math(d.X[N.k, N.tau, N.s]), "H": f.math(s["H"][N.k, N.tau, N.r])},
        "rshapes": {"X": f.shape(d.X.shape), "H": f.shape(s["H"].shape),
                    "W": f.shape(s["W"].shape), "U": f.shape(s["U"].shape),
                    "b": f.shape(s["b"].shape), "X_t": f.shape(shapes["X"]),
                    "H_t": f.shape(shapes["H"]), "A": f.shape(s["A"].shape)},
        "T": f.math(N.T), "t": f.math(N.t), "tau": f.math(N.tau), "last": f.math(N.T - 1),
        "passed_on": f.note(PASSED_ON[layer.feature.every_step](s, d.Y, PLACE[d.notation])),
        "examples": f.math(N.m),
        "rnames_next": {"dZ": f.math(AtStep(s["dZ"], N.t + 1))},
        "first_dense": first, "rnn_layer": layer.index,
        "rnn_counts": text(f"a recurrent layer, then {dense_count} dense "
                           f"layer{'s' if dense_count != 1 else ''}"),
        "rnn_forward": {"title": text(sec.forward.title), "rows": f.rows(sec.forward.rows)},
        "rnn_table": table(d, f, text, acts),
        "rnn_diagram": tikz_diagram(d, f, text) if with_diagram else None,
        "rnn_picture": unrolled_picture(d, _plain(d)) if with_diagram else None,
        "rnn_steps": [{"title": text(b.title), "name": b.name, "lhs": f.math(b.lhs),
                       "notes": [f.note(b.note)] if b.note else [], "rows": f.rows(b.rows)}
                      for b in sec.steps],
        "rnn_head": f.rows((sec.head,)),
        "rnn_recursion": f.rows(sec.recursion),
        "rnn_sums": f.rows(sec.sums),
        "rnn_update": f.rows(update_rows(d), relation=r"\leftarrow"),
    }


def _plain(d):
    """Math on one line in the terminal's characters (the text picture of the network)."""
    from .text import inline

    return lambda expr: inline(expr, d.notation)


def update_rows(d) -> tuple[Row, ...]:
    """W, U, b of the recurrent layer: each less α times its gradient."""
    from .document import ALPHA

    (layer,) = d.features
    s = layer.symbols
    rows = []
    for k in ("W", "U", "b"):  # as matrices of the arrays' names and shapes, as dense W[l] is
        shape = (*s[k].shape, 1)[:2]
        P, dP = (sp.MatrixSymbol(str(s[x].label), *shape) for x in (k, "d" + k))
        rows.append(Row(P, sp.MatAdd(P, sp.MatMul(-ALPHA, dP))))
    return tuple(rows)
