"""The LaTeX printer node by node (exact strings), and the documents: content, compilation."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from symbackprop import naming as N
from symbackprop.engine import derive
from symbackprop.matrices import Elementwise
from symbackprop.printing.document import latex_document, specialised
from symbackprop.printing.latex import latex
from symbackprop.spec import parse_arch

ROOT = Path(__file__).resolve().parent.parent
m, n1, n2 = N.m, N.units(1), N.units(2)
W2 = N.matrix("W", 2, n2, n1)
A1 = N.matrix("A", 1, n1, N.m)
A2 = N.matrix("A", 2, n2, N.m)
dZ2 = N.matrix("dZ", 2, n2, N.m)
Wl = N.matrix("W", "l", N.units("l"), N.units("l-1"))
Y = sp.MatrixSymbol("Y", n2, N.m)
r, s, i, k = N.r, N.s, N.i, N.k

# The networks the issue names, in both notations.
NETWORKS = [("2-3-1", "half_sse"), ("3-1:relu-2:relu", "mse"),
            ("64-32:relu-10:softmax", "cross_entropy"),
            ("3-4:tanh-4:tanh-4:tanh-2:sigmoid", "bce")]
CASES = [(spec, loss, notation) for spec, loss in NETWORKS for notation in ("ng", "rowvec")]


def doc(spec, loss, notation="ng", **kw):
    return latex_document(derive(parse_arch(spec, loss), notation), **kw)


# --- the printer, one node at a time ------------------------------------------------------

def test_matrix_symbol_has_its_layer_as_superscript():
    assert latex(W2) == "W^{[2]}"
    assert latex(N.matrix("A", "l-1", 2, 2)) == "A^{[l-1]}"
    assert latex(dZ2) == "dZ^{[2]}"
    assert latex(Y) == "Y"


def test_matrix_symbol_in_row_notation():
    assert latex(W2, "rowvec") == "W_{2}"
    assert latex(dZ2, "rowvec") == r"\delta_{2}"
    assert latex(N.matrix("dA", 1, 2, 2), "rowvec") == r"\delta^{A}_{1}"
    assert latex(N.matrix("dW", 2, 2, 2), "rowvec") == r"\frac{\partial C}{\partial W_{2}}"


def test_transpose():
    assert latex(A1.T) == r"A^{[1]\top}"
    assert latex(W2.T, "rowvec") == r"W_{2}^{\top}"
    assert latex(sp.Transpose(W2 * A1)) == r"\left(W^{[2]} \, A^{[1]}\right)^{\top}"


def test_ones():
    assert latex(sp.OneMatrix(m, 1)) == r"\mathbf{1}_{m}"
    assert latex(sp.OneMatrix(1, m)) == r"\mathbf{1}_{m}^{\top}"
    assert latex(sp.OneMatrix(n2, n2)) == r"\mathbf{1}_{n_{2}}\mathbf{1}_{n_{2}}^{\top}"


def test_matmul_puts_one_over_m_in_front():
    assert latex(sp.MatMul(1 / m, sp.MatMul(dZ2, A1.T))) == r"\frac{1}{m} \, dZ^{[2]} \, A^{[1]\top}"
    assert latex(W2.T * dZ2) == r"W^{[2]\top} \, dZ^{[2]}"


def test_hadamard_product_of_an_elementwise_map():
    a, dz = sp.Symbol("A[2]"), sp.Symbol("dZ[2]")
    e = Elementwise(sp.Lambda((a, dz), a * (1 - a) * dz), A2, dZ2)
    assert latex(e) == r"dZ^{[2]} \odot A^{[2]} \odot \left(1 - A^{[2]}\right)"


def test_elementwise_binding_a_product_is_parenthesised_and_first():
    a, da = sp.Symbol("A[1]"), sp.Symbol("dA[1]")
    e = Elementwise(sp.Lambda((a, da), a * (1 - a) * da), A1, W2.T * dZ2)
    assert latex(e) == (r"\left(W^{[2]\top} \, dZ^{[2]}\right) \odot A^{[1]} \odot "
                        r"\left(1 - A^{[1]}\right)")


def test_elementwise_quotient_and_power():
    a, y = sp.Symbol("A[2]"), sp.Symbol("Y")
    assert latex(Elementwise(sp.Lambda((a, y), -y / a), A2, Y)) == r"-\frac{Y}{A^{[2]}}"
    assert latex(Elementwise(sp.Lambda((a,), 1 - a**2), A2)) == \
        r"1 - \left(A^{[2]}\right)^{\odot 2}"


def test_matrix_element_subscripts():
    assert latex(dZ2[r, i]) == "dZ_{ri}^{[2]}"
    assert latex(N.matrix("b", 2, n2, 1)[r, 0]) == "b_{r}^{[2]}"
    assert latex(dZ2[i, r], "rowvec") == r"\delta_{2,ir}"


def test_kronecker_delta():
    assert latex(sp.KroneckerDelta(i, k)) == r"\delta_{ik}"
    assert latex(sp.KroneckerDelta(i, k), "rowvec") == "[i = k]"


def test_derivative_is_partial():
    assert latex(sp.Derivative(N.J, Wl[r, s])) == r"\frac{\partial J}{\partial W_{rs}^{[l]}}"
    assert latex(sp.Derivative(N.J, Wl[s, r]), "rowvec") == \
        r"\frac{\partial C}{\partial W_{l,sr}}"
    g, x = sp.Function("g"), sp.Symbol("x")
    assert latex(sp.Derivative(g(x), x)) == "g'(x)"


def test_sum_over_examples_with_one_over_m_in_front():
    dZl = N.matrix("dZ", "l", N.units("l"), m)
    assert latex(sp.Sum(dZl[r, i], (i, 0, m - 1)) / m) == r"\frac{1}{m} \sum_{i} dZ_{ri}^{[l]}"


def test_sum_orders_a_matrix_product():
    t = N.t
    assert latex(sp.Sum(A1[t, k] * W2[r, t], (t, 0, n1 - 1))) == \
        r"\sum_{t} W_{rt}^{[2]} \, A_{tk}^{[1]}"


def test_indicator_is_an_iverson_bracket():
    z = sp.Symbol("z")
    assert latex(sp.Piecewise((1, z > 0), (0, True))) == "[z > 0]"


def test_loss_of_one_example():
    assert latex(N.L[i]) == r"\mathcal{L}^{(i)}"
    assert latex(N.L[i], "rowvec") == "C_{i}"


# --- the document -------------------------------------------------------------------------

def test_specialised_equations_of_2_3_1():
    text = doc("2-3-1", "half_sse")
    # Plain parentheses where sized ones would only add size.
    assert r"dZ^{[2]} &= (A^{[2]} - Y) \odot A^{[2]} \odot (1 - A^{[2]})" in text
    assert r"dZ^{[1]} &= (W^{[2]\top} \, dZ^{[2]}) \odot A^{[1]} \odot (1 - A^{[1]})" in text
    assert r"W^{[l]} &\leftarrow W^{[l]} - \alpha \, dW^{[l]}" in text


def test_specialised_hidden_error_is_bp4_with_bp3_substituted():
    d = derive(parse_arch("2-3-1"))
    blocks = specialised(d)
    assert [b.title for b in blocks] == ["2", "1"]  # output layer first
    dZ1 = blocks[1].rows[0].rhs
    assert not dZ1.has(d.layer(1).dA) and dZ1.has(d.layer(2).W) and dZ1.has(d.layer(2).dZ)


def test_document_order_and_labels():
    text = doc("2-3-1", "half_sse", standalone=True)
    heads = [r"\subsection*{The network}", r"\subsection*{Dimensions}", r"\begin{figure}",
             r"\subsection*{BP1--BP4 by the chain rule}", r"\subsection*{The four equations}",
             r"\subsection*{This network, layer by layer}", r"\subsection*{Gradient descent}"]
    positions = [text.index(h) for h in heads]
    assert positions == sorted(positions)
    labels = [text.index(rf"\tag{{BP{n}}}\label{{") for n in range(1, 5)]
    assert labels == sorted(labels)
    assert r"A^{[1]} &= \sigma(Z^{[1]})" in text
    assert "half the sum of squared errors" in text


def test_real_activation_and_loss_names():
    text = doc("64-32:relu-10:softmax", "cross_entropy")
    assert r"A^{[1]} &= \operatorname{ReLU}(Z^{[1]})" in text
    assert r"A^{[2]} &= \operatorname{softmax}(Z^{[2]})" in text
    assert r"\operatorname{softmax}(z)_{c} &= \frac{e^{z_{c}}}{\sum_{j=0}^{n - 1} e^{z_{j}}}" in text
    assert r"dZ^{[2]} &= A^{[2]} - Y" in text
    assert "cross-entropy loss" in text


def test_dimensions_table_has_concrete_shapes():
    text = doc("64-32:relu-10:softmax", "cross_entropy")
    assert r"$1$ & $32$ & $\operatorname{ReLU}$ & $32 \times m$ & $32 \times 64$ & $32 \times 1$ \\" in text
    rows = doc("64-32:relu-10:softmax", "cross_entropy", notation="rowvec")
    assert r"$1$ & $32$ & $\operatorname{ReLU}$ & $m \times 32$ & $64 \times 32$ & $1 \times 32$ \\" in rows


def test_wide_layers_are_elided_with_their_size():
    text = doc("784-128:relu-10:softmax", "cross_entropy")
    assert r"n_{0} = 784" in text and r"n_{1} = 128" in text and r"n_{2} = 10" in text
    assert text.count(r"\vdots") == 3
    # HEAD + TAIL neurons drawn for each elided layer: 3 and 3 and 3, 9 + 9 edges.
    from symbackprop.printing.diagram import HEAD, TAIL

    drawn = HEAD + TAIL
    assert text.count(r"\node[neuron]") == 3 * drawn
    assert text.count(r"\draw[edge]") == 2 * drawn * drawn
    assert r"W^{[1]}$ \\ $128 \times 784" in text


def test_narrow_layers_are_drawn_in_full():
    text = doc("3-4:tanh-4:tanh-4:tanh-2:sigmoid", "bce")
    assert r"\vdots" not in text
    assert text.count(r"\node[neuron]") == 3 + 4 + 4 + 4 + 2


def test_rowvec_uses_delta_notation_throughout():
    text = doc("2-3-1", "half_sse", notation="rowvec")
    assert "[2]" not in text and "dZ" not in text
    assert r"Z_{1} &= A_{0} \, W_{1} + \mathbf{1}_{m} \, b_{1}" in text
    assert r"\delta^{A}_{l-1} &= \delta_{l} \, W_{l}^{\top}" in text
    assert r"\frac{\partial C}{\partial W_{l}} &= \frac{1}{m} \, A_{l-1}^{\top} \, \delta_{l}" in text
    assert r"\delta_{1} &= (\delta_{2} \, W_{2}^{\top}) \odot A_{1} \odot (1 - A_{1})" in text
    assert r"W_{1}$ \\ $2 \times 3" in text  # the diagram labels W_l as n_{l-1} x n_l


def test_steps_name_their_rules_and_no_steps_drops_them():
    text = doc("2-3-1", "half_sse")
    assert r"\intertext{\small By (R5), summing over the Kronecker deltas:}" in text
    assert r"\item[(R5)] A sum over a Kronecker delta keeps the matching index alone: " \
        r"$\sum_{j} \delta_{jr} \, x_{j} = x_{r}$." in text
    short = doc("2-3-1", "half_sse", steps=False)
    assert "By (R1), the chain rule" not in short and "BP1--BP4 by the chain rule" not in short
    assert r"\tag{BP4}\label{" in short


def test_no_diagram():
    assert "tikzpicture" not in doc("2-3-1", "half_sse", diagram=False)
    assert "tikzpicture" in doc("2-3-1", "half_sse")


def test_fragment_lists_its_packages_and_is_not_a_document():
    text = doc("2-3-1", "half_sse")
    assert r"\documentclass" not in text and r"\begin{document}" not in text
    head = text.splitlines()[:6]
    for package in ("amsmath", "amssymb", "tikz"):
        assert rf"%   \usepackage{{{package}}}" in head


def test_output_is_deterministic():
    assert doc("2-3-1", "half_sse", standalone=True) == doc("2-3-1", "half_sse", standalone=True)


# --- compiling ----------------------------------------------------------------------------

def _pdflatex(folder: Path, name: str) -> str:
    assert shutil.which("pdflatex"), "pdflatex is needed: apt-get install texlive-latex-base " \
        "texlive-pictures (see scripts/test)"
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


@pytest.mark.parametrize("spec,loss,notation", CASES)
def test_standalone_compiles_without_errors_or_overfull_lines(tmp_path, spec, loss, notation):
    (tmp_path / "d.tex").write_text(doc(spec, loss, notation, standalone=True), encoding="utf-8")
    log = _pdflatex(tmp_path, "d.tex")
    assert "Overfull" not in log
    warnings = [line for line in log.splitlines() if "Warning" in line
                and "Label(s) may have changed" not in line]  # a first run always says this
    assert not warnings, warnings


@pytest.mark.parametrize("notation", ["ng", "rowvec"])
def test_fragment_compiles_inside_a_paper(tmp_path, notation):
    (tmp_path / "bp.tex").write_text(doc("3-4:tanh-4:tanh-4:tanh-2:sigmoid", "bce", notation,
                                         label_prefix="bp"), encoding="utf-8")
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n"
        "\\usepackage{tikz}\n\\begin{document}\n\\section{Backpropagation}\n"
        "As equations \\eqref{bp:BP1}--\\eqref{bp:BP4} show,\n\\input{bp}\n\\end{document}\n",
        encoding="utf-8")
    _pdflatex(tmp_path, "paper.tex")
    log = _pdflatex(tmp_path, "paper.tex")  # second run resolves the references
    assert "undefined" not in log


# --- the command line ---------------------------------------------------------------------

def _cli(*args, cwd=None):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, check=False)


def test_cli_unknown_format_and_notation_list_the_choices():
    bad = _cli("derive", "2-3-1", "--format", "pdf")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "'text', 'latex', 'markdown'" in bad.stderr
    bad = _cli("derive", "2-3-1", "--notation", "colvec")
    assert bad.returncode == 2 and "'ng', 'rowvec'" in bad.stderr


def test_cli_unwritable_output_names_the_path(tmp_path):
    target = tmp_path / "missing" / "bp.tex"
    bad = _cli("derive", "2-3-1", "--format", "latex", "-o", str(target))
    assert bad.returncode == 2 and str(target) in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_cli_writes_refuses_to_overwrite_and_forces(tmp_path):
    target = tmp_path / "bp.tex"
    assert _cli("derive", "2-3-1", "--format", "latex", "--standalone", "-o",
                str(target)).returncode == 0
    assert target.read_text(encoding="utf-8") == doc("2-3-1", "half_sse", standalone=True)
    again = _cli("derive", "2-3-1", "--format", "latex", "-o", str(target))
    assert again.returncode == 2 and "--force" in again.stderr
    assert target.read_text(encoding="utf-8").startswith(r"\documentclass")
    assert _cli("derive", "2-3-1", "--format", "latex", "-o", str(target),
                "--force").returncode == 0
    assert not target.read_text(encoding="utf-8").startswith(r"\documentclass")


@pytest.mark.parametrize("spec", ["2-3-1", "1x4x4-conv2k3-maxpool2-flatten-2"])
def test_no_diagram_needs_no_tikz(tmp_path, spec):
    d = derive(parse_arch(spec))
    with_diagram = latex_document(d, standalone=True)
    without = latex_document(d, standalone=True, diagram=False)
    assert r"\usepackage{tikz}" in with_diagram and "tikz" not in without.lower()
    (tmp_path / "d.tex").write_text(without, encoding="utf-8")
    log = _pdflatex(tmp_path, "d.tex")
    assert "Overfull" not in log


# --- names in prose -----------------------------------------------------------------------

def _prose(text: str, fmt: str) -> str:
    """A document without its code: LaTeX comments and \\texttt, Markdown code spans and the
    Mermaid block, the text title's (identifier)."""
    import re

    if fmt == "latex":
        text = re.sub(r"\\texttt\{[^}]*\}", "", re.sub(r"(?m)^%.*$", "", text))
    elif fmt == "markdown":
        text = re.sub(r"```mermaid.*?```", "", re.sub(r"`[^`\n]*`", "", text), flags=re.DOTALL)
    else:
        text = re.sub(r"\((cross_entropy|leaky_relu)\)", "", text)
    return text


@pytest.mark.parametrize("fmt", ["latex", "markdown", "text"])
@pytest.mark.parametrize("spec", ["3-4:leaky_relu-3:softmax",
                                  "1x4x4-conv2k3:leaky_relu-flatten-3:softmax",
                                  "seq3x2-rnn2:leaky_relu-3:softmax"])
def test_prose_names_losses_and_activations_as_the_registry_does(spec, fmt):
    """cross-entropy and leaky ReLU (the entries' human names), not cross_entropy or
    leaky_relu; the identifier appears only as code (what --loss takes)."""
    from symbackprop.printing.text import derivation_text
    from symbackprop.registry import ACTIVATIONS, LOSSES

    d = derive(parse_arch(spec, "cross_entropy"))
    out = {"latex": latex_document, "markdown": lambda d: d.to_markdown(),
           "text": derivation_text}[fmt](d)
    prose = _prose(out, fmt).replace(d.arch.spec(), "")  # the spec is code
    assert "cross-entropy loss" in prose
    assert "cross_entropy" not in prose and "cross\\_entropy" not in prose
    assert "leaky_relu" not in prose and "leaky\\_relu" not in prose
    if fmt != "latex":  # LaTeX names the activation by its operator, LReLU
        assert "leaky ReLU" in prose
    if "x" in spec.split("-")[0]:  # a feature layer's title
        assert ", then leaky ReLU" in prose
    assert all("_" not in e.human_name for e in (*ACTIVATIONS.values(), *LOSSES.values()))


# --- the documents' textbook forms ------------------------------------------------------------

def test_textbook_forms_of_losses_and_their_errors():
    """-Σ_c y_c log a_c, not Σ_c -log(A) Y; BCE's dA as -Y ⊘ A + (1 - Y) ⊘ (1 - A); every
    sum with its limits (0-based, as the indices are); plain parentheses."""
    def tex(e, notation="ng"):
        return latex(e, notation, textbook=True)
    ce = derive(parse_arch("3-2:softmax", "cross_entropy"))
    assert tex(ce.loss_entry) == r"-\sum_{c=0}^{n_{1} - 1} Y_{ci} \, \log A_{ci}^{[1]}"
    bce = derive(parse_arch("3-2:sigmoid", "bce"))
    assert tex(bce.output.backward["loss"].rhs) == \
        r"-Y \oslash A^{[1]} + (1 - Y) \oslash (1 - A^{[1]})"
    assert tex(bce.output.backward["loss"].entry_rhs) == \
        r"-\frac{Y_{rk}}{A_{rk}^{[1]}} + \frac{1 - Y_{rk}}{1 - A_{rk}^{[1]}}"
    assert tex(bce.loss_entry) == (r"-\sum_{c=0}^{n_{1} - 1} (Y_{ci} \, \log A_{ci}^{[1]} + "
                                   r"(1 - Y_{ci}) \, \log(1 - A_{ci}^{[1]}))")
    # The sums of the chain rule, each index with its range.
    steps = ce.general.backward["BP1"].steps
    assert tex(steps[0].rhs).startswith(r"\sum_{j=0}^{n_{l} - 1} \sum_{i=0}^{m - 1} ")
    # Sized parentheses only around what is taller than a line.
    assert tex(sp.Sum(A1[r, i] / 2 + 1, (i, 0, m - 1))) == \
        r"\sum_{i=0}^{m - 1} \left(1 + \frac{1}{2} A_{ri}^{[1]}\right)"
    assert tex(sp.log(1 - A1[r, i])) == r"\log(1 - A_{ri}^{[1]})"
    # The printer the teaching documents share keeps its own forms.
    assert latex(ce.loss_entry) == r"\sum_{c} -\log{\left(A_{ci}^{[1]} \right)} \, Y_{ci}"


def test_cases_whose_row_starts_with_a_bracket_are_not_read_as_a_length():
    """In the row notation a Kronecker delta is [i = k]; a cases row starting with it after \\\\
    would be read as \\\\[length] by TeX (the Huber loss's derivative)."""
    from symbackprop.printing.latex import DerivationLatexPrinter

    x = sp.Symbol("x")
    cases = sp.Piecewise((x, x > 0), (sp.KroneckerDelta(i, k), True))
    for textbook in (False, True):
        shown = DerivationLatexPrinter({"notation": "rowvec", "textbook": textbook})._cases(cases)
        assert "{}[i = k]" in shown and r"\\[" not in shown


# --- captions: rules stated once, in mathematics ---------------------------------------------

CAPTION_NETS = [("64-32:relu-10:softmax", "cross_entropy", "ng"),
                ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", "rowvec"),
                ("seq3x2-rnn2:tanh:all-2:sigmoid", "bce", "ng")]


def _written(d, fmt):
    from symbackprop.printing.text import derivation_text

    return {"latex": lambda: latex_document(d), "markdown": d.to_markdown,
            "text": lambda: derivation_text(d)}[fmt]()


@pytest.mark.parametrize("fmt", ["latex", "markdown", "text"])
@pytest.mark.parametrize("spec,loss,notation", CAPTION_NETS)
def test_each_rule_is_stated_once_and_referred_to_by_its_number(spec, loss, notation, fmt):
    """The rules list states each rule the steps use once, the chain rule among them; a step
    names its rule by number, and every number it names is stated."""
    import re

    from symbackprop.printing.document import used_rules
    from symbackprop.printing.rules import RULES, numbered

    d = derive(parse_arch(spec, loss), notation)
    text = _written(d, fmt)
    numbers = numbered(used_rules(d, True))
    assert numbers["chain"] == 1 and len(numbers) >= 8
    label = {"latex": r"\item[(R{n})]", "markdown": "- **(R{n})**", "text": "  (R{n}) "}[fmt]
    for key, n in numbers.items():
        assert text.count(label.format(n=n)) == 1, key
    assert text.count("The chain rule:") == 1
    cited = {int(n) for n in re.findall(r"By \(R(\d+)\)", text)}
    assert cited == set(numbers.values())
    for key in numbers:  # a caption names the rule, and its statement is not repeated
        assert text.count(f"{RULES[key].name}") >= 1
    if fmt == "latex":
        assert r"\ensuremath" not in text  # captions and notes are typeset as mathematics


def test_forward_definitions_entry_by_entry_come_before_they_are_differentiated():
    text = doc("2-3-1", "half_sse", standalone=True)
    entry = text.index(r"Z_{rk}^{[l]} &= \sum_{t=0}^{n_{l-1} - 1} W_{rt}^{[l]} \, "
                       r"A_{tk}^{[l-1]} + b_{r}^{[l]}")
    assert entry < text.index(r"By (R3), the local derivative of $Z_{ji}^{[l]}$")
    assert entry > text.index(r"\subsection*{BP1--BP4 by the chain rule}")


def test_softmax_jacobian_step_is_explained_with_the_derived_jacobian():
    """The caption of BP4 through the softmax shows its Jacobian as derived; it is the
    softmax's Jacobian (compared with central differences at a random point)."""
    import random

    from symbackprop.printing.document import OUTPUT_BP4

    d = derive(parse_arch("3-3:softmax", "cross_entropy"))
    out = d.output
    pieces = OUTPUT_BP4[out.activation.elementwise](out)
    jacobian = next(p for p in pieces if isinstance(p, sp.Eq))
    text = latex_document(d)
    assert latex(jacobian.lhs, textbook=True) in text
    assert r"(\delta_{jr} - A_{ri}^{[1]})" in text
    rng = random.Random(7)
    z = [rng.uniform(-2, 2) for _ in range(3)]

    def softmax(values):
        e = [sp.exp(v) for v in values]
        return [x / sum(e) for x in e]
    a = softmax(z)
    A = out.A
    for j in range(3):
        for r_ in range(3):
            value = jacobian.rhs.xreplace({N.i: 0, N.k: 0, N.j: j, N.r: r_}).doit().xreplace(
                {A[q, 0]: a[q] for q in range(3)})
            h = 1e-6
            up, down = list(z), list(z)
            up[r_] += h
            down[r_] -= h
            numeric = (softmax(up)[j] - softmax(down)[j]) / (2 * h)
            assert abs(float(value) - float(numeric)) < 1e-6


def test_softmax_and_cross_entropy_lines_are_simplified():
    """(-Y ⊘ A) ⊙ A is -Y: the substituted line composes the maps (and means the same)."""
    from symbackprop.printing.document import compose_maps, output_rows

    d = derive(parse_arch("3-3:softmax", "cross_entropy"))
    rows = output_rows(d.output, True)
    substituted = next(r for r in rows if r.rule == "substitute").rhs
    text = latex_document(d)
    assert r"(\mathbf{1}_{n_{1}}\mathbf{1}_{n_{1}}^{\top} \, Y) \odot A^{[1]} - Y" in text
    assert r"\oslash A^{[1]}) \odot" not in text
    raw = d.output.backward["BP4"].rhs.xreplace({d.output.dA: d.output.backward["loss"].rhs})
    n1 = N.units(1)
    A = sp.Matrix(3, 2, lambda p, q: sp.Rational(p + 2 * q + 1, 10))
    Y = sp.Matrix(3, 2, lambda p, q: sp.Rational(3 * p + q + 1, 7))

    def value(e):
        e = e.xreplace({n1: 3, m: 2})
        e = e.xreplace({sp.MatrixSymbol(d.output.A.name, 3, 2): sp.ImmutableMatrix(A),
                        sp.MatrixSymbol(d.Y.name, 3, 2): sp.ImmutableMatrix(Y)})
        return sp.ImmutableMatrix(e.doit())
    assert value(substituted) == value(raw) == value(compose_maps(raw))


def test_every_rule_a_step_can_name_has_its_statement():
    """Every rule key a derivation's steps carry, over networks of every kind (dense, image,
    recurrent with the head at every step, a penalty, softmax with cross-entropy), and every
    rule a document names, is stated by the documents (printing.rules.RULES, the one place
    rules are written), in the order they are numbered in; and every stated rule is used."""
    from symbackprop.printing.document import used_rules
    from symbackprop.printing.rules import ORDER, RULES

    nets = [("64-32:relu-10:softmax", "cross_entropy", 0), ("2-3-1", "half_sse", "0.01"),
            ("2-3:tanh-1:sigmoid", "bce", 0),
            ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", "0.1"),
            ("seq3x2-rnn2:tanh:all-2:softmax", "cross_entropy", 0)]
    keys, named = set(), set()
    for spec, loss, l2 in nets:
        d = derive(parse_arch(spec, loss, l2=l2))
        equations = [eq for layer in (*d.layers, *d.features) for eq in
                     (*layer.backward.values(), *layer.forward)]
        keys |= {step.rule for eq in equations for step in eq.steps}
        named |= used_rules(d, True)
    assert keys <= set(RULES), keys - set(RULES)
    assert keys | named == set(RULES) == set(ORDER)
