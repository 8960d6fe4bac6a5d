"""Markdown documents: the same content as LaTeX, in math MathJax and GitHub render."""
from __future__ import annotations

import re

import pytest

from symbackprop.engine import derive
from symbackprop.printing.document import latex_document, markdown_document
from symbackprop.spec import parse_arch

NETWORKS = [("2-3-1", "half_sse"), ("3-1:relu-2:relu", "mse"),
            ("64-32:relu-10:softmax", "cross_entropy"),
            ("3-4:tanh-4:tanh-4:tanh-2:sigmoid", "bce")]


def md(spec, loss, notation="ng", **kw):
    return markdown_document(derive(parse_arch(spec, loss), notation), **kw)


@pytest.mark.parametrize("notation", ["ng", "rowvec"])
@pytest.mark.parametrize("spec,loss", NETWORKS)
def test_math_is_delimited_for_mathjax(spec, loss, notation):
    """Display math in ```math blocks, inline math in $`...`$: the forms GitHub's Markdown
    leaves alone (tests/test_katex.py typesets them)."""
    text = md(spec, loss, notation)
    displays = re.findall(r"^```math\n(.*?)\n```$", text, flags=re.MULTILINE | re.DOTALL)
    assert displays and "$$" not in text
    for block in displays:
        assert r"\intertext" not in block and r"\label" not in block
        assert len(re.findall(r"\\left[(\[]", block)) == len(re.findall(r"\\right[)\]]", block))
    # Inline math: every dollar opens or closes a code span of math.
    prose = re.sub(r"^```.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)
    for line in prose.splitlines():
        assert "$" not in re.sub(r"\$`[^`]*`\$", "", line), line
    assert r"\documentclass" not in text and "tikz" not in text


def test_same_equations_as_latex():
    d = derive(parse_arch("2-3-1"))
    text, tex = markdown_document(d), latex_document(d)
    eq = r"(W^{[2]\top} \, dZ^{[2]}) \odot A^{[1]} \odot (1 - A^{[1]})"
    assert f"dZ^{{[1]}} &= {eq}" in text and f"dZ^{{[1]}} &= {eq}" in tex
    for name in ("BP1", "BP2", "BP3", "BP4"):
        assert rf"\text{{({name})}}" in text


def test_sections_in_order():
    text = md("2-3-1", "half_sse")
    heads = ["## The network", "## Dimensions", "## Diagram", "## BP1–BP4 by the chain rule",
             "## The four equations", "## This network, layer by layer", "## Gradient descent"]
    positions = [text.index(h + "\n") for h in heads]
    assert positions == sorted(positions)


def test_dimensions_table():
    text = md("64-32:relu-10:softmax", "cross_entropy")
    assert "| $`1`$ | $`32`$ | $`\\operatorname{ReLU}`$ | $`32 \\times m`$ | $`32 \\times 64`$ " \
           "| $`32 \\times 1`$ |" in text


def test_mermaid_diagram_names_layers_sizes_and_weights():
    text = md("784-128:relu-10:softmax", "cross_entropy")
    block = text[text.index("```mermaid"):]
    block = block[:block.index("```\n", 3)]
    assert 'L0["input layer 0<br/>784 units"]' in block
    assert 'L1["hidden layer 1<br/>128 units, ReLU"]' in block  # the human name
    assert 'L1 -- "W[2]: 10×128" --> L2' in block
    rows = md("784-128:relu-10:softmax", "cross_entropy", "rowvec")
    assert 'L0 -- "W_1: 784×128" --> L1' in rows


def test_steps_keep_unicode_sentences_and_no_steps_drops_them():
    text = md("2-3-1", "half_sse")
    assert "*By (R2), the definition of the error:*" in text
    assert ("- **(R2)** The error of a quantity is $`m`$ times the derivative of the cost") \
        in text
    short = md("2-3-1", "half_sse", steps=False, diagram=False)
    assert "the chain rule:" not in short and "mermaid" not in short
    assert r"dW^{[l]} &= \frac{1}{m} \, dZ^{[l]} \, A^{[l-1]\top}" in short


def test_jupyter_reprs():
    """One display: Markdown holding the equations as one LaTeX display (no second,
    different representation for a frontend to prefer)."""
    d = derive(parse_arch("2-3-1"))
    assert not hasattr(d, "_repr_latex_") and not hasattr(d, "_repr_html_")
    shown = d._repr_markdown_()
    assert shown.startswith("**Backpropagation for 2-3-1**, loss half_sse")
    assert "to_markdown()" in shown and len(shown) < len(markdown_document(d)) / 3
    latex = shown[shown.index("$$"):shown.rindex("$$") + 3]
    assert latex.startswith("$$\n\\begin{aligned}\n") and latex.endswith("\\end{aligned}\n$$\n")
    assert r"dZ^{[2]} &= (A^{[2]} - Y) \odot A^{[2]} \odot (1 - A^{[2]})" \
        in latex


def _display_lines(block: str) -> list[tuple[float, str]]:
    """(how wide it sets, in points at 10pt, TeX's estimate) of every line of a display: an
    aligned display's lines each after the widest left side, where its alignment puts them."""
    from symbackprop.printing.linebreak import width

    body = re.sub(r"\\(begin|end)\{aligned\}", "", block)
    rows = re.split(r"\\\\(?:\[[^\]]*\])?", body)
    left = max((width(r.split("&", 1)[0]) for r in rows if "&" in r), default=0.0)
    out = []
    for row in rows:
        if "&" in row:
            out.append((left + width("{}" + row.split("&", 1)[1].replace("&", "")), row))
        elif row.strip():
            out.append((width(row), row))
    return out


def _golden_markdown():
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "generated" / "derivations"
    return sorted(folder.glob("*.md"))


def test_long_displays_are_broken_to_the_markdown_width():
    """Every display line of every golden Markdown derivation (and of networks with other
    layers and losses) fits the width LINE_WIDTH['markdown'] estimates for a page of
    GitHub: a long equation is an aligned display broken across lines, as the LaTeX is
    (tests/test_katex.py typesets them); at least one equation needed breaking."""
    from symbackprop.printing.document import LINE_WIDTH
    from symbackprop.printing.linebreak import joined

    texts = [path.read_text(encoding="utf-8") for path in _golden_markdown()]
    texts += [md(spec, loss, notation) for spec, loss, notation in (
        ("2x5x5-conv2k3:relu-maxpool2s1-flatten-3:softmax", "cross_entropy", "rowvec"),
        ("seq4x2-rnn3:relu:all-2:sigmoid", "bce", "ng"),
        ("3-4:softsign-3:leaky_relu-2:log_softmax", "nll", "ng"))]
    assert len(texts) >= 15
    bound = LINE_WIDTH["markdown"]
    broken = 0
    for text in texts:
        for block in re.findall(r"^```math\n(.*?)\n```$", text, flags=re.MULTILINE | re.DOTALL):
            lines = _display_lines(block)
            wide = [(round(w), line) for w, line in lines if w > bound]
            assert not wide, wide[:3]
            if r" \\ &" in block:  # broken across lines: was it wider than the bound?
                broken += any(w > bound for w, _ in _display_lines(joined(block)))
    assert broken >= 5, broken
