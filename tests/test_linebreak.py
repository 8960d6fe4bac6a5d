"""Line breaking of displayed equations: the width estimate against TeX's own measure, and
the breaks (where they fall, that undoing them gives the row back, that every line fits)."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from symbackprop import derive, parse_arch
from symbackprop.printing import document as D
from symbackprop.printing.linebreak import (
    CONTINUATION,
    _candidates,
    break_display,
    joined,
    parse,
    width,
)

NETS = [("2-3-1", "half_sse"), ("3-4:tanh-4:tanh-2:sigmoid", "bce"),
        ("3-4:gelu-2:identity", "huber"), ("64-32:relu-10:softmax", "cross_entropy"),
        ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse"),
        ("2x5x5-conv2k3:relu-maxpool2s1-flatten-3:softmax", "cross_entropy"),
        ("seq3x2-rnn2:tanh-1", "half_sse"), ("seq4x2-rnn3:relu:all-2:softmax", "cross_entropy")]


def _printed_rows():
    """Every (left side, right side) the LaTeX documents of NETS print, both notations."""
    rows = []
    real = D._Formatter.rows

    def spy(self, rs, *args, **kw):
        out = real(self, rs, *args, **kw)
        rows.extend((r["lhs"], r["rhs"]) for r in out)
        return out
    D._Formatter.rows = spy
    try:
        for spec, loss in NETS:
            for notation in ("ng", "rowvec"):
                D.latex_document(derive(parse_arch(spec, loss), notation))
    finally:
        D._Formatter.rows = real
    return rows


def _tex_widths(pieces) -> list[float]:
    """TeX's natural width of each piece of display math (pt), from one pdflatex run."""
    import tempfile
    from pathlib import Path

    assert shutil.which("pdflatex"), "pdflatex is needed (see scripts/test)"
    body = "\n".join(rf"\setbox0\hbox{{$\displaystyle {p}$}}\typeout{{WIDTH {n} \the\wd0}}"
                     for n, p in enumerate(pieces))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "m.tex").write_text("\\documentclass{article}\n\\usepackage{amsmath}\n"
                                      "\\usepackage{amssymb}\n\\begin{document}\n" + body
                                      + "\n\\end{document}\n", encoding="utf-8")
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "m.tex"], cwd=folder,
                       capture_output=True, timeout=300, check=False)
        log = (folder / "m.log").read_text(encoding="latin-1")
    found = {int(n): float(w) for n, w in re.findall(r"WIDTH (\d+) ([\d.]+)pt", log)}
    assert len(found) == len(pieces), "pdflatex failed on a piece"
    return [found[n] for n in range(len(pieces))]


def test_width_estimate_is_never_narrower_than_tex_and_close_to_it():
    """Every line the documents print, measured by TeX: the estimate is at least TeX's
    width (so a line the estimate fits, fits) and at most a quarter more."""
    pieces = sorted({line for lhs, rhs in _printed_rows() for line in (lhs, *rhs.split(
        CONTINUATION)) if line and r"\\ &" not in line})
    assert len(pieces) > 300
    ratios = [(width(p) / w, p) for p, w in zip(pieces, _tex_widths(pieces)) if w > 0]
    low, high = min(ratios), max(ratios)
    assert low[0] >= 1.0, low
    assert high[0] <= 1.3, high


@pytest.mark.parametrize("budget", [120.0, 180.0, 260.0])
def test_breaks_undo_to_the_row_and_every_line_fits(budget):
    for _, rhs in _printed_rows():
        row = joined(rhs)
        broken = break_display(row, budget)
        assert joined(broken) == row
        lines = re.split(r" \\\\ &(?:\\quad )?", broken)
        for n, line in enumerate(lines):
            lead = "{}= " if n == 0 else r"{}\quad "
            # A line wider than the budget has no place to break (one wide piece).
            if width(lead + line) > budget:
                assert not _candidates(line, parse(line, flat=True)), line


def test_breaks_fall_before_an_operator_at_the_outer_level_first():
    tex = r"a + (b + c + d) + \frac{1}{m} \, x \, y - z"
    assert break_display(tex, 60) .split(CONTINUATION)[1].startswith(("+", "-"))
    assert break_display(tex, 1000) == tex
    # Inside sized parentheses a break closes and reopens them, each half as tall.
    sized = r"\left(\frac{a}{b} + \frac{c}{d} + \frac{e}{f} + \frac{g}{h}\right)"
    broken = break_display(sized, 60)
    assert r"\right." in broken and r"\left." in broken and r"\vphantom{" in broken
    assert joined(broken) == sized
    # A relation continues under the first one: a chain a = b = c.
    chain = (r"\left\lfloor \frac{n + 2 p - f}{s} \right\rfloor + 1 = "
             r"\left\lfloor \frac{8 + 2 \cdot 1 - 3}{1} \right\rfloor + 1 = 8")
    assert r" \\ &= " in break_display(chain, 120)
