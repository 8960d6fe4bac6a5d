"""Output that cannot be written ends in one line and exit 2, and loses nothing: a full disk,
a closed standard output, a missing folder, a name that would shadow a module the trainer
imports. Each case runs the real command line in a fresh process (no traceback may reach the
user), and any file that was there is unchanged."""
from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [  # command line (after "symbackprop"), shell redirection, words of the message
    (["derive", "2-3-1"], "> /dev/full", "cannot write to standard output: No space left"),
    (["derive", "2-3-1", "--format", "latex"], "> /dev/full", "No space left on device"),
    (["generate", "2-3-1"], "> /dev/full", "No space left on device"),
    (["derive", "2-3-1"], ">&-", "standard output is closed"),
    (["generate", "2-3-1"], ">&-", "standard output is closed"),
    (["derive", "2-3-1", "-o", "/dev/full"], "", "cannot write '/dev/full'"),
    (["derive", "2-3-1", "-o", "{tmp}/missing/out.txt"], "", "does not exist"),
    (["generate", "2-3-1", "-o", "{tmp}/numpy.py"], "", "shadow the numpy package"),
    (["generate", "2-3-1", "-o", "{tmp}/sys.py"], "", "standard library's sys module"),
    (["generate", "2-3-1", "-o", "{tmp}/typing.py"], "", "standard library's typing module"),
    (["generate", "2-3-1", "-o", "{tmp}/json.py"], "", "standard library's json module"),
    (["generate", "2-3-1", "-o", "{tmp}/sklearn.py"], "", "shadow the sklearn package"),
    (["generate", "2-3-1", "-o", "{tmp}/2fast.py"], "", "not a valid Python identifier"),
    (["derive", "2-3-1", "-o", "{tmp}"], "", "is a directory"),
]


def _shell(argv, redirect, tmp):
    words = " ".join(f"'{a.format(tmp=tmp)}'" for a in argv)
    return subprocess.run(f"{sys.executable} -m symbackprop {words} {redirect}", shell=True,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("argv,redirect,message", CASES,
                         ids=[f"{' '.join(c[0][:3])} {c[1]}" for c in CASES])
def test_unwritable_output_is_one_line(tmp_path, argv, redirect, message):
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _shell(argv, redirect, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written or left


def test_a_closed_stderr_still_exits_with_the_code(tmp_path):
    result = _shell(["derive", "2-x-1"], "2>&-", tmp_path)
    assert result.returncode == 2


def test_a_reader_that_goes_away_is_not_an_error(tmp_path):
    result = _shell(["derive", "784-128:relu-10:softmax", "--loss", "cross_entropy",
                     "--format", "latex"], "| head -c 10 > /dev/null",
                    tmp_path)
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr


def test_an_existing_file_is_kept_when_the_write_fails(tmp_path):
    kept = tmp_path / "numpy.py"
    kept.write_text("mine\n")
    result = _shell(["generate", "2-3-1", "-o", str(kept), "--force"], "", tmp_path)
    assert result.returncode == 2 and "shadow" in result.stderr
    assert kept.read_text() == "mine\n"
