"""Documents of recurrent networks: every format and notation, many-to-one and many-to-many,
states the notation (time steps, T, H_{-1} = 0, the (example, step, unit) layout, the head's
(example, step) columns), defines the layer entry by entry and at a time step, derives every
gradient step by step (both uses of H_t summed, the boundary at the last step a derived
Iverson bracket), gives the recursion backward in time, a dimensions table and the network
unrolled in time, compiles with pdflatex, and is the same bytes every time.

Expected shapes come from ``Architecture.shapes()`` and the spec's numbers, never written out;
the printers' node methods are checked string by string, as conv's are."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from itertools import product
from pathlib import Path

import pytest
import sympy as sp
from test_conv_documents import _pdflatex

from symbackprop import naming as N
from symbackprop.engine import derive
from symbackprop.printing.document import latex_document, markdown_document
from symbackprop.printing.entrywise import AtStep, StepColumns, range_chains, range_piecewise
from symbackprop.printing.latex import DerivationLatexPrinter, latex
from symbackprop.printing.linear import text as linear
from symbackprop.printing.linebreak import joined
from symbackprop.printing.pretty import equation, pretty
from symbackprop.printing.recurrent import recurrent_sections
from symbackprop.printing.text import derivation_text
from symbackprop.registry import latex_names
from symbackprop.spec import parse_arch
from symbackprop.tensors import (
    BackThroughTime,
    EveryStep,
    LastStep,
    Recurrence,
    Scaled,
    StepOuter,
    StepSum,
)

ROOT = Path(__file__).resolve().parent.parent

# (spec, loss, l2): many-to-one and many-to-many, a sequence long enough to be elided in the
# diagram, a deeper head, a penalty.
NETS = [
    ("seq3x2-rnn2:tanh-1", "half_sse", 0),
    ("seq3x2-rnn2:tanh:all-1", "half_sse", 0),
    ("seq8x3-rnn4:relu-3:relu-2:softmax", "cross_entropy", "0.01"),
    ("seq6x2-rnn3:sigmoid:all-2:sigmoid", "bce", 0),
]
NOTATIONS = ("ng", "rowvec")
RENDER = {
    # Wide enough that every equation is one picture, as the content checks read it
    # (tests/test_text.py checks the breaking to a width).
    "text": lambda d, **kw: derivation_text(d, **{"width": 10_000, **kw}),
    "latex": lambda d, **kw: latex_document(d, standalone=True, **kw),
    "fragment": lambda d, **kw: latex_document(d, **kw),
    "markdown": lambda d, **kw: markdown_document(d, **kw),
}
CASES = [(*net, notation, fmt) for net, notation, fmt in product(NETS, NOTATIONS, RENDER)]
IDS = [f"{spec.split('-')[1]}-{nt}-{fmt}" for spec, _, _, nt, fmt in CASES]


def _arch(spec, loss, l2):
    return parse_arch(spec, loss, l2=l2)


def _derive(spec, loss, l2, notation):
    return derive(_arch(spec, loss, l2), notation)


def _show(fmt, notation):
    """How the document of ``fmt`` prints one expression."""
    if fmt == "text":
        return lambda e: pretty(e, notation)
    return lambda e: latex(e, notation, textbook=True)


def _rnn(d):
    (layer,) = d.features
    return layer


def _shown(fmt, notation, lhs, rhs, arch=None) -> list[str]:
    """The lines of ``lhs = rhs`` as the document of ``fmt`` prints them (a LaTeX document
    names its activations by their operators: \\tanh)."""
    if fmt == "text":
        return [line.rstrip() for line in equation(lhs, rhs, notation=notation).splitlines()]
    P = DerivationLatexPrinter({"notation": notation, "textbook": True,
                                "function_names": latex_names(arch) if arch else {}})
    return [f"{P.doprint(lhs)} = {P.doprint(rhs)}"]


def _contains(doc, lines) -> bool:
    flat = joined(doc).replace(" &= ", " = ")  # each row on one line, however it was broken
    return all(line in flat for line in lines)


def _vectorised(d, name):
    """(lhs, rhs) of an rnn gradient as a document writes it: at a time step t where it acts
    step by step (the errors), whole where it sums over the steps (the parameters)."""
    s = _rnn(d).symbols
    eq = _rnn(d).backward[name]
    if name == "BPTT":
        return AtStep(eq.lhs, N.t), eq.rhs
    if name == "BP4":  # dZ_t = dH_t ⊙ g'(Z_t): its arrays at step t
        return AtStep(eq.lhs, N.t), eq.rhs.xreplace({x: AtStep(x, N.t)
                                                     for x in (s["dH"], s["Z"])})
    return eq.lhs, eq.rhs


# --- the documents ----------------------------------------------------------------------------

@pytest.mark.parametrize("spec,loss,l2,notation,fmt", CASES, ids=IDS)
def test_document_states_the_recurrent_layer_and_its_equations(spec, loss, l2, notation, fmt):
    d = _derive(spec, loss, l2, notation)
    doc = RENDER[fmt](d)
    fmt_ = "text" if fmt == "text" else "latex"
    rnn = _rnn(d)
    s, every = rnn.symbols, rnn.feature.every_step
    # The forward pass at a time step, from the layer's own nodes, and the state before it.
    Z, _, A = rnn.forward
    assert _contains(doc, _shown(fmt_, notation, AtStep(s["Z"], N.t), Z.rhs))
    assert _contains(doc, _shown(fmt_, notation, s["H"][N.k, -1, N.nu], sp.Integer(0)))
    passed = StepColumns(s["A"], N.t) if every else s["A"]
    assert _contains(doc, _shown(fmt_, notation, passed, A.rhs))
    # Every gradient, vectorised (at step t where it acts step by step).
    for name in rnn.backward:
        assert _contains(doc, _shown(fmt_, notation, *_vectorised(d, name), d.arch)), name
    # The recursion runs backward in time, and the boundary of BPTT is an Iverson bracket.
    assert re.search(r"t = T - 1, (…|\\dots), 1, 0", doc)
    bracket = "[τ + 1 ≤ T - 1]" if fmt == "text" else r"[\tau + 1 \leq T - 1]"
    assert bracket in doc
    # What the head reads: its m T columns (rows) are (example, step) pairs when it applies at
    # every step, and J averages over them.
    if every:
        place = "column" if notation == "ng" else "row"
        assert any(f"{place} {k}" in doc for k in ("T k + t", "$T k + t$", "$`T k + t`$"))
        assert "(example, step) pairs" in doc
        assert ("T⋅m" if fmt == "text" else r"\frac{1}{T m}") in doc
    else:
        assert "(example, step)" not in doc


@pytest.mark.parametrize("spec,loss,l2,notation,fmt", CASES, ids=IDS)
def test_every_recurrent_gradient_is_derived_step_by_step(spec, loss, l2, notation, fmt):
    d = _derive(spec, loss, l2, notation)
    doc = RENDER[fmt](d)
    rnn = _rnn(d)
    derived = [*rnn.backward.values(),
               *(d.general.backward[name] for name in ("BP1", "BP2", "BP3", "BP4")),
               d.output.backward["loss"]]
    sentence = "writing it as matrices"  # the caption of the vectorise rule
    assert doc.count(sentence) == sum(step.rule == "vectorise" for eq in derived
                                      for step in eq.steps)
    # BPTT's chain rule sums over both uses of H: the next step's Z and what is passed on.
    show = _show(fmt, notation)
    fmt_ = "text" if fmt == "text" else "latex"
    target = rnn.symbols["H"][N.k, N.tau, N.r]
    chain = rnn.backward["BPTT"].steps[0].rhs
    uses = [term for term in sp.Add.make_args(chain)]
    assert len(uses) == 2
    for use in uses:
        (local,) = [f for f in use.function.args if isinstance(f, sp.Derivative)
                    and f.variables == (target,)]
        assert all(line in doc for line in show(local).splitlines())
    short = RENDER[fmt](d, steps=False)
    assert sentence not in short
    for name in rnn.backward:  # the results stay
        assert _contains(short, _shown(fmt_, notation, *_vectorised(d, name), d.arch)), name


@pytest.mark.parametrize("spec,loss,l2", NETS)
@pytest.mark.parametrize("notation", NOTATIONS)
def test_results_come_in_the_order_to_compute_them(spec, loss, l2, notation):
    """The head's error, then dH_t and dZ_t backward in time, then the sums over the steps."""
    d = _derive(spec, loss, l2, notation)
    sec = recurrent_sections(d)
    assert sec.head.lhs == _rnn(d).symbols["dA"]
    assert [type(r.rhs).__name__ for r in sec.recursion] == ["BackThroughTime", "Map"]
    assert [type(r.rhs.node if isinstance(r.rhs, Scaled) else r.rhs.args[0].node).__name__
            for r in sec.sums] == ["StepOuter", "StepOuter", "StepSum"]
    doc = latex_document(d)
    results = doc[doc.index(r"\subsection*{The recurrent layer, backward in time}"):]
    positions = [results.index(latex(r.lhs, notation, textbook=True))
                 for r in (sec.head, *sec.recursion, *sec.sums)]
    assert positions == sorted(positions)


def _expected_rows(arch, notation, fmt):
    """layer -> the shape cells its dimensions row must show, in order: the rnn layer's H (and
    Z), W, U, b; a dense layer's A, W, b; from arch.shapes() and the spec's numbers."""
    x = " × " if fmt == "text" else r" \times "
    shapes = arch.shapes()
    T, n = shapes[0]
    H = shapes[1][0]
    rows = {0: [x.join(["m", str(T), str(n)])],
            1: [x.join(["m", str(T), str(H)]), x.join([str(H), str(n)]),
                x.join([str(H), str(H)]), str(H)]}
    columns = (f"{T}⋅m" if fmt == "text" else f"{T} m") if arch.every_step else "m"
    for label in arch.dense_labels:
        size, prev = shapes[label][0], shapes[label - 1][0]
        A = [str(size), columns] if notation == "ng" else [columns, str(size)]
        W = (size, prev) if notation == "ng" else (prev, size)
        b = (size, 1) if notation == "ng" else (1, size)
        rows[label] = [x.join(A), x.join(map(str, W)), x.join(map(str, b))]
    return rows


def _dimension_rows(doc, fmt) -> dict:
    if fmt == "text":
        block = doc[doc.index("Dimensions:\n"):doc.index("The recurrent layer's row")]
        pattern = r"^  (\d+)  (.*)$"
    elif fmt == "markdown":
        block = doc[doc.index("## Dimensions"):doc.index("The recurrent layer's row")]
        pattern = r"^\| \$`(\d+)`\$ \| (.*)$"
    else:
        block = doc[doc.index(r"\subsection*{Dimensions}"):doc.index(r"\end{tabular}")]
        pattern = r"^\$(\d+)\$ & (.*)$"
    return {int(m.group(1)): m.group(2) for m in re.finditer(pattern, block, re.MULTILINE)}


@pytest.mark.parametrize("spec,loss,l2", NETS)
@pytest.mark.parametrize("notation", NOTATIONS)
@pytest.mark.parametrize("fmt", ["text", "latex", "markdown"])
def test_dimensions_table_shows_every_layer_in_the_numbers_of_the_architecture(
        spec, loss, l2, notation, fmt):
    arch = _arch(spec, loss, l2)
    doc = RENDER[fmt](derive(arch, notation))
    rows = _dimension_rows(doc, fmt)
    assert sorted(rows) == list(range(arch.depth + 1))
    for label, cells in _expected_rows(arch, notation, fmt).items():
        row, at = rows[label], 0
        for cell in cells:  # in the table's column order
            found = row.find(cell, at)
            assert found >= 0, (label, cell, row)
            at = found + len(cell)


# --- the diagram ------------------------------------------------------------------------------

def _drawn_steps(T):
    """The time steps a picture of T steps draws: all of them, or the first two and the last."""
    return list(range(T)) if T <= 4 else [0, 1, T - 1]


@pytest.mark.parametrize("spec,loss,l2", NETS)
@pytest.mark.parametrize("notation", NOTATIONS)
def test_latex_diagram_unrolls_the_network_in_time(spec, loss, l2, notation):
    arch = _arch(spec, loss, l2)
    d = derive(arch, notation)
    doc = latex_document(d, standalone=True)
    picture = doc[doc.index(r"\begin{tikzpicture}"):doc.index(r"\end{tikzpicture}")]
    s = _rnn(d).symbols
    T = arch.sequence[0]
    drawn = _drawn_steps(T)
    for step in drawn:  # each drawn step: its input below its hidden state
        assert f"{{${latex(AtStep(s['H'], step), notation)}$}}" in picture
        assert f"{{${latex(AtStep(d.X, step), notation)}$}}" in picture
    assert picture.count("state]") == len(drawn)
    assert (r"$\cdots$" in picture) == (T > 4)
    # x_t -> H_t for each step, H -> H from the state before the first one and across the
    # dots, H_t -> the head where the head reads the state.
    heads = len(drawn) if arch.every_step else 1
    arrows = picture.count(r"\draw[->")
    assert arrows == 2 * len(drawn) + (T > 4) + heads
    assert picture.count(f"{{${latex(s['U'], notation)}$}}") == len(drawn) + (T > 4)
    out = d.output.A
    for step in drawn if arch.every_step else []:
        assert f"{{${latex(StepColumns(out, step), notation)}$}}" in picture
    if not arch.every_step:
        assert f"{{${latex(out, notation)}$}}" in picture
    assert "tikzpicture" not in latex_document(d, standalone=True, diagram=False)
    assert "tikz" not in latex_document(d, standalone=True, diagram=False)


@pytest.mark.parametrize("spec,loss,l2", NETS)
@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_text_diagram_is_the_chain_and_the_network_unrolled(spec, loss, l2, fmt):
    arch = _arch(spec, loss, l2)
    d = derive(arch)
    doc = RENDER[fmt](d)
    s = _rnn(d).symbols
    drawn = _drawn_steps(arch.sequence[0])
    states = [pretty(AtStep(s["H"], step)) for step in drawn]
    line = next(x for x in doc.splitlines() if states[0] in x and " → " in x)
    assert line.strip().startswith("0 → ")
    assert [x for x in re.split(r"\s*→\s*", line.strip()) if x != "…"][1:] == states
    assert ("…" in line) == (arch.sequence[0] > 4)
    inputs = next(x for x in doc.splitlines() if pretty(AtStep(d.X, 0)) in x and "→" not in x
                  and "=" not in x)
    assert inputs.split() == [pretty(AtStep(d.X, step)) for step in drawn]
    if fmt == "text":  # and the chain of shapes on one line
        chain = next(x for x in doc.splitlines() if x.strip().startswith(
            "×".join(map(str, arch.shapes()[0])) + " → "))
        assert chain.strip().split(" → ")[::2] == ["×".join(map(str, x)) for x in arch.shapes()]
    assert "Diagram" in doc and "Diagram" not in RENDER[fmt](d, diagram=False)


# --- the derived boundary ---------------------------------------------------------------------

def test_the_boundary_prints_as_the_derived_condition_exactly():
    """[τ + 1 ≤ T − 1] is the range condition the engine derived, point for point."""
    d = derive(_arch(*NETS[0]))
    entry = _rnn(d).backward["BPTT"].entry_rhs
    (piecewise,) = [e for e in entry.atoms(sp.Piecewise) if range_piecewise(e)]
    cond = piecewise.args[0].cond
    (chain,) = range_chains(cond)
    assert chain == (N.tau + 1, N.T - 1)
    for T, tau in product(range(1, 6), range(7)):
        point = {N.T: T, N.tau: tau}
        assert bool(cond.xreplace(point)) == bool(chain[0].xreplace(point)
                                                  <= chain[1].xreplace(point))


@pytest.mark.parametrize("notation", NOTATIONS)
def test_a_range_that_bounds_no_summed_index_goes_in_front_of_the_sum(notation):
    d = derive(_arch(*NETS[0]), notation)
    entry = _rnn(d).backward["BPTT"].entry_rhs
    shown = latex(entry, notation, textbook=True)
    assert shown.startswith(r"[\tau + 1 \leq T - 1] \, \sum_{j=0}^{n_{1} - 1}")
    assert r"\substack" not in shown
    assert pretty(entry, notation).startswith("[τ + 1 ≤ T - 1] Σ[j=0..n₁ - 1] ")
    assert "[tau + 1 ≤ T - 1] Σ[j=0..n_1 - 1]" in linear(entry)


# --- the printers, one node at a time ---------------------------------------------------------

def _symbols(spec="seq3x2-rnn2-1"):
    return _rnn(derive(parse_arch(spec))).symbols


def test_printers_of_each_recurrent_operation():
    s = _symbols()
    W, X, U, H, b, dZ, dA = (s[k] for k in ("W", "A_prev", "U", "H", "b", "dZ", "dA"))
    m = N.m
    cases = [  # node, LaTeX (ng, rowvec), text (ng, rowvec), one line
        (Recurrence(W, X, U, H, b),
         (r"W^{[1]} \, A_{t}^{[0]} + U^{[1]} \, H_{t - 1}^{[1]} + b^{[1]} \, \mathbf{1}_{m}^{\top}",
          r"A_{0,t} \, W_{1}^{\top} + H_{1,t - 1} \, U_{1}^{\top} + \mathbf{1}_{m} \, b_{1}^{\top}"),
         ("W[1] A[0]_t + U[1] H[1]_{t - 1} + b[1] 1ᵀ", "A_{0,t} W_1ᵀ + H_{1,t - 1} U_1ᵀ + 1 b_1ᵀ"),
         "W[1] A[0]_t + U[1] H[1]_{t - 1} + b[1] 1ᵀ"),
        (LastStep(H), (r"H_{T - 1}^{[1]}", r"H_{1,T - 1}"), ("H[1]_{T - 1}", "H_{1,T - 1}"),
         "H[1]_{T - 1}"),
        (EveryStep(H), (r"H_{t}^{[1]}", r"H_{1,t}"), ("H[1]_t", "H_{1,t}"),
         "H[1]_t at columns T k + t"),
        (BackThroughTime(U, dZ, dA, False),
         (r"[t + 1 \leq T - 1] \, U^{[1]\top} \, dZ_{t + 1}^{[1]} + [t = T - 1] \, dA^{[1]}",
          r"[t + 1 \leq T - 1] \, \delta_{1,t + 1} \, U_{1} + [t = T - 1] \, \delta^{A}_{1}"),
         ("[t + 1 ≤ T - 1] U[1]ᵀ dZ[1]_{t + 1} + [t = T - 1] dA[1]",
          "[t + 1 ≤ T - 1] δ_{1,t + 1} U_1 + [t = T - 1] δA_1"),
         "[t + 1 ≤ T - 1] U[1]ᵀ dZ[1]_{t + 1} + [t = T - 1] dA[1]"),
        (BackThroughTime(U, dZ, dA, True),
         (r"[t + 1 \leq T - 1] \, U^{[1]\top} \, dZ_{t + 1}^{[1]} + dA_{\langle t \rangle}^{[1]}",
          r"[t + 1 \leq T - 1] \, \delta_{1,t + 1} \, U_{1} + \delta^{A}_{1,\langle t \rangle}"),
         ("[t + 1 ≤ T - 1] U[1]ᵀ dZ[1]_{t + 1} + dA[1]⟨t⟩",
          "[t + 1 ≤ T - 1] δ_{1,t + 1} U_1 + δA_1⟨t⟩"),
         "[t + 1 ≤ T - 1] U[1]ᵀ dZ[1]_{t + 1} + dA[1]⟨t⟩"),
        (StepOuter(dZ, X, 0),
         (r"\sum_{t} dZ_{t}^{[1]} \, A_{t}^{[0]\top}", r"\sum_{t} \delta_{1,t}^{\top} \, A_{0,t}"),
         ("Σ_t dZ[1]_t A[0]_tᵀ", "Σ_t δ_{1,t}ᵀ A_{0,t}"), "Σ_t dZ[1]_t A[0]_tᵀ"),
        (StepOuter(dZ, H, 1),
         (r"\sum_{t} dZ_{t}^{[1]} \, H_{t - 1}^{[1]\top}",
          r"\sum_{t} \delta_{1,t}^{\top} \, H_{1,t - 1}"),
         ("Σ_t dZ[1]_t H[1]_{t - 1}ᵀ", "Σ_t δ_{1,t}ᵀ H_{1,t - 1}"), "Σ_t dZ[1]_t H[1]_{t - 1}ᵀ"),
        (StepSum(dZ), (r"\sum_{t} dZ_{t}^{[1]} \, \mathbf{1}_{m}",
                       r"\sum_{t} \delta_{1,t}^{\top} \, \mathbf{1}_{m}"),
         ("Σ_t dZ[1]_t 1", "Σ_t δ_{1,t}ᵀ 1"), "Σ_t dZ[1]_t 1"),
    ]
    for node, tex, txt, line in cases:
        for notation, want_tex, want_text in zip(NOTATIONS, tex, txt):
            assert latex(node, notation) == want_tex
            assert pretty(node, notation) == want_text
        assert str(node) == linear(node) == line  # Node.__str__ is the one-line printer
    scaled = Scaled(1 / m, StepOuter(dZ, H, 1))
    assert latex(scaled) == r"\frac{1}{m} \, \sum_{t} dZ_{t}^{[1]} \, H_{t - 1}^{[1]\top}"
    assert str(scaled) == "(1/m) Σ_t dZ[1]_t H[1]_{t - 1}ᵀ"


def test_names_of_the_recurrent_arrays_in_each_notation():
    s = _symbols()
    assert latex(s["dH"]) == "dH^{[1]}" and latex(s["dH"], "rowvec") == r"\delta^{H}_{1}"
    assert latex(s["dU"], "rowvec") == r"\frac{\partial C}{\partial U_{1}}"
    assert pretty(s["dU"], "rowvec") == "∂C/∂U_1" and pretty(s["dH"], "rowvec") == "δH_1"
    assert latex(AtStep(s["H"], -1)) == "H_{-1}^{[1]}"
    assert latex(StepColumns(s["A"], N.t), "rowvec") == r"A_{1,\langle t \rangle}"


# --- the whole document -----------------------------------------------------------------------

@pytest.mark.parametrize("notation", NOTATIONS)
def test_markdown_math_is_delimited_for_mathjax(notation):
    for spec, loss, l2 in NETS:
        doc = markdown_document(_derive(spec, loss, l2, notation))
        assert doc.count("\n$$\n") % 2 == 0
        for block in re.findall(r"\n\$\$\n(.*?)\n\$\$\n", doc, flags=re.DOTALL):
            assert r"\intertext" not in block and r"\label" not in block
            assert len(re.findall(r"\\left[(\[]", block)) == \
                len(re.findall(r"\\right[)\]]", block))
            if r"\\" in block:  # a line break only inside an environment that has lines
                assert r"\begin{aligned}" in block
        for line in doc.splitlines():
            if line != "$$":
                assert line.count("$") % 2 == 0, line
        assert "tikz" not in doc


@pytest.mark.parametrize("notation", NOTATIONS)
@pytest.mark.parametrize("spec,loss,l2", NETS)
def test_standalone_compiles_without_errors_or_overfull_lines(tmp_path, spec, loss, l2,
                                                               notation):
    (tmp_path / "d.tex").write_text(latex_document(_derive(spec, loss, l2, notation),
                                                   standalone=True), encoding="utf-8")
    log = _pdflatex(tmp_path, "d.tex")
    assert "Overfull" not in log
    warnings = [line for line in log.splitlines() if "Warning" in line
                and "Label(s) may have changed" not in line]
    assert not warnings, warnings


@pytest.mark.parametrize("notation", NOTATIONS)
@pytest.mark.parametrize("spec,loss,l2", NETS)
def test_fragment_compiles_inside_a_paper_without_overfull_lines(tmp_path, spec, loss, l2,
                                                                  notation):
    (tmp_path / "bp.tex").write_text(latex_document(_derive(spec, loss, l2, notation),
                                                    label_prefix="bp"), encoding="utf-8")
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n"
        "\\usepackage{tikz}\n\\begin{document}\n\\section{Backpropagation}\n"
        "As \\eqref{bp:BP1}--\\eqref{bp:BP4} show,\n\\input{bp}\n\\end{document}\n",
        encoding="utf-8")
    _pdflatex(tmp_path, "paper.tex")
    log = _pdflatex(tmp_path, "paper.tex")
    assert "undefined" not in log and "Overfull" not in log


def _cli(*args, seed):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True,
                          env=env, check=False)


@pytest.mark.parametrize("spec", ["seq3x2-rnn2:tanh-1", "seq6x2-rnn3:sigmoid:all-2:sigmoid"])
@pytest.mark.parametrize("fmt", ["text", "markdown", "latex"])
def test_output_is_the_same_bytes_every_time(spec, fmt):
    args = ("derive", spec, "--format", fmt, "--notation", "rowvec" if fmt == "text" else "ng")
    first, second = _cli(*args, seed="1"), _cli(*args, seed="2")
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout == second.stdout and first.stdout


def test_derive_command_writes_every_format_of_a_recurrent_network(tmp_path):
    for spec in ("seq3x2-rnn2-1", "seq3x2-rnn2:relu:all-2:softmax"):
        for name, fmt in (("d.tex", "latex"), ("d.md", "markdown"), ("d.txt", "text")):
            target = tmp_path / name
            result = _cli("derive", spec, "--loss", "cross_entropy" if "softmax" in spec
                          else "half_sse", "-o", str(target), "--force", seed="0")
            assert result.returncode == 0, result.stderr.decode()
            body = target.read_text(encoding="utf-8")
            assert ("tikzpicture" in body) == (fmt == "latex")
            assert "BPTT" in body
