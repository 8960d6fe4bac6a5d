"""Explanations and worked examples as text, Markdown or LaTeX.

Python decides what is shown and prints every piece of mathematics through a printer; the
templates ``explain.<fmt>.j2`` and ``example.<fmt>.j2`` only lay the pieces out with their prose.
An equation reaches a template as its left-hand side and a chain of (relation, right-hand side)
steps; for text it also comes laid out in rows, since a matrix of numbers spans several lines.
With an L2 penalty the pieces that carry it (the cost, dW, the update; in an explanation the
direct edge from a weight to J) come as more steps and more equations of the same kinds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

import sympy as sp

from .. import naming as N
from ..templating import render
from .numbers import PRINTED_DIGITS, decimal_text, is_approximate, shown_exactly
from .paths import LOSS
from .printers import TeachLatexPrinter, TeachTextPrinter
from .worked import ALPHA

FORMATS = ("text", "latex", "markdown")
_TEMPLATE = {"text": ("text.j2", "code"), "markdown": ("md.j2", "code"),
             "latex": ("tex.j2", "latex")}
#: A text equation stays on one line up to this width.
TEXT_WIDTH = 96


@dataclass
class Equation:
    lhs: str
    steps: list  # [(relation, math), ...]
    tag: str = ""
    rows: list = field(default_factory=list)  # text layout


class _Format:
    """How one output format prints mathematics; ``relations`` maps = ≈ ← to its symbols."""

    relations: dict

    def __init__(self, digits, arch=None, **settings):
        self.digits = digits

    def math(self, expr) -> str:
        return self.printer.doprint(expr)

    def chain(self, factors, limits=()) -> str:
        return self.printer.chain(factors, limits)

    def chains(self, paths) -> str:
        """A sum over paths, each path's chain of local derivatives a term."""
        return " + ".join(self.chain(factors) for factors in paths)

    def equation(self, lhs, steps, tag="") -> Equation:
        lhs_text = lhs if isinstance(lhs, str) else self.math(lhs)
        steps = [(self.relations[rel], text) for rel, text in steps]
        return Equation(lhs_text, steps, tag, self.layout(lhs_text, steps, tag))

    def layout(self, lhs, steps, tag="") -> list:
        return []

    def display(self, equations, pack: bool = False) -> list[str]:
        """The lines of one display of ``equations`` (LaTeX's; other formats show each
        equation on its own)."""
        return []

    def value_step(self, value) -> tuple[str, str]:
        """("=" or "≈", the value printed): ≈ when an entry is rounded."""
        return _relation(value), self.value(value)

    def sum_step(self, values) -> tuple[str, str]:
        """("=" or "≈", the values printed with + between them): the parts of a sum."""
        relation = "≈" if any(_relation(v) == "≈" for v in values) else "="
        return relation, self.plus([self.value(v) for v in values])

    def plus(self, texts) -> str:
        return " + ".join(texts)


class TextFormat(_Format):
    name = "text"
    relations: ClassVar[dict] = {"=": "=", "≈": "≈", "←": "←"}

    def __init__(self, digits, arch=None, **settings):
        super().__init__(digits, arch)
        self.printer = TeachTextPrinter({"digits": digits, **settings})

    def text(self, words: str) -> str:
        return words

    def value(self, value) -> str:
        if isinstance(value, sp.MatrixBase):
            return "\n".join(self.printer.matrix_rows(value))
        return self.printer.number(value)

    def sample(self, symbol, k) -> str:
        return f"{self.math(symbol)} for i = {k}"

    def chains(self, paths) -> str:
        """One path a line: ``A[0][1] · ...`` then ``+ A[0][1] · ...`` below it."""
        return "\n+ ".join(self.chain(factors) for factors in paths)

    def plus(self, texts) -> str:
        """Printed values side by side, row by row (a matrix spans several lines), with + on
        the middle row."""
        blocks = [text.split("\n") for text in texts]
        height = max(len(block) for block in blocks)
        widths = [max(len(line) for line in block) for block in blocks]
        middle = (height - 1) // 2
        rows = []
        for row in range(height):
            cells = [(block[row] if row < len(block) else "").ljust(width)
                     for block, width in zip(blocks, widths)]
            rows.append((" + " if row == middle else "   ").join(cells).rstrip())
        return "\n".join(rows)

    def layout(self, lhs, steps, tag="") -> list:
        """``lhs = a = b`` on one line if it fits, else one step a line, aligned on the ``=``."""
        if all("\n" not in text for _, text in steps):
            line = " ".join([lhs] + [f"{rel} {text}" for rel, text in steps])
            if len(line) <= TEXT_WIDTH:
                return [line]
        rows, pad = [], " " * (len(lhs) + 1)
        for pos, (rel, text) in enumerate(steps):
            lines = text.split("\n")
            head = lhs + " " if pos == 0 else pad
            rows.append(f"{head}{rel} {lines[0]}")
            rows += [pad + " " * (len(rel) + 1) + line for line in lines[1:]]
        return rows


class LatexFormat(_Format):
    name = "latex"
    relations: ClassVar[dict] = {"=": "=", "≈": r"\approx", "←": r"\leftarrow"}

    def text(self, words: str) -> str:
        """Prose for TeX: its special characters escaped."""
        return "".join(_TEX_SPECIAL.get(ch, ch) for ch in words)

    def __init__(self, digits, arch=None, **settings):
        super().__init__(digits, arch)
        self.printer = TeachLatexPrinter.for_arch(arch, {"digits": digits, **settings})

    def value(self, value) -> str:
        if isinstance(value, sp.MatrixBase):
            return self.printer.number_matrix(value)
        return self.printer.number(value)

    def sample(self, symbol, k) -> str:
        return self.printer.of_sample(symbol, k)

    def layout(self, lhs, steps, tag="") -> list:
        """The lines of one equation in an ``align*``: ``lhs &= a = b`` on one line while it
        fits the text width (TEX_WIDTH, less a tag's room), the rest of the steps below,
        aligned on the relation."""
        room = TEX_WIDTH - (TAG_WIDTH if tag else 0)
        lines, width = [], tex_width(lhs)
        line = lhs + " "
        for pos, (rel, text) in enumerate(steps):
            step = f"{rel} {text}"
            size = tex_width(step)
            if pos == 0:
                line, width = f"{lhs} &{step}", width + size
            elif width + size <= room:
                line, width = f"{line} {step}", width + size
            else:
                lines.append(line)
                line, width = f"&{step}", tex_width(lhs) + size
        lines.append(line)
        return lines

    def display(self, equations, pack: bool = False) -> list[str]:
        """The lines of one ``align*`` holding ``equations``, each tagged on its last line; with
        ``pack``, one-line equations without tags side by side while they fit."""
        out, width = [], 0
        for eq in equations:
            rows = list(eq.rows)
            size = tex_width(rows[0]) if len(rows) == 1 else TEX_WIDTH + 1
            if pack and out and not eq.tag and len(rows) == 1 and width and \
                    width + size + QQUAD <= TEX_WIDTH:
                out[-1] += r" \qquad " + rows[0].replace("&", "", 1)
                width += size + QQUAD
                continue
            if eq.tag:
                rows[-1] += rf" \tag*{{{eq.tag}}}"
            out += rows
            width = size if pack and not eq.tag and len(rows) == 1 else 0
        return out


#: What a line of display math holds, in characters of math (16 cm at 11 pt); a \qquad's.
TEX_WIDTH = 72
QQUAD = 4
TAG_WIDTH = 8
_TEX_SYMBOL = re.compile(r"\\([A-Za-z]+)\*?")
_TEX_SPACE = {"quad": 2, "qquad": 4, ",": 0.3, ";": 0.4, "!": 0, "nobreak": 0, "left": 0,
              "right": 0, "displaystyle": 0, "mathbf": 0, "mathrm": 0, "operatorname": 0,
              "text": 0, "mathrel": 0, "tag": 0}


def terms_fit(lhs: str, paths) -> bool:
    """Whether a sum over paths fits the text width one path a line (``lhs = path``, then
    ``+ path`` below): it is then set aligned, else as lines that break."""
    return all(tex_width(lhs) + tex_width(path["product"]) + QQUAD <= TEX_WIDTH
               for path in paths)


def tex_width(tex: str) -> float:
    """About how many characters wide ``tex`` sets as display math: a matrix of numbers its
    widest entry per column, a fraction its wider part, sub- and superscripts smaller,
    commands one symbol (spacing and markup none). An estimate, to choose line breaks."""
    def matrix(match):
        scale = 0.7 if r"\scriptstyle" in match.group(1) else 1  # a wide one, set smaller
        rows = [[cell.replace(r"\scriptstyle", "") for cell in row.split("&")]
                for row in match.group(1).split(r"\\")]
        columns = max(len(row) for row in rows)
        widths = [max(tex_width(row[j]) if j < len(row) else 0 for row in rows)
                  for j in range(columns)]
        return "M" * round(scale * sum(widths) + 1.5 * columns + 1)
    text = re.sub(r"\\begin\{[a-z]*matrix\}(.*?)\\end\{[a-z]*matrix\}", matrix, tex)
    text = re.sub(r"\\begin\{array\}\{[^}]*\}(.*?)\\end\{array\}", matrix, text)
    def fraction(match):
        return "M" * round(max(tex_width(match.group(2)), tex_width(match.group(3))) *
                           (0.7 if match.group(1) == "t" else 1))
    for _ in range(3):  # nested fractions
        text = re.sub(r"\\(t|d)?frac\{([^{}]*)\}\{([^{}]*)\}", fraction, text)
    def script(match):
        return "M" * round(0.6 * tex_width(match.group(1)))
    for _ in range(3):
        text = re.sub(r"[_^]\{([^{}]*)\}", script, text)
    text = re.sub(r"[_^](.)", lambda m: "", text)
    width = 0.0
    for match in _TEX_SYMBOL.finditer(text):
        width += _TEX_SPACE.get(match.group(1), 1)
    text = _TEX_SYMBOL.sub("", text)
    return width + sum(1 for ch in text if ch not in "{} &")


class MarkdownFormat(LatexFormat):
    name = "markdown"

    def __init__(self, digits, arch=None, **settings):
        super().__init__(digits, arch, **{"tex_lengths": False, **settings})

    def text(self, words: str) -> str:
        return words


_TEX_SPECIAL = {"_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "{": r"\{",
                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "\\": r"\textbackslash{}"}


def _relation(value) -> str:
    """= when the value prints exactly, in its matrix's one representation; else ≈."""
    entries = list(value) if isinstance(value, sp.MatrixBase) else [value]
    return "=" if shown_exactly(entries) else "≈"


def formatter(name: str, digits: int = PRINTED_DIGITS, arch=None, **settings) -> _Format:
    """The format ``name``; ``arch`` names the user's activations in LaTeX; ``settings`` go to
    its printer (``one_example``: feature maps of one example, the example index left out)."""
    return {"text": TextFormat, "latex": LatexFormat, "markdown": MarkdownFormat}[name](
        digits, arch, **settings)


#: The headings a document can have (as ``derive --heading``): its own title a section or a
#: subsection, or no title (its parts then paragraphs).
HEADINGS = ("section", "subsection", "none")


def page(fmt: str, standalone: bool = False, heading: str = "section",
         description: str = "") -> dict:
    """The template variables of a document's frame: LaTeX standalone (a whole document) or a
    fragment to \\input (the default, as derive's), and the markup of its title, parts and
    blocks at ``heading``'s level (``printing.document.heading_commands``, derive's)."""
    from ..printing.document import heading_commands

    if fmt == "text":
        return {}
    marks = heading_commands("latex" if fmt == "latex" else "markdown", heading, standalone)
    return {"standalone": standalone, "description": description,
            "title_heading": marks["title"], "part_heading": marks["part"],
            "block_heading": marks["block"]}


def _template(command: str, fmt: str):
    suffix, kind = _TEMPLATE[fmt]
    return f"{command}.{suffix}", kind


# --- the worked example --------------------------------------------------------------------

def example_document(worked, fmt: str = "text", digits: int = PRINTED_DIGITS,
                     standalone: bool = False, heading: str = "section") -> str:
    """The worked step in ``fmt``; LaTeX a fragment to \\input unless ``standalone``, its
    title at ``heading``'s level (LaTeX and Markdown)."""
    d = worked.derivation
    frame = page(fmt, standalone, heading,
                 f"One step of gradient descent on {d.arch.spec()} (loss {d.arch.loss})")
    if d.arch.sequence is not None:
        from .present_sequences import example_sequence_document

        return example_sequence_document(worked, fmt, digits, frame)
    if d.arch.image is not None:
        from .present_images import example_image_document

        return example_image_document(worked, fmt, digits, frame)
    arch = d.arch
    f = formatter(fmt, digits, arch)
    penalised = bool(worked.l2)

    def show(item, lhs=None, formula=None, tag="", relation="="):
        steps = []
        if formula is not None:
            steps.append((relation, f.math(formula)))
        steps.append(f.value_step(item.value))
        return f.equation(lhs if lhs is not None else item.symbol, steps, tag)

    def gradient(item):
        """dW with the penalty: its two parts' formulas, their values, and their sum."""
        if not item.parts:
            return show(item, formula=item.formula, tag=item.rule)
        parts = [part.formula for part in item.parts]
        return f.equation(item.symbol, [("=", f.plus([f.math(x) for x in parts])),
                                        f.sum_step([part.value for part in item.parts]),
                                        f.value_step(item.value)], item.rule)

    def update(item):
        steps = [("←", f.math(item.formula))]
        if item.expanded is not None:
            steps.append(("=", f.math(item.expanded)))
        return f.equation(item.symbol, [*steps, f.value_step(item.value)])

    given = [show(v) for v in worked.given if v.symbol not in (d.X, d.Y)]
    X = sp.MatrixSymbol("X", *d.X.shape)
    inputs = [f.equation(d.X, [("=", f.math(X)), f.value_step(worked.samples.X)]),
              f.equation(d.Y, [f.value_step(worked.samples.Y)])]
    forward = []
    for layer, (z, a) in zip(d.layers, zip(worked.forward[::2], worked.forward[1::2])):
        forward.append(show(z, formula=z.formula))
        forward.append(show(a, formula=sp.Function(layer.activation.name)(layer.Z)))
    i = d.example_index
    loss_i = f.equation(N.L[i], [("=", f.math(d.loss_entry))])
    losses = [f.equation(N.L[k], [f.value_step(value)]) for k, value in enumerate(worked.losses)]
    cost_formula = sp.Sum(N.L[i], (i, 0, d.m - 1)) / d.m
    if penalised:
        penalty = d.penalty.xreplace(N.unit_sizes(arch.sizes))
        cost = f.equation(N.J, [("=", f.plus([f.math(cost_formula), f.math(penalty)])),
                                f.sum_step([worked.data_cost, worked.penalty]),
                                f.value_step(worked.cost)])
    else:
        cost = f.equation(N.J, [("=", f.math(cost_formula)), f.value_step(worked.cost)])
    backward = [gradient(v) for v in worked.backward]
    loss_parts = {v.symbol: v.parts for v in worked.backward if v.parts}
    contributions = []
    for part in worked.contributions:
        layer = d.layer(part.layer)
        rows = [f.equation(f.sample(part.gradient, k), [f.value_step(value)])
                for k, value in enumerate(part.per_sample)]
        if part.gradient in loss_parts:  # the mean is the loss's part of dW only
            loss_part, penalty_part = loss_parts[part.gradient]
            mean = f.equation(loss_part.formula, [f.value_step(part.mean)])
            penalty_term = f.math(penalty_part.formula)
        else:
            mean = f.equation(part.gradient, [f.value_step(part.mean)])
            penalty_term = ""
        contributions.append({"gradient": f.math(part.gradient), "dZ": f.math(layer.dZ),
                              "A_prev": f.math(layer.A_prev), "samples": rows, "mean": mean,
                              "penalty": penalty_term,
                              "display": f.display(rows, pack=True),
                              "mean_display": f.display([mean])})
    updated = [update(v) for v in worked.updated]
    lr_text = decimal_text(worked.learning_rate)[0]
    every = [*worked.forward, *worked.backward, *worked.updated]
    approximate = any(is_approximate(x) for v in every for x in v.value) \
        or is_approximate(worked.cost)
    name, kind = _template("example", fmt)
    return render(
        name, kind, **frame, spec=f.text(arch.spec()),
        activations=f.text(", ".join(arch.activations)),
        loss=f.text(arch.loss), loss_description=f.text(arch.loss_entry.description),
        m=worked.m, sizes=_sizes(f, arch), lr=lr_text,
        alpha=f.math(ALPHA), source=f.text(worked.parameters.source),
        drawn=worked.parameters.source.startswith("--init"),
        digits=digits, approximate=approximate, given=given, inputs=inputs, forward=forward,
        loss_i=loss_i, losses=losses if worked.m > 1 else [], cost=cost, backward=backward,
        contributions=contributions, updated=updated, penalised=penalised,
        lam=f.math(N.lam), l2=decimal_text(worked.l2)[0],
        decay=f.value(worked.decay) if worked.decay is not None else "",
        # LaTeX: each part one display, short equations side by side
        displays={"given": f.display(given, pack=True), "inputs": f.display(inputs, pack=True),
                  "forward": f.display(forward),
                  "cost": f.display([loss_i, *(losses if worked.m > 1 else []), cost],
                                    pack=True),
                  "backward": f.display(backward), "updated": f.display(updated)})


def _sizes(f, arch) -> str:
    return ", ".join(f"{f.math(N.units(label))} = {size}" for label, size in enumerate(arch.sizes))


# --- the explanation -----------------------------------------------------------------------

_EDGE_NOTES = {
    "parameter": "the parameter enters one pre-activation",
    "activation": "the activation's derivative",
    "weight": "the next layer's pre-activation, through a weight",
    "loss": "the loss's derivative",
    "penalty": "the L2 penalty's derivative: the weight reaches J directly",
}


def explain_document(explanation, fmt: str = "text", standalone: bool = False,
                     heading: str = "section") -> str:
    """The explanation in ``fmt``; LaTeX a fragment to \\input unless ``standalone``, its
    title at ``heading``'s level (LaTeX and Markdown)."""
    e = explanation
    d = e.derivation
    frame = page(fmt, standalone, heading,
                 f"The gradient with respect to {e.parameter} in {d.arch.spec()} "
                 f"(loss {d.arch.loss})")
    if d.arch.sequence is not None:
        from .present_sequences import explain_sequence_document

        return explain_sequence_document(e, fmt, frame)
    if d.arch.image is not None:
        from .present_images import explain_image_document

        return explain_image_document(e, fmt, frame)
    arch = d.arch
    f = formatter(fmt, arch=arch)
    every_edge = [*e.edges, *([e.penalty_edge] if e.penalty_edge is not None else [])]
    edges = [f.equation(edge.lhs, [("=", f.math(edge.derivative))], _EDGE_NOTES[edge.kind])
             for edge in every_edge]
    indices = [{"index": f.math(index), "last": size - 1} for index, size in e.path_indices]
    paths = [{"nodes": [f.math(node) for node in path.nodes],
              "factors": [f.math(x) for x in path.factors], "product": f.chain(path.factors)}
             for path in e.paths]
    gradient_lhs = sp.Derivative(LOSS, e.theta, evaluate=False)
    # the sum over paths: each path's chain, as section 2 shows it
    path_sum = f.equation(gradient_lhs, [("=", f.chains([path.factors for path in e.paths]))]) \
        if e.path_sum is not None else None
    # Σ over the path indices of the product along a path, its local derivatives in path order
    limits = [(index, 0, size - 1) for index, size in e.path_indices]
    closed_form = f.equation(gradient_lhs,
                             [("=", f.chain([edge.derivative for edge in e.edges], limits))])
    cached = [f.equation(step.lhs, [("=", f.math(x)) for x in (step.rhs, step.simplified)
                                    if x is not None], step.rule) for step in e.cached]
    entry = f.equation(e.entry[0], [("=", f.math(e.entry[1]))],
                       "BP1" if e.parameter.kind == "W" else "BP2")
    # With the penalty: J of one example, and ∂J/∂θ from ∂L/∂θ (plus the direct edge of a weight)
    cost_lhs = sp.Derivative(N.J, e.theta, evaluate=False)
    example_cost = total = None
    if e.penalised:
        example_cost = f.equation(N.J, [("=", f.plus([f.math(LOSS), f.math(e.penalty)]))])
        through = [f.math(gradient_lhs)]
        if e.penalty_edge is not None:
            through.append(f.math(e.penalty_edge.derivative))
        total = f.equation(cost_lhs, [("=", f.plus(through))])
    layer = d.layer(e.parameter.layer)
    name, kind = _template("explain", fmt)
    counts = e.counts
    return render(
        name, kind, **frame, spec=f.text(arch.spec()),
        activations=f.text(", ".join(arch.activations)),
        loss=f.text(arch.loss), loss_description=f.text(arch.loss_entry.description),
        parameter=f.text(str(e.parameter)),
        theta=f.math(e.theta), layer=e.parameter.layer, depth=arch.depth,
        layers=(f"the neurons of layer {arch.depth}" if e.parameter.layer == arch.depth else
                f"the neurons of layers {e.parameter.layer}..{arch.depth}"),
        is_bias=e.parameter.kind == "b", activation=layer.activation.name,
        edges=edges, indices=indices, path_count=e.path_count, paths=paths,
        all_shown=e.all_shown, path_sum=path_sum,
        path_sum_fits=path_sum is not None and terms_fit(path_sum.lhs, paths),
        closed_form=closed_form, cached=cached,
        entry=entry, agrees=e.agrees, factors_per_path=len(e.edges),
        by_paths=counts.by_paths, by_backprop=counts.by_backprop,
        for_parameter=counts.for_parameter_by_paths,
        ratio=f"{counts.by_paths / counts.by_backprop:.1f}",
        m=f.math(d.m), dZ_output=f.math(d.output.dZ), targets=e.targets_sum_to_one,
        penalised=e.penalised, example_cost=example_cost, total=total,
        direct=e.penalty_edge is not None)
