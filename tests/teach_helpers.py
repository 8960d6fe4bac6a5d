"""Reading numbers back from the text that ``symbackprop example`` prints."""
from __future__ import annotations

import re
from fractions import Fraction

_ROW = re.compile(r"\[ ([-0-9./e+ ]+) \]")


def number(text: str) -> Fraction:
    return Fraction(text)


def block(text: str, lhs: str, after: str | None = None) -> list[str]:
    """The lines of the equation whose left-hand side is ``lhs`` (after the heading ``after``)."""
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(n for n, line in enumerate(lines) if line.startswith(after))
    for n in range(start, len(lines)):
        stripped = lines[n].lstrip()
        if stripped.startswith(lhs + " "):
            indent = len(lines[n]) - len(stripped)
            out = [lines[n]]
            for line in lines[n + 1:]:
                if not line.strip() or len(line) - len(line.lstrip()) <= indent:
                    break
                out.append(line)
            return out
    raise AssertionError(f"no equation for {lhs!r} in the output")


def matrix(text: str, lhs: str, after: str | None = None) -> list[list[Fraction]]:
    """The matrix printed as the value of ``lhs`` (its last ``[ ... ]`` rows)."""
    rows = [_ROW.findall(line) for line in block(text, lhs, after)]
    rows = [found[-1] for found in rows if found]
    assert rows, f"no matrix printed for {lhs!r}"
    return [[number(x) for x in row.split()] for row in rows]


def scalar(text: str, lhs: str, after: str | None = None) -> Fraction:
    line = " ".join(block(text, lhs, after))
    return number(re.split(r" [=≈] ", line)[-1].strip())
