"""Writing results: stdout, or a file written atomically that is never overwritten unasked."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .errors import SymbackpropError


class OutputError(SymbackpropError):
    """An output file cannot or may not be written."""


def write_output(text: str, path: str | os.PathLike | None = None, force: bool = False) -> None:
    """Print ``text``, or write it to ``path``: refused if it exists unless ``force``; atomic."""
    if path is None or str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"output path {str(target)!r} is a directory; give a file name")
    if target.exists() and not force:
        raise OutputError(f"{str(target)!r} exists; pass --force to overwrite it")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write {str(target)!r}: folder {str(folder)!r} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
