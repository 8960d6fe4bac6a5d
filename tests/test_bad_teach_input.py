"""Bad input to ``explain`` and ``example`` never crashes, hangs or reads without bound: each
case is one line naming the fault and the fix, exit 2, no traceback, nothing written, quickly.
Inputs at the edge that are valid (a saturated sigmoid, numbers of thousands of digits, 2,000
rows of data) are worked, and their numbers checked against arithmetic done here. A seeded
fuzz over numbers and flags checks that nothing else ever escapes."""
from __future__ import annotations

import io
import json
import os
import random
import re
import time
from contextlib import redirect_stderr, redirect_stdout
from fractions import Fraction

import mpmath
import pytest

from symbackprop import cli
from symbackprop import example as example_api
from symbackprop import explain as explain_api
from symbackprop.errors import SymbackpropError
from symbackprop.teach.limits import EXAMPLE_NUMBERS, EXPLAIN_ENTRIES
from symbackprop.teach.numbers import MAX_DIGITS, MAX_EXPONENT, NumberError, parse_number

DEEP = "1" + "-1:identity" * 16  # 16 identity layers: exact products of 1e-300 per layer


def _files(folder):
    """Files a case can read: weights and data, good and bad, and special files."""
    (folder / "w.json").write_text(json.dumps({"W1": [[1000]], "b1": [0]}))
    (folder / "big_exp.json").write_text('{"W1": [[1e999999999]], "b1": [0]}')
    (folder / "big_int.json").write_text('{"W1": [[' + "9" * 5000 + "]], \"b1\": [0]}")
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "nan.json").write_text('{"W1": [[NaN]], "b1": [0]}')
    (folder / "latin1.json").write_bytes(b'{"W1": [[1]], "b1": [0], "\xe9": 1}')
    (folder / "long.json").write_text(json.dumps({"W1": [list(range(3000))], "b1": [0]}))
    (folder / "bad.csv").write_text("1, 2, 1e999999999\n")
    (folder / "header_mixed.csv").write_text("1, x, 1\n1, 2, 1\n")
    (folder / "big.csv").write_bytes(b"1,2,1\n" * (3 << 20))
    (folder / "empty.csv").write_text("x0, x1, y\n")
    os.mkfifo(folder / "fifo.json")
    os.mkfifo(folder / "fifo.csv")
    (folder / "zero.csv").symlink_to("/dev/zero")


# (arguments, what the one line says); {d} is the folder with the files above
CASES = [
    # numbers: exponents and digits bounded before any number is made
    ("example 2-2-1 --init 0 --x 1e999999999,1 --y 1", "exponents are from -300 to 300"),
    ("example 2-2-1 --init 0 --x 1e-999999999,1 --y 1", "exponents are from -300 to 300"),
    ("example 2-2-1 --init 0 --x 1,2 --y 1 --lr 1e-999999999", "--lr: '1e-999999999' has"),
    ("example 2-2-1 --init 0 --x 1,2 --y 1 --lr 1E+99999", "the exponent 99999"),
    ("example 2-2-1 --init 0 --x 1,2 --y " + "7" * 5000, "has 5000 digits; a number has at"),
    ("example 2-2-1 --init 0 --x 1,2 --y 1/0", "divides by zero"),
    ("example 2-2-1 --init 0 --x 1,nan --y 1", "'nan' is not a number"),
    ("example 2-2-1 --init 0 --x 1,٣ --y 1", "is not a number"),
    ("example 2-2-1 --init 0 --x 1,2 --y 1 --lr 0", "--lr must be positive"),
    ("explain seq2x1-rnn1-1 --param U1[0,0] --x 1e400,1", "exponents are from -300"),
    ("explain seq2x1-rnn1-1 --param U1[0,0] --x 1,2 --y 1e-99999999", "exponents are from"),
    # widths: a short message for a wide input
    ("example 784-2-1 --init 0 --x 1,2 --y 1", "needs 784; e.g. --x \"0.5, 0.5, ..., 0.5"),
    ("example 2-2-1 --init 0 --x 1,2,3 --y 1", "needs 2"),
    # targets a loss cannot take
    ("example 2-2:softmax --loss cross_entropy --init 0 --x 1,2 --y 2,-1",
     "reads targets as probabilities, from 0 to 1, but sample 1 has 2"),
    ("example 2-2:softmax --loss cross_entropy --init 0 --x 1,2 --y 0.5,0.25",
     "needs each sample's targets to sum to 1"),
    ("example 2-1:sigmoid --loss bce --init 0 --x 1,2 --y -1", "sample 1 has -1"),
    ("example 2-2:log_softmax --loss nll --init 0 --x 1,2 --y 1.5,-0.5", "from 0 to 1"),
    ("explain seq2x1-rnn1-2:softmax --loss cross_entropy --param U1[0,0] --y 2,-1",
     "from 0 to 1"),
    # sizes: what example and explain enumerate
    ("example 2-1000000-1 --init 0 --x 1,2 --y 1", f"more than the {EXAMPLE_NUMBERS:,}"),
    ("example 2-1000-1000-1 --init 0 --x 1,2 --y 1", "parameters), more than the"),
    ("example 1x60x60-conv4k3-flatten-1 --init 0 --x 1 --y 1", "entries of its feature layers"),
    ("example seq100x4-rnn16-1 --init 0 --x 1 --y 1", "entries of its feature layers"),
    ("explain seq1000x2-rnn3-1 --param U1[0,0]", f"more than the {EXPLAIN_ENTRIES:,} an"),
    ("explain seq5x2-rnn1000000-1 --param U1[0,0]", "15,000,012 entries"),
    ("explain 1x100x100-conv4k3-flatten-1 --param W1[0,0,0,0]", "explain a smaller copy"),
    # files: special, too large, not UTF-8, bounded numbers, bad shapes quoted briefly
    ("example 2-2-1 --weights {d}/fifo.json --x 1,2 --y 1", "is a FIFO; give a regular file"),
    ("example 2-2-1 --init 0 --data {d}/fifo.csv", "is a FIFO"),
    ("example 2-2-1 --init 0 --data {d}/zero.csv", "is a device"),
    ("example 2-2-1 --init 0 --data {d}", "is a directory"),
    ("example 2-2-1 --init 0 --data {d}/big.csv", "bytes; at most"),
    ("example 2-2-1 --init 0 --data {d}/missing.csv", "No such file"),
    ("example 2-2-1 --init 0 --data {d}/bad.csv", "exponents are from"),
    ("example 2-2-1 --init 0 --data {d}/header_mixed.csv", "'x' is not a number"),
    ("example 2-2-1 --init 0 --data {d}/empty.csv", "has no samples"),
    ("example 1-1 --weights {d}/big_exp.json --x 1 --y 1", "exponents are from"),
    ("example 1-1 --weights {d}/big_int.json --x 1 --y 1", "5000 digits"),
    ("example 1-1 --weights {d}/deep.json --x 1 --y 1", "nests lists too deeply"),
    ("example 1-1 --weights {d}/nan.json --x 1 --y 1", "NaN is not a number"),
    ("example 1-1 --weights {d}/latin1.json --x 1 --y 1", "is not UTF-8 text (byte 0xe9"),
    ("example 1-1 --weights {d}/long.json --x 1 --y 1", "characters)"),
    ("explain 2-2-1 --param W1[0,0] --x 1e999999999", "takes numbers for a recurrent"),
]
IDS = [f"{n:02d} " + args[:50] for n, (args, _) in enumerate(CASES)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("teach_inputs")
    _files(path)
    return path


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("args,message", CASES, ids=IDS)
def test_bad_input_is_one_line_and_exit_2(folder, tmp_path, args, message):
    target = tmp_path / "out.txt"
    argv = [a.replace("{d}", str(folder)) for a in args.split()] + ["-o", str(target)]
    before = sorted(p.name for p in folder.iterdir())
    start = time.perf_counter()
    code, out, err = _run(argv)
    assert time.perf_counter() - start < 10, "refused before any work"
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]
    assert len(lines[0]) < 400, f"{len(lines[0])} characters"
    assert out == "" and not target.exists()
    assert sorted(p.name for p in folder.iterdir()) == before


# --- valid inputs at the edge --------------------------------------------------------------

def _value(text, lhs):
    """The number after ``lhs = ... ≈`` (or =) on its line, brackets dropped."""
    line = next(line for line in text.splitlines() if line.strip().startswith(lhs))
    rest = re.split("[=≈]", line)[-1].strip()
    return rest[1:rest.index("]")].strip() if rest.startswith("[") else rest.split()[0]


def _nstr(x, digits=6):
    with mpmath.workdps(600):
        return mpmath.nstr(x, digits).removesuffix(".0").replace(".0e", "e")


@pytest.mark.parametrize("y", ["1", "0"])
def test_a_saturated_sigmoid_with_bce_is_worked(tmp_path, y):
    """z = 1000: on the saturated side (y = 1) the loss is softplus(-z) = 5.08e-435 and
    dZ = σ(z) - 1; on the other (y = 0) the loss is softplus(z) ≈ 1000 and dA = 1/(1 - σ(z))."""
    (tmp_path / "w.json").write_text(json.dumps({"W1": [[1000]], "b1": [0]}))
    code, out, err = _run(["example", "1-1:sigmoid", "--loss", "bce", "--weights",
                           str(tmp_path / "w.json"), "--x", "1", "--y", y])
    assert code == 0, err
    with mpmath.workdps(600):
        z = mpmath.mpf(1000)
        sigma = 1 / (1 + mpmath.exp(-z))
        softplus = mpmath.log1p(mpmath.exp(-z)) if y == "1" else z + mpmath.log1p(mpmath.exp(-z))
        d_a = -1 / sigma if y == "1" else 1 / (1 - sigma)
        d_z = sigma - int(y)
    assert _value(out, "J =") == _nstr(softplus)
    assert _value(out, "dA[1] =") == _nstr(d_a)
    assert _value(out, "dZ[1] =") == _nstr(d_z)


def test_saturated_tanh_keeps_its_gradient(tmp_path):
    """tanh(300) = 1 - 1.5e-261: 1 - A² (BP4) keeps its digits."""
    (tmp_path / "w.json").write_text(json.dumps({"W1": [[300]], "b1": [0], "W2": [[1]],
                                                 "b2": [0]}))
    code, out, err = _run(["example", "1-1:tanh-1:identity", "--loss", "mse", "--weights",
                           str(tmp_path / "w.json"), "--x", "1", "--y", "0"])
    assert code == 0, err
    with mpmath.workdps(600):
        a = mpmath.tanh(300)
        d_z1 = 2 * a * (1 - a ** 2)  # dA[1] = W2ᵀ dZ[2] = 2 (A - Y), times 1 - tanh²
    assert _value(out, "dZ[1] =") == _nstr(d_z1)


def test_numbers_of_thousands_of_digits_are_printed():
    """16 identity layers with weights 1e-300: A = 1e-4500 exactly, dW[1] has over 8,000
    digits (Python's str() of an integer stops at 4,300); compared with Fractions."""
    weights = {}
    for label in range(1, 17):
        weights[f"W{label}"], weights[f"b{label}"] = [[Fraction(1, 10 ** 300)]], [0]
    worked = example_api(DEEP, "1e300", "1", weights=weights, loss="mse")
    text = worked.to_text()
    x, w = Fraction(10 ** 300), Fraction(1, 10 ** 300)
    a = x * w ** 16
    d_w1 = 2 * (a - 1) * w ** 15 * x
    assert _value(text, "A[16] =") == "1e-4500"
    with mpmath.workdps(50):
        expected = mpmath.nstr(mpmath.mpf(d_w1.numerator) / d_w1.denominator, 6)
    assert _value(text, "dW[1] =") == expected.replace(".0e", "e")
    assert "dW[1] = (1/m) dZ[1] A[0]ᵀ ≈" in text  # rounded, so ≈
    assert worked.to_latex() and worked.to_markdown()


def test_data_rows_cost_linear_time(tmp_path):
    """example --data: 4 times the rows take about 4 times as long (quadratic: 16)."""
    rng = random.Random(0)
    times = {}
    for rows in (250, 1000):
        path = tmp_path / f"d{rows}.csv"
        path.write_text("".join(f"{rng.randint(-9, 9) / 10},{rng.randint(-9, 9) / 10},"
                                f"{rng.randint(0, 1)}\n" for _ in range(rows)))
        start = time.perf_counter()
        code, out, err = _run(["example", "2-2-1", "--init", "0", "--data", str(path)])
        times[rows] = time.perf_counter() - start
        assert code == 0, err
        assert f"m = {rows} samples" in out
    assert times[1000] < 6 * times[250] + 1, times
    assert times[1000] < 15, times


def test_dense_explanations_count_paths_without_listing_them():
    """W[1][0,0] of 2-1000000-1000000-1 has 10^6 paths, the whole gradient 10^12: counted,
    five listed, quickly."""
    start = time.perf_counter()
    text = explain_api("2-1000000-1000000-1", "W1[0,0]").to_text()
    assert "Paths from W[1][0,0] to L: 1000000," in text and "21000005000001" in text
    assert time.perf_counter() - start < 30


# --- the library ---------------------------------------------------------------------------

LIBRARY = [
    (lambda: example_api("2-2-1", "1e999999999, 1", "1"), "exponents are from"),
    (lambda: example_api("2-2-1", "1, 2", "1", lr="1e-999999999"), "exponents are from"),
    (lambda: example_api("2-1000000-1", "1, 2", "1"), "more than the"),
    (lambda: example_api("2-2:softmax", "1, 2", "2, -1", loss="cross_entropy"), "from 0 to 1"),
    (lambda: example_api("1-1", "1", "1", weights={"W1": [[float("inf")]], "b1": [0]}),
     "finite"),
    (lambda: explain_api("seq1000x2-rnn3-1", "U1[0,0]"), "entries"),
]


@pytest.mark.parametrize("call,message", LIBRARY)
def test_library_raises_its_own_exceptions(call, message):
    with pytest.raises(SymbackpropError) as err:
        call()
    assert message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_float_weights_from_json_load_are_read_as_their_decimals():
    worked = example_api("1-1:identity", "1", "0", weights={"W1": [[0.1]], "b1": [0.0]},
                         loss="mse")
    assert "W[1] = [ 0.1 ]" in worked.to_text()


# --- fuzz ----------------------------------------------------------------------------------

PIECES = ["0", "1", "9", ".", "-", "+", "e", "E", "/", " ", "99999", "1e", "e-", "inf", "nan",
          "x", "²", "٣", "_", ",", "0x1", "1j", "\t", "\x00", "Ω", "300", "301"]


def test_fuzz_numbers_parse_within_bounds_or_refuse_in_one_line():
    """2,000 random number texts: each a bounded rational or a one-line NumberError, fast."""
    rng = random.Random(0)
    start = time.perf_counter()
    refused = 0
    for _ in range(2000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))
        try:
            value = parse_number(text, "--x")
        except NumberError as exc:
            refused += 1
            assert "\n" not in str(exc) and len(str(exc)) < 300
            continue
        digits = max(len(str(abs(value.p))), len(str(value.q)))
        assert digits <= MAX_DIGITS + MAX_EXPONENT + 1, text
    assert refused > 500
    assert time.perf_counter() - start < 10


def test_fuzz_example_flags_never_show_a_traceback():
    """150 random --x, --y and --lr through the command line: exit 0, or 2 with one line."""
    rng = random.Random(1)
    numbers = ["0.5", "-1", "2", "1e3", "1e-3", "1e400", "1/3", "x", "", "0", "1e99999", "3/0"]
    start = time.perf_counter()
    for _ in range(150):
        x = ", ".join(rng.choice(numbers) for _ in range(rng.randint(1, 3)))
        y = rng.choice(["0", "1", "0.5", "2", "-1", "1e999", ""])
        lr = rng.choice(["0.1", "1/3", "-1", "1e-400", "abc", "1e-5"])
        code, out, err = _run(["example", "2-2:tanh-1:sigmoid", "--loss", "bce", "--init", "0",
                               "--x", x, "--y", y, "--lr", lr])
        assert code in (0, 2), (x, y, lr, err)
        assert "Traceback" not in err
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and out == "", (x, y, lr, err)
        else:
            assert not re.search(r"\bnan\b|zoo", out), (x, y, lr)
    assert time.perf_counter() - start < 120
