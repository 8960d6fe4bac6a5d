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

from .document import network_kind, output_rows, sections, used_rules
from .pretty import equation, pretty
from .rules import RULES, Ref, caption, numbered

SIZES = ("Sizes, layer by layer (a window of f rows, stride s, padding p leaves "
         "⌊(n + 2p - f)/s⌋ + 1 of n rows; a pooling layer has no padding):")


def _eq(row, lhs=None, relation="=", notation="ng", width=None) -> str:
    # Activations print by their registry names, as the undefined functions that carry them.
    return equation(row.lhs if lhs is None else lhs, row.rhs, relation, None, notation, width)


def inline(expr, notation="ng") -> str:
    """Math inside a sentence: the pretty printer's one-line form (what fits on one line);
    an equation side by side."""
    if isinstance(expr, sp.Eq):
        return " = ".join(inline(side, notation) for side in expr.args)
    text = pretty(expr, notation)
    if "\n" in text:
        from .linear import text as linear

        return linear(expr)
    return text


def note_text(pieces, notation="ng") -> str:
    """A sentence of text, math pieces and references (features.describe, rules),
    capitalised."""
    out = "".join(p if isinstance(p, str) else p.name if isinstance(p, Ref)
                  else inline(p, notation) for p in pieces)
    return out[:1].upper() + out[1:]


class _Writer:
    """Writes the lines of a text document: prose wrapped to ``width`` (equations, tables
    and pictures never), each row under its caption (its rule by number, or its note)."""

    def __init__(self, notation, width, rule_numbers=None, loss=None):
        self.nt, self.width = notation, width
        self.rule_numbers, self.loss = rule_numbers or {}, loss

    def say(self, text, indent="", hang="  ") -> list[str]:
        """A paragraph of prose, wrapped; its later lines indented by ``hang`` more."""
        import textwrap

        return textwrap.wrap(text, self.width, initial_indent=indent,
                             subsequent_indent=indent + hang, break_long_words=False,
                             break_on_hyphens=False) or [indent]

    def rows(self, rows, indent="  ") -> list[str]:
        """Each row as a picture; a continuation row repeats its left side, as prose would."""
        out, lhs = [], None
        for row in rows:
            lhs = row.lhs if row.lhs is not None else lhs
            if row.rule in self.rule_numbers:
                pieces = caption(row.rule, self.rule_numbers[row.rule], lhs, self.loss)
                out += self.say(f"({note_text(pieces, self.nt)})", indent, " ")
            elif getattr(row, "note", ()):
                out += self.say(f"({note_text(row.note, self.nt)})", indent, " ")
            out += self.picture(_eq(row, lhs, notation=self.nt,
                                    width=self.width - len(indent)), indent)
        return out

    def picture(self, text: str, indent: str = "  ") -> list[str]:
        return [indent + line for line in text.splitlines()]


def _rows(rows, indent="  ", notation="ng") -> list[str]:
    """Rows without rule numbers (a document's pieces written on their own)."""
    return _Writer(notation, 10 ** 6).rows(rows, indent)


def _rule_list(d, numbers, w) -> list[str]:
    """The rules the steps follow, each stated once: (R1) The chain rule: ..."""
    lines = ["", *w.say("The steps follow these rules, each referred to by its number:")]
    for key, n in sorted(numbers.items(), key=lambda item: item[1]):
        lines += w.say(f"(R{n}) {note_text(RULES[key].statement(d), d.notation)}.", "  ",
                       "      ")
    return lines


def _shape(shape, sizes) -> str:
    return " × ".join(pretty(sp.sympify(x).xreplace(sizes)) for x in shape)


def _table(table, w=None) -> list[str]:
    """A table: a header and rows in columns; where the columns are wider than the writer's
    ``w`` width, each row a paragraph of its own (layer 1: operation conv 3×3, ...)."""
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    grid = ["  " + "  ".join(cell.ljust(n) for cell, n in zip(row, widths)).rstrip()
            for row in table]
    if w is None or max(len(line) for line in grid) <= w.width:
        return grid
    header, *rows = table
    out = []
    for row in rows:
        cells = [f"{name} {cell}" if n == 0 else f"{name}: {cell}"
                 for n, (name, cell) in enumerate(zip(header, row)) if cell]
        out += w.say(cells[0] + " — " + "; ".join(cells[1:]), "  ", "    ")
    return out


def _chain(text: str, w, link: str = " → ") -> list[str]:
    """A chain of links on one line (the diagram's 1×8×8 → conv 3×3, 16, ReLU → 16×8×8 →
    ..., a size's n_H[1] = ⌊...⌋ + 1 = 8), broken before a link where it is wider than the
    writer's width."""
    parts = text.split(link)
    lines = ["  " + parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + len(link + part) <= w.width:
            lines[-1] += link + part
        else:
            lines.append("   " + link + part)
    return lines


def _dense_table(d, w=None) -> list[str]:
    from .. import naming as N

    arch = d.arch
    sizes = N.unit_sizes(arch.sizes)
    header = ("layer", "units", "activation", "A, Z", "W", "b")
    table = [header, ("0", str(arch.sizes[0]), "input", _shape(d.X.shape, sizes), "", "")]
    for layer in d.layers:
        table.append((str(layer.index), str(arch.sizes[layer.index]), layer.activation.human_name,
                      _shape(layer.A.shape, sizes), _shape(layer.W.shape, sizes),
                      _shape(layer.b.shape, sizes)))
    return _table(table, w)


def _feature_table(d, w=None) -> list[str]:
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
    return _table(table, w)


def terminal_width() -> int:
    """The width a text document is written to: the terminal's, when standard output is
    one; 80 otherwise (a file, a pipe, a notebook)."""
    import shutil
    import sys

    stdout = sys.__stdout__  # the process's own standard output, whatever wraps it
    if stdout is not None and stdout.isatty():
        return shutil.get_terminal_size().columns
    return 80


def derivation_text(d, steps: bool = True, diagram: bool = True, width: int = 80) -> str:
    """The text document in lines of at most ``width`` columns (at least 40): prose
    wrapped, equations broken before an operator or between factors (``pretty.broken``),
    tables wider than that written a row a paragraph. What has no place to break in it
    (an entry's indices, a fraction) stays whole."""
    from .. import naming as N

    arch, s, nt = d.arch, sections(d, steps), d.notation
    numbers = numbered(used_rules(d, steps))
    w = _Writer(nt, max(width, 40), numbers, N.L[d.example_index])
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
    lines = [*w.say(title), *w.say(f"m examples; {where}."), "", "Forward pass:"]
    if image:
        for block in fs.forward:
            lines += w.say(f"layer {block.name}, {block.title}:", "  ") \
                + w.rows(block.rows, "    ")
        lines.append("  the dense layers:")
        lines += w.rows(s.forward, "    ")
    elif rs is not None:
        lines += w.say(f"layer {rs.forward.name}, {rs.forward.title}, for each time step t = "
                       "0, 1, …, T - 1 in turn:", "  ")
        lines += w.rows(rs.forward.rows, "    ")
        lines.append("  the dense layers:")
        lines += w.rows(s.forward, "    ")
    else:
        lines += w.rows(s.forward)
    if s.activations:
        lines += ["", "Activations:"] + w.rows(s.activations)
    lines += ["", "Cost:"] + w.rows(s.cost)

    lines += ["", "Dimensions:"]
    if image:
        lines += _feature_table(d, w)
        lines += ["", *w.say(SIZES)]
        for sym, *chain in fs.sizes:
            lines += _chain(" = ".join(inline(x, nt) for x in (sym, *chain) if x is not None),
                            w, " = ")
        if diagram:
            lines += ["", "Diagram:", *_chain(chain_text(d), w)]
    elif rs is not None:
        lines += _recurrent_dimensions(d, diagram, w)
    else:
        lines += _dense_table(d, w)

    if steps:
        lines += ["", *w.say("Entry by entry, a layer l with activation g computes:")]
        lines += w.rows(s.entries)
        lines += _rule_list(d, numbers, w)
    for block in s.steps:
        lines += ["", f"{block.name}, by the chain rule:"] + w.rows(block.rows, "    ")
    if image:
        for block in fs.steps:
            head = f"Layer {block.layer} ({block.title}), {inline(block.lhs, nt)} ({block.name})"
            lines += ["", *w.say(f"{head}, by the chain rule:")] + w.rows(block.rows, "    ")
    if rs is not None:
        for block in rs.steps:
            head = f"Layer {block.layer} ({block.title}), {inline(block.lhs, nt)} ({block.name})"
            lines += ["", *w.say(f"{head}, by the chain rule:")]
            if block.note:
                lines += w.say(f"{note_text(block.note, nt)}.", "    ")
            lines += w.rows(block.rows, "    ")
    first = "1" if kind == "dense" else f"{arch.offset + 1}"
    every = "every layer" if kind == "dense" else "every dense layer"
    lines += ["", *w.say(f"The four equations, for {every} l from L down to {first}:")]
    for row in s.results:
        lines += [f"  {row.rule}:"] + w.rows([type(row)(row.lhs, row.rhs)], "    ")
    if not steps and numbers:
        lines += _rule_list(d, numbers, w)
    lines += ["", "The output layer's error:"] + w.rows(output_rows(d.output, steps))
    lines += ["", "This network, output layer first:"]
    for block in s.specialised:
        lines += [f"  layer {block.title}:"] + w.rows(block.rows, "    ")
    if image:
        lines += ["", "The feature layers, from flatten back to the input:"]
        lines += w.rows(fs.results)
    if rs is not None:
        lines += ["", *w.say("The recurrent layer, backward in time: the error of what it "
                             "passes on,")]
        lines += w.rows((rs.head,))
        lines += w.say("then for t = T - 1, …, 1, 0 in turn (step t needs the error of step "
                       "t + 1; the last step has none):", "  ")
        lines += w.rows(rs.recursion, "    ")
        lines += w.say("and, once every step's error is known, each parameter's gradient "
                       "summed over the steps:", "  ")
        lines += w.rows(rs.sums, "    ")
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
    lines += ["", *w.say(f"Gradient descent with learning rate α, {which}:")]
    for row in updates:
        lines += w.picture(_eq(row, relation="←", notation=nt, width=w.width - 2))
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


def _recurrent_table(d, w=None) -> list[str]:
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
    return _table(table, w)


def _recurrent_dimensions(d, diagram: bool, w) -> list[str]:
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
    lines = [*_recurrent_table(d, w), "",
             *w.say(f"The recurrent layer's row shows {inline(sym['H'], nt)} and "
                    f"{inline(sym['Z'], nt)}; every error has the shape of its quantity.", "  "),
             *w.say(f"At one time step, {X_t} is {dims(shapes['X'])} and {Z_t}, {H_t} are "
                    f"{dims(shapes['H'])}; what the layer passes on, {inline(sym['A'], nt)}, "
                    f"is {dims(sym['A'].shape)}.", "  ")]
    if diagram:
        lines += ["", "Diagram:", *_chain(chain_text(d), w), "",
                  *w.say("The network unrolled in time (inputs below, the head above):", "  ")]
        lines += ["    " + line for line in unrolled_picture(d, lambda e: inline(e, nt))]
    return lines
