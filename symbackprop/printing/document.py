"""A derivation written up as a document: LaTeX for papers, Markdown for blogs and notebooks.

Three stages: ``sections(d)`` picks what the document says, as SymPy expressions (the network,
the cost, the dimensions, the chain-rule steps of BP1-BP4, the equations specialised to the
architecture); ``_context`` prints every expression with the format's printer; the template
``derivation.tex.j2`` / ``derivation.md.j2`` only places the printed pieces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy as sp

from .. import naming as N
from ..matrices import Elementwise
from ..registry import ACTIVATIONS, c_idx, latex_names
from ..registry import z as z_var
from . import diagram as D
from .latex import Component, DerivationLatexPrinter
from .rules import RULES as RULE_TEXT
from .rules import Ref, caption, numbered

BP_NAMES = ("BP1", "BP2", "BP3", "BP4")
# A cost of more terms than this (the mean loss and a penalty per weight array) is set one term
# a line, to fit the text width.
COST_TERMS_ON_A_LINE = 3
ALPHA = sp.Symbol("alpha")
PACKAGES = ("amsmath", "amssymb", "graphicx", "tikz")  # graphicx: tables and the figure fit

# The figure's caption, by kind of network: text with {spec} (the architecture, as code) and
# math for {U} (the recurrent weights).
CAPTIONS = {
    "dense": "The {spec} network: each layer's units, its size above and activation below; "
             "between two layers, the weight matrix and its shape{elided}.",
    "image": "The {spec} network as the shapes of its feature maps: each operation above its "
             "arrow, each map's shape and name below it.",
    "sequence": "The {spec} network unrolled in time: the input of each step below, the "
                "hidden states left to right, each passed to the next step through {U}, and "
                "what the dense head computes above.",
}
ELIDED = "; a layer of more than {n} units is drawn with {drawn} of them"

# How each format numbers an equation: a tag and a label (LaTeX, for \eqref), or the name
# after the equation (Markdown); and the room (points) a tag needs besides its parenthesised
# name, where an equation is broken to fit: amsmath's quad before it, or the \qquad.
TAG = {"latex": lambda tag, label: rf" \tag{{{tag}}}\label{{{label}}}",
       "markdown": lambda tag, label: rf" \qquad \text{{({tag})}}"}
TAG_GAP = {"latex": 10.0, "markdown": 20.0}

# How each format puts mathematics into a sentence: Markdown as GitHub reads it (math in a
# code span, which its Markdown leaves alone), LaTeX in dollars.
INLINE = {"latex": lambda math: f"${math}$", "markdown": lambda math: f"$`{math}`$"}

# What a LaTeX display must fit, in points at 10pt: a fragment, a column of a two-column
# article (the narrowest place a paper puts it), less a margin for the estimate; the
# standalone document (10pt, 2 cm margins on letter paper), its text width less the same.
# A Markdown display, in the same points (an em is 10): GitHub's column of about 880 pixels
# at its math's em of about 19 pixels is 46 em; a notebook's is wider.
LINE_WIDTH = {"fragment": 227.0, "standalone": 498.0, "markdown": 420.0}

# --heading: the level of the document's own heading, of its parts (The network, Dimensions,
# ...) and of the blocks inside a part (BP1, a layer), per format; 1 is a section, None no
# heading. LaTeX's blocks are run-in paragraphs at every level.
HEADINGS = {
    "latex": {"section": (1, 2, 4), "subsection": (2, 3, 4), "none": (None, 4, 5)},
    "markdown": {"section": (1, 2, 3), "subsection": (2, 3, 4), "none": (None, 4, 5)},
}
LATEX_SECTIONING = ("section", "subsection", "subsubsection", "paragraph", "subparagraph")
# What a label prefix may hold: characters every LaTeX label takes, with or without babel.
LABEL_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9./+-]{0,99}\Z")


def heading_commands(fmt: str, heading: str, standalone: bool) -> dict:
    """The heading markup of the title, the parts and the blocks: ``\\section*``, ``##``, or
    None for no title. A fragment's own heading takes the paper's next number (a standalone
    document numbers nothing); the parts inside are unnumbered."""
    if heading not in HEADINGS[fmt]:
        from ..errors import SymbackpropError

        raise SymbackpropError(f"unknown heading {heading!r} (known: "
                               f"{', '.join(HEADINGS[fmt])})")
    levels = dict(zip(("title", "part", "block"), HEADINGS[fmt][heading]))

    def markup(key, level):
        if level is None:
            return None
        if fmt == "markdown":
            return "#" * level
        name = LATEX_SECTIONING[level - 1]
        numbered = key == "title" and not standalone
        return f"\\{name}*" if level <= 3 and not numbered else f"\\{name}"
    return {key: markup(key, level) for key, level in levels.items()}


def default_label_prefix(d) -> str:
    """The labels' prefix when none is given: the architecture, its loss (and the row
    notation, a penalty), with every run of other characters than letters and digits a '-'
    (784-128-relu-10-softmax-cross-entropy)."""
    arch = d.arch
    words = [arch.spec(), arch.loss]
    if arch.l2:
        words.append(f"l2-{arch.l2}")
    if d.notation != "ng":
        words.append(d.notation)
    return "-".join(re.sub(r"[^A-Za-z0-9]+", "-", w).strip("-") for w in words)


def checked_label_prefix(prefix) -> str:
    if not isinstance(prefix, str) or not LABEL_PREFIX.match(prefix):
        from ..errors import SymbackpropError

        raise SymbackpropError(
            f"label prefix {prefix!r} is not allowed: use letters, digits and . / + - "
            "(at most 100, starting with a letter or digit), e.g. 'mlp'")
    return prefix


# --- what the document says ----------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One line of a display: ``lhs = rhs`` (lhs None: continues the line above), with the
    rule that justifies it (a key of rules.RULES) where it is a step of a derivation, or the name
    of the BP equation it is."""

    lhs: sp.Basic | None
    rhs: sp.Basic
    rule: str | None = None
    note: tuple = ()  # what the row's operation is: text and math pieces (features.describe)
    split: bool = False  # a sum of terms, one per line (the chain rule over several uses)
    # The numbered equation of one layer the row is: (its name, the layer's label), as
    # ("BP1", 1) for a convolution's dW^[1]; a general layer's BP1-BP4 are named by ``rule``.
    tag: tuple = ()


@dataclass(frozen=True)
class Block:
    """Rows under a heading: one BP equation's derivation, or one layer's equations."""

    title: str
    rows: tuple[Row, ...]
    name: str = ""


@dataclass(frozen=True)
class Sections:
    forward: tuple[Row, ...]
    activations: tuple[Row, ...]  # the definition of each activation the network uses
    cost: tuple[Row, ...]
    steps: tuple[Block, ...]  # BP1..BP4 derived for a general layer l
    results: tuple[Row, ...]  # BP1..BP4, vectorised
    entries: tuple[Row, ...] = ()  # a general layer's forward definitions, entry by entry
    specialised: tuple[Block, ...] = field(default=())
    update: tuple[Row, ...] = ()


def steps_rows(eq) -> tuple[Row, ...]:
    """The kept steps of an equation; a step with the same left side as the one before it
    continues that line (``= ...``)."""
    rows, previous = [], None
    for step in eq.steps:
        rows.append(Row(None if step.lhs == previous else step.lhs, step.rhs, step.rule))
        previous = step.lhs
    return tuple(rows)


def activation_of(layer) -> sp.MatrixExpr:
    """A = g(Z) with g named: the activation as an undefined function of the whole Z."""
    g = sp.Function(layer.activation.name)
    var = sp.Symbol(layer.Z.name)
    return Elementwise(sp.Lambda(var, g(var)), layer.Z)


def definition(act) -> Row:
    """g(z) = ... in the scalar variable z; softmax componentwise, softmax(z)_c = ..."""
    g = sp.Function(act.name)
    if act.elementwise:
        return Row(g(z_var), act.expr)
    return Row(Component(g(sp.Symbol("z")), c_idx), act.expr)


def specialised(d) -> tuple[Block, ...]:
    """The equations of each layer of this architecture, output layer first.

    The output error is the engine's simplified dZ^[L]; a hidden layer's dZ^[l] is its BP4 with
    the next layer's BP3 substituted for dA^[l] (a SymPy substitution, not text).
    """
    blocks = []
    later = None
    for layer in reversed(d.layers):
        if layer.is_output:
            dZ = layer.backward["output"].rhs
        else:
            dZ = layer.backward["BP4"].rhs.xreplace({layer.dA: later.backward["BP3"].rhs})
        rows = (Row(layer.dZ, dZ), Row(layer.dW, layer.backward["BP1"].rhs),
                Row(layer.db, layer.backward["BP2"].rhs))
        blocks.append(Block(f"{layer.index}", rows, name="output" if layer.is_output
                            else "hidden"))
        later = layer
    return tuple(blocks)


def output_rows(layer, with_steps: bool) -> tuple[Row, ...]:
    """dA^[L] from the loss, then dZ^[L]: BP4 (through the Jacobian, for a vector
    activation) with it substituted, the maps composed, simplified."""
    loss, bp4, out = (layer.backward[k] for k in ("loss", "BP4", "output"))
    rows = list(steps_rows(loss)) if with_steps else [Row(loss.lhs, loss.rhs)]
    rows += [Row(out.lhs, bp4.rhs, note=OUTPUT_BP4[layer.activation.elementwise](layer)),
             Row(None, compose_maps(bp4.rhs.xreplace({layer.dA: loss.rhs})), "substitute")]
    # The engine's simplifications of the output error (algebra, targets summing to 1).
    rules = [step.rule for step in out.steps if step.rule in ("simplify", "targets")]
    if rules:
        rows.append(Row(None, out.rhs, rules[-1]))
    return tuple(rows)


def sections(d, with_steps: bool = True) -> Sections:
    g = d.general
    forward = []
    for layer in d.layers:
        z_eq = layer.forward[0]
        forward += [Row(z_eq.lhs, z_eq.rhs), Row(layer.A, activation_of(layer))]
    order = [*ACTIVATIONS, *(x.name for x in d.arch.definitions)]
    used = sorted({layer.activation.name for layer in (*d.features, *d.layers)
                   if layer.activation is not None}, key=order.index)
    entries = [d.arch.activation_entry(name) for name in used]
    # tanh(z) = tanh(z) says nothing: a SymPy function of z is its own definition.
    activations = tuple(definition(act) for act in entries
                        if not (isinstance(act.expr, sp.Function) and act.expr.args == (z_var,)))
    i = d.example_index
    J = sp.Sum(N.L[i], (i, 0, d.m - 1)) / d.m + d.penalty
    cost = (Row(N.J, J, split=len(sp.Add.make_args(J)) > COST_TERMS_ON_A_LINE),
            Row(N.L[i], d.loss_entry))
    if d.l2:  # the L2 penalty's weight, as given
        cost += (Row(N.lam, d.l2),)
    steps = tuple(Block(name, steps_rows(g.backward[name]), name=name) for name in BP_NAMES) \
        if with_steps else ()
    results = tuple(Row(g.backward[name].lhs, g.backward[name].rhs, name) for name in BP_NAMES)
    update = (Row(g.W, sp.MatAdd(g.W, sp.MatMul(-ALPHA, g.dW))),
              Row(g.b, sp.MatAdd(g.b, sp.MatMul(-ALPHA, g.db))))
    entries = tuple(Row(eq.entry_lhs, eq.entry_rhs) for eq in g.forward) if with_steps else ()
    return Sections(tuple(forward), activations, cost, steps, results, entries=entries,
                    specialised=specialised(d), update=update)


def _factored(expr):
    """``expr`` with its common factors in front and no minus before them: δ_ik A_ji
    (δ_jr - A_ri), A_rk (dA_rk - Σ_j A_jk dA_jk)."""
    out = sp.factor_terms(expr)
    if out.could_extract_minus_sign():
        factors = sp.Mul.make_args(-out)
        sums = [f for f in factors if isinstance(f, sp.Add)]
        if sums:
            return sp.Mul(*[f for f in factors if f is not sums[0]], -sums[0], evaluate=False)
    return out


def _jacobian_step(eq):
    """The local derivative of a vector activation's BP4, in the output (the Jacobian)."""
    local = [step for step in eq.steps if step.rule in ("local", "output")]
    return local[-1]


# What the output layer's BP4 says before it is substituted, by whether the activation is
# elementwise: pieces of its caption (rules.Ref names an equation of the document).
OUTPUT_BP4 = {
    True: lambda layer: ("by ", Ref("BP4"), " at the output layer"),
    False: lambda layer: (
        "by ", Ref("BP4"), (f" through the {layer.activation.human_name}'s Jacobian: each "
        "output of a column depends on every input of it, "),
        sp.Eq(_jacobian_step(layer.backward["BP4"]).lhs,
              _factored(_jacobian_step(layer.backward["BP4"]).rhs), evaluate=False),
        ", so the chain rule sums over the column, ",
        sp.Eq(layer.backward["BP4"].entry_lhs, _factored(layer.backward["BP4"].entry_rhs),
              evaluate=False),
        ", or as matrices"),
}


def compose_maps(expr):
    """``expr`` with every entrywise map of entrywise maps written as one map, its body
    simplified by SymPy ((-Y ⊘ A) ⊙ A is -Y), and a map that only scales one matrix written
    as that scaling (-Y): the substituted output error as a textbook writes it."""
    if isinstance(expr, Elementwise):
        names, mats, subs = {}, [], {}

        def leaf(M):
            if M not in names:
                names[M] = sp.Symbol(M.name if isinstance(M, sp.MatrixSymbol)
                                     else f"_m{len(names)}")
                mats.append(M)
            return names[M]
        for var, M in zip(expr.fn.variables, (compose_maps(M) for M in expr.mats)):
            if isinstance(M, Elementwise):
                subs[var] = M.fn.expr.xreplace({v: leaf(N_) for v, N_ in zip(M.fn.variables,
                                                                             M.mats)})
            elif isinstance(M, sp.MatMul) and not getattr(M.args[0], "is_Matrix", True):
                subs[var] = M.args[0] * leaf(sp.MatMul(*M.args[1:]))
            else:
                subs[var] = leaf(M)
        body = expr.fn.expr.xreplace(subs)
        coeff, rest = body.as_independent(*names.values(), as_Add=False)
        if rest in names.values():  # c X: a scaled matrix, not a map
            M = mats[list(names.values()).index(rest)]
            return M if coeff == 1 else sp.MatMul(coeff, M)
        return Elementwise(sp.Lambda(tuple(names[M] for M in mats), body), *mats)
    if isinstance(expr, (sp.MatMul, sp.MatAdd, sp.Transpose)):
        return type(expr)(*(compose_maps(a) for a in expr.args)).doit(deep=False)
    return expr


def used_rules(d, with_steps: bool) -> set:
    """The rules the document's steps name (keys of rules.RULES): every section's."""
    rows = [r for block in sections(d, with_steps).steps for r in block.rows]
    rows += list(output_rows(d.output, with_steps))
    if network_kind(d) == "sequence":
        from .recurrent import recurrent_sections

        rows += [r for block in recurrent_sections(d, with_steps).steps for r in block.rows]
    elif d.features:
        from .features import feature_sections

        rows += [r for block in feature_sections(d, with_steps).steps for r in block.rows]
    return {r.rule for r in rows if r.rule in RULE_TEXT}


# --- printing --------------------------------------------------------------------------------

_TEX_TEXT = str.maketrans({
    "⋆": r"\ensuremath{\star}", "×": r"\ensuremath{\times}", "°": r"\ensuremath{^{\circ}}",
    "−": r"\ensuremath{-}", "→": r"\ensuremath{\rightarrow}",
    "∂": r"\ensuremath{\partial}", "Σ": r"\ensuremath{\Sigma}", "ᵢ": r"\ensuremath{_i}",
    "⁽": r"\ensuremath{^{(}}", "ⁱ": r"\ensuremath{^{i}}", "⁾": r"\ensuremath{^{)}}",
    "λ": r"\ensuremath{\lambda}", "τ": r"\ensuremath{\tau}", "≤": r"\ensuremath{\leq}",
    "–": "--", "…": r"\ensuremath{\dots}", "‖": r"\ensuremath{\Vert}", "²": r"\ensuremath{^2}",
    "_": r"\_", "&": r"\&", "%": r"\%", "#": r"\#", "$": r"\$",
})


# Sizes in prose (3 × 3, 1 × 8 × 8): set as mathematics, 3 \times 3.
_DIMENSIONS = re.compile(r"\d+(?: ?× ?\d+)+")


def tex_text(prose: str) -> str:
    """Prose (a title, a loss's description) as LaTeX text: sizes and symbols as math."""
    out, last = [], 0
    for m in _DIMENSIONS.finditer(prose):
        out.append(prose[last:m.start()].translate(_TEX_TEXT))
        out.append("$" + r" \times ".join(re.split(r" ?× ?", m.group())) + "$")
        last = m.end()
    out.append(prose[last:].translate(_TEX_TEXT))
    return "".join(out)


def spec_code(spec: str, fmt: str) -> str:
    """The architecture's spec as code: ``\\texttt`` in LaTeX, a line allowed to break after
    each '-' and ':' (a long spec has no spaces), or a Markdown code span."""
    if fmt == "markdown":
        return f"`{spec}`"
    return r"\texttt{" + re.sub(r"([-:])", r"\1\\allowbreak ", tex_text(spec)) + "}"


def _capital(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


class _Formatter:
    """Prints the sections with one printer; ``text`` turns prose into the format's text and
    ``inline`` puts math into it."""

    def __init__(self, printer, text, inline=lambda math: f"${math}$", label_prefix="eq",
                 line_width=None, ref=lambda name: f"({name})", rule_numbers=None, loss=None,
                 fmt="latex"):
        self.P, self.text, self.inline = printer, text, inline
        self.tagged, self.tag_gap = TAG[fmt], TAG_GAP[fmt]
        self.label_prefix = label_prefix
        self.line_width = line_width  # LaTeX: what a display must fit (points); None: any
        self.ref = ref  # a numbered equation's name -> how the text refers to it
        self.rule_numbers = rule_numbers or {}  # rule key -> its number in the document
        self.loss = loss  # the loss of one example, what a loss's local derivative is of

    def math(self, expr) -> str:
        return self.P.doprint(expr)

    def note(self, pieces) -> str:
        """A sentence of text, math and references (rules.Ref), capitalised."""
        out = "".join(self.text(p) if isinstance(p, str) else self.ref(p.name)
                      if isinstance(p, Ref) else self.inline(self.math(p)) for p in pieces)
        return _capital(out)

    def caption(self, row: Row, full_lhs=None) -> str:
        """What justifies a row: its rule by number, or its note."""
        if row.rule in self.rule_numbers:
            return self.note(caption(row.rule, self.rule_numbers[row.rule], full_lhs,
                                     self.loss))
        return self.note(row.note) if row.note else ""

    def row(self, row: Row, full_lhs) -> dict:
        note = self.caption(row, full_lhs)
        tag, label = self.number(row)
        return {"lhs": "" if row.lhs is None else self.math(row.lhs),
                "lhs_full": self.math(full_lhs), "rhs": self.rhs(row),
                "notes": [note] if note else [], "tag": tag, "label": label,
                "number": self.tagged(tag, label) if tag else "", "end": r" \\"}

    def number(self, row: Row) -> tuple[str, str]:
        """The row's tag and label, ("", "") if it is no numbered equation: a general
        layer's BP1 is (BP1, PREFIX:BP1); equation BP1 of layer 1 is (BP1^[1], as the
        notation writes layers, PREFIX:layer1:BP1)."""
        if row.rule in BP_NAMES:
            return row.rule, self.label(row.rule)
        if row.tag:
            name, layer = row.tag
            return f"${self.P.equation_name(name, layer)}$", self.label(f"layer{layer}:{name}")
        return "", ""

    def label(self, name: str) -> str:
        """The label of a numbered thing of this document: PREFIX:BP1, PREFIX:layer1:BP3,
        PREFIX:diagram."""
        return f"{self.label_prefix}:{name}"

    def rhs(self, row: Row) -> str:
        """The right side; a split sum with a term per line, each after the first continuing
        the display's alignment (a line break, then ``&\\quad + ...``)."""
        if not (row.split and isinstance(row.rhs, sp.Add)):
            return self.math(row.rhs)
        terms = self.P.ordered_terms(row.rhs)
        out = self.math(terms[0])
        for term in terms[1:]:
            sign, shown = ("-", -term) if term.could_extract_minus_sign() else ("+", term)
            out += rf" \\ &\quad {sign} {self.math(shown)}"
        return out

    def rows(self, rows, relation: str = "=") -> list[dict]:
        """Rows of one display; a row without a left side repeats the one above in lhs_full.
        Where the display must fit a width, a right side wider than what the left sides
        leave is broken across lines (``linebreak``)."""
        out, lhs = [], None
        for r in rows:
            lhs = r.lhs if r.lhs is not None else lhs
            out.append(self.row(r, lhs))
        if out:
            out[-1]["end"] = ""
        out = self.fit(out, relation)
        for row in out:
            row["display"] = display(row, relation)
        return out

    def fit(self, rows: list[dict], relation: str = "=") -> list[dict]:
        """Printed rows of one display (lhs, rhs), each right side broken across lines where
        the display must fit a width and it is wider than what the left sides leave."""
        if self.line_width is not None and rows:
            from .linebreak import break_display, width

            left = max(width(row["lhs"]) for row in rows)
            for row in rows:
                # A numbered row leaves room for its tag, a quad from the equation.
                tag = width("(" + row["tag"].replace("$", "") + ")") + self.tag_gap \
                    if row.get("tag") else 0.0
                row["rhs"] = break_display(row["rhs"], self.line_width - left - tag,
                                           lead=f"{{}}{relation} ")
        return rows

    def shape(self, shape) -> str:
        return self.P.shape(shape)


def display(row: dict, relation: str = "=") -> str:
    """A printed row as a display of its own: ``lhs = rhs`` with its number; an aligned
    display where the right side was broken across lines (KaTeX's and MathJax's aligned)."""
    from .linebreak import RELATION_CONTINUATION  # how every continuation line starts

    if RELATION_CONTINUATION not in row["rhs"]:
        return f"{row['lhs_full']} {relation} {row['rhs']}{row['number']}"
    return (f"\\begin{{aligned}}\n{row['lhs_full']} &{relation} {row['rhs']}{row['number']}\n"
            "\\end{aligned}")


def _layer_by_layer(f, blocks) -> list[dict]:
    """The rows of every layer's block as one display, a little space between layers."""
    rows = f.rows([r for b in blocks for r in b.rows])
    ends = 0
    for block in blocks[:-1]:
        ends += len(block.rows)
        rows[ends - 1]["end"] = r" \\[1ex]"
    return rows


def _sizes_of(d) -> dict:
    return N.unit_sizes(d.arch.sizes)


def _concrete(shape, d):
    sizes = _sizes_of(d)
    return tuple(sp.sympify(x).xreplace(sizes) for x in shape)


def _table(d, f, acts) -> list[list[str]]:
    """The dimensions table: one row per layer, concrete shapes (n_l × m, or m × n_l)."""
    arch = d.arch
    none = r"\cdot"  # the input layer has no activation, weights or biases
    table = [[f.math(sp.Integer(0)), f.math(sp.Integer(arch.sizes[0])), none,
              f.shape(_concrete(d.X.shape, d)), none, none]]
    for layer, size in zip(d.layers, arch.sizes[1:]):
        table.append([f.math(sp.Integer(layer.index)), f.math(sp.Integer(size)),
                      acts[layer.activation.name], f.shape(_concrete(layer.A.shape, d)),
                      f.shape(_concrete(layer.W.shape, d)), f.shape(_concrete(layer.b.shape, d))])
    return table


def _diagram(d, f, text, acts) -> dict:
    """Where each neuron, label and edge of the diagram goes (TikZ coordinates in cm), and the
    labels in the document's notation; Markdown's Mermaid figure uses the plain-text labels."""
    arch = d.arch
    picture = D.layout(arch.sizes)
    label_y, below_y = round(picture.top + 0.95, 3), round(picture.bottom - 0.6, 3)
    columns = []
    for col in picture.columns:
        role = "input" if col.layer == 0 else "output" if col.layer == arch.depth else "hidden"
        act_name = arch.activations[col.layer - 1] if col.layer else None
        columns.append({
            "layer": col.layer, "role": text(role),
            "size": f.math(sp.Eq(N.units(col.layer), col.size, evaluate=False)),
            "below": acts[act_name] if act_name else f.math(d.X),
            "label_at": f"({col.x},{label_y})", "below_at": f"({col.x},{below_y})",
            "neurons": [{"ref": f"({n.name})", "at": f"({col.x},{n.y})"} for n in col.neurons],
            "dots": [] if col.dots_y is None else [f"({col.x},{col.dots_y})"],
            "count": f"{col.size} unit" + ("s" if col.size != 1 else ""),
            "activation_text": f", {arch.activation_entry(act_name).human_name}"
            if act_name else "",
        })
    gaps = []
    for x, left, right in picture.gaps():
        W = d.layer(right.layer).W
        shape = _concrete(W.shape, d)
        gaps.append({"at": f"({round(x, 3)},{round(picture.bottom - 1.5, 3)})",
                     "weight": f.math(W), "shape": f.shape(shape),
                     "weight_text": weight_text(W, d.notation),
                     "text_shape": "×".join(str(n) for n in shape),
                     "left": left.layer, "right": right.layer})
    edges = [{"a": f"({a})", "b": f"({b})"} for a, b in picture.edges()]
    return {"columns": columns, "gaps": gaps, "edges": edges}


def _context(d, printer, text, with_steps, with_diagram, fmt="latex", heading="section",
             standalone=False, label_prefix=None) -> dict:
    prefix = default_label_prefix(d) if label_prefix is None else \
        checked_label_prefix(label_prefix)
    line_width = LINE_WIDTH["markdown" if fmt == "markdown" else "standalone" if standalone
                            else "fragment"]
    numbers = numbered(used_rules(d, with_steps))
    f = _Formatter(printer, text, INLINE[fmt], label_prefix=prefix, line_width=line_width,
                   ref=(lambda name: rf"\eqref{{{prefix}:{name}}}") if fmt == "latex"
                   else (lambda name: f"({name})"), rule_numbers=numbers,
                   loss=N.L[d.example_index], fmt=fmt)
    s = sections(d, with_steps)
    g, out = d.general, d.output
    arch, loss = d.arch, d.arch.loss_entry
    acts = latex_names(arch)

    kind = network_kind(d)
    image = kind != "dense"  # the feature layers' sections replace or follow the dense ones
    parts = [part for part, wanted in PARTS[kind] if {
        "always": True, "activations": bool(s.activations), "diagram": with_diagram,
        "steps": with_steps}[wanted]]
    first = arch.offset + 1
    headings = heading_commands(fmt, heading, standalone)
    context = {
        "parts": parts,
        "title_heading": headings["title"], "part_heading": headings["part"],
        "block_heading": headings["block"],
        "label_prefix": prefix,
        # BP1-BP4 as the document refers to them: its own numbered equations.
        "bp": {name: f.ref(name) for name in BP_NAMES},
        # The rules the steps follow, each stated once, numbered; stated where the first
        # derivation starts (the general layer's steps, or the output layer's error).
        "rules": [{"label": f"(R{n})", "text": f.note(RULE_TEXT[key].statement(d))}
                  for key, n in sorted(numbers.items(), key=lambda item: item[1])],
        "rules_in": "steps" if with_steps else "specialised",
        "entries": f.rows(s.entries),
        "figure_label": f.label("diagram"),
        "figure_caption": _caption(d, f, fmt, kind),
        # Where the network's section points at its figure (LaTeX's floats).
        "figure_ref": rf" (Figure~\ref{{{f.label('diagram')}}})"
        if with_diagram and fmt == "latex" else "",
        "cost_over": f"the {f.inline(f.math(d.m))} " + text(COST_OVER[arch.every_step]),
        "packages": [p for p in PACKAGES if p != "tikz" or with_diagram],  # TikZ: the diagram
        "spec": text(arch.spec()),
        # A long spec has no spaces: a LaTeX heading is set ragged right, to break after a - or :.
        "title": (r"\raggedright " if fmt == "latex" else "")
        + f"Backpropagation for the {spec_code(arch.spec(), fmt)} network",
        "loss_name": text(arch.loss),
        "loss_human": text(loss.human_name),
        "loss_id": arch.loss,
        "loss_description": text(loss.description),
        "loss_latex": loss.latex,
        "notation_template": f"notation_{d.notation}",
        "L": arch.depth,
        "forward": f.rows(s.forward),
        "activations": f.rows(s.activations),
        "cost": f.rows(s.cost),
        "names": {k: f.math(getattr(g, k)) for k in
                  ("W", "b", "Z", "A", "dZ", "dA", "dW", "db")},
        "Y": f.math(d.Y), "X": f.math(d.X), "m": f.math(d.m), "alpha": f.math(ALPHA),
        "J": f.math(N.J), "example": f.math(d.example_index),
        "n_l": f.math(g.units),
        "shapes": {k: f.shape(getattr(g, k).shape) for k in ("W", "b", "Z")},
        "table": None if image else _table(d, f, acts),
        "diagram": _diagram(d, f, text, acts) if with_diagram and not image else None,
        "first_dense": f.math(sp.Integer(first)),
        "results_layer": "dense layer" if image else "layer",
        "steps_layer": f"a dense layer {f.inline('l')} (here "
        + f.inline(f"l = {first}, " + r"\dots, L") + ")" if image
        else f"a layer {f.inline('l')}",
        "steps": [{"name": b.name, "rows": f.rows(b.rows)} for b in s.steps],
        "results": f.rows(s.results),
        "output_rows": f.rows(output_rows(out, with_steps)),
        "specialised": [{"layer": b.title, "rows": f.rows(b.rows)}
                        for b in s.specialised],
        "specialised_rows": _layer_by_layer(f, s.specialised),
        "update": f.rows(s.update, relation=r"\leftarrow"),
    }
    if image:
        context.update(_feature_context(kind)(d, f, text, acts, with_steps, with_diagram))
    return context


# The sections of each kind of network, in order: (part, when it is there). A part is a
# template derivation_PART; "activations" when the network defines some, "diagram" and
# "steps" unless left out.
PARTS = {
    "dense": (("network", "always"), ("activations", "activations"), ("cost", "always"),
              ("dimensions", "always"), ("diagram", "diagram"), ("steps", "steps"),
              ("results", "always"), ("specialised", "always"), ("update", "always")),
    "image": (("feature_network", "always"), ("activations", "activations"),
              ("cost", "always"), ("feature_dimensions", "always"),
              ("feature_diagram", "diagram"), ("steps", "steps"), ("feature_steps", "steps"),
              ("results", "always"), ("specialised", "always"), ("feature_results", "always"),
              ("feature_update", "always")),
    "sequence": (("rnn_network", "always"), ("activations", "activations"), ("cost", "always"),
                 ("rnn_dimensions", "always"), ("rnn_diagram", "diagram"), ("steps", "steps"),
                 ("rnn_steps", "steps"), ("results", "always"), ("specialised", "always"),
                 ("rnn_results", "always"), ("rnn_update", "always")),
}
# What the cost averages over: the examples, or (the head at every step) the (example, step)
# pairs; keyed by Architecture.every_step.
COST_OVER = {False: "examples", True: "(example, step) pairs"}


def _caption(d, f, fmt, kind) -> str:
    """The figure's caption: CAPTIONS of the kind, the spec as code, math in the notation."""
    wide = any(n > D.MAX_DRAWN for n in d.arch.sizes) and kind == "dense"
    elided = ELIDED.format(n=D.MAX_DRAWN, drawn=D.HEAD + D.TAIL) if wide else ""
    U = ""
    if kind == "sequence":
        U = f.inline(f.math(d.features[0].symbols["U"]))
    return CAPTIONS[kind].format(spec=spec_code(d.arch.spec(), fmt), elided=elided, U=U)


def network_kind(d) -> str:
    """dense, image (feature maps before the dense layers) or sequence (a recurrent layer)."""
    if d.arch.sequence is not None:
        return "sequence"
    return "image" if d.features else "dense"


def _feature_context(kind):
    """The template variables of the layers before the dense ones, by kind of network."""
    if kind == "sequence":
        from .recurrent import recurrent_context

        return recurrent_context
    from .features import feature_context

    return feature_context


def weight_text(W, notation) -> str:
    """A weight matrix's name in plain text (Markdown diagram labels): W[1], or W_1."""
    kind, label = N.split(W.name)
    return f"{kind}_{label}" if notation == "rowvec" else W.name


def _printer(d) -> DerivationLatexPrinter:
    return DerivationLatexPrinter({"notation": d.notation, "textbook": True,
                                   "function_names": latex_names(d.arch)})


def latex_document(d, standalone=False, steps=True, diagram=True, label_prefix=None,
                   heading="section") -> str:
    """The derivation in LaTeX: a fragment to ``\\input`` (or with ``standalone`` a whole
    document). Its labels are ``label_prefix:BP1``... (default from the architecture, so
    that several networks' fragments share one paper); ``heading`` (section, subsection,
    none) is the level of its own heading."""
    from ..templating import render

    ctx = _context(d, _printer(d), tex_text, steps, diagram, "latex", heading, standalone,
                   label_prefix)
    name = "derivation_standalone.tex.j2" if standalone else "derivation_fragment.tex.j2"
    return render(name, kind="latex", **ctx)


def markdown_document(d, steps=True, diagram=True, heading="section") -> str:
    from ..templating import render

    ctx = _context(d, _printer(d), lambda prose: prose, steps, diagram, "markdown", heading)
    return render("derivation.md.j2", kind="code", **ctx)


def latex_summary(d) -> str:
    """One ``$$ \\begin{aligned} ... $$`` display (what Jupyter renders from ``_repr_latex_``):
    the equations specialised to the network, output layer first."""
    f = _Formatter(_printer(d), tex_text)
    rows = [r for block in specialised(d) for r in block.rows]
    if network_kind(d) == "sequence":  # then the recurrent layer, backward in time
        from .recurrent import recurrent_sections

        sec = recurrent_sections(d, False)
        rows += [Row(r.lhs, r.rhs) for r in (sec.head, *sec.recursion, *sec.sums)]
    elif d.features:  # then the feature layers, back to the input
        from .features import feature_sections

        rows += [Row(r.lhs, r.rhs) for r in feature_sections(d, False).results]
    lines = f.rows(rows)
    from ..templating import render

    return render("derivation_summary.tex.j2", kind="latex", rows=lines)
