"""The Python API reads and displays as the command line writes: documents from a Derivation,
explain and example as functions, equations and reports that print as mathematics."""
from __future__ import annotations

import subprocess
import sys

import pytest
import sympy as sp

import symbackprop as sb


def cli(*args):
    result = subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True,
                            text=True, check=True)
    return result.stdout


NETS = [("2-3-1", "half_sse"), ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse")]


@pytest.mark.parametrize("spec,loss", NETS)
def test_derivation_documents_are_the_commands(spec, loss):
    d = sb.derive(sb.parse_arch(spec, loss))
    base = ["derive", spec, "--loss", loss]
    assert d.to_text() == cli(*base)
    assert d.to_markdown() == cli(*base, "--format", "markdown")
    assert d.to_latex() == cli(*base, "--format", "latex")
    assert d.to_latex(standalone=True) == cli(*base, "--format", "latex", "--standalone")
    assert d.to_text(steps=False) == cli(*base, "--no-steps")
    assert d.to_text(notation="rowvec") == cli(*base, "--notation", "rowvec")


def test_equations_print_as_mathematics():
    d = sb.derive(sb.parse_arch("2-3-1"))
    eq = d.output.backward["output"]
    assert "Elementwise" not in str(eq.rhs) and "Lambda" not in str(eq.rhs)
    assert str(eq.rhs) == "A[2] ⊙ (1 - A[2]) ⊙ (A[2] - Y)"
    assert "Elementwise" not in sp.latex(eq.rhs) and r"\odot" in sp.latex(eq.rhs)
    assert eq._repr_latex_() == f"$${eq.to_latex()}$$"
    assert eq.to_latex().startswith("dZ^{[2]} = ")
    conv = sb.derive(sb.parse_arch("1x4x4-conv2k3-flatten-2:softmax", "cross_entropy"))
    bp3 = conv.features[0].backward["BP3"].rhs
    assert r"\operatorname{rot180}" in sp.latex(bp3) and "rot180" in str(bp3)


def test_explain_and_example_are_functions_with_documents():
    e = sb.explain("2-3-1", "W2[0,1]")
    assert e.to_text() == cli("explain", "2-3-1", "--param", "W2[0,1]")
    assert e.to_latex() == cli("explain", "2-3-1", "--param", "W2[0,1]", "--format", "latex")
    assert e._repr_markdown_() == e.to_markdown()
    w = sb.example("2-3-1", x="1, 2; 0, 1", y="1; 0", init=0, lr="0.1")
    args = ["example", "2-3-1", "--x", "1, 2; 0, 1", "--y", "1; 0", "--init", "0", "--lr", "0.1"]
    assert w.to_text() == cli(*args)
    assert w.to_markdown() == cli(*args, "--format", "markdown")
    weights = {"W1": [[1, 0], [0, 1], [1, 1]], "b1": [0, 0, 0], "W2": [[1, -1, 1]], "b2": [0]}
    given = sb.example("2-3-1", x="1, 2", y="1", weights=weights)
    assert "given" in given.to_text() or "W[1]" in given.to_text()


def test_verify_report_reads_in_one_line_and_in_markdown():
    report = sb.verify(sb.parse_arch("2-3-1"))
    assert repr(report).startswith("<VerifyReport PROVEN: 2-3-1 loss half_sse")
    assert len(repr(report)) < 200
    assert report._repr_markdown_().startswith("**PROVEN**: 2-3-1")
