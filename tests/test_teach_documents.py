"""The documents of ``explain`` and ``example`` as a paper uses them: LaTeX a fragment to
\\input by default or a document of its own (--standalone), headings at the paper's level
(--heading), fragments of several networks in one paper; a worked step of a 2-2-1 network on two
pages; every matrix of numbers in one representation (decimals or fractions, never both); sums
over one value written as their term, a sum over paths aligned one path a line; a range of time
steps read with T filled in."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import symbackprop
from symbackprop.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "generated" / "teaching"
PDFLATEX = shutil.which("pdflatex")
needs_tex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed "
                               "(scripts/test installs it)")

EXPLAIN = {
    "dense": ["explain", "2-3-2-1", "--param", "W1[0,1]"],
    "image": ["explain", "1x3x3-conv1k2:relu-flatten-1:sigmoid", "--loss", "bce",
              "--param", "W1[0,0,0,0]"],
    "rnn": ["explain", "seq3x2-rnn2:tanh-1:sigmoid", "--loss", "bce", "--param", "U1[0,1]"],
}
EXAMPLE = {
    "dense": ["example", "2-2-1", "--init", "0", "--x", "0.5, 1; 1, 2; 0, -1; 2, 0.5",
              "--y", "1; 0; 1; 0"],
    "image": ["example", "1x3x3-conv1k2:relu-flatten-1:sigmoid", "--loss", "bce", "--init", "0",
              "--x", "1, 2, 0, -1, 0.5, 1, 0, 1, -2", "--y", "1"],
    "rnn": ["example", "seq2x2-rnn2:tanh-2:sigmoid", "--loss", "bce", "--init", "1",
            "--x", "1, -1, 0.5, 2", "--y", "1, 0"],
}
DOCUMENTS = {f"{command} {kind}": argv for command, table in (("explain", EXPLAIN),
                                                               ("example", EXAMPLE))
             for kind, argv in table.items()}


def produce(capsys, argv, *more):
    code = main([*argv, *more])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _pdflatex(folder: Path, name: str) -> str:
    for _ in range(2):  # again for the references
        result = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", name],
                                cwd=folder, capture_output=True, text=True, timeout=120,
                                check=False)
        log = (folder / name).with_suffix(".log").read_text(encoding="latin-1")
        assert result.returncode == 0, log[-3000:]
    return log


def _pages(log: str) -> int:
    return int(re.search(r"Output written on \S+ \((\d+) pages?", log).group(1))


# --- fragment or document, and headings -------------------------------------------------------

@pytest.mark.parametrize("name", DOCUMENTS)
def test_latex_is_a_fragment_unless_standalone(capsys, name):
    argv = DOCUMENTS[name]
    fragment = produce(capsys, argv, "--format", "latex")
    standalone = produce(capsys, argv, "--format", "latex", "--standalone")
    assert r"\documentclass" not in fragment and r"\begin{document}" not in fragment
    head = fragment.splitlines()[:5]
    assert head[0].startswith("% ") and "written by symbackprop" in head[0]
    assert r"%   \usepackage{amsmath}" in head and r"%   \usepackage{amssymb}" in head
    assert re.search(r"^\\section\{", fragment, re.MULTILINE)  # the paper numbers it
    assert standalone.startswith(r"\documentclass") and \
        standalone.rstrip().endswith(r"\end{document}")
    assert re.search(r"^\\section\*\{", standalone, re.MULTILINE)
    # the same body in both
    body = re.sub(r"^\\section\*?", "", standalone.split(r"\begin{document}")[1], flags=re.MULTILINE)
    assert re.sub(r"^\\section\*?", "", fragment, flags=re.MULTILINE).count(r"\begin{align*}") == \
        body.count(r"\begin{align*}")


@pytest.mark.parametrize("name", ["explain dense", "example image", "explain rnn"])
def test_headings_take_the_papers_level(capsys, name):
    argv = DOCUMENTS[name]
    sub = produce(capsys, argv, "--format", "latex", "--heading", "subsection")
    none = produce(capsys, argv, "--format", "latex", "--heading", "none")
    assert re.search(r"^\\subsection\{", sub, re.MULTILINE) and "\\section" not in sub
    assert "\\subsubsection*{" in sub  # its parts one level below
    assert "\\section" not in none and "\\subsection" not in none
    assert "\\paragraph" in none
    md = produce(capsys, argv, "--format", "markdown")
    md_sub = produce(capsys, argv, "--format", "markdown", "--heading", "subsection")
    md_none = produce(capsys, argv, "--format", "markdown", "--heading", "none")
    assert md.startswith("# ") and re.search(r"^## ", md, re.MULTILINE)
    assert md_sub.startswith("## ") and re.search(r"^### ", md_sub, re.MULTILINE)
    assert not re.search(r"^#{1,3} ", md_none, re.MULTILINE) and re.search(r"^#### ", md_none, re.MULTILINE)


@pytest.mark.parametrize("args,message", [
    (["--standalone"], "--standalone applies to --format latex only"),
    (["--format", "markdown", "--standalone"], "--standalone applies to --format latex only"),
    (["--heading", "none"], "--heading applies to --format latex and --format markdown only"),
])
def test_document_options_outside_their_format_are_refused(capsys, args, message):
    for argv in (EXPLAIN["dense"], EXAMPLE["dense"]):
        assert main([*argv, *args]) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1 and message in err


def test_the_python_api_writes_the_same_documents(capsys):
    explained = symbackprop.explain("2-3-2-1", "W1[0,1]")
    worked = symbackprop.example("2-2-1", "0.5, 1; 1, 2; 0, -1; 2, 0.5", "1; 0; 1; 0", init=0)
    for result, argv in ((explained, EXPLAIN["dense"]), (worked, EXAMPLE["dense"])):
        assert result.to_latex() == produce(capsys, argv, "--format", "latex")
        assert result.to_latex(standalone=True, heading="subsection") == \
            produce(capsys, argv, "--format", "latex", "--standalone", "--heading", "subsection")
        assert result.to_markdown(heading="none") == \
            produce(capsys, argv, "--format", "markdown", "--heading", "none")


@needs_tex
def test_fragments_of_several_networks_share_one_paper(tmp_path, capsys):
    """Every explanation and worked example above \\input into one article: it compiles, each
    takes the paper's next section number, no line is overfull."""
    inputs = []
    for n, argv in enumerate(DOCUMENTS.values()):
        (tmp_path / f"part{n}.tex").write_text(produce(capsys, argv, "--format", "latex"),
                                               encoding="utf-8")
        inputs.append(f"\\input{{part{n}}}")
    (tmp_path / "paper.tex").write_text(
        "\\documentclass[11pt]{article}\n\\usepackage[margin=2.5cm]{geometry}\n"
        "\\usepackage{amsmath}\n\\usepackage{amssymb}\n\\begin{document}\n"
        "\\section{Introduction}\nText.\n" + "\n".join(inputs) + "\n\\end{document}\n",
        encoding="utf-8")
    log = _pdflatex(tmp_path, "paper.tex")
    assert "Overfull" not in log and "multiply defined" not in log and "undefined" not in log
    assert _pages(log) >= len(DOCUMENTS)


# --- a worked step on two pages ------------------------------------------------------------

@needs_tex
def test_a_worked_step_of_a_2_2_1_network_fits_on_two_pages(tmp_path, capsys):
    (tmp_path / "doc.tex").write_text(
        produce(capsys, EXAMPLE["dense"], "--format", "latex", "--standalone"), encoding="utf-8")
    log = _pdflatex(tmp_path, "doc.tex")
    assert _pages(log) <= 2, _pages(log)
    assert "Overfull" not in log


@needs_tex
def test_a_matrix_of_many_samples_fits_the_line(tmp_path, capsys):
    """8 samples: the matrices of 8 columns are set smaller, no line overfull."""
    x = "0.5, 1; 1, 2; 0, -1; 2, 0.5; 1, 1; -1, 2; 0.5, 0.5; 2, 2"
    tex = produce(capsys, ["example", "2-2-1", "--init", "0", "--x", x, "--y",
                           "; ".join(["1", "0"] * 4)], "--format", "latex", "--standalone")
    assert r"\scriptstyle" in tex
    (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
    assert "Overfull" not in _pdflatex(tmp_path, "doc.tex")


# --- one representation per matrix ----------------------------------------------------------

FRACTION = re.compile(r"\\tfrac|(?<![\w.])-?\d+/\d+")
DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+")


def text_matrices(text: str):
    """The matrices of a text document, as their entries: a line with a [ ... ] block after
    other text starts one, a line with only spaces before its block continues it."""
    matrices = []
    for line in text.splitlines():
        match = re.search(r"\[ ([^\[\]]*) \]", line)
        if not match:
            continue
        if line[:match.start()].strip() or not matrices:
            matrices.append(match.group(1))
        else:
            matrices[-1] += " " + match.group(1)
    return matrices


def tex_matrices(text: str):
    return re.findall(r"\\begin\{array\}\{r+\}(.*?)\\end\{array\}", text, flags=re.DOTALL)


def _mixed(matrices) -> list:
    return [m for m in matrices if FRACTION.search(m) and DECIMAL.search(m)]


def _fraction_cases():
    """Worked steps whose exact values need fractions (a learning rate of 1/3, inputs of
    1/3) beside ones that are not rational (sigmoid)."""
    return [
        ["example", "2-2:relu-2:identity", "--loss", "mse", "--init", "2", "--x",
         "0.5, -1; 1, 2", "--y", "1, 0; 0, 1", "--lr", "1/3"],
        ["example", "2-2:relu-1:sigmoid", "--loss", "bce", "--init", "1", "--x",
         "1/3, 2; 1, 1/7", "--y", "1; 0", "--lr", "1/3"],
        ["example", "seq2x1-rnn2:relu-1:identity", "--loss", "mse", "--init", "3", "--x",
         "1/3, 2; 0.5, 1", "--y", "1; 0", "--lr", "1/6"],
    ]


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("example_*")))
def test_golden_examples_print_each_matrix_one_way(name):
    text = (GOLDEN / name).read_text(encoding="utf-8")
    matrices = text_matrices(text) if name.endswith(".txt") else tex_matrices(text)
    assert matrices
    assert not _mixed(matrices), _mixed(matrices)[:3]


def test_the_golden_examples_hold_fractions_and_decimals():
    """The golden files include matrices of fractions and matrices of decimals, so the test
    above can fail."""
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in GOLDEN.glob("example_*")]
    found = [m for name, t in texts
             for m in (text_matrices(t) if name.endswith(".txt") else tex_matrices(t))]
    assert any(FRACTION.search(m) for m in found) and any(DECIMAL.search(m) for m in found)


@pytest.mark.parametrize("argv", _fraction_cases(), ids=lambda a: a[1])
def test_worked_steps_print_each_matrix_one_way(capsys, argv):
    text = produce(capsys, argv)
    latex = produce(capsys, argv, "--format", "latex")
    markdown = produce(capsys, argv, "--format", "markdown")
    assert any(FRACTION.search(m) for m in text_matrices(text))  # the case needs fractions
    for matrices in (text_matrices(text), tex_matrices(latex), tex_matrices(markdown)):
        assert matrices and not _mixed(matrices), _mixed(matrices)[:3]


# --- sums in explanations -----------------------------------------------------------------

EXPLAINED = [*EXPLAIN.values(),
             ["explain", "3-4:tanh-1:sigmoid", "--loss", "bce", "--param", "b1[2]"],
             ["explain", "2-3:tanh-3:softmax", "--loss", "cross_entropy", "--param", "W1[0,1]"]]


@pytest.mark.parametrize("argv", EXPLAINED, ids=lambda a: a[1])
def test_explanations_write_a_sum_over_one_value_as_its_term(capsys, argv):
    text = produce(capsys, argv)
    latex = produce(capsys, argv, "--format", "latex")
    markdown = produce(capsys, argv, "--format", "markdown")
    assert not re.search(r"Σ\[\w+=(\d+)\.\.\1\]", text), text
    assert "runs over 0..0" not in text
    for tex in (latex, markdown):
        assert not re.search(r"\\sum_\{[^{}=]+=(\d+)\}\^\{\1\}", tex)
        assert r"0, \dots, 0$" not in tex


@pytest.mark.parametrize("argv", EXPLAINED[:3], ids=lambda a: a[1])
def test_a_sum_over_paths_is_aligned_one_path_a_line(capsys, argv):
    text = produce(capsys, argv)
    paths = int(re.search(r"Paths from .* to L: (\d+)", text).group(1))
    markdown = produce(capsys, argv, "--format", "markdown")
    latex = produce(capsys, argv, "--format", "latex")
    if paths > 20:
        return  # not written out
    block = re.search(r"\\begin\{aligned\}\n\\frac\{\\partial L\}(.*?)\\end\{aligned\}",
                      markdown, flags=re.DOTALL).group(1)
    assert block.count(r"&\quad + ") == paths - 1 and block.count("&= ") == 1
    part = latex.split("The sum over paths", 1)[1]
    first = part[:part.index("\\end{") + 12]  # the part's first display
    if "\\begin{align*}" in first:  # each path fits a line: aligned on = and +
        assert first.count(r"&\quad + ") == paths - 1 and first.count("&= ") == 1
    else:  # long paths: lines that break, one path each
        assert "\\begin{quote}" in first and first.count("{}+{}") == paths - 1


def test_a_range_of_time_steps_reads_with_T_filled_in(capsys):
    """BPTT's [τ + 1 ≤ T − 1] for T = 3 reads [τ ≤ 1], not [1 - τ >= 0]."""
    argv = ["explain", "seq3x2-rnn3:tanh-2:sigmoid", "--loss", "bce", "--param", "U1[0,1]"]
    text = produce(capsys, argv)
    latex = produce(capsys, argv, "--format", "latex")
    bptt = next(line for line in text.splitlines() if "[BPTT]" in line and "τ,r]" in line)
    assert "[τ ≤ 1]" in bptt and ">=" not in bptt, bptt
    assert r"[\tau \leq 1]" in latex and ">=" not in latex and r"\geq 0" not in latex
    golden = (GOLDEN / "explain_seq3x2-rnn3-tanh-2-sigmoid_bce_U1-0-1.txt").read_text()
    assert ">=" not in golden
