"""Fragments in a paper: several networks' derivations \\input into one two-column article.

The paper is compiled with pdflatex and its log and .aux read back: no label defined twice,
every \\eqref resolved to the network it names (the page its fragment is on), and (for every
network in generated/derivations) no overfull line.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_latex import _pdflatex

from symbackprop import derive, parse_arch
from symbackprop.printing.document import default_label_prefix, latex_document

ROOT = Path(__file__).resolve().parent.parent

# Two networks of each kind: dense, image, recurrent; some with a prefix of their own.
SHARED = [("2-3-1", "half_sse", "ng", None),
          ("64-32:relu-10:softmax", "cross_entropy", "ng", "clf"),
          ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", "rowvec", None),
          ("1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax", "cross_entropy", "ng", "cnn"),
          ("seq3x2-rnn2:tanh-1", "half_sse", "ng", "rnn"),
          ("seq8x8-rnn4:tanh:all-3:softmax", "cross_entropy", "rowvec", None)]
PREAMBLE = ("\\documentclass[twocolumn]{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n"
            "\\usepackage{tikz}\n\\usepackage{graphicx}\n")


def _group(text: str, start: int) -> tuple[str, int]:
    """The contents of the braced group opening at ``text[start]``, and where it ends."""
    depth = 0
    for n in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[n], 0)
        if depth == 0:
            return text[start + 1:n], n + 1
    raise AssertionError(f"unbalanced braces at {start}")


def _labels(aux: str) -> dict:
    """label -> (what \\ref prints, page), from a .aux file; what it prints with its spaces
    and outer braces gone (BP1, $\\mathrm{BP1}^{[1]}$)."""
    out = {}
    for m in re.finditer(r"\\newlabel\{([^}]*)\}\{", aux):
        fields, n = [], m.end()
        while len(fields) < 2:
            field, n = _group(aux, n)
            fields.append(field)
        shown = fields[0].replace(" ", "")
        while shown.startswith("{") and _group(shown, 0)[1] == len(shown):
            shown = shown[1:-1]
        out[m.group(1)] = (shown, int(fields[1]))
    return out


def _numbered(text: str) -> list[tuple[str, str]]:
    """(tag, label) of every numbered equation of a LaTeX document."""
    return re.findall(r"\\tag\{((?:[^{}]|\{[^{}]*\}|\{[^{}]*\{[^{}]*\}[^{}]*\})*)\}"
                      r"\\label\{([^}]*)\}", text)


# The gradient equations of the layers before the dense ones, by kind: what each layer's
# results are tagged (its equation names).
LAYER_EQUATIONS = {"conv": ("BP4", "BP1", "BP2", "BP3"), "maxpool": ("BP3",),
                   "avgpool": ("BP3",), "flatten": ("BP3",),
                   "rnn": ("BPTT", "BP4", "BP1", "BPU", "BP2")}


@pytest.mark.parametrize("spec,loss,notation,prefix", SHARED[2:])
def test_feature_and_recurrent_results_are_tagged_per_layer(spec, loss, notation, prefix):
    """Each feature or recurrent layer's vectorised gradients are numbered as the dense BP1-BP4
    are: tag BPn with the layer as the notation writes it (BP1^[1], BP1_1), label
    PREFIX:layerL:BPn; no label twice in a document. The Markdown names them after each
    equation."""
    d = derive(parse_arch(spec, loss), notation)
    prefix = prefix or default_label_prefix(d)
    numbered = _numbered(latex_document(d, label_prefix=prefix))
    labels = [label for _, label in numbered]
    assert len(labels) == len(set(labels))
    mark = {"ng": "^{{[{l}]}}", "rowvec": "_{{{l}}}"}[notation]
    expected = [(f"BP{n}", f"{prefix}:BP{n}") for n in range(1, 5)]
    for layer in reversed(d.features):
        expected += [(rf"$\mathrm{{{name}}}{mark.format(l=layer.index)}$",
                      f"{prefix}:layer{layer.index}:{name}")
                     for name in LAYER_EQUATIONS[layer.feature.kind]]
    assert sorted(numbered) == sorted(expected)
    md = d.to_markdown()
    for tag, _ in expected:
        assert rf"\qquad \text{{({tag})}}" in md, tag


def test_default_label_prefix_is_the_architecture_sanitised():
    d = derive(parse_arch("784-128:relu-10:softmax", "cross_entropy"))
    assert default_label_prefix(d) == "784-128-relu-10-softmax-cross-entropy"
    rows = derive(parse_arch("seq8x8-rnn4:tanh:all-3:softmax", "cross_entropy"), "rowvec")
    assert default_label_prefix(rows) == "seq8x8-rnn4-tanh-all-3-softmax-cross-entropy-rowvec"
    assert re.fullmatch(r"[A-Za-z0-9-]+", default_label_prefix(
        derive(parse_arch("2-3-1", l2="0.01"))))


def test_every_label_carries_the_prefix_and_bp_equations_are_tagged():
    d = derive(parse_arch("2-3-1"))
    text = latex_document(d, label_prefix="mlp")
    labels = re.findall(r"\\label\{([^}]*)\}", text)
    assert labels and all(label.startswith("mlp:") for label in labels)
    for n in range(1, 5):
        assert rf"\tag{{BP{n}}}\label{{mlp:BP{n}}}" in text
    assert "eq:" not in text
    # The document refers to its own equations by their labels.
    assert r"\eqref{mlp:BP4}" in text


@pytest.mark.parametrize("heading,title,part", [
    ("section", r"\section{\raggedright Backpropagation", r"\subsection*{The network}"),
    ("subsection", r"\subsection{\raggedright Backpropagation", r"\subsubsection*{The network}"),
    ("none", None, r"\paragraph{The network}")])
def test_heading_level(heading, title, part):
    text = latex_document(derive(parse_arch("2-3-1")), heading=heading)
    if title is None:
        assert r"section{Backpropagation" not in text
    else:
        assert title in text
    assert part in text
    md = derive(parse_arch("2-3-1")).to_markdown(heading=heading)
    marks = {"section": ("# Backpropagation", "## The network"),
             "subsection": ("## Backpropagation", "### The network"),
             "none": (None, "#### The network")}[heading]
    assert (marks[0] is None and "Backpropagation for" not in md.splitlines()[0]) or \
        md.startswith(marks[0])
    assert f"\n{marks[1]}\n" in "\n" + md


def test_standalone_numbers_no_heading():
    text = latex_document(derive(parse_arch("2-3-1")), standalone=True)
    assert r"\section*{\raggedright Backpropagation" in text and r"\subsection*{The network}" in text


def test_two_networks_of_every_kind_share_one_paper(tmp_path):
    """Four fragments \\input into one paper: no label defined twice, and each \\eqref
    resolves to the network it names (on the pages of that network's fragment)."""
    prefixes, body = [], []
    for n, (spec, loss, notation, prefix) in enumerate(SHARED):
        d = derive(parse_arch(spec, loss), notation)
        (tmp_path / f"net{n}.tex").write_text(latex_document(d, label_prefix=prefix),
                                              encoding="utf-8")
        prefixes.append(prefix or default_label_prefix(d))
        body.append(f"\\clearpage\\label{{start{n}}}\n\\input{{net{n}}}\n")
    numbered = [_numbered((tmp_path / f"net{n}.tex").read_text(encoding="utf-8"))
                for n in range(len(SHARED))]
    # Every numbered equation of every fragment referred to: the dense BP1-BP4 and each
    # feature or recurrent layer's.
    refs = " ".join(rf"\eqref{{{label}}}" for tags in numbered for _, label in tags)
    (tmp_path / "paper.tex").write_text(
        PREAMBLE + "\\begin{document}\nEquations " + refs + ".\n" + "".join(body)
        + "\\clearpage\\mbox{}\\label{end}\n\\end{document}\n", encoding="utf-8")
    _pdflatex(tmp_path, "paper.tex")
    log = _pdflatex(tmp_path, "paper.tex")  # the second run resolves the references
    assert "multiply defined" not in log and "multiply-defined" not in log
    assert "undefined" not in log
    labels = _labels((tmp_path / "paper.aux").read_text(encoding="latin-1"))
    starts = [labels[f"start{n}"][1] for n in range(len(SHARED))] + [labels["end"][1]]
    assert sum(len(tags) for tags in numbered) > 4 * len(SHARED)
    for n, (prefix, tags) in enumerate(zip(prefixes, numbered)):
        assert {f"{prefix}:BP{k}" for k in range(1, 5)} <= {label for _, label in tags}
        assert any(":layer" in label for _, label in tags) == (n >= 2)
        for tag, label in tags:
            shown, page = labels[label]
            assert shown == tag.replace(" ", "")
            assert starts[n] <= page < starts[n + 1], (label, page, starts)


def test_cli_label_prefix_and_heading(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "symbackprop", "derive", "2-3-1", *args],
                              capture_output=True, text=True, cwd=ROOT, check=False)
    out = cli("--format", "latex", "--label-prefix", "xor", "--heading", "subsection")
    assert out.returncode == 0 and r"\label{xor:BP1}" in out.stdout
    assert r"\subsection{\raggedright Backpropagation for the \texttt{2-\allowbreak 3-\allowbreak 1} network}" in out.stdout
    for bad in (["--format", "latex", "--label-prefix", "a b"],
                ["--format", "latex", "--label-prefix", "x{y}"],
                ["--label-prefix", "xor"], ["--format", "markdown", "--label-prefix", "xor"],
                ["--heading", "none"], ["--format", "latex", "--heading", "chapter"]):
        result = cli(*bad)
        assert result.returncode == 2, bad
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def _generated_networks():
    """(architecture, notation, with steps) of every network a golden derivation in
    generated/derivations is of, its spec file read as the command reads it."""
    import shlex

    from symbackprop.spec import resolve_arch

    folder = ROOT / "generated" / "derivations"
    seen = {}
    for line in (folder / "COMMANDS").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        argv = shlex.split(line.partition(":")[2])[2:]
        spec = argv[0]
        loss = argv[argv.index("--loss") + 1] if "--loss" in argv else None
        source = str(folder / spec) if spec.endswith((".toml", ".json")) else spec
        seen[(source, loss)] = "--no-steps" not in argv
    return [(resolve_arch(source, loss, (), None), notation, steps)
            for (source, loss), steps in seen.items() for notation in ("ng", "rowvec")]


def test_every_generated_network_fits_a_two_column_paper(tmp_path):
    """Every network of generated/derivations, in both notations, \\input into one
    two-column article: no overfull line (equations broken across lines, tables and figures
    fit the column), no label defined twice, every reference resolved."""
    nets = _generated_networks()
    assert len(nets) >= 20
    body = []
    for n, (arch, notation, steps) in enumerate(nets):
        d = derive(arch, notation)
        (tmp_path / f"net{n}.tex").write_text(latex_document(d, steps=steps),
                                              encoding="utf-8")
        body.append(f"\\input{{net{n}}}\n\\clearpage\n")
    (tmp_path / "paper.tex").write_text(
        PREAMBLE + "\\begin{document}\n" + "".join(body) + "\\end{document}\n",
        encoding="utf-8")
    log = _pdflatex(tmp_path, "paper.tex")
    overfull = re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)[^\n]*", log)
    assert not overfull, overfull
    assert "multiply defined" not in log and "undefined" not in log


def test_no_steps_of_the_784_128_10_classifier_fits_on_two_pages(tmp_path):
    """The standalone document without the step-by-step derivations, diagram included: two
    pages (pdflatex's own count, from its log)."""
    d = derive(parse_arch("784-128:relu-10:softmax", "cross_entropy"))
    (tmp_path / "d.tex").write_text(latex_document(d, standalone=True, steps=False),
                                    encoding="utf-8")
    log = _pdflatex(tmp_path, "d.tex")
    pages = int(re.search(r"Output written on d\.pdf \((\d+) pages?", log).group(1))
    assert pages <= 2, pages
    assert "Overfull" not in log
