"""Text for terminals: SymPy's pretty printer with the derivation's nodes."""
from __future__ import annotations

import pytest
import sympy as sp

from symbackprop import naming as N
from symbackprop.engine import derive
from symbackprop.matrices import Elementwise
from symbackprop.printing.pretty import equation, pretty
from symbackprop.printing.text import derivation_text
from symbackprop.spec import parse_arch

m = N.m
A1 = N.matrix("A", 1, N.units(1), m)
dZ2 = N.matrix("dZ", 2, N.units(2), m)
W2 = N.matrix("W", 2, N.units(2), N.units(1))


def test_pretty_nodes():
    assert pretty(A1.T) == "A[1]ᵀ"
    assert pretty(W2.T * dZ2) == "W[2]ᵀ dZ[2]"
    assert pretty(sp.MatMul(1 / m, sp.MatMul(dZ2, A1.T))) == "1            \n─ dZ[2] A[1]ᵀ\nm            "
    assert pretty(sp.KroneckerDelta(N.i, N.k)) == "δ_ik"
    assert pretty(sp.KroneckerDelta(N.i, N.k), "rowvec") == "[i=k]"
    assert pretty(dZ2, "rowvec") == "δ_2"
    # A sum with its limits, 0-based; a sum of negative terms with its minus in front.
    assert pretty(sp.Sum(dZ2[N.r, N.i], (N.i, 0, m - 1))) == "Σ[i=0..m - 1] dZ[2]_ri"
    assert pretty(sp.Sum(-dZ2[N.r, N.i], (N.i, 0, m - 1))) == "-Σ[i=0..m - 1] dZ[2]_ri"


def test_pretty_hadamard():
    a, da = sp.Symbol("A[1]"), sp.Symbol("dA[1]")
    e = Elementwise(sp.Lambda((a, da), a * (1 - a) * da), A1, W2.T * dZ2)
    assert pretty(e) == "(W[2]ᵀ dZ[2]) ⊙ A[1] ⊙ (1 - A[1])"


def test_equation_is_one_picture():
    assert equation(dZ2, W2) == "dZ[2] = W[2]"


def test_text_document_of_2_3_1():
    text = derivation_text(derive(parse_arch("2-3-1")))
    assert "    dZ[1] = (W[2]ᵀ dZ[2]) ⊙ A[1] ⊙ (1 - A[1])" in text
    assert "  A[1] = sigmoid(Z[1])" in text
    assert "(By (R5), summing over the Kronecker deltas)" in text
    assert "(R5) A sum over a Kronecker delta keeps the matching index alone" in text
    assert "  W[l] ← W[l] - α dW[l]" in text
    short = derivation_text(derive(parse_arch("2-3-1")), steps=False)
    assert "by the chain rule" not in short and "dZ[1] = (W[2]ᵀ dZ[2])" in short


def test_rowvec_text_names_the_loss_of_an_example_as_the_documents_do():
    from symbackprop import derive, parse_arch
    from symbackprop.printing.text import derivation_text

    text = derivation_text(derive(parse_arch("2-3-1"), "rowvec"))
    cost = text[text.index("Cost:"):text.index("Dimensions:")]
    assert "C_i" in cost and "L_i" not in cost


def test_a_sum_after_a_coefficient_keeps_its_parentheses():
    """1/m (A[2]_rk - Y_rk), not 1/m A[2]_rk - Y_rk (which reads as A/m - Y)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "symbackprop", "derive", "2-3-1", "--loss",
                          "half_sse"], capture_output=True, text=True, check=True).stdout
    assert "─ (A[2]_rk - Y_rk)" in out
    assert "─ A[2]_rk - Y_rk" not in out
    mse = subprocess.run([sys.executable, "-m", "symbackprop", "derive", "2-3-1", "--loss",
                          "mse"], capture_output=True, text=True, check=True).stdout
    assert "(A[2]_rk - Y_rk)" in mse


def test_text_documents_have_no_trailing_spaces():
    import subprocess
    import sys

    for spec in ("2-3-1", "1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid"):
        out = subprocess.run([sys.executable, "-m", "symbackprop", "derive", spec],
                             capture_output=True, text=True, check=True).stdout
        assert all(line == line.rstrip() for line in out.splitlines())


# Networks of every kind, in both notations: the golden text derivations' and more.
WRAPPED = [("64-32:relu-10:softmax", "cross_entropy", "ng"),
           ("3-4:gelu-2:identity", "huber", "rowvec"),
           ("1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax", "cross_entropy", "ng"),
           ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", "rowvec"),
           ("seq3x2-rnn2:tanh-1", "half_sse", "rowvec"),
           ("seq8x8-rnn4:tanh:all-3:softmax", "cross_entropy", "ng")]


@pytest.mark.parametrize("spec,loss,notation", WRAPPED)
def test_every_line_fits_the_width(spec, loss, notation):
    """Derivation.to_text(width=w): at widths 60 and 100 no line is wider than w (prose
    wrapped, equations broken across lines, a table too wide a row a paragraph), unless it
    is one token with no place to break; the text does differ from the unbroken one."""
    d = derive(parse_arch(spec, loss), notation)
    unbroken = derivation_text(d, width=10_000)
    assert max(len(line) for line in unbroken.splitlines()) > 100
    for width in (60, 100):
        text = d.to_text(width=width)
        assert text == derivation_text(d, width=width)
        wide = [line for line in text.splitlines() if len(line) > width]
        assert all(len(line.split()) == 1 for line in wide), (width, wide[:3])
        assert text != unbroken


def test_to_text_is_80_wide_when_not_writing_to_a_terminal():
    d = derive(parse_arch("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse"))
    assert d.to_text() == derivation_text(d, width=80)  # pytest's output is no terminal


def test_a_broken_equation_keeps_every_character_and_breaks_outside_groups():
    """Breaking a picture only moves its parts: the same characters, no line over the width,
    a continuation under the right side; never inside an entry's indices or a sum's
    limits."""
    from collections import Counter

    d = derive(parse_arch("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse"))
    layer = d.features[0]
    for eq in layer.backward.values():
        for step in eq.steps:
            whole = equation(step.lhs, step.rhs)
            for width in (60, 80):
                lines = equation(step.lhs, step.rhs, width=width).splitlines()
                assert Counter(whole.replace(" ", "").replace("\n", "")) == \
                    Counter("".join(lines).replace(" ", ""))
                assert all(len(line) <= width for line in lines), lines
                for line in lines:  # brackets balanced on every line of every part
                    assert line.count("[") == line.count("]"), line
            if max(map(len, whole.splitlines())) > 70:
                assert len(equation(step.lhs, step.rhs, width=70).splitlines()) > \
                    len(whole.splitlines())


def _run_in_terminal(columns, *args) -> str:
    """``symbackprop ARGS`` with its standard output a terminal ``columns`` wide."""
    import fcntl
    import os
    import pty
    import struct
    import sys
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal's size first, then the command
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        os.execve(sys.executable, [sys.executable, "-m", "symbackprop", *args], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return out.decode("utf-8").replace("\r\n", "\n")


def test_the_command_wraps_to_the_terminal_and_to_80_when_not_one():
    import subprocess
    import sys

    args = ("derive", "64-32:relu-10:softmax", "--loss", "cross_entropy")
    d = derive(parse_arch("64-32:relu-10:softmax", "cross_entropy"))
    piped = subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True,
                           text=True, check=True).stdout
    assert piped == derivation_text(d, width=80)
    assert _run_in_terminal(60, *args) == derivation_text(d, width=60)
