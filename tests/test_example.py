"""``symbackprop example``: a worked SGD step, checked against arithmetic done here by hand."""
from __future__ import annotations

import json
import random
from fractions import Fraction as F

import numpy as np
import pytest
import sympy as sp
from teach_helpers import block, matrix, scalar

from symbackprop.cli import main
from symbackprop.engine import derive
from symbackprop.spec import parse_arch
from symbackprop.teach.inputs import (
    INIT_CHOICES,
    draw_parameters,
    parameters_from_mapping,
    parse_samples,
)
from symbackprop.teach.numbers import decimal_text, parse_number, settle
from symbackprop.teach.worked import work_example


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- the hand-worked network: 2-2:relu-2:identity, mse, non-zero biases, lr 0.1 ------------

W1 = [[F("0.5"), F("-0.2")], [F("0.1"), F("0.3")]]
B1 = [F("0.1"), F("-0.2")]
W2 = [[F("0.4"), F("-0.6")], [F("1.5"), F("0.25")]]
B2 = [F("0.05"), F("-0.1")]
# Sample 0 puts Z[1][1] exactly at relu's kink, sample 1 keeps both hidden units active,
# sample 2 switches both off.
X_ROWS = [[F("0.5"), F("0.5")], [F("2"), F("1")], [F("-1"), F("0.5")]]
Y_ROWS = [[F("1"), F("0")], [F("0"), F("1")], [F("0.5"), F("-0.5")]]
LR = F("0.1")


def _matmul(A, B):
    return [[sum(A[i][t] * B[t][j] for t in range(len(B))) for j in range(len(B[0]))]
            for i in range(len(A))]


def _transpose(A):
    return [list(row) for row in zip(*A)]


def _hand_worked():
    """The whole step in Fractions, written out as on paper (columns are samples)."""
    X, Y = _transpose(X_ROWS), _transpose(Y_ROWS)
    m, n2 = len(X_ROWS), len(B2)
    Z1 = [[sum(W1[j][t] * X[t][i] for t in range(2)) + B1[j] for i in range(m)] for j in range(2)]
    A1 = [[z if z > 0 else F(0) for z in row] for row in Z1]
    Z2 = [[sum(W2[j][t] * A1[t][i] for t in range(2)) + B2[j] for i in range(m)] for j in range(2)]
    A2 = Z2
    losses = [sum((A2[c][i] - Y[c][i]) ** 2 for c in range(n2)) / n2 for i in range(m)]
    J = sum(losses) / m
    dA2 = [[F(2, n2) * (A2[c][i] - Y[c][i]) for i in range(m)] for c in range(n2)]
    dZ2 = dA2
    dW2 = [[x / m for x in row] for row in _matmul(dZ2, _transpose(A1))]
    db2 = [[sum(row) / m] for row in dZ2]
    dA1 = _matmul(_transpose(W2), dZ2)
    dZ1 = [[dA1[j][i] * (1 if Z1[j][i] > 0 else 0) for i in range(m)] for j in range(2)]
    dW1 = [[x / m for x in row] for row in _matmul(dZ1, _transpose(X))]
    db1 = [[sum(row) / m] for row in dZ1]
    new = {
        "W[1]": [[W1[j][t] - LR * dW1[j][t] for t in range(2)] for j in range(2)],
        "b[1]": [[B1[j] - LR * db1[j][0]] for j in range(2)],
        "W[2]": [[W2[j][t] - LR * dW2[j][t] for t in range(2)] for j in range(2)],
        "b[2]": [[B2[j] - LR * db2[j][0]] for j in range(2)],
    }
    values = {"Z[1]": Z1, "A[1]": A1, "Z[2]": Z2, "A[2]": A2, "dA[2]": dA2, "dZ[2]": dZ2,
              "dW[2]": dW2, "db[2]": db2, "dA[1]": dA1, "dZ[1]": dZ1, "dW[1]": dW1,
              "db[1]": db1}
    per_sample = {l: [[[dZ[j][i] * A[t][i] for t in range(len(A))] for j in range(len(dZ))]
                      for i in range(m)]
                  for l, dZ, A in ((2, dZ2, A1), (1, dZ1, X))}
    return values, losses, J, new, per_sample


def _weights_file(tmp_path, data=None):
    data = data if data is not None else {
        "W1": [[str(x) for x in row] for row in W1], "b1": [str(x) for x in B1],
        "W2": [[str(x) for x in row] for row in W2], "b2": [str(x) for x in B2]}
    text = json.dumps(data)
    for x in (*W1[0], *W1[1], *B1, *W2[0], *W2[1], *B2):  # numbers, not strings, in the file
        text = text.replace(f'"{x}"', str(float(x)) if x.denominator != 1 else str(x))
    path = tmp_path / "weights.json"
    path.write_text(text)
    return path


def _rows(rows):
    return "; ".join(", ".join(str(float(x)) for x in row) for row in rows)


@pytest.fixture
def hand_output(tmp_path, capsys):
    code, out, err = run(capsys, "example", "2-2:relu-2:identity", "--loss", "mse",
                         "--weights", str(_weights_file(tmp_path)), "--x", _rows(X_ROWS),
                         "--y", _rows(Y_ROWS), "--lr", "0.1")
    assert code == 0, err
    return out


def test_every_printed_value_matches_the_hand_worked_step(hand_output):
    values, losses, J, new, per_sample = _hand_worked()
    for name, expected in values.items():
        assert matrix(hand_output, name, after="Forward pass") == expected, name
    for k, loss in enumerate(losses):
        assert scalar(hand_output, f"L[{k}]") == loss
    assert scalar(hand_output, "J") == J
    for name, expected in new.items():
        assert matrix(hand_output, name, after="Update") == expected, name
    for l, samples in per_sample.items():
        for k, expected in enumerate(samples):
            assert matrix(hand_output, f"dW[{l}] for i = {k}", after="Each sample") == expected


def test_the_hand_worked_step_is_exact_and_relu_has_slope_zero_at_zero(hand_output):
    values, *_ = _hand_worked()
    assert values["Z[1]"][1][0] == 0  # the kink, where Heaviside(0) = 1/2 would leak
    assert values["dA[1]"][1][0] != 0
    assert matrix(hand_output, "dZ[1]", after="Backward")[1][0] == 0
    assert values["Z[1]"][1][1] > 0 and values["dZ[1]"][1][1] != 0
    assert "≈" not in hand_output and "rounded" not in hand_output
    assert "0.49999" not in hand_output and "0.5000000" not in hand_output
    # decimals print as the exact decimals they are
    assert "[ 0.5  -0.2 ]" in hand_output and "dZ[1] = dA[1] ⊙ [Z[1] > 0]" in hand_output


def test_decimal_inputs_are_exact_rationals():
    assert parse_number("0.55", "x") == sp.Rational(11, 20)
    assert decimal_text(parse_number("0.55", "x") + parse_number("0.475", "x")) == ("1.025", True)
    assert decimal_text(sp.Rational(1, 3)) == ("1/3", True)
    assert decimal_text(settle(1 / (1 + sp.exp(-sp.Rational(1, 2)))), 6) == ("0.622459", False)


def test_identity_network_prints_exact_decimals(tmp_path, capsys):
    weights = tmp_path / "w.json"
    weights.write_text('{"W1": [[0.55, 0.475]], "b1": [0]}')
    code, out, _ = run(capsys, "example", "2-1:identity", "--weights", str(weights),
                       "--x", "1, 1", "--y", "1", "--lr", "1")
    assert code == 0
    assert "A[1] = identity(Z[1]) = [ 1.025 ]" in out
    assert "dZ[1] = A[1] - Y = [ 0.025 ]" in out  # half_sse, identity output
    assert matrix(out, "W[1]", after="Update") == [[F("0.525"), F("0.45")]]


# --- several samples, sigmoid: contributions and an independent NumPy check -------------------

X5 = "0.5, 1; 1, 2; 0, 0; 3, -1; 0.25, 0.75"
Y5 = "1; 0; 1; 0; 1"


@pytest.fixture(scope="module")
def sigmoid_step():
    arch = parse_arch("2-3-1", "half_sse")
    params = draw_parameters(11, arch.sizes)
    samples = parse_samples(X5, Y5, 2, 1)
    return work_example(derive(arch), params, samples, sp.Rational(1, 10))


def test_per_sample_contributions_sum_to_m_times_dW(sigmoid_step):
    w = sigmoid_step
    assert w.m == 5
    for part in w.contributions:
        dW = w.value_of(part.gradient.name)
        total = sum(part.per_sample, sp.zeros(*dW.shape))
        for x, y in zip(total, dW):
            assert abs(x - 5 * y) < sp.Float("1e-45")
        # and no single sample's contribution is the mean: the 1/m matters
        assert any(abs(a - b) > 1e-6 for a, b in zip(part.per_sample[0], dW))


def _numpy_step(W, b, X, Y, lr):
    """Forward and backward for a sigmoid net with half_sse, in float64, written here."""
    sig = lambda z: 1 / (1 + np.exp(-z))
    As, Zs = [X], []
    for Wl, bl in zip(W, b):
        Zs.append(Wl @ As[-1] + bl)
        As.append(sig(Zs[-1]))
    m = X.shape[1]
    cost = 0.5 * np.sum((As[-1] - Y) ** 2) / m
    dA = As[-1] - Y
    grads = []
    for l in range(len(W) - 1, -1, -1):
        dZ = dA * As[l + 1] * (1 - As[l + 1])
        grads.append((dZ @ As[l].T / m, dZ.sum(axis=1, keepdims=True) / m))
        dA = W[l].T @ dZ
    grads.reverse()
    return As, cost, grads


def test_sigmoid_step_matches_an_independent_numpy_backprop(sigmoid_step):
    w = sigmoid_step
    to_np = lambda M: np.array(M.tolist(), dtype=float)
    W = [to_np(M) for M in w.parameters.weights]
    b = [to_np(M) for M in w.parameters.biases]
    As, cost, grads = _numpy_step(W, b, to_np(w.samples.X), to_np(w.samples.Y), 0.1)
    assert float(w.cost) == pytest.approx(cost, rel=1e-13)
    for l, (dW, db) in enumerate(grads, start=1):
        np.testing.assert_allclose(to_np(w.value_of(f"dW[{l}]")), dW, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(to_np(w.value_of(f"db[{l}]")), db, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(to_np(w.updated_value(f"W[{l}]")), W[l - 1] - 0.1 * dW,
                                   rtol=1e-12)
    np.testing.assert_allclose(to_np(w.value_of("A[2]")), As[-1], rtol=1e-13)


def test_softmax_cross_entropy_step_matches_central_differences(capsys):
    arch = parse_arch("2-3:tanh-3:softmax", "cross_entropy")
    params = draw_parameters(5, arch.sizes)
    samples = parse_samples("0.5, -1; 2, 0.25", "1, 0, 0; 0, 0, 1", 2, 3)
    w = work_example(derive(arch), params, samples, sp.Rational(1, 2))
    W = [np.array(M.tolist(), dtype=float) for M in params.weights]
    b = [np.array(M.tolist(), dtype=float) for M in params.biases]
    X = np.array(samples.X.tolist(), dtype=float)
    Y = np.array(samples.Y.tolist(), dtype=float)

    def cost(W, b):
        A1 = np.tanh(W[0] @ X + b[0])
        Z2 = W[1] @ A1 + b[1]
        P = np.exp(Z2) / np.exp(Z2).sum(axis=0)
        return -np.sum(Y * np.log(P)) / X.shape[1]

    assert float(w.cost) == pytest.approx(cost(W, b), rel=1e-13)
    h = 1e-6
    for l in range(2):
        for (i, j), _ in np.ndenumerate(W[l]):
            Wp = [M.copy() for M in W]
            Wm = [M.copy() for M in W]
            Wp[l][i, j] += h
            Wm[l][i, j] -= h
            numeric = (cost(Wp, b) - cost(Wm, b)) / (2 * h)
            assert float(w.value_of(f"dW[{l + 1}]")[i, j]) == pytest.approx(numeric, abs=1e-8)


def test_sigmoid_output_states_its_precision(capsys):
    code, out, _ = run(capsys, "example", "2-3-1", "--init", "3", "--x", X5, "--y", Y5)
    assert code == 0
    assert "rounded to 6 significant digits" in out
    assert "A[1] = sigmoid(Z[1])" in out and "≈ [ 0.574443" in out
    code, out10, _ = run(capsys, "example", "2-3-1", "--init", "3", "--x", X5, "--y", Y5,
                         "--digits", "10")
    assert "rounded to 10 significant digits" in out10 and "0.5744425168" in out10
    assert "Each sample's own contribution" in out and "dW[2] for i = 4" in out


def test_init_draws_reproducible_small_weights_and_prints_them(capsys):
    code, first, _ = run(capsys, "example", "2-3-1", "--init", "7", "--x", "1, 2", "--y", "1")
    _, again, _ = run(capsys, "example", "2-3-1", "--init", "7", "--x", "1, 2", "--y", "1")
    _, other, _ = run(capsys, "example", "2-3-1", "--init", "8", "--x", "1, 2", "--y", "1")
    assert code == 0 and first == again and first != other
    assert "drawn with --init 7" in first
    assert first.index("Parameters") < first.index("Forward pass")
    W = matrix(first, "W[1]", after="Parameters")
    assert len(W) == 3 and all(len(row) == 2 for row in W)
    assert all(sp.Rational(x.numerator, x.denominator) in INIT_CHOICES for row in W for x in row)
    assert matrix(first, "b[1]", after="Parameters") == [[0], [0], [0]]


def test_data_file_gives_the_same_step_as_x_and_y(tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text("x0,x1,y0\n0.5,1,1\n1,2,0\n")
    _, from_csv, _ = run(capsys, "example", "2-3-1", "--init", "1", "--data", str(data))
    _, from_args, _ = run(capsys, "example", "2-3-1", "--init", "1", "--x", "0.5, 1; 1, 2",
                          "--y", "1; 0")
    assert from_csv == from_args and "m = 2 samples" in from_csv


# --- errors: exit 2, one line naming the fault and the fix ----------------------------------

def _error(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


HAND = ("example", "2-2:relu-2:identity", "--loss", "mse")


@pytest.mark.parametrize("data,expected", [
    ({"b1": [0, 0], "W2": [[1, 1], [1, 1]], "b2": [0, 0]},
     "missing key 'W1': a list of 2 rows of 2 numbers, shape (2, 2) = (n_1, n_0)"),
    ({"W1": [[1, 1], [1, 1]], "W2": [[1, 1], [1, 1]], "b2": [0, 0]}, "missing key 'b1'"),
    ({"W1": [[1, 1, 1], [1, 1, 1]], "b1": [0, 0], "W2": [[1, 1], [1, 1]], "b2": [0, 0]},
     "'W1' must be a list of 2 rows of 2 numbers, shape (2, 2) = (n_1, n_0)"),
    ({"W1": [[1, 1], [1, 1]], "b1": [0, 0], "W2": [[1, 1]], "b2": [0, 0]},
     "'W2' must be a list of 2 rows of 2 numbers, shape (2, 2) = (n_2, n_1)"),
    ({"W1": [[1, 1], [1, 1]], "b1": [0, 0, 0], "W2": [[1, 1], [1, 1]], "b2": [0, 0]},
     "'b1' must be a list of 2 numbers (n_1 = 2)"),
    ({"W1": [[1, "a"], [1, 1]], "b1": [0, 0], "W2": [[1, 1], [1, 1]], "b2": [0, 0]},
     'W1[0][1] must be a number, got "a"'),
    ({"W1": [[1, 1], [1, 1]], "b1": [0, True], "W2": [[1, 1], [1, 1]], "b2": [0, 0]},
     "b1[1] must be a number, got true"),
    ({"W1": [[1, 1], [1, None]], "b1": [0, 0], "W2": [[1, 1], [1, 1]], "b2": [0, 0]},
     "W1[1][1] must be a number, got null"),
    ({"W1": [[1, 1], [1, 1]], "b1": [0, 0], "W2": [[1, 1], [1, 1]], "b2": [0, 0], "W3": []},
     "unknown key 'W3'; this network has W1, b1, W2, b2"),
    ([1, 2], "expected a JSON object with keys W1, b1"),
])
def test_bad_weights_files_are_refused_naming_the_key_and_shape(tmp_path, capsys, data,
                                                                expected):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(data))
    err = _error(capsys, *HAND, "--weights", str(path), "--x", "1, 2", "--y", "1, 0")
    assert expected in err


def test_unreadable_and_invalid_weights_files(tmp_path, capsys):
    err = _error(capsys, *HAND, "--weights", str(tmp_path / "none.json"), "--x", "1, 2",
                 "--y", "1, 0")
    assert "cannot read weights file" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"W1": [[1, 2]')
    assert "is not valid JSON" in _error(capsys, *HAND, "--weights", str(bad), "--x", "1, 2",
                                         "--y", "1, 0")
    nan = tmp_path / "nan.json"
    nan.write_text('{"W1": [[NaN, 1], [1, 1]], "b1": [0, 0], "W2": [[1, 1], [1, 1]], '
                   '"b2": [0, 0]}')
    assert "not valid JSON" in _error(capsys, *HAND, "--weights", str(nan), "--x", "1, 2",
                                      "--y", "1, 0")


@pytest.mark.parametrize("x,y,expected", [
    ("1, 2, 3", "1, 0", "--x: sample 1 has 3 number(s), but the input layer (n_0 = 2) needs 2"),
    ("1, 2; 3", "1, 0; 0, 1", "--x: sample 2 has 1 number(s)"),
    ("1, 2", "1", "--y: sample 1 has 1 number(s), but the output layer (n_L = 2) needs 2"),
    ("1, 2; 3, 4", "1, 0", "2 input sample(s) but 1 target(s)"),
    ("1, abc", "1, 0", "--x sample 1: 'abc' is not a number"),
    ("1, 2", "1, inf", "--y sample 1: 'inf' is not a number"),
    ("", "1, 0", "--x is empty"),
])
def test_bad_inputs_and_targets_are_refused(capsys, x, y, expected):
    err = _error(capsys, *HAND, "--init", "1", "--x", x, "--y", y)
    assert expected in err


def test_cross_entropy_targets_must_sum_to_one(capsys):
    err = _error(capsys, "example", "2-3:softmax", "--loss", "cross_entropy", "--init", "1",
                 "--x", "1, 2; 3, 4", "--y", "0, 1, 0; 0.5, 0, 0")
    assert "needs each sample's targets to sum to 1" in err and "sample 2 sums to 0.5" in err
    assert main(["example", "2-3:softmax", "--loss", "cross_entropy", "--init", "1",
                 "--x", "1, 2; 3, 4", "--y", "0, 1, 0; 0.5, 0, 0.5"]) == 0


def test_other_bad_example_arguments(tmp_path, capsys):
    assert "missing --y" in _error(capsys, *HAND, "--init", "1", "--x", "1, 2")
    data = tmp_path / "d.csv"
    data.write_text("1,2,3\n")
    assert "not both" in _error(capsys, *HAND, "--init", "1", "--data", str(data), "--x", "1, 2")
    assert "sample 1 has 3 column(s), expected 4" in _error(capsys, *HAND, "--init", "1",
                                                            "--data", str(data))
    assert "--lr: 'fast' is not a number" in _error(capsys, *HAND, "--init", "1", "--x", "1, 2",
                                                    "--y", "1, 0", "--lr", "fast")
    assert "--lr must be positive" in _error(capsys, *HAND, "--init", "1", "--x", "1, 2",
                                             "--y", "1, 0", "--lr", "-0.1")
    # neither --weights nor --init: argparse's own one-line error
    with pytest.raises(SystemExit) as exit_info:
        main([*HAND, "--x", "1, 2", "--y", "1, 0"])
    assert exit_info.value.code == 2
    assert "one of the arguments --weights --init is required" in capsys.readouterr().err


# --- the L2 penalty: J gains (λ/2m) Σ_l ‖W^[l]‖² ------------------------------------------------

def _relu_net_cost(W, b, X, Y, lam):
    """J of relu hidden layers and an identity output with mse and the L2 penalty, in Fractions:
    written here from the definitions, not from any derivation."""
    m = len(X)
    total = F(0)
    for x, y in zip(X, Y):
        a = list(x)
        for l, (Wl, bl) in enumerate(zip(W, b)):
            z = [sum(Wl[r][t] * a[t] for t in range(len(a))) + bl[r] for r in range(len(bl))]
            a = z if l == len(W) - 1 else [v if v > 0 else F(0) for v in z]
        total += sum((p - q) ** 2 for p, q in zip(a, y)) / len(y)
    penalty = lam / (2 * m) * sum(v ** 2 for Wl in W for row in Wl for v in row)
    return total / m + penalty


def _fractions(matrix_):
    return [[F(int(v.p), int(v.q)) for v in row] for row in matrix_.tolist()]


@pytest.mark.parametrize("spec,lam", [("2-2:identity", "0.5"), ("2-3:relu-2:identity", "0.1"),
                                      ("3-2:relu-2:relu-2:identity", "1/4"),
                                      ("2-2:relu-3:relu-2:relu-1:identity", "0.01")])
def test_l2_step_equals_exact_central_differences_of_a_fraction_cost(spec, lam):
    # relu and identity layers with mse: J is quadratic in each parameter between the kinks, so
    # a central difference in Fractions is the exact derivative, penalty included
    arch = parse_arch(spec, "mse", l2=lam.replace("1/4", "0.25"))
    rng = random.Random(spec)  # no zero weight or bias: no pre-activation exactly at a kink
    choices = [F(k, 20) for k in range(-15, 16) if k]
    params = parameters_from_mapping(
        {f"{kind}{l}": [[rng.choice(choices) for _ in range(arch.sizes[l - 1])]
                        if kind == "W" else rng.choice(choices) for _ in range(arch.sizes[l])]
         for l in range(1, len(arch.sizes)) for kind in "Wb"}, arch.sizes, "test")
    x = "; ".join(", ".join(row[: arch.sizes[0]]) for row in (["0.5", "-1.5", "0.75"],
                                                               ["1.25", "0.5", "-2"]))
    y = "; ".join(", ".join(row[: arch.sizes[-1]]) for row in (["1", "-0.5"], ["0.25", "2"]))
    samples = parse_samples(x, y, arch.sizes[0], arch.sizes[-1])
    w = work_example(derive(arch), params, samples, sp.Rational(1, 10))
    W = [_fractions(M) for M in params.weights]
    b = [[row[0] for row in _fractions(v)] for v in params.biases]
    X = _transpose(_fractions(samples.X))
    Y = _transpose(_fractions(samples.Y))
    lam = F(lam)
    assert F(int(w.cost.p), int(w.cost.q)) == _relu_net_cost(W, b, X, Y, lam)
    assert w.penalty == sp.Rational(lam / (2 * len(X))
                                    * sum(v ** 2 for Wl in W for row in Wl for v in row))
    h = F(1, 10 ** 6)
    for l in range(len(W)):
        for (kind, table) in (("W", W), ("b", b)):
            cells = [(i, j) for i in range(len(table[l])) for j in range(len(table[l][0]))] \
                if kind == "W" else [(i, None) for i in range(len(table[l]))]
            for i, j in cells:
                up = _nudged(W, b, kind, l, i, j, h)
                down = _nudged(W, b, kind, l, i, j, -h)
                numeric = (_relu_net_cost(*up, X, Y, lam) - _relu_net_cost(*down, X, Y, lam)) \
                    / (2 * h)
                exact = w.value_of(f"d{kind}[{l + 1}]")[i, j if j is not None else 0]
                assert F(int(exact.p), int(exact.q)) == numeric, (kind, l + 1, i, j)


def _nudged(W, b, kind, l, i, j, delta):
    """Copies of W and b with one entry moved by delta."""
    W2, b2 = [[list(r) for r in M] for M in W], [list(v) for v in b]
    if kind == "W":
        W2[l][i][j] += delta
    else:
        b2[l][i] += delta
    return W2, b2


def test_l2_penalty_is_shown_in_the_cost_the_gradient_and_the_update(capsys):
    code, out, err = run(capsys, "example", "2-2:relu-1:identity", "--loss", "mse", "--init", "0",
                         "--x", "1 2; 0.5 -1", "--y", "3; 1", "--l2", "0.1")
    assert code == 0, err  # before: "internal error: ... has free symbols {lambda}"
    assert "L2 penalty on the weights: λ = 0.1 (biases are not penalised)." in out
    # W1 = [[0.1, 0.1], [-0.5, -0.1]], W2 = [[0.3, 0.2]]: (0.1/4) (0.28 + 0.13) = 0.01025
    cost = block(out, "J")
    assert cost[0].endswith("(λ/(2 m)) Σ[t=0..1] Σ[j=0..1] W[1][j,t]² + (λ/(2 m)) Σ[t=0..1] "
                            "Σ[j=0..0] W[2][j,t]²")
    assert cost[1].strip() == "= 4.73405 + 0.01025" and cost[2].strip() == "= 4.7443"
    dW1 = block(out, "dW[1]", after="Backward")
    assert dW1[0].strip().startswith("dW[1] = (1/m) dZ[1] A[0]ᵀ + (λ/m) W[1]")
    assert "[ -0.873  -1.746 ] + [  0.005   0.005 ]" in dW1[1]  # the loss's part + (λ/m) W
    assert matrix("\n".join(dW1[3:]), "=") == [[F("-0.868"), F("-1.741")],
                                               [F("-0.025"), F("-0.005")]]
    # the per-sample parts are the loss's alone; dW adds the penalty
    assert "(1/m) dZ[1] A[0]ᵀ = [ -0.873  -1.746 ]" in out and "dW[1] adds (λ/m) W[1] to it." in out
    assert "scales every weight by 0.995" in out  # 1 - αλ/m = 1 - 0.1 · 0.1 / 2
    update = block(out, "W[1]", after="Update")
    assert update[1].strip() == "= W[1] - (α λ/m) W[1] - α (1/m) dZ[1] A[0]ᵀ"
    assert matrix(out, "W[1]", after="Update") == [[F("0.1868"), F("0.2741")],
                                                   [F("-0.4975"), F("-0.0995")]]
    # the biases move as without the penalty
    assert matrix(out, "b[1]", after="Update") == [[F("0.0873")], [F(0)]]


def test_without_l2_nothing_about_a_penalty_is_printed(capsys):
    code, out, _ = run(capsys, "example", "2-2:relu-1:identity", "--loss", "mse", "--init", "0",
                       "--x", "1 2", "--y", "3")
    assert code == 0 and "penalty" not in out and "λ" not in out


def test_piecewise_activations_are_exact_where_rational_and_50_digits_where_not():
    from symbackprop.registry import z

    data = {"W1": [[1], [-1]], "b1": [0, 0], "W2": [[1, 1]], "b2": [0]}
    for name in ("elu", "selu"):
        arch = parse_arch(f"1-2:{name}-1:identity", "huber")
        params = parameters_from_mapping(data, arch.sizes, "test")
        w = work_example(derive(arch), params, parse_samples("0.5", "3", 1, 1), sp.Rational(1, 10))
        positive, negative = w.value_of("A[1]")
        entry = arch.activation_entries[0].expr
        assert positive.is_Rational and positive == entry.subs(z, sp.Rational(1, 2))
        assert not negative.is_Rational and negative._prec >= 160  # 50 significant digits
        assert abs(negative - sp.N(entry.subs(z, sp.Rational(-1, 2)), 60)) < sp.Float("1e-48")
        # Huber beyond |A - Y| = 1: the error is sign(A - Y) = -1, exactly
        assert w.value_of("dZ[2]") == sp.Matrix([[-1]])
