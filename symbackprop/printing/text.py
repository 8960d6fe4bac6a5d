"""The derivation for a terminal: every equation drawn by SymPy's pretty printer.

Same order as the documents: the network and its cost, the dimensions, BP1-BP4 derived for a
general layer (each step under the sentence of its rule), the four equations, this network's
equations output layer first, and the gradient-descent update. An image network's feature
layers come in the same places: their definitions in the forward pass, their sizes with the
dimensions, a diagram, their gradients derived after BP1-BP4 and vectorised after the dense
layers' equations.
"""
from __future__ import annotations

import sympy as sp

from ..model import RULES
from .document import network_kind, output_rows, sections
from .pretty import equation, pretty

SIZES = ("Sizes, layer by layer (a window of f rows, stride s, padding p leaves "
         "⌊(n + 2p - f)/s⌋ + 1 of n rows; a pooling layer has no padding):")


def _eq(row, lhs=None, relation="=", notation="ng") -> str:
    # Activations print by their registry names, as the undefined functions that carry them.
    return equation(row.lhs if lhs is None else lhs, row.rhs, relation, None, notation)


def inline(expr, notation="ng") -> str:
    """Math inside a sentence: the pretty printer's one-line form (what fits on one line)."""
    text = pretty(expr, notation)
    if "\n" in text:
        from .linear import text as linear

        return linear(expr)
    return text


def note_text(pieces, notation="ng") -> str:
    """A sentence of text and math pieces (features.describe), capitalised."""
    out = "".join(p if isinstance(p, str) else inline(p, notation) for p in pieces)
    return out[:1].upper() + out[1:]


def _rows(rows, indent="  ", notation="ng") -> list[str]:
    """Each row as a picture; a continuation row repeats its left side, as prose would."""
    out, lhs = [], None
    for row in rows:
        lhs = row.lhs if row.lhs is not None else lhs
        if row.rule in RULES:
            out.append(f"{indent}({RULES[row.rule]})")
        elif getattr(row, "note", ()):
            out.append(f"{indent}({note_text(row.note, notation)})")
        out += [indent + line for line in _eq(row, lhs, notation=notation).splitlines()]
    return out


def _shape(shape, sizes) -> str:
    return " × ".join(pretty(sp.sympify(x).xreplace(sizes)) for x in shape)


def _table(table) -> list[str]:
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
            for row in table]


def _dense_table(d) -> list[str]:
    from .. import naming as N

    arch = d.arch
    sizes = N.unit_sizes(arch.sizes)
    header = ("layer", "units", "activation", "A, Z", "W", "b")
    table = [header, ("0", str(arch.sizes[0]), "input", _shape(d.X.shape, sizes), "", "")]
    for layer in d.layers:
        table.append((str(layer.index), str(arch.sizes[layer.index]), layer.activation.human_name,
                      _shape(layer.A.shape, sizes), _shape(layer.W.shape, sizes),
                      _shape(layer.b.shape, sizes)))
    return _table(table)


def _feature_table(d) -> list[str]:
    from .features import all_sizes, label

    sizes = all_sizes(d.arch)
    header = ("layer", "operation", "activation", "A, Z", "W", "b")
    table = [header, ("0", "input", "", _shape(d.X.shape, sizes), "", "")]
    for layer in d.features:
        sym = layer.symbols
        table.append((str(layer.index), label(layer.feature, d.arch)[0],
                      layer.activation.human_name if layer.activation is not None else "",
                      *(_shape(sym[k].shape, sizes) if k in sym else "" for k in "AWb")))
    for layer in d.layers:
        table.append((str(layer.index), f"dense, {d.arch.size(layer.index)} units",
                      layer.activation.human_name, _shape(layer.A.shape, sizes),
                      _shape(layer.W.shape, sizes), _shape(layer.b.shape, sizes)))
    return _table(table)


def derivation_text(d, steps: bool = True, diagram: bool = True) -> str:
    arch, s, nt = d.arch, sections(d, steps), d.notation
    kind = network_kind(d)
    image = kind == "image"
    fs = None
    if image:
        from .features import chain_text, feature_sections

        fs = feature_sections(d, steps)
    rs = None
    if kind == "sequence":
        from .recurrent import recurrent_sections

        rs = recurrent_sections(d, steps)
    where = "columns are examples" if d.notation == "ng" else "rows are examples"
    loss = arch.loss_entry
    acts = ", ".join(entry.human_name for entry in arch.activation_entries)
    title = (f"Backpropagation for the {arch.spec()} network ({acts}), the {loss.human_name} "
             f"loss ({arch.loss}): {loss.description}.")
    if image:
        where = f"feature maps are (example, channel, row, column); after flatten, {where}"
    if rs is not None:
        where = _sequence_where(d)
    lines = [title,
             f"m examples; {where}.", "", "Forward pass:"]
    if image:
        for block in fs.forward:
            lines += [f"  layer {block.name}, {block.title}:"] + _rows(block.rows, "    ", nt)
        lines.append("  the dense layers:")
        lines += _rows(s.forward, "    ", notation=nt)
    elif rs is not None:
        lines.append(f"  layer {rs.forward.name}, {rs.forward.title}, for each time step t = "
                     "0, 1, …, T - 1 in turn:")
        lines += _rows(rs.forward.rows, "    ", nt)
        lines.append("  the dense layers:")
        lines += _rows(s.forward, "    ", notation=nt)
    else:
        lines += _rows(s.forward, notation=nt)
    if s.activations:
        lines += ["", "Activations:"] + _rows(s.activations, notation=nt)
    lines += ["", "Cost:"] + _rows(s.cost, notation=nt)

    lines += ["", "Dimensions:"]
    if image:
        lines += _feature_table(d)
        lines += ["", SIZES]
        for sym, *chain in fs.sizes:
            lines.append("  " + " = ".join(inline(x, nt) for x in (sym, *chain)
                                           if x is not None))
        if diagram:
            lines += ["", "Diagram:", "  " + chain_text(d)]
    elif rs is not None:
        lines += _recurrent_dimensions(d, diagram)
    else:
        lines += _dense_table(d)

    for block in s.steps:
        lines += ["", f"{block.name}, by the chain rule:"] + _rows(block.rows, "    ", notation=nt)
    if image:
        for block in fs.steps:
            head = f"Layer {block.layer} ({block.title}), {inline(block.lhs, nt)} ({block.name})"
            lines += ["", f"{head}, by the chain rule:"] + _rows(block.rows, "    ", nt)
    if rs is not None:
        for block in rs.steps:
            head = f"Layer {block.layer} ({block.title}), {inline(block.lhs, nt)} ({block.name})"
            lines += ["", f"{head}, by the chain rule:"]
            if block.note:
                lines.append(f"    {note_text(block.note, nt)}.")
            lines += _rows(block.rows, "    ", nt)
    first = "1" if kind == "dense" else f"{arch.offset + 1}"
    every = "every layer" if kind == "dense" else "every dense layer"
    lines += ["", f"The four equations, for {every} l from L down to {first}:"]
    for row in s.results:
        lines += [f"  {row.rule}:"] + _rows([type(row)(row.lhs, row.rhs)], "    ", notation=nt)
    lines += ["", "The output layer's error:"] + _rows(output_rows(d.output, steps), notation=nt)
    lines += ["", "This network, output layer first:"]
    for block in s.specialised:
        lines += [f"  layer {block.title}:"] + _rows(block.rows, "    ", notation=nt)
    if image:
        lines += ["", "The feature layers, from flatten back to the input:"]
        lines += _rows(fs.results, notation=nt)
    if rs is not None:
        lines += ["", "The recurrent layer, backward in time: the error of what it passes on,"]
        lines += _rows((rs.head,), notation=nt)
        lines.append("  then for t = T - 1, …, 1, 0 in turn (step t needs the error of step "
                     "t + 1; the last step has none):")
        lines += _rows(rs.recursion, "    ", notation=nt)
        lines.append("  and, once every step's error is known, each parameter's gradient "
                     "summed over the steps:")
        lines += _rows(rs.sums, "    ", notation=nt)
    which = "every layer"
    if image:
        convs = any("W" in layer.symbols for layer in d.features)
        which = ("every convolution's kernels and biases and " if convs else "") \
            + "every dense layer's weights and biases"
    updates = list(s.update)
    if rs is not None:
        from .recurrent import update_rows

        which = "the recurrent layer's weights and bias and every dense layer's weights and " \
            "biases"
        updates = [*update_rows(d), *updates]
    lines += ["", f"Gradient descent with learning rate α, {which}:"]
    for row in updates:
        lines += ["  " + line for line in _eq(row, relation="←", notation=nt).splitlines()]
    lines.append("")
    return "\n".join(line.rstrip() for line in "\n".join(lines).split("\n"))  # no trailing spaces


def _sequence_where(d) -> str:
    """How a recurrent network's arrays are laid out, in words."""
    where = "columns are examples" if d.notation == "ng" else "rows are examples"
    place = "column" if d.notation == "ng" else "row"
    text = (f"sequences are (example, time step, unit), T time steps, and the hidden state "
            f"before the first step is 0; at a time step, and after the recurrent layer, "
            f"{where}")
    if d.arch.every_step:
        text += (f"; the dense head reads the m T (example, step) pairs, {place} T k + t for "
                 f"example k at step t (⟨t⟩ names the {place}s of step t), and J averages the "
                 "loss over them")
    return text


def _recurrent_table(d) -> list[str]:
    from .recurrent import sizes

    numbers = sizes(d.arch)
    (layer,) = d.features
    sym = layer.symbols
    header = ("layer", "operation", "activation", "A, Z", "W", "U", "b")
    units = layer.feature.units
    table = [header, ("0", "input", "", _shape(d.X.shape, numbers), "", "", ""),
             (str(layer.index), f"rnn, {units} unit{'s' if units != 1 else ''}",
              layer.activation.human_name, *(_shape(sym[k].shape, numbers) for k in "HWUb"))]
    for dense in d.layers:
        n = d.arch.size(dense.index)
        table.append((str(dense.index), f"dense, {n} unit{'s' if n != 1 else ''}",
                      dense.activation.human_name, _shape(dense.A.shape, numbers),
                      _shape(dense.W.shape, numbers), "", _shape(dense.b.shape, numbers)))
    return _table(table)


def _recurrent_dimensions(d, diagram: bool) -> list[str]:
    from .. import naming as N
    from .entrywise import AtStep
    from .features import chain_text
    from .recurrent import step_shapes, unrolled_picture

    nt = d.notation
    (layer,) = d.features
    sym = layer.symbols
    shapes = step_shapes(d)
    X_t, Z_t, H_t = (inline(AtStep(x, N.t), nt) for x in (d.X, sym["Z"], sym["H"]))

    def dims(shape):
        return " × ".join(inline(x, nt) for x in shape)
    lines = [*_recurrent_table(d), "",
             (f"  The recurrent layer's row shows {inline(sym['H'], nt)} and "
              f"{inline(sym['Z'], nt)}; every error has the shape of its quantity."),
             (f"  At one time step, {X_t} is {dims(shapes['X'])} and {Z_t}, {H_t} are "
              f"{dims(shapes['H'])}; what the layer passes on, {inline(sym['A'], nt)}, is "
              f"{dims(sym['A'].shape)}.")]
    if diagram:
        lines += ["", "Diagram:", "  " + chain_text(d), "",
                  "  The network unrolled in time (inputs below, the head above):"]
        lines += ["    " + line for line in unrolled_picture(d, lambda e: inline(e, nt))]
    return lines
