"""The Jinja environments: configured once, here. Templates only fill in; decisions live in Python.

``templates/`` sits at the top of the source tree and is installed as ``symbackprop/templates``.
LaTeX templates use delimiters that do not fight TeX braces: ``((( var )))``,
``((* block *))``, ``((= comment =))``.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("symbackprop's templates folder is missing from this installation")


_COMMON = {"undefined": jinja2.StrictUndefined, "trim_blocks": True, "lstrip_blocks": True,
           "keep_trailing_newline": True, "autoescape": False}


@cache
def environment(kind: str = "code") -> jinja2.Environment:
    """``code`` (Python, Markdown, text) or ``latex`` (TeX-friendly delimiters)."""
    loader = jinja2.FileSystemLoader(str(templates_dir()))
    if kind == "latex":
        return jinja2.Environment(
            loader=loader, block_start_string="((*", block_end_string="*))",
            variable_start_string="(((", variable_end_string=")))",
            comment_start_string="((=", comment_end_string="=))", **_COMMON)
    if kind == "code":
        return jinja2.Environment(loader=loader, **_COMMON)
    raise ValueError(f"unknown template kind {kind!r} (known: code, latex)")


def render(name: str, kind: str = "code", **context) -> str:
    return environment(kind).get_template(name).render(**context)
