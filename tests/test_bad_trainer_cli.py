"""Bad input to a generated trainer's command line (``python trainer.py --data ...``) ends in
one line on stderr and exit 2, before any training, and leaves every file as it was: labels
that are not classes, CSV files with a non-number or of ragged rows, empty or truncated .npz
files and ones without X or Y, special files, --out into a missing folder, learning rates that
are not finite and positive. A header or a UTF-8 byte order mark is read, never taken for a
row to drop. Every case runs on every kind of network the generator prints; a seeded fuzz over
the flags and data files checks that nothing else escapes, hangs or warns."""
from __future__ import annotations

import io
import os
import random
import re
import signal
import subprocess
import sys
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from codegen_helpers import source
from test_bad_trainer_api import IDS, NETS, data, module, shape


def run(mod, argv):
    """``mod.main(argv)`` in this process: (exit code, stdout, stderr, warnings raised)."""
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, redirect_stdout(out), \
            redirect_stderr(err):
        warnings.simplefilter("always")
        try:
            code = mod.main(argv)
        except SystemExit as exc:  # argparse: --help, or a bad flag
            code = exc.code
    return code, out.getvalue(), err.getvalue(), [str(w.message) for w in caught]


def rows(net, m=6, seed=0):
    """The data set of ``net`` as CSV lines: X flattened, then the class label or the targets."""
    X, Y = data(net, m, seed)
    last = Y.argmax(axis=1)[:, None] if net.labels else Y.reshape(m, -1)
    table = np.column_stack([X.reshape(m, -1), last])
    return [",".join(f"{v:.6g}" for v in row) for row in table]


def targets(net) -> str:
    return "1" if net.labels else str(int(np.prod(net.y)))


def _snapshot(folder):
    return {p: p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))
            if not p.is_fifo()}


# --- data files: (id, what it writes into the folder as "d.csv" or "d.npz", the words) -------------

def _csv(edit):
    """A CSV file: the rows of the net, changed by ``edit(lines, net)``."""
    def make(folder, net):
        (folder / "d.csv").write_text("\n".join(edit(rows(net), net)) + "\n")
        return "d.csv"
    return make


def _raw(name, content):
    def make(folder, net):
        (folder / name).write_bytes(content(folder, net) if callable(content) else content)
        return name
    return make


def _npz(**arrays):
    def make(folder, net):
        X, Y = data(net)
        np.savez(folder / "d.npz", **{k: v(X, Y) for k, v in arrays.items()})
        return "d.npz"
    return make


def _set(line, column, value):
    """Put ``value`` in field ``column`` (0-based, negative from the end) of ``line``."""
    fields = line.split(",")
    fields[column] = value
    return ",".join(fields)


def _npz_bytes(folder, net):
    X, Y = data(net)
    buffer = io.BytesIO()
    np.savez(buffer, X=X, Y=Y)
    return buffer.getvalue()


def _cut(fraction):
    def make(folder, net):
        content = _npz_bytes(folder, net)
        return content[:int(len(content) * fraction)]
    return make


def _special(make_path):
    def make(folder, net):
        make_path(folder / "d.npz")
        return "d.npz"
    return make


LABELS = [  # only networks whose targets are classes (3 of them here)
    ("label = the number of classes", "3",
     "the label 3 of data row 4 is not a class; labels are the integers 0 to 2 of the 3 classes"),
    ("label NaN", "nan", "the label nan of data row 4 is not a class"),
    ("label -1", "-1", "the label -1 of data row 4 is not a class"),
    ("label 2.7", "2.7", "the label 2.7 of data row 4 is not a class"),
    ("label inf", "inf", "the label inf of data row 4 is not a class"),
    ("label 1e30", "1e30", "the label 1e+30 of data row 4 is not a class"),
]

FILES = [(name, _csv(lambda lines, net, v=value: [*lines[:3], _set(lines[3], -1, v),
                                                  *lines[4:]]), words, "labels")
         for name, value, words in LABELS] + [
    ("first row with one non-number", _csv(lambda lines, net: [_set(lines[0], 1, "x"),
                                                               *lines[1:]]),
     "line 1, column 2: 'x' is not a number; a header line holds no numbers at all", None),
    ("a later non-number", _csv(lambda lines, net: [*lines[:3], _set(lines[3], 0, "abc"),
                                                    *lines[4:]]),
     "line 4, column 1: 'abc' is not a number", None),
    ("an empty field", _csv(lambda lines, net: [lines[0], _set(lines[1], 2, ""), *lines[2:]]),
     "line 2, column 3: '' is not a number", None),
    ("ragged rows", _csv(lambda lines, net: [*lines[:2], "1,2", *lines[2:]]),
     "line 3 has 2 columns, line 1 has", None),
    ("a feature NaN", _csv(lambda lines, net: [_set(lines[0], 0, "nan"), *lines[1:]]),
     "X of shape {x} contains NaN or inf", None),
    ("a feature 1e999", _csv(lambda lines, net: [_set(lines[0], 0, "1e999"), *lines[1:]]),
     "X of shape {x} contains NaN or inf", None),
    ("empty CSV", _raw("d.csv", b""), "'d.csv' holds no rows of numbers", None),
    ("a header alone", _raw("d.csv", b"a,b,c\n"), "'d.csv' holds no rows of numbers", None),
    ("blank lines alone", _raw("d.csv", b"\n\n  \n"), "'d.csv' holds no rows of numbers", None),
    ("not UTF-8", _raw("d.csv", b"1,2\xff,3\n"), "'d.csv' is not a CSV file of UTF-8 text",
     None),
    ("UTF-16", _raw("d.csv", "1,2,3\n".encode("utf-16")), "is not a CSV file of UTF-8 text",
     None),
    ("empty npz", _raw("d.npz", b""), "--data 'd.npz' is empty; it needs arrays X and Y", None),
    ("npz cut to 10 bytes", _raw("d.npz", _cut(0.02)), "'d.npz' is not a .npz archive", None),
    ("npz cut in half", _raw("d.npz", _cut(0.5)), "'d.npz' is not a .npz archive", None),
    ("npz less its last bytes", _raw("d.npz", _cut(0.99)), "'d.npz' is not a .npz archive",
     None),
    ("npz of CSV text", _raw("d.npz", b"1,2,3\n"), "'d.npz' is not a .npz archive", None),
    ("npz without Y", _npz(X=lambda X, Y: X), "'d.npz' needs arrays X and Y; it has no Y", None),
    ("npz of other arrays", _npz(x=lambda X, Y: X, y=lambda X, Y: Y),
     "needs arrays X and Y; it has no X, Y", None),
    ("npz of objects", _npz(X=lambda X, Y: np.array([None, 1], dtype=object), Y=lambda X, Y: Y),
     "'d.npz': its arrays cannot be read", None),
    ("npz X of strings", _npz(X=lambda X, Y: X.astype(str), Y=lambda X, Y: Y),
     "X must be a real-valued array of shape {x}", None),
    ("npz X a scalar", _npz(X=lambda X, Y: np.float64(1), Y=lambda X, Y: Y), "X must have shape",
     None),
    ("npz Y rows short", _npz(X=lambda X, Y: X, Y=lambda X, Y: Y[:-1]), "Y must have shape",
     None),
    ("a FIFO", _special(os.mkfifo), "'d.npz' is a FIFO, not a regular file", None),
    ("a directory", _special(lambda p: p.mkdir()), "'d.npz' is a directory, not a regular file",
     None),
    ("/dev/zero", _special(lambda p: p.symlink_to("/dev/zero")), "is a device, not a regular",
     None),
    ("a missing file", lambda folder, net: "nothing.csv", "No such file or directory", None),
]


# every case on every network it applies to (the label cases on networks of classes)
FILE_CASES = [pytest.param(net, *case, id=f"{case[0]}-{net.name}") for case in FILES
              for net in NETS if case[3] != "labels" or net.labels]


@pytest.mark.parametrize("net,case,make,words,only", FILE_CASES)
def test_bad_data_files(net, case, make, words, only, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = make(tmp_path, net)
    before = _snapshot(tmp_path)
    code, out, err, caught = run(module(net), ["--data", name, "--targets", targets(net),
                                               "--epochs", "2", "--out", "w.npz"])
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert words.format(x=shape(net.x)) in err, err
    assert out == "" and caught == []  # refused before the first epoch
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed


FLAGS = [  # (id, arguments after --data d.csv --targets K, the words, does training run?)
    *[(f"--lr {v}", [f"--lr={v}"], "lr must be a finite number > 0", False)
      for v in ("inf", "-inf", "nan", "0", "-0.1", "1e-999999999", "1e999999999")],
    ("--lr 1e300", ["--lr", "1e300"], "training diverged", True),
    ("--epochs -1", ["--epochs", "-1"], "--epochs must be an integer >= 0, got -1", False),
    ("--batch-size 0", ["--batch-size", "0"], "must be an integer >= 1, got 0", False),
    ("--seed -1", ["--seed", "-1"], "seed must be an integer >= 0, got -1", False),
    ("--targets 0", ["--targets", "0"], "--targets 0: --data 'd.csv' has", False),
    ("--targets -2", ["--targets", "-2"], "--targets -2: --data 'd.csv' has", False),
    ("--targets 1000", ["--targets", "1000"], "the targets are the last 1 to", False),
    ("--out in a missing folder", ["--out", "missing/w.npz"],
     "--out 'missing/w.npz': the folder 'missing' does not exist", False),
    ("--out a folder", ["--out", "."], "--out '.' is a folder; name a file in it", False),
    ("--epochs x", ["--epochs", "x"], "error: argument --epochs: invalid int value: 'x'", False),
    ("--batch-size 1.5", ["--batch-size", "1.5"], "argument --batch-size: invalid int", False),
    ("--optimizer rmsprop", ["--optimizer", "rmsprop"], "argument --optimizer: invalid choice",
     False),
    ("an unknown flag", ["--lrr", "0.1"], "unrecognized arguments: --lrr 0.1", False),
]


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("case,extra,words,trains", FLAGS, ids=[f[0] for f in FLAGS])
def test_bad_flags(net, case, extra, words, trains, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("\n".join(rows(net)) + "\n")
    before = _snapshot(tmp_path)
    code, out, err, caught = run(module(net), ["--data", "d.csv", "--targets", targets(net),
                                               "--epochs", "3", *extra])
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
    assert caught == []  # a diverging run is said in that one line, without NumPy's warnings
    assert out.startswith("epoch 1/3") and "saved" not in out if trains else out == "", out
    assert _snapshot(tmp_path) == before


def test_data_is_required_in_one_line():
    code, _, err, _ = run(module(NETS[0]), [])
    assert code == 2 and err.count("\n") == 1
    assert "the following arguments are required: --data" in err


# --- what is read, and read whole ------------------------------------------------------------------
VARIANTS = [  # the same data written another way: (id, lines -> bytes)
    ("a UTF-8 byte order mark", lambda lines: "\ufeff".encode() + _join(lines)),
    ("a header", lambda lines: _join(["x" + ",x" * (lines[0].count(",") - 1) + ",y", *lines])),
    ("a header with an empty name", lambda lines: _join(["a," * lines[0].count(","), *lines])),
    ("a header and a byte order mark", lambda lines: "\ufeff".encode() + _join(
        ["a" + ",b" * lines[0].count(","), *lines])),
    ("CRLF line ends", lambda lines: _join(lines).replace(b"\n", b"\r\n")),
    ("blank lines and comments", lambda lines: _join(["# data", "", *lines[:2], "", *lines[2:]])),
    ("spaces around numbers", lambda lines: _join([line.replace(",", " , ") for line in lines])),
]


def _join(lines):
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("case,write", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_row_is_read(net, case, write, tmp_path, monkeypatch):
    """The same rows give the same training, to the last digit: no row was dropped as a
    header (a byte order mark made the first number unreadable before)."""
    monkeypatch.chdir(tmp_path)
    lines = rows(net, m=7)
    (tmp_path / "plain.csv").write_bytes(_join(lines))
    (tmp_path / "variant.csv").write_bytes(write(lines))
    argv = ["--targets", targets(net), "--epochs", "2", "--batch-size", "2"]
    plain = run(module(net), ["--data", "plain.csv", *argv])
    variant = run(module(net), ["--data", "variant.csv", *argv])
    assert plain[0] == 0 and variant[0] == 0, (plain, variant)
    assert _untimed(variant[1]) == _untimed(plain[1]) and variant[2] == "" and variant[3] == []
    (tmp_path / "short.csv").write_bytes(_join(lines[1:]))  # what dropping the first row gives
    assert _untimed(run(module(net), ["--data", "short.csv", *argv])[1]) != _untimed(plain[1])


def _untimed(out: str) -> str:
    """The report without each epoch line's seconds (the clock's, not the training's)."""
    return re.sub(r"  [0-9.]+ s$", "", out, flags=re.MULTILINE)


@pytest.mark.parametrize("net", NETS, ids=IDS)
def test_out_is_the_file_load_reads(net, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("\n".join(rows(net)) + "\n")
    code, out, err, _ = run(module(net), ["--data", "d.csv", "--targets", targets(net),
                                          "--epochs", "1", "--out", "w"])
    assert code == 0 and out.splitlines()[-1] == "saved w.npz" and err == ""
    assert module(net).Trainer.load("w").params.keys() == module(net).init_params().keys()


OUT = [  # (id, what is at the --out path before, the message's words); none is replaced
    ("a file", lambda p: p.write_bytes(b"the user's own file"),
     "--out 'w.npz' exists; add --force to replace it"),
    ("a symlink", lambda p: p.symlink_to("elsewhere.npz"),
     "--out 'w.npz' is a symlink; add --force to replace it"),
    ("a FIFO", lambda p: os.mkfifo(p),
     "--out 'w.npz' is not a regular file; name a file to save in"),
    ("/dev/null", lambda p: p.symlink_to("/dev/null"),
     "--out 'w.npz' is not a regular file; name a file to save in"),
]


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("case,make,words", OUT, ids=[o[0] for o in OUT])
def test_out_never_replaces_a_file_unasked(net, case, make, words, tmp_path, monkeypatch):
    """Refused before any training; --force replaces a regular file or a link, never a
    special file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("\n".join(rows(net)) + "\n")
    make(tmp_path / "w.npz")
    before = _snapshot(tmp_path)
    argv = ["--data", "d.csv", "--targets", targets(net), "--epochs", "1", "--out", "w"]
    code, out, err, _ = run(module(net), argv)
    assert (code, out, err) == (2, "", f"error: {words}\n")
    assert _snapshot(tmp_path) == before
    code, out, err, _ = run(module(net), [*argv, "--force"])
    if "regular" in words:
        assert (code, out, err) == (2, "", f"error: {words}\n")
        assert _snapshot(tmp_path) == before
    else:
        assert code == 0 and out.endswith("saved w.npz\n") and err == ""
        assert module(net).Trainer.load("w").params.keys() == module(net).init_params().keys()


def test_force_keeps_the_mode_of_the_file_it_replaces(tmp_path, monkeypatch):
    net = NETS[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("\n".join(rows(net)) + "\n")
    argv = ["--data", "d.csv", "--targets", targets(net), "--epochs", "1", "--out", "w"]
    assert run(module(net), argv)[0] == 0
    (tmp_path / "w.npz").chmod(0o640)
    assert run(module(net), [*argv, "--epochs", "2", "--force"])[0] == 0
    assert (tmp_path / "w.npz").stat().st_mode & 0o777 == 0o640
    assert module(net).Trainer.load("w").epoch == 2


# --- in a process of its own, as a user runs it -------------------------------------------------
PROCESS = [  # (the first row's label, or an .npz file's bytes; flags; the words), on the
    # 10-class digits trainer
    ("10", [], ("the label 10 of data row 1 is not a class; labels are the integers 0 to 9 of "
                "the 10 classes")),
    ("nan", [], "the label nan of data row 1"),
    ("-1", [], "the label -1 of data row 1"),
    ("3", ["--lr", "inf"], "lr must be a finite number > 0, got inf"),
    ("3", ["--out", "missing/w.npz"], "the folder 'missing' does not exist"),
    ("3", ["--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    (b"", [], "is empty; it needs arrays X and Y"),
    (b"PK\x03\x04", [], "is not a .npz archive"),
]


@pytest.mark.parametrize("content,flags,words", PROCESS, ids=[p[2][:30] for p in PROCESS])
def test_a_real_process_prints_one_line(content, flags, words, tmp_path):
    trainer = tmp_path / "digits_trainer.py"
    trainer.write_text(source("64-32:relu-10:softmax", "cross_entropy"))
    if isinstance(content, bytes):
        name = "d.npz"
        (tmp_path / name).write_bytes(content)
    else:
        name = "d.csv"
        rng = np.random.default_rng(0)
        lines = [",".join(f"{v:.3g}" for v in rng.uniform(0, 1, 64)) + f",{label}"
                 for label in (content, "1", "2", "3")]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        flags = ["--targets", "1", *flags]
    before = _snapshot(tmp_path)
    result = subprocess.run([sys.executable, str(trainer), "--data", name, *flags],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert _snapshot(tmp_path) == before


def _closed_pipe():
    """A pipe whose reading end is closed: a write to it is a broken pipe (| head gone)."""
    read, write = os.pipe()
    os.close(read)
    return write


STDOUT = [  # (id, the stdout the process gets, exit code, the words on stderr or "")
    ("/dev/full", lambda: open("/dev/full", "wb"), 2,  # noqa: SIM115 - closed by the test
     ("error: cannot write to standard output: No space left on device; the trainer is saved "
      "in 'w.npz'")),
    ("closed", lambda: None, 2,
     "error: cannot write to standard output: it is closed; the trainer is saved in 'w.npz'"),
    ("broken pipe", _closed_pipe, 0, ""),
]


@pytest.mark.parametrize("case,stdout,code,words", STDOUT, ids=[s[0] for s in STDOUT])
def test_an_unwritable_stdout_is_one_line_and_loses_nothing(case, stdout, code, words,
                                                            tmp_path):
    """Training goes on, --out is saved, and the exit code and one line say what happened."""
    trainer = tmp_path / "digits_trainer.py"
    trainer.write_text(source("64-32:relu-10:softmax", "cross_entropy"))
    rng = np.random.default_rng(0)
    lines = [",".join(f"{v:.3g}" for v in rng.uniform(0, 1, 64)) + f",{k % 10}"
             for k in range(40)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    target = stdout()
    argv = [sys.executable, str(trainer), "--data", "d.csv", "--targets", "1", "--epochs",
            "3", "--out", "w"]
    if target is None:  # the descriptor closed in the child, as `>&-` does
        argv = ["sh", "-c", 'exec "$@" >&-', "sh", *argv]
    try:
        result = subprocess.run(argv, stdout=target if target is not None else None,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=60,
                                check=False)
    finally:
        if hasattr(target, "close"):
            target.close()
        elif isinstance(target, int):
            os.close(target)
    assert result.returncode == code, result.stderr
    assert result.stderr == (words + "\n" if words else ""), result.stderr
    with np.load(tmp_path / "w.npz") as saved:
        assert saved["W1"].shape == (32, 64) and "state" in saved.files


# --- fuzz ------------------------------------------------------------------------------------------
CHOICES = {  # flag: (valid values, values to refuse); {t}: the network's number of targets
    "--epochs": (["0", "1", "2", "3"], ["-1", "x", "1.5", "", "1e3"]),
    "--lr": (["0.1", "0.01", "1", "30", "1e300", "1_0"],
             ["inf", "-inf", "nan", "0", "-0.5", "1e-999999999", "1e999999999", "x", "0x10"]),
    "--batch-size": (["1", "2", "4", "32", "99999999999999999999"],
                     ["0", "-3", "x", "1e3", "True"]),
    "--optimizer": (["sgd", "momentum", "adam"], ["rmsprop", ""]),
    "--seed": (["0", "3", "99999999999999999999999"], ["-1", "x", "1.0"]),
    "--targets": (["{t}"], ["2", "0", "-1", "7", "100", "x"]),
    "--out": (["w", "w.npz", "d.csv"], ["missing/w.npz", "."]),
}
NOISE = ["1e999", "nan", "x", "", ",", "\ufeff", "-", "1e", "#", " ", "\t", "\x00", "9" * 400,
         "\n", "\r\n", "1,2", ".", "+", "é", "0x1"]


SPOILS = [lambda a: a.reshape(-1), lambda a: a[..., :-1], lambda a: a.astype(np.float32),
          lambda a: a.astype(int), lambda a: a > 0, lambda a: a * 1e308 * 10,
          lambda a: a.astype(str), lambda a: a + 1j, lambda a: a[:0], lambda a: a[None],
          lambda a: np.full_like(a, np.nan)]


def _mutated(lines, rng):
    """The CSV text with a few random edits: noise put in, characters deleted, rows cut."""
    text = "\n".join(lines) + "\n"
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text) + 1)
        if rng.random() < 0.6:
            text = text[:at] + rng.choice(NOISE) + text[at:]
        else:
            text = text[:at] + text[at + rng.randint(1, 12):]
    return text.encode("utf-8", "surrogatepass")


def _fuzz_file(folder, net, rng):
    """One data file for one run: a mutated CSV, a mutated or random .npz, or a fixed one."""
    kind = rng.random()
    X, Y = data(net, rng.randint(1, 8), rng.randrange(1000))
    if kind < 0.3:
        (folder / "f.csv").write_bytes(_mutated(rows(net, len(X), rng.randrange(1000)), rng))
        return "f.csv"
    if kind < 0.55:
        buffer = io.BytesIO()
        arrays = {"X": X, "Y": Y}
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # spoiling on purpose
            warnings.simplefilter("ignore")
            for _ in range(rng.choice([0, 0, 1, 2])):  # spoil: drop, reshape, retype
                key = rng.choice(["X", "Y"])
                spoil = rng.choice(SPOILS)
                try:
                    arrays[key] = spoil(arrays[key])
                except (TypeError, ValueError):  # a spoil that does not apply to a spoilt one
                    pass
            if rng.random() < 0.2:
                arrays.pop(rng.choice(["X", "Y"]))
            np.savez(buffer, **arrays)
        content = buffer.getvalue()
        if rng.random() < 0.2:
            content = content[:rng.randrange(len(content) + 1)]
        (folder / "f.npz").write_bytes(content)
        return "f.npz"
    return rng.choice(["good.csv", "bom.csv", "header.csv"] * 3
                      + ["fifo.npz", "dir.npz", "zero.npz", "nothing.csv", "random.npz",
                         "random.csv"])


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def test_fuzz_the_trainer_command_line(tmp_path, monkeypatch):
    """1,200 random command lines (flags, their values, data files made at random), 300 for
    each kind of network, in this process: each ends in exit 0, or exit 2 with one line on
    stderr and nothing written; no traceback, no warning, none takes more than 10 s."""
    monkeypatch.chdir(tmp_path)
    rng = random.Random(15)
    counts = {0: 0, 2: 0}
    previous = signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    try:
        for net in NETS:
            folder = tmp_path / net.name
            folder.mkdir()
            monkeypatch.chdir(folder)
            lines = rows(net)
            (folder / "good.csv").write_text("\n".join(lines) + "\n")
            (folder / "bom.csv").write_bytes("\ufeff".encode() + _join(lines))
            (folder / "header.csv").write_bytes(_join(["h" + ",h" * lines[0].count(","), *lines]))
            (folder / "random.npz").write_bytes(bytes(rng.randrange(256) for _ in range(300)))
            (folder / "random.csv").write_bytes(bytes(rng.randrange(256) for _ in range(300)))
            os.mkfifo(folder / "fifo.npz")
            (folder / "dir.npz").mkdir()
            (folder / "zero.npz").symlink_to("/dev/zero")
            fixed = _snapshot(folder)
            for _ in range(300):
                argv = ["--data", _fuzz_file(folder, net, rng)] if rng.random() < 0.97 else []
                for flag, (valid, invalid) in CHOICES.items():
                    if rng.random() < 0.45 or flag == "--targets" and rng.random() < 0.8:
                        value = rng.choice(invalid if rng.random() < 0.15 else valid)
                        argv += [f"{flag}={value.format(t=targets(net))}"]
                if rng.random() < 0.03:
                    argv.insert(rng.randrange(len(argv) + 1), rng.choice(["--bogus", "-x", "junk"]))
                before = _snapshot(folder)
                signal.setitimer(signal.ITIMER_REAL, 10)
                try:
                    code, _, err, caught = run(module(net), argv)
                except Hang:
                    pytest.fail(f"{net.name}: hung: {argv}")
                except Exception as exc:  # noqa: BLE001 - any escape is the failure
                    pytest.fail(f"{net.name}: {type(exc).__name__}: {exc}: {argv}")
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                assert code in (0, 2), (net.name, argv, code, err)
                assert "Traceback" not in err and caught == [], (net.name, argv, err, caught)
                counts[code] += 1
                # stderr: one line for a refusal, none otherwise (and one a warning)
                errors = [line for line in err.splitlines() if not line.startswith("warning: ")]
                assert len(errors) == (code == 2) and err.endswith("\n") == bool(err), \
                    (net.name, argv, err)
                if code == 2:
                    assert "error: " in errors[0], (net.name, argv, err)
                    after = _snapshot(folder)
                    assert after == before, (net.name, argv, "a refused run changed files")
                for name in ("w.npz", "d.csv.npz"):  # what a run that succeeded saved
                    (folder / name).unlink(missing_ok=True)
            assert {p: v for p, v in _snapshot(folder).items() if p in fixed} == fixed
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert counts[0] + counts[2] == 1200
    assert counts[0] >= 100 and counts[2] >= 600, counts  # both outcomes are reached
    assert time.perf_counter() - start < 90


STDERR = [  # (id, how the child's stderr is set up): a fault must still exit 2, nothing on stdout
    ("/dev/full", lambda argv: (argv, open("/dev/full", "wb"))),  # noqa: SIM115 - closed below
    ("closed", lambda argv: (["sh", "-c", 'exec "$@" 2>&-', "sh", *argv], None)),
]


@pytest.mark.parametrize("case,setup", STDERR, ids=[s[0] for s in STDERR])
def test_an_unwritable_stderr_still_exits_2(case, setup, tmp_path):
    trainer = tmp_path / "t.py"
    trainer.write_text(source("2-3-1", "mse"))
    argv, stderr = setup([sys.executable, str(trainer), "--data", "missing.npz"])
    try:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                cwd=tmp_path, timeout=60, check=False)
    finally:
        if stderr is not None:
            stderr.close()
    assert result.returncode == 2 and result.stdout == ""
