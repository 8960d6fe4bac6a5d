"""The derivation for a terminal: every equation drawn by SymPy's pretty printer.

Same order as the documents: the network and its cost, the dimensions, BP1-BP4 derived for a
general layer (each step under the sentence of its rule), the four equations, this network's
equations output layer first, and the gradient-descent update.
"""
from __future__ import annotations

import sympy as sp

from ..model import RULES
from .document import output_rows, sections
from .pretty import equation


def _eq(row, lhs=None, relation="=", notation="ng") -> str:
    # Activations print by their registry names, as the undefined functions that carry them.
    return equation(row.lhs if lhs is None else lhs, row.rhs, relation, None, notation)


def _rows(rows, indent="  ", notation="ng") -> list[str]:
    """Each row as a picture; a continuation row repeats its left side, as prose would."""
    out, lhs = [], None
    for row in rows:
        lhs = row.lhs if row.lhs is not None else lhs
        if row.rule in RULES:
            out.append(f"{indent}({RULES[row.rule]})")
        out += [indent + line for line in _eq(row, lhs, notation=notation).splitlines()]
    return out


def _shape(shape, sizes) -> str:
    return " × ".join(str(sp.sympify(x).xreplace(sizes)) for x in shape)


def derivation_text(d, steps: bool = True) -> str:
    from .. import naming as N

    arch, s, nt = d.arch, sections(d, steps), d.notation
    where = "columns are examples" if d.notation == "ng" else "rows are examples"
    loss = arch.loss_entry
    title = (f"Backpropagation for the {arch.spec()} network "
             f"({', '.join(arch.activations)}), loss {arch.loss}: {loss.description}.")
    lines = [title,
             f"m examples; {where}.", "", "Forward pass:"]
    lines += _rows(s.forward, notation=nt)
    if s.activations:
        lines += ["", "Activations:"] + _rows(s.activations, notation=nt)
    lines += ["", "Cost:"] + _rows(s.cost, notation=nt)

    sizes = N.unit_sizes(arch.sizes)
    lines += ["", "Dimensions:"]
    header = ("layer", "units", "activation", "A, Z", "W", "b")
    table = [header, ("0", str(arch.sizes[0]), "input", _shape(d.X.shape, sizes), "", "")]
    for layer in d.layers:
        table.append((str(layer.index), str(arch.sizes[layer.index]), layer.activation.name,
                      _shape(layer.A.shape, sizes), _shape(layer.W.shape, sizes),
                      _shape(layer.b.shape, sizes)))
    widths = [max(len(row[c]) for row in table) for c in range(len(header))]
    for row in table:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())

    for block in s.steps:
        lines += ["", f"{block.name}, by the chain rule:"] + _rows(block.rows, "    ", notation=nt)
    lines += ["", "The four equations, for every layer l from L down to 1:"]
    for row in s.results:
        lines += [f"  {row.rule}:"] + _rows([type(row)(row.lhs, row.rhs)], "    ", notation=nt)
    lines += ["", "The output layer's error:"] + _rows(output_rows(d.output, steps), notation=nt)
    lines += ["", "This network, output layer first:"]
    for block in s.specialised:
        lines += [f"  layer {block.title}:"] + _rows(block.rows, "    ", notation=nt)
    lines += ["", "Gradient descent with learning rate α, every layer:"]
    for row in s.update:
        lines += ["  " + line for line in _eq(row, relation="←", notation=nt).splitlines()]
    lines.append("")
    return "\n".join(lines)
