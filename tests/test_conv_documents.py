"""Documents of image networks: every format and notation names each feature layer's operation,
shows every layer's shapes in the numbers of its architecture, derives every feature gradient
step by step, compiles with pdflatex, and is the same bytes every time.

Expected shapes and sizes are computed from ``Architecture.shapes()`` and the spec's
features, never written out; the printers' node methods are checked string by string.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from itertools import product
from pathlib import Path

import pytest
import sympy as sp

from symbackprop import naming as N
from symbackprop.engine import derive
from symbackprop.errors import DerivationError
from symbackprop.printing.document import latex_document, markdown_document
from symbackprop.printing.entrywise import range_chains, range_piecewise
from symbackprop.printing.features import feature_sections
from symbackprop.printing.latex import latex
from symbackprop.printing.linear import text as linear
from symbackprop.printing.pretty import pretty
from symbackprop.printing.text import derivation_text
from symbackprop.spec import parse_arch
from symbackprop.tensors import (
    ChannelSum,
    Correlate,
    Flatten,
    FullCorrelate,
    Pool,
    Scaled,
    Unflatten,
    Unpool,
    WeightCorrelate,
)

ROOT = Path(__file__).resolve().parent.parent

# (spec, loss, l2): stride and padding, every pooling kind, two convolutions and a penalty,
# and a network without a convolution.
NETS = [
    ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", 0),
    ("1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax", "cross_entropy", 0),
    ("3x6x6-conv4k3:relu-avgpool2-conv2k2s1p1-maxpool2s1-flatten-5:relu-2:softmax",
     "cross_entropy", "0.01"),
    ("2x5x5-maxpool2s1-flatten-3:sigmoid", "bce", 0),
]
NOTATIONS = ("ng", "rowvec")
RENDER = {
    # Wide enough that every equation is one picture, as the content checks read it
    # (tests/test_text.py checks the breaking to a width).
    "text": lambda d, **kw: derivation_text(d, **{"width": 10_000, **kw}),
    "latex": lambda d, **kw: latex_document(d, standalone=True, **kw),
    "markdown": lambda d, **kw: markdown_document(d, **kw),
}
CASES = [(*net, notation, fmt) for net, notation, fmt in product(NETS, NOTATIONS, RENDER)]
IDS = [f"{spec.split('-')[1]}-{spec.count('-')}-{nt}-{fmt}" for spec, _, _, nt, fmt in CASES]

# How each feature kind's forward and backward operations print: LaTeX (and Markdown), text.
MARKERS = {
    "conv": {"latex": [r"\star_{", r"\star^{\mathrm{full}}_{", r"\operatorname{rot180}("],
             "text": ["⋆_{", "⋆full_{", "rot180("]},
    "maxpool": {"latex": [r"\operatorname{maxpool}_{", r"\operatorname{maxunpool}_{"],
                "text": ["maxpool_{", "maxunpool_{"]},
    "avgpool": {"latex": [r"\operatorname{avgpool}_{", r"\operatorname{avgunpool}_{"],
                "text": ["avgpool_{", "avgunpool_{"]},
    "flatten": {"latex": [r"\operatorname{flatten}(", r"\operatorname{unflatten}("],
                "text": ["flatten(", "unflatten("]},
}


def _arch(spec, loss, l2):
    return parse_arch(spec, loss, l2=l2)


def _doc(spec, loss, l2, notation, fmt, **kw):
    return RENDER[fmt](derive(_arch(spec, loss, l2), notation), **kw)


def _math(fmt) -> str:
    return "text" if fmt == "text" else "latex"


def _times(fmt) -> str:
    return " × " if fmt == "text" else r" \times "


def _expected_rows(arch, notation, fmt):
    """layer -> the shape cells its dimensions row must show: A (and Z), W, b, from
    arch.shapes() and the spec's features."""
    x, shapes = _times(fmt), arch.shapes()
    rows = {}
    for label, shape in enumerate(shapes):
        if len(shape) == 3:
            cells = [x.join(["m", *map(str, shape)])]
        else:
            n = str(shape[0])
            cells = [x.join([n, "m"] if notation == "ng" else ["m", n])]
        if 1 <= label <= arch.offset and arch.features[label - 1].kind == "conv":
            f = arch.features[label - 1]
            cells += [x.join(map(str, (shape[0], shapes[label - 1][0], f.kernel, f.kernel))),
                      str(shape[0])]
        elif label > arch.offset:
            n, n_prev = shape[0], shapes[label - 1][0]
            W = (n, n_prev) if notation == "ng" else (n_prev, n)
            b = (n, 1) if notation == "ng" else (1, n)
            cells += [x.join(map(str, W)), x.join(map(str, b))]
        rows[label] = cells
    return rows


def _dimension_rows(doc, fmt) -> dict:
    """layer -> its row of the dimensions table, as text."""
    if fmt == "text":
        block = doc[doc.index("Dimensions:\n"):doc.index("\nSizes, layer by layer")]
        pattern = r"^  (\d+)  (.*)$"
    elif fmt == "latex":
        block = doc[doc.index(r"\subsection*{Dimensions}"):doc.index(r"\end{tabular}")]
        pattern = r"^\$(\d+)\$ & (.*)$"
    else:
        block = doc[doc.index("## Dimensions"):doc.index("Every error has the shape")]
        pattern = r"^\| \$`(\d+)`\$ \| (.*)$"
    return {int(m.group(1)): m.group(2) for m in re.finditer(pattern, block, re.MULTILINE)}


# --- the documents ----------------------------------------------------------------------------

@pytest.mark.parametrize("spec,loss,l2,notation,fmt", CASES, ids=IDS)
def test_document_names_each_operation_of_its_feature_kinds(spec, loss, l2, notation, fmt):
    arch = _arch(spec, loss, l2)
    doc = _doc(spec, loss, l2, notation, fmt)
    kinds = {f.kind for f in arch.features}
    for kind, markers in MARKERS.items():
        for marker in markers[_math(fmt)]:
            if kind in kinds:
                assert marker in doc, (kind, marker)
            else:  # a kind the network lacks is not written up
                assert marker not in doc, (kind, marker)


@pytest.mark.parametrize("spec,loss,l2,notation,fmt", CASES, ids=IDS)
def test_dimensions_table_shows_every_layer_in_the_numbers_of_the_architecture(
        spec, loss, l2, notation, fmt):
    arch = _arch(spec, loss, l2)
    rows = _dimension_rows(_doc(spec, loss, l2, notation, fmt), fmt)
    expected = _expected_rows(arch, notation, fmt)
    assert sorted(rows) == list(range(arch.depth + 1))
    for label, cells in expected.items():
        row, at = rows[label], 0
        for cell in cells:  # in the table's column order
            found = row.find(cell, at)
            assert found >= 0, (label, cell, row)
            at = found + len(cell)


@pytest.mark.parametrize("spec,loss,l2", NETS)
@pytest.mark.parametrize("notation", NOTATIONS)
def test_sizes_follow_their_rule_with_the_architectures_numbers(spec, loss, l2, notation):
    arch = _arch(spec, loss, l2)
    doc = derivation_text(derive(arch, notation))
    shapes = arch.shapes()
    name = (lambda kind, label: f"{kind}[{label}]") if notation == "ng" else \
        (lambda kind, label: f"{kind}_{label}")
    for label, f in enumerate(arch.features[:-1], start=1):
        prev, out = shapes[label - 1], shapes[label]
        p = f.padding if f.kind == "conv" else 0
        for kind, axis in (("n_H", 1), ("n_W", 2)):
            line = next(x for x in doc.splitlines() if x.startswith(f"  {name(kind, label)} ="))
            assert line.endswith(f"= {out[axis]}"), line
            numbers = f"({prev[axis]} + 2·{p} - {f.kernel})" if p else \
                f"({prev[axis]} - {f.kernel})"
            assert f"⌊{numbers}/{f.stride}⌋ + 1" in line, line
        line = next(x for x in doc.splitlines() if x.startswith(f"  {name('n_C', label)} ="))
        assert line.endswith(f"= {out[0]}"), line


def test_sizes_and_table_come_from_the_architecture(monkeypatch):
    """The table prints what arch.shapes() says, and a size rule that disagrees is refused."""
    from symbackprop.printing.text import _feature_table

    arch = _arch(*NETS[0])
    d = derive(arch)
    shapes = arch.shapes()
    wrong = tuple((s[0] + 1, *s[1:]) if len(s) == 3 else s for s in shapes)
    monkeypatch.setattr(type(arch), "shapes", lambda self: wrong)
    table = "Dimensions:\n" + "\n".join(_feature_table(d)) + "\nSizes, layer by layer"
    assert f"m × {wrong[1][0]} × {wrong[1][1]} × {wrong[1][2]}" in _dimension_rows(table,
                                                                                 "text")[1]
    shifted = (shapes[0], (shapes[1][0], shapes[1][1] + 1, shapes[1][2]), *shapes[2:])
    monkeypatch.setattr(type(arch), "shapes", lambda self: shifted)
    with pytest.raises(DerivationError, match=r"n_H\[1\]"):
        feature_sections(d)


@pytest.mark.parametrize("spec,loss,l2", NETS)
@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_diagram_is_the_chain_of_shapes(spec, loss, l2, fmt):
    arch = _arch(spec, loss, l2)
    doc = _doc(spec, loss, l2, "ng", fmt)
    lines = doc.splitlines()
    first = next(n for n, x in enumerate(lines) if x.lstrip().startswith("×".join(
        map(str, arch.shapes()[0])) + " → "))
    line = lines[first]
    for more in lines[first + 1:]:  # a text line too long goes on before an arrow
        if not more.lstrip().startswith("→ "):
            break
        line += " " + more.strip()
    shapes = ["×".join(map(str, s)) for s in arch.shapes()]
    assert line.strip().split(" → ")[::2] == shapes
    assert "Diagram" in doc and "Diagram" not in _doc(spec, loss, l2, "ng", fmt, diagram=False)


@pytest.mark.parametrize("spec,loss,l2", NETS)
def test_latex_diagram_draws_a_box_per_layer_and_an_arrow_between(spec, loss, l2):
    arch = _arch(spec, loss, l2)
    doc = _doc(spec, loss, l2, "ng", "latex")
    picture = doc[doc.index(r"\begin{tikzpicture}"):doc.index(r"\end{tikzpicture}")]
    assert picture.count(r"\draw[->, thick]") == arch.depth
    for label, shape in enumerate(arch.shapes()):
        assert "$" + r" \times ".join(map(str, shape)) + "$" in picture or \
            (len(shape) == 1 and f"{{{shape[0]}}}" in picture)
        assert f"{{$A^{{[{label}]}}$}}" in picture
    assert "tikzpicture" not in _doc(spec, loss, l2, "ng", "latex", diagram=False)


@pytest.mark.parametrize("spec,loss,l2,notation,fmt", CASES, ids=IDS)
def test_every_feature_gradient_is_derived_step_by_step(spec, loss, l2, notation, fmt):
    d = derive(_arch(spec, loss, l2), notation)
    doc = RENDER[fmt](d)
    # Every feature equation, BP1-BP4 of a dense layer and the output's error end vectorised.
    derived = [*(eq for layer in d.features for eq in layer.backward.values()),
               *(d.general.backward[name] for name in ("BP1", "BP2", "BP3", "BP4")),
               d.output.backward["loss"]]
    sentence = "writing it as matrices"  # the caption of the vectorise rule
    assert doc.count(sentence) == sum(step.rule == "vectorise" for eq in derived
                                      for step in eq.steps)
    assert doc.count(sentence) > 4
    short = RENDER[fmt](d, steps=False)
    assert sentence not in short
    for layer in d.features:  # the results stay
        for eq in layer.backward.values():
            shown = pretty(eq.lhs, notation) if fmt == "text" else \
                latex(eq.lhs, notation, textbook=True)
            assert shown in short


@pytest.mark.parametrize("notation", NOTATIONS)
@pytest.mark.parametrize("fmt", ["text", "latex"])
def test_range_conditions_read_as_chains(notation, fmt):
    doc = _doc(*NETS[0], notation, fmt)
    if fmt == "text":
        s, p, f = ("s[1]", "p[1]", "f[1]") if notation == "ng" else ("s_1", "p_1", "f_1")
        assert f"[0 ≤ h + {p} - {s} x ≤ {f} - 1] [0 ≤ w + {p} - {s} y ≤ {f} - 1]" in doc
        assert "[0 ≤ h - s[2] x ≤ f[2] - 1]" in doc or "[0 ≤ h - s_2 x ≤ f_2 - 1]" in doc
    else:
        s, p, f = (r"s^{[1]}", r"p^{[1]}", r"f^{[1]}") if notation == "ng" else \
            ("s_{1}", "p_{1}", "f_{1}")
        assert rf"0 \leq h + {p} - {s} x \leq {f} - 1" in doc
        # The windows that reach an entry: every summed index with its limits, the ranges
        # as Iverson brackets after them.
        assert r"\substack{" not in doc
        assert re.search(r"\\sum_\{y=0\}\^\{n_\{W[^}]*\}[^ ]* - 1\} \[0 \\leq h", doc)


def test_chains_state_the_derived_condition_exactly():
    """Printing the range as 0 <= e <= top must not change it: both agree at every point."""
    d = derive(_arch(*NETS[0]))
    entries = [d.features[0].backward["BP3"].entry_rhs, d.features[1].backward["BP3"].entry_rhs]
    sizes = {N.feature_size("f", 1): 3, N.feature_size("s", 1): 2, N.feature_size("p", 1): 1,
             N.feature_size("f", 2): 2, N.feature_size("s", 2): 1}
    for entry in entries:
        (piecewise,) = [e for e in entry.atoms(sp.Piecewise) if range_piecewise(e)]
        cond = piecewise.args[0].cond.xreplace(sizes)
        chains = range_chains(piecewise.args[0].cond)
        assert chains and all(isinstance(c, tuple) for c in chains)
        free = sorted(cond.free_symbols, key=str)
        for values in product(range(-2, 5), repeat=len(free)):
            point = {**sizes, **dict(zip(free, values))}
            held = all(lo <= e.xreplace(point) <= top.xreplace(point) for lo, e, top in chains)
            assert held == bool(cond.xreplace(point)), point


@pytest.mark.parametrize("notation", NOTATIONS)
def test_markdown_math_is_delimited_for_mathjax(notation):
    for spec, loss, l2 in NETS:
        doc = _doc(spec, loss, l2, notation, "markdown")
        assert doc.count("\n$$\n") % 2 == 0
        for block in re.findall(r"\n\$\$\n(.*?)\n\$\$\n", doc, flags=re.DOTALL):
            assert r"\intertext" not in block and r"\label" not in block
            assert len(re.findall(r"\\left[(\[]", block)) == \
                len(re.findall(r"\\right[)\]]", block))
        for line in doc.splitlines():
            if line != "$$":
                assert line.count("$") % 2 == 0, line
        assert "tikz" not in doc


def test_dense_head_is_labelled_after_the_features_and_reads_the_flat_vector():
    arch = _arch(*NETS[1])
    doc = _doc(*NETS[1], "ng", "latex")
    first = arch.offset + 1
    assert rf"Z^{{[{first}]}} &= W^{{[{first}]}} \, A^{{[{arch.offset}]}} + b^{{[{first}]}}" in doc
    assert rf"back to $l = {first}$" in doc
    assert rf"dA^{{[{arch.offset}]}} &= W^{{[{first}]\top}} \, dZ^{{[{first}]}}" in doc
    assert r"dW^{[1]}" not in doc.split(r"\subsection*{This network")[1].split(
        r"\subsection*{The feature layers}")[0]  # the dense part names dense layers only


def test_penalised_kernel_gradient_shows_the_penalty():
    doc = _doc(*NETS[2], "ng", "latex")
    assert (r"dW^{[1]} &= \frac{1}{m} \, \sum_{i=0}^{m - 1} A_{i}^{[0]} \star_{s^{[1]}, p^{[1]}} "
            r"dZ_{i}^{[1]} + \frac{\lambda}{m} \, W^{[1]}") in doc


# --- the printers, one node at a time ----------------------------------------------------------

def _conv():
    d = derive(_arch(*NETS[0]))
    return d.features[0].symbols


def test_printers_of_each_operation():
    sym = _conv()
    W, A, b, s, p, dZ = (sym[k] for k in ("W", "A_prev", "b", "s", "p", "dZ"))
    weights = Scaled(1 / N.m, WeightCorrelate(A, dZ, s, p))
    assert latex(weights) == \
        r"\frac{1}{m} \, \sum_{i} A_{i}^{[0]} \star_{s^{[1]}, p^{[1]}} dZ_{i}^{[1]}"
    assert str(weights) == "(1/m) Σ_i A[0][i] ⋆_{s[1],p[1]} dZ[1][i]"
    assert pretty(weights).splitlines()[1] == "─ Σ_i A[0][i] ⋆_{s[1],p[1]} dZ[1][i]"
    cases = [
        (Correlate(W, A, b, s, p), r"W^{[1]} \star_{s^{[1]}, p^{[1]}} A^{[0]} + b^{[1]}",
         "W[1] ⋆_{s[1],p[1]} A[0] + b[1]"),
        (ChannelSum(dZ), r"\sum_{i,x,y} dZ_{i, :, x, y}^{[1]}", "Σ_ixy dZ[1][i, :, x, y]"),
        (FullCorrelate(dZ, W, s, p),
         r"dZ^{[1]} \star^{\mathrm{full}}_{s^{[1]}, p^{[1]}} \operatorname{rot180}\left(W^{[1]}\right)",
         "dZ[1] ⋆full_{s[1],p[1]} rot180(W[1])"),
        (Pool("avg", A, sym["f"], s), r"\operatorname{avgpool}_{f^{[1]}, s^{[1]}}\left(A^{[0]}\right)",
         "avgpool_{f[1],s[1]}(A[0])"),
        (Unpool("max", dZ, sym["f"], s, N.tensor("M", 1, (1,))),
         r"\operatorname{maxunpool}_{f^{[1]}, s^{[1]}}\left(dZ^{[1]}; M^{[1]}\right)",
         "maxunpool_{f[1],s[1]}(dZ[1]; M[1])"),
        (Flatten(A), r"\operatorname{flatten}\left(A^{[0]}\right)", "flatten(A[0])"),
        (Unflatten(dZ, A), r"\operatorname{unflatten}\left(dZ^{[1]}\right)", "unflatten(dZ[1])"),
    ]
    for node, tex, text in cases:
        assert latex(node) == tex
        assert pretty(node) == text
        assert str(node) == linear(node) == text  # Node.__str__ is the one-line printer


def test_entries_and_sizes_print_with_their_layer():
    sym = _conv()
    A, f, p = sym["A_prev"], sym["f"], sym["p"]
    e = A[N.k, N.c, sym["s"] * N.x + N.mu - p, N.h]
    assert latex(e) == r"A_{k, c, s^{[1]} x + \mu - p^{[1]}, h}^{[0]}"
    assert latex(e, "rowvec") == r"A_{0,k, c, s_{1} x + \mu - p_{1}, h}"
    assert pretty(e) == "A[0][k, c, s[1] x + μ - p[1], h]"
    assert linear(e) == "A[0][k, c, s[1] x + mu - p[1], h]"
    assert latex(N.feature_size("n_C", 1)) == r"n_{C}^{[1]}"
    assert latex(N.feature_size("n_C", 1), "rowvec") == r"n_{C,1}"
    assert latex(f) == r"f^{[1]}" and latex(f**2) == r"(f^{[1]})^{2}"
    assert pretty(N.feature_size("n_H", "l-1")) == "n_H[l-1]"


# --- compiling and the command line ------------------------------------------------------------

def _pdflatex(folder: Path, name: str) -> str:
    if not shutil.which("pdflatex"):
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base "
                    "texlive-pictures)")
    for _ in range(3):  # again while the labels change: a document refers to its own
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                                 name], cwd=folder, capture_output=True, text=True, timeout=120,
                                check=False)
        log = (folder / name).with_suffix(".log").read_text(encoding="latin-1")
        assert result.returncode == 0, log[-3000:]
        if "Label(s) may have changed" not in log:
            break
    assert (folder / name).with_suffix(".pdf").stat().st_size > 1000
    return log


@pytest.mark.parametrize("notation", NOTATIONS)
@pytest.mark.parametrize("spec,loss,l2", NETS)
def test_standalone_compiles_without_errors_or_overfull_lines(tmp_path, spec, loss, l2,
                                                               notation):
    (tmp_path / "d.tex").write_text(_doc(spec, loss, l2, notation, "latex"), encoding="utf-8")
    log = _pdflatex(tmp_path, "d.tex")
    assert "Overfull" not in log
    warnings = [line for line in log.splitlines() if "Warning" in line
                and "Label(s) may have changed" not in line]
    assert not warnings, warnings


@pytest.mark.parametrize("notation", NOTATIONS)
def test_fragment_compiles_inside_a_paper(tmp_path, notation):
    d = derive(_arch(*NETS[1]), notation)
    (tmp_path / "bp.tex").write_text(latex_document(d, label_prefix="bp"), encoding="utf-8")
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n"
        "\\usepackage{tikz}\n\\begin{document}\n\\section{Backpropagation}\n"
        "As \\eqref{bp:BP1}--\\eqref{bp:BP4} show,\n\\input{bp}\n\\end{document}\n",
        encoding="utf-8")
    _pdflatex(tmp_path, "paper.tex")
    log = _pdflatex(tmp_path, "paper.tex")
    assert "undefined" not in log


def _cli(*args, seed="0"):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED=seed)
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True,
                          cwd=ROOT, env=env, check=False)


@pytest.mark.parametrize("fmt", ["text", "latex", "markdown"])
def test_cli_writes_the_document_the_same_bytes_under_any_hash_seed(fmt):
    spec, loss, _ = NETS[0]
    args = ["derive", spec, "--loss", loss, "--format", fmt]
    first, second = _cli(*args, seed="1"), _cli(*args, seed="2")
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout == second.stdout
    d = derive(_arch(*NETS[0]))
    expected = {"text": derivation_text, "latex": latex_document,
                "markdown": markdown_document}[fmt](d)
    assert first.stdout.decode("utf-8") == expected


def test_cli_no_steps_and_no_diagram():
    spec, loss, _ = NETS[1]
    out = _cli("derive", spec, "--loss", loss, "--format", "latex", "--no-steps",
               "--no-diagram")
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode("utf-8")
    assert "by the chain rule" not in text and "tikzpicture" not in text
    assert r"\subsection*{The feature layers}" in text and r"\tag{BP4}\label{" in text


def test_the_issues_command_no_longer_crashes():
    out = _cli("derive", "1x4x4-conv2k3p1:relu-maxpool2-flatten-2:softmax", "--loss",
               "cross_entropy")
    assert out.returncode == 0, out.stderr.decode()
    assert "maxunpool_{f[2],s[2]}(dA[2]; M[2])" in out.stdout.decode("utf-8")
