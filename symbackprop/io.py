"""Writing results: stdout, or a file written atomically that is never overwritten unasked."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .errors import SymbackpropError


class OutputError(SymbackpropError):
    """An output file cannot or may not be written."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_stdout(text: str) -> None:
    """Print ``text``; a closed or full standard output is an OutputError naming it."""
    if sys.stdout is None:
        raise OutputError("standard output is closed; write to a file with -o FILE")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:
        _silence_stdout()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OutputError(f"cannot write to standard output: {reason}; write to a file with "
                          "-o FILE") from None


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush of what is
    still buffered does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def write_output(text: str, path: str | os.PathLike | None = None, force: bool = False) -> None:
    """Print ``text``, or write it to ``path``: refused if it exists unless ``force``; atomic.

    A regular file is replaced atomically (a temporary file in its folder, then a rename),
    with the user's umask (0644 under umask 022) or, with ``force``, the mode of the file it
    replaces. A symlink is written through (its target is replaced, the link kept); a dangling
    one counts as existing. A character device or FIFO (``/dev/stdout``) is written through,
    never replaced.
    """
    if path is None or str(path) == "-":
        write_stdout(text)
        return
    target = Path(path)
    special = target.exists() and not target.is_file() and not target.is_dir()
    if target.is_symlink() and not special:
        if not force:
            what = "a symlink" if target.exists() else "a dangling symlink"
            raise OutputError(f"{str(target)!r} is {what}; pass --force to write through it")
        target = target.resolve()
    if target.is_dir():
        raise OutputError(f"output path {str(target)!r} is a directory; give a file name")
    if special:  # a device or a FIFO (/dev/stdout, /dev/null): written through, never replaced
        try:
            with open(target, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        except OSError as exc:
            raise OutputError(f"cannot write {str(target)!r}: {exc.strerror}") from None
        return
    if target.exists() and not force:
        raise OutputError(f"{str(target)!r} exists; pass --force to overwrite it")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write {str(target)!r}: folder {str(folder)!r} does not exist")
    mode = (target.stat().st_mode & 0o7777) if target.exists() else (0o666 & ~_umask())
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sbp-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
