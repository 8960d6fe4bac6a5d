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

# One network of each kind: dense, image, recurrent; the second with a prefix of its own.
SHARED = [("2-3-1", "half_sse", "ng", None),
          ("64-32:relu-10:softmax", "cross_entropy", "ng", "clf"),
          ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", "rowvec", None),
          ("seq3x2-rnn2:tanh-1", "half_sse", "ng", "rnn")]
PREAMBLE = ("\\documentclass[twocolumn]{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n"
            "\\usepackage{tikz}\n\\usepackage{graphicx}\n")


def _labels(aux: str) -> dict:
    """label -> (what \\ref prints, page), from a .aux file."""
    return {name: (shown, int(page)) for name, shown, page in
            re.findall(r"\\newlabel\{([^}]*)\}\{\{\{?([^{}]*)\}?\}\{(\d+)\}", aux)}


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
    refs = " ".join(rf"\eqref{{{p}:BP{k}}}" for p in prefixes for k in (1, 4))
    (tmp_path / "paper.tex").write_text(
        PREAMBLE + "\\begin{document}\nEquations " + refs + ".\n" + "".join(body)
        + "\\clearpage\\mbox{}\\label{end}\n\\end{document}\n", encoding="utf-8")
    _pdflatex(tmp_path, "paper.tex")
    log = _pdflatex(tmp_path, "paper.tex")  # the second run resolves the references
    assert "multiply defined" not in log and "multiply-defined" not in log
    assert "undefined" not in log
    labels = _labels((tmp_path / "paper.aux").read_text(encoding="latin-1"))
    starts = [labels[f"start{n}"][1] for n in range(len(SHARED))] + [labels["end"][1]]
    for n, prefix in enumerate(prefixes):
        for k in range(1, 5):
            shown, page = labels[f"{prefix}:BP{k}"]
            assert shown == f"BP{k}"
            assert starts[n] <= page < starts[n + 1], (prefix, k, page, starts)


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
