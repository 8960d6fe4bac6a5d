"""The Markdown and LaTeX of ``explain`` and ``example``: LaTeX compiles, Markdown is balanced."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from symbackprop.cli import main

PDFLATEX = shutil.which("pdflatex")

EXPLAIN = [
    ["explain", "2-3-2-1", "--param", "W1[0,1]"],
    ["explain", "2-3:tanh-3:softmax", "--loss", "cross_entropy", "--param", "b1[2]"],
    ["explain", "3-6-5-4-2", "--param", "W1[0,2]"],  # more paths than are shown
    ["explain", "2-2:relu-2:identity", "--loss", "mse", "--param", "W2[1,0]"],
    ["explain", "2-2:elu-2:identity", "--loss", "huber", "--param", "W1[1,0]", "--l2", "0.1"],
    ["explain", "2-2:swish-1:identity", "--activation", "swish=z*sigmoid(z)", "--param", "b1[0]",
     "--l2", "0.5"],
]
EXAMPLE = [
    ["example", "2-3-1", "--init", "3", "--x", "0.5, 1; 1, 2; 0, 0", "--y", "1; 0; 1"],
    ["example", "2-2:relu-2:identity", "--loss", "mse", "--init", "2", "--x", "0.5, -1",
     "--y", "1, 0", "--lr", "1/3"],
    ["example", "2-3:tanh-3:softmax", "--loss", "cross_entropy", "--init", "4",
     "--x", "1, 2; -1, 0.5", "--y", "0, 1, 0; 1, 0, 0", "--digits", "4"],
    ["example", "2-2:relu-2:identity", "--loss", "mse", "--init", "2", "--x", "0.5, -1; 1, 2",
     "--y", "1, 0; 0, 1", "--l2", "0.1"],
    ["example", "2-2:swish-2:identity", "--activation", "swish=z*sigmoid(z)", "--loss",
     "pseudo_huber=sqrt(1 + (a - y)**2) - 1", "--init", "1", "--x", "1, 2", "--y", "0.5, -1",
     "--l2", "0.2"],
]
CASES = EXPLAIN + EXAMPLE
IDS = [" ".join(argv[:3]) + (" --l2" if "--l2" in argv else "") for argv in CASES]


def produce(capsys, argv, fmt, *more):
    assert main([*argv, "--format", fmt, *more]) == 0
    return capsys.readouterr().out


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (scripts/test installs it)")
@pytest.mark.parametrize("argv", CASES, ids=IDS)
def test_latex_compiles(tmp_path, capsys, argv):
    tex = produce(capsys, argv, "latex", "--standalone")
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
    result = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "Undefined control sequence" not in log and "Missing $" not in log
    assert "Overfull" not in log, [line for line in log.splitlines() if "Overfull" in line]


@pytest.mark.parametrize("argv", CASES, ids=IDS)
def test_markdown_is_well_formed(capsys, argv):
    md = produce(capsys, argv, "markdown")
    assert md.startswith("# ")
    assert md.count("$$") % 2 == 0 and md.count("$$") >= 4
    outside_display = re.sub(r"\$\$.*?\$\$", "", md, flags=re.DOTALL)
    for line in outside_display.splitlines():
        assert line.count("$") % 2 == 0, f"unbalanced inline math: {line!r}"
        assert "\\begin" not in line
    for block in re.findall(r"\$\$(.*?)\$\$", md, flags=re.DOTALL):
        assert block.count("{") == block.count("}"), block
        opened = len(re.findall(r"\\left(?![a-z])", block))
        assert opened == len(re.findall(r"\\right(?![a-z])", block)), block
        assert "\n\n" not in block.strip(), "a blank line inside display math ends it"
    assert "```" not in md


@pytest.mark.parametrize("argv", CASES, ids=IDS)
def test_formats_carry_the_same_numbers(capsys, argv):
    text = produce(capsys, argv, "text")
    latex = produce(capsys, argv, "latex")
    markdown = produce(capsys, argv, "markdown")
    # the LaTeX and the Markdown math are the same; every plain number of the text is in both
    assert re.findall(r"\$\$(.*?)\$\$", markdown, flags=re.DOTALL)
    numbers = set(re.findall(r"(?<![\w\[.])-?\d+\.\d+(?!\w)", text))
    for number in numbers:
        assert number in latex and number in markdown, number
