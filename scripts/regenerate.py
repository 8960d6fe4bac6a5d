"""Regenerate the golden files in generated/ on purpose: ``python scripts/regenerate.py``.

Each folder under generated/ has a COMMANDS file, one golden file a line::

    FILE: symbackprop ARGS...

The drift test (tests/test_golden.py) runs the same commands and compares byte for byte.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"


def golden_entries():
    """(folder, file name, argv after 'symbackprop') for every line of every COMMANDS file."""
    for commands in sorted(GENERATED.glob("*/COMMANDS")):
        for line in commands.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, command = line.partition(":")
            argv = shlex.split(command)
            if argv[:1] != ["symbackprop"]:
                raise SystemExit(f"{commands}: line must read 'FILE: symbackprop ...': {line}")
            yield commands.parent, name.strip(), argv[1:]


def produce(folder: Path, argv: list[str]) -> bytes:
    """Run one golden command (in ``folder``, so relative inputs resolve) and return stdout."""
    result = subprocess.run([sys.executable, "-m", "symbackprop", *argv], cwd=folder,
                            capture_output=True, env=_env(), check=False)
    if result.returncode != 0:
        raise RuntimeError(f"symbackprop {' '.join(argv)} failed: {result.stderr.decode()}")
    return result.stdout


def _env():
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def main() -> int:
    for folder, name, argv in golden_entries():
        (folder / name).write_bytes(produce(folder, argv))
        print(f"wrote {(folder / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
