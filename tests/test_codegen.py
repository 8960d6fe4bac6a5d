"""Generated NumPy trainers: gradients against central differences, the SGD step, training,
float32, numerical stability and relative accuracy, input validation, the command and the
generated module's CLI. The tests run over every entry of the registry (and a few functions
users write), taken from the tables: adding an entry adds its cases."""
from __future__ import annotations

import re
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from codegen_helpers import (
    HIDDEN,
    USER_ACTIVATIONS,
    USER_LOSSES,
    activation,
    combinations,
    hidden_for,
    load,
    loss_entry,
    random_params,
    relative_error,
    source,
    spec_for,
    targets,
)

from symbackprop.cli import main as cli_main
from symbackprop.registry import ACTIVATIONS, LOSSES

ROOT = Path(__file__).resolve().parent.parent
COMBOS = list(combinations())
DEPTHS = (1, 2, 3, 4)
GRADIENT_CASES = [(k, output, loss, depth) for k, (output, loss) in enumerate(COMBOS)
                  for depth in DEPTHS]


def data(module, m, rng, loss):
    sizes = module.ARCH["sizes"]
    return rng.standard_normal((m, sizes[0])), targets(loss, sizes[-1], m, rng)


# --- gradients --------------------------------------------------------------------------------

def gradient_spec(k, output, depth, loss):
    rng = np.random.default_rng(zlib.crc32(f"{output} {loss} {depth}".encode()))
    return spec_for(output, depth, rng, start=k + depth), rng


def test_gradient_cases_cover_every_entry_at_every_depth():
    outputs = {output for _, output, _, _ in GRADIENT_CASES}
    losses = {loss for _, _, loss, _ in GRADIENT_CASES}
    hidden = {part.split(":")[1] for k, output, loss, depth in GRADIENT_CASES
              for part in gradient_spec(k, output, depth, loss)[0].split("-")[1:-1]}
    assert outputs == set(ACTIVATIONS) | set(USER_ACTIVATIONS)
    assert losses == set(LOSSES) | set(USER_LOSSES)
    assert hidden == set(HIDDEN)
    assert {depth for *_, depth in GRADIENT_CASES} == set(DEPTHS)


@pytest.mark.parametrize("k,output,loss,depth", GRADIENT_CASES,
                         ids=[f"{o}-{l}-{d}" for _, o, l, d in GRADIENT_CASES])
def test_gradients_match_central_differences(k, output, loss, depth):
    """float64 against central differences; float32 against float64 at the same point."""
    spec, rng = gradient_spec(k, output, depth, loss)
    module = load(spec, loss)
    for _ in range(5):  # a draw where every unit is dead (relu) would prove nothing: draw again
        X, Y = data(module, 4, rng, loss)
        params = random_params(module, rng)
        numeric = module.numeric_gradients(params, X, Y)
        if sum(float(np.abs(v).sum()) for v in numeric.values()) > 1e-8:
            break
    else:
        pytest.fail(f"{spec} {loss}: all gradients vanish in five draws")
    analytic = module.gradients(params, X, Y)
    assert set(analytic) == set(params)
    for key in params:
        assert analytic[key].shape == params[key].shape
    err = relative_error(analytic, numeric)
    assert err < 1e-6, f"{spec} {loss}: relative error {err:.2e}\n{analytic}\n{numeric}"
    p32 = {key: value.astype(np.float32) for key, value in params.items()}
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    g32 = module.gradients(p32, X32, Y32)
    assert all(g.dtype == np.float32 for g in g32.values())
    g64 = module.gradients({key: v.astype(np.float64) for key, v in p32.items()},
                           X32.astype(np.float64), Y32.astype(np.float64))
    err32 = relative_error(g32, g64)
    assert err32 < 1e-4, f"{spec} {loss}: float32 relative error {err32:.2e}"


def test_gradient_check_catches_a_wrong_gradient():
    """The check is not vacuous: a gradient off by a small amount fails it."""
    rng = np.random.default_rng(0)
    module = load("3-4:tanh-2:sigmoid", "bce")
    X, Y = data(module, 5, rng, "bce")
    params = random_params(module, rng)
    wrong = module.gradients(params, X, Y)
    wrong["W1"][0, 0] += 1e-3
    assert relative_error(wrong, module.numeric_gradients(params, X, Y)) > 1e-6


# --- one step, training, float32 ----------------------------------------------------------------

STEP_CASES = [("2-3-1", "half_sse"), ("4-5:relu-3:softmax", "cross_entropy"),
              ("3-4:tanh-4:leaky_relu-2:identity", "mse"), ("3-2:softplus-2:sigmoid", "bce")]


@pytest.mark.parametrize("spec,loss", STEP_CASES)
def test_sgd_step_is_params_minus_lr_times_gradients(spec, loss):
    rng = np.random.default_rng(1)
    module = load(spec, loss)
    X, Y = data(module, 7, rng, loss)
    params = random_params(module, rng)
    expected_cost = module.cost(params, X, Y)
    grads = module.gradients(params, X, Y)
    trainer = module.Trainer({k: v.copy() for k, v in params.items()}, lr=0.3, batch_size=7)
    returned = trainer.step(X, Y)
    assert returned == pytest.approx(expected_cost, rel=1e-12)
    for key in params:
        np.testing.assert_allclose(trainer.params[key], params[key] - 0.3 * grads[key],
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss", [*LOSSES, *USER_LOSSES])
def test_cost_is_the_mean_of_the_loss_as_the_spec_defines_it(loss):
    """J = (1/m) sum_i sum_c term(a, y), computed here from the entry's SymPy term."""
    import sympy as sp

    from symbackprop.registry import a, n, y

    rng = np.random.default_rng(2)
    output = next(act for act, name in COMBOS if name == loss)
    module = load(f"3-4:{hidden_for(output)}-3:{output}", loss)
    X, Y = data(module, 6, rng, loss)
    params = random_params(module, rng)
    A = module.forward(params, X)
    term = sp.lambdify((a, y, n), loss_entry(loss).term, "numpy")
    expected = float(np.sum(term(A, Y, A.shape[1]))) / X.shape[0]
    assert module.cost(params, X, Y) == pytest.approx(expected, rel=1e-10)


def teacher_problem(module, loss, m, rng):
    """Targets made by another network of the same architecture: learnable by construction."""
    teacher = module.init_params(seed=99)
    X = rng.standard_normal((m, module.ARCH["sizes"][0]))
    out = module.forward(teacher, X)
    if loss_entry(loss).targets_sum_to_one:
        return X, np.eye(out.shape[1])[out.argmax(axis=1)]
    if tuple(loss_entry(loss).y_domain) == (0.0, 1.0):
        return X, (out > 0.5).astype(float)
    return X, out


def small_net(output) -> str:
    """The network every entry trains, and is checked for stability and ruff, in."""
    return f"2-3:{hidden_for(output)}-3:{output}"


LEARN_CASES = [(output, loss, "sgd") for output, loss in COMBOS] + \
    [(output, loss, optimizer) for output, loss in COMBOS[:: max(1, len(COMBOS) // 6)]
     for optimizer in ("momentum", "adam")]


@pytest.mark.parametrize("output,loss,optimizer", LEARN_CASES,
                         ids=[f"{a}-{l}-{o}" for a, l, o in LEARN_CASES])
def test_cost_falls_on_a_learnable_problem(output, loss, optimizer):
    rng = np.random.default_rng(3)
    module = load(small_net(output), loss)
    X, Y = teacher_problem(module, loss, 128, rng)
    lr = {"sgd": 0.1, "momentum": 0.02, "adam": 0.005}[optimizer]
    trainer = module.Trainer(lr=lr, optimizer=optimizer, batch_size=16, seed=1)
    before = module.cost(trainer.params, X, Y)
    costs = trainer.fit(X, Y, epochs=40, verbose=False)
    assert len(costs) == 40
    assert module.cost(trainer.params, X, Y) < 0.7 * before, (before, costs[-5:])


def test_float32_trains_and_matches_float64():
    rng = np.random.default_rng(4)
    module = load("5-6:relu-4:softmax", "cross_entropy", dtype="float32")
    assert module.DTYPE is np.float32
    X, Y = teacher_problem(module, "cross_entropy", 64, rng)
    params64 = random_params(module, rng)
    params32 = {k: v.astype(np.float32) for k, v in params64.items()}
    g64, g32 = module.gradients(params64, X, Y), module.gradients(params32, X, Y)
    for key in g64:
        assert g32[key].dtype == np.float32
        np.testing.assert_allclose(g32[key], g64[key], rtol=2e-3, atol=2e-5)
    trainer = module.Trainer(lr=0.2, batch_size=8)
    assert all(v.dtype == np.float32 for v in trainer.params.values())
    costs = trainer.fit(X, Y, epochs=40, verbose=False)
    assert costs[-1] < 0.6 * costs[0]
    assert trainer.predict(X).dtype == np.float32


# --- numerical stability --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output,loss", COMBOS, ids=[f"{a}-{l}" for a, l in COMBOS])
def test_stable_at_pre_activations_and_errors_of_1000(output, loss, dtype):
    """|z| = 1000 in every layer, targets at probability 0 or |a - y| = 1000: finite, and no
    overflow, division by zero, invalid operation or warning (values below the smallest float
    underflow to it, as the exact values do)."""
    module = load(small_net(output), loss)
    params = {
        "W1": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]) * 1000.0, "b1": np.zeros(3),
        "W2": np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) * 1000.0,
        "b2": np.array([0.0, 0.0, -1000.0]),
    }
    params = {key: value.astype(dtype) for key, value in params.items()}
    X = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])
    n = 3
    entry = loss_entry(loss)
    if entry.targets_sum_to_one:
        targets_list = [np.eye(n)[[2, 2, 0, 1]]]  # classes whose probability underflows to 0
    elif tuple(entry.y_domain) == (0.0, 1.0):
        targets_list = [np.array([[0.0, 1.0, 1.0]] * 4)]
    else:
        targets_list = [np.zeros((4, n)), 1000.0 * np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]] * 2)]
    for Y in targets_list:
        with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
            warnings.simplefilter("error")
            out = module.forward(params, X)
            J = module.cost(params, X, Y)
            grads = module.gradients(params, X, Y)
            trainer = module.Trainer({k: v.copy() for k, v in params.items()}, batch_size=4,
                                     dtype=dtype)
            trainer.step(X, Y)
        assert np.isfinite(out).all() and np.isfinite(J)
        assert all(np.isfinite(g).all() for g in grads.values())
        assert all(np.isfinite(p).all() for p in trainer.params.values())


ELEMENTWISE = [name for name in HIDDEN]
GRID = sorted({s * v for v in (1e-300, 1e-30, 1e-8, 0.3, 1.0, 1.7, 3.0, 10.0, 15.0, 20.0, 37.0,
                               38.0, 50.0, 80.0, 100.0, 300.0, 700.0) for s in (1, -1)})


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activations_are_accurate_in_relative_terms(name, dtype):
    """g(z) from the generated forward pass, against g at 60 digits: relative error at most
    64 eps (1 + |z g'(z) / g(z)|), the error that rounding z alone makes, wherever g(z) is a
    normal number of the dtype (an exp of z that underflows is allowed to, not to lose digits
    before: 1/(1 + e^-z) at z = -38 is 3e-17, not 0; at z = -15 in float32 it is 3.06e-7 to
    7 digits)."""
    import mpmath
    import sympy as sp

    from symbackprop.registry import z

    entry = activation(name)
    g = sp.lambdify(z, entry.expr, "mpmath")
    gp = sp.lambdify(z, entry.derivative, "mpmath")
    module = load(f"1-1:{name}", "half_sse")
    info = np.finfo(dtype)
    params = {"W1": np.ones((1, 1), dtype), "b1": np.zeros(1, dtype)}
    values = np.array([v for v in GRID if abs(v) <= np.log(info.max) and (v == 0 or
                                                                          abs(np.dtype(dtype).type(v)) > 0)],
                      dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        got = module.forward(params, values[:, None])[:, 0]
    with mpmath.workdps(60):
        for x, value in zip(values, got):
            exact = g(mpmath.mpf(float(x)))
            if not info.tiny <= abs(exact) <= info.max:
                continue
            condition = abs(mpmath.mpf(float(x)) * gp(mpmath.mpf(float(x))) / exact)
            error = abs((mpmath.mpf(float(value)) - exact) / exact)
            assert error <= 64 * info.eps * (1 + condition), \
                f"{name}({x}) = {value} in {dtype}, exactly {mpmath.nstr(exact, 17)}"


def test_cross_entropy_at_probability_zero_is_the_exact_large_value():
    module = load("2-2:softmax", "cross_entropy")
    params = {"W1": np.array([[1000.0, 0.0], [-1000.0, 0.0]]), "b1": np.zeros(2)}
    X, Y = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert module.cost(params, X, Y) == pytest.approx(2000.0)  # -log softmax = 2000


# --- the L2 penalty and the user's functions -------------------------------------------------

L2_CASES = [("3-4:tanh-2:sigmoid", "bce", "0.05"), ("2-3:relu-3:softmax", "cross_entropy", "1e-3"),
            ("2-3:swish-2:gelu-2:identity", "pseudo_huber", "0.3")]


@pytest.mark.parametrize("spec,loss,l2", L2_CASES, ids=[f"{s} {l} {p}" for s, l, p in L2_CASES])
def test_l2_penalty_in_cost_gradients_and_training(spec, loss, l2):
    """J gains (l2/2m) sum ||W||^2 (biases free), every dW gains (l2/m) W, and the SGD step
    follows the gradient that includes it."""
    rng = np.random.default_rng(9)
    module, plain = load(spec, loss, l2=l2), load(spec, loss)
    assert module.ARCH["l2"] == float(l2) and plain.ARCH["l2"] == 0.0
    X, Y = data(module, 5, rng, loss)
    params = random_params(module, rng)
    weights = sum(float(np.sum(v**2)) for k, v in params.items() if k.startswith("W"))
    assert module.cost(params, X, Y) == pytest.approx(
        plain.cost(params, X, Y) + float(l2) / (2 * 5) * weights, rel=1e-12)
    grads = module.gradients(params, X, Y)
    err = relative_error(grads, module.numeric_gradients(params, X, Y))
    assert err < 1e-6, f"{spec} {loss} l2={l2}: relative error {err:.2e}"
    base = plain.gradients(params, X, Y)
    for key in params:
        extra = float(l2) / 5 * params[key] if key.startswith("W") else 0.0
        np.testing.assert_allclose(grads[key], base[key] + extra, rtol=1e-10, atol=1e-13)
    trainer = module.Trainer({k: v.copy() for k, v in params.items()}, lr=0.3, batch_size=5)
    assert trainer.step(X, Y) == pytest.approx(module.cost(params, X, Y), rel=1e-12)
    for key in params:
        np.testing.assert_allclose(trainer.params[key], params[key] - 0.3 * grads[key],
                                   rtol=1e-12, atol=1e-14)


def test_a_module_records_the_users_functions_and_its_command_regenerates_it(capsys):
    import shlex

    text = source("2-3:swish-2:bump-1:identity", "pseudo_huber", l2="0.01")
    module = load("2-3:swish-2:bump-1:identity", "pseudo_huber", l2="0.01")
    assert module.ARCH["define"] == {
        "activations": {"swish": "z*sigmoid(z)",
                        "bump": "where(z*z < 4, exp(1 - 4/(4 - z*z)), 0)"},
        "losses": {"pseudo_huber": "sqrt(1 + (a - y)**2) - 1"}}
    command = next(line.strip() for line in text.splitlines()
                   if line.strip().startswith("symbackprop generate"))
    assert "--activation 'swish=z*sigmoid(z)'" in command and "--l2 0.01" in command
    assert cli_main(shlex.split(command)[1:]) == 0
    assert capsys.readouterr().out == text


def test_a_spec_file_with_definitions_generates_the_same_module(tmp_path, capsys):
    spec = tmp_path / "net.toml"
    spec.write_text('arch = "2-3:swish-2:identity"\nloss = "pseudo_huber"\n\n'
                    '[define.activations]\nswish = "z*sigmoid(z)"\n\n'
                    '[define.losses]\npseudo_huber = "sqrt(1 + (a - y)**2) - 1"\n')
    assert cli_main(["generate", str(spec)]) == 0
    assert capsys.readouterr().out == source("2-3:swish-2:identity", "pseudo_huber")


# --- validation -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_module():
    return load("64-32:relu-10:softmax", "cross_entropy")


BAD_INPUTS = [
    ("X 1-D", lambda X, Y: (X[0], Y[:1]), r"X must have shape \(m, 64\)"),
    ("X wrong width", lambda X, Y: (X[:, :63], Y), r"X must have shape \(m, 64\)"),
    ("X strings", lambda X, Y: (X.astype(str), Y), r"X must be a real-valued array of shape \(m, 64\)"),
    ("X complex", lambda X, Y: (X + 1j, Y), r"shape \(m, 64\)"),
    ("X object", lambda X, Y: (X.astype(object), Y), r"shape \(m, 64\)"),
    ("X NaN", lambda X, Y: (np.where(X > 1.5, np.nan, X), Y), r"X of shape \(m, 64\) contains NaN"),
    ("X inf", lambda X, Y: (np.where(X > 1.5, np.inf, X), Y), r"X of shape \(m, 64\) contains NaN or inf"),
    ("Y NaN", lambda X, Y: (X, np.where(Y > 0.5, np.nan, Y)), r"Y of shape \(8, 10\) contains NaN"),
    ("Y labels", lambda X, Y: (X, Y.argmax(axis=1)), r"Y must have shape \(8, 10\).*one-hot"),
    ("Y wrong rows", lambda X, Y: (X, Y[:5]), r"Y must have shape \(8, 10\)"),
    ("Y not one-hot", lambda X, Y: (X, Y * 2), r"Y of shape \(m, 10\) must hold"),
    ("Y negative", lambda X, Y: (X, Y - 0.5), r"Y of shape \(m, 10\) must hold probabilities"),
]


@pytest.mark.parametrize("name,spoil,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_rejected_before_any_work(digits_module, name, spoil, message, capsys):
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((8, 64)), np.eye(10)[rng.integers(0, 10, 8)]
    bad_X, bad_Y = spoil(X, Y)
    trainer = digits_module.Trainer(batch_size=4)
    before = {k: v.copy() for k, v in trainer.params.items()}
    for call in (lambda: trainer.step(bad_X, bad_Y), lambda: trainer.fit(bad_X, bad_Y),
                 lambda: digits_module.gradients(before, bad_X, bad_Y),
                 lambda: digits_module.cost(before, bad_X, bad_Y)):
        with pytest.raises(ValueError, match=message):
            call()
    assert capsys.readouterr().out == ""  # fit printed no epoch
    for key, value in before.items():
        np.testing.assert_array_equal(trainer.params[key], value)


def test_bad_params_and_settings(digits_module):
    params = digits_module.init_params()
    X = np.zeros((2, 64))
    with pytest.raises(ValueError, match=r"params\['W1'\] must be a real array of shape \(32, 64\)"):
        digits_module.forward({**params, "W1": params["W1"].T}, X)
    with pytest.raises(ValueError, match="keys W1, b1, W2, b2"):
        digits_module.forward({"W1": params["W1"]}, X)
    with pytest.raises(ValueError, match="optimizer must be one of sgd, momentum, adam"):
        digits_module.Trainer(optimizer="rmsprop")
    with pytest.raises(ValueError, match="batch_size"):
        digits_module.Trainer(batch_size=0)
    with pytest.raises(ValueError, match="float32 or float64"):
        digits_module.Trainer(dtype=np.int64)


def test_api_shapes_and_init(digits_module):
    params = digits_module.init_params(seed=3)
    assert list(params) == ["W1", "b1", "W2", "b2"]
    assert params["W1"].shape == (32, 64) and params["b1"].shape == (32,)
    assert params["W2"].shape == (10, 32) and params["b2"].shape == (10,)
    assert np.std(params["W1"]) == pytest.approx(np.sqrt(2 / 64), rel=0.1)  # he
    assert digits_module.ARCH == {"sizes": (64, 32, 10), "activations": ("relu", "softmax"),
                                  "loss": "cross_entropy", "l2": 0.0}
    out = digits_module.forward(params, np.random.default_rng(0).standard_normal((5, 64)))
    assert out.shape == (5, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    xavier = load("64-32:relu-10:softmax", "cross_entropy", init="xavier")
    assert np.std(xavier.init_params()["W1"]) == pytest.approx(np.sqrt(2 / 96), rel=0.1)


def test_save_and_load_round_trip(digits_module, tmp_path):
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((20, 64)), np.eye(10)[rng.integers(0, 10, 20)]
    trainer = digits_module.Trainer(lr=0.05, optimizer="momentum", batch_size=5, seed=2)
    trainer.fit(X, Y, epochs=2, verbose=False)
    trainer.save(tmp_path / "w.npz")
    again = digits_module.Trainer.load(tmp_path / "w.npz")
    assert (again.lr, again.optimizer, again.batch_size) == (0.05, "momentum", 5)
    np.testing.assert_array_equal(again.predict(X), trainer.predict(X))


def test_fit_prints_one_line_per_epoch(digits_module, capsys):
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((10, 64)), np.eye(10)[rng.integers(0, 10, 10)]
    costs = digits_module.Trainer(batch_size=4).fit(X, Y, epochs=3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3  cost ")
    assert float(lines[-1].split()[3]) == pytest.approx(costs[-1], abs=1e-6)  # then seconds


# --- the generated code itself ------------------------------------------------------------------

def test_comments_quote_each_equation():
    text = source("64-32:relu-10:softmax", "cross_entropy")
    for line in ["# BP3: dA1 = W2.T @ dZ2    (rows are examples: dA1 = dZ2 @ W2)",
                 "# BP1: dW2 = (1/m) * dZ2 @ A1.T    (rows are examples: dW2 = (1/m) * dZ2.T @ A1)",
                 "# output: dZ2 = A2 - Y",
                 "# Z1 = W1 @ A0 + b1    (rows are examples: Z1 = A0 @ W1.T + b1)"]:
        assert line in text
    code = text[text.index("def _train_step"):text.index("# --- checking input")]
    assert "np.dot(dZ2, W2, dA1)" in code and "np.dot(dZ1, W1" not in code  # no input gradient
    assert "np.greater(Z1, c0_0, H1)" in code  # a float 0/1 mask, reused by BP4
    assert "np.multiply(dA1, H1, dZ1)" in code


def test_output_is_deterministic_with_header_and_no_paths():
    a = source("3-1:relu-2:relu", "mse")
    source.cache_clear()
    b = source("3-1:relu-2:relu", "mse")
    assert a == b
    header = a[:a.index('"""', 3)]
    assert "    symbackprop generate 3-1:relu-2:relu --loss mse\n" in header
    assert "3-1:relu-2:relu with loss mse" in header
    assert not re.search(r"\d{4}-\d\d-\d\d|/tmp/|/home/|/work/", a)


def test_generated_code_is_ruff_clean(tmp_path):
    for k, (output, loss) in enumerate(COMBOS):
        (tmp_path / f"t{k}.py").write_text(source(small_net(output), loss))
    (tmp_path / "adam.py").write_text(source("2-3-1", "half_sse", optimizer="adam",
                                             dtype="float32", init="normal"))
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_codegen_has_no_rule_for_any_activation_by_name():
    """Every kernel comes from SymPy expressions: no activation or loss named in the generator."""
    import sympy as sp

    names = [*ACTIVATIONS, *LOSSES]
    files = [*(ROOT / "symbackprop" / "codegen").glob("*.py"), ROOT / "templates" / "trainer.py.j2"]
    for path in files:
        text = path.read_text()
        for name in names:
            # tanh is also a SymPy function (the printer's identities use sp.tanh)
            pattern = rf"[\"']{name}[\"']" if hasattr(sp, name) else rf"\b{name}\b"
            assert not re.search(pattern, text), f"{path.name} mentions {name}"


# --- the command ------------------------------------------------------------------------------------

def test_generate_command(tmp_path, capsys):
    assert cli_main(["generate", "2-3-1"]) == 0
    printed = capsys.readouterr().out
    assert printed == source("2-3-1", "half_sse")
    target = tmp_path / "my_trainer.py"
    assert cli_main(["generate", "2-3:relu-1:identity", "--loss", "mse", "--optimizer", "adam",
                     "--dtype", "float32", "--init", "xavier", "-o", str(target)]) == 0
    text = target.read_text()
    assert "symbackprop generate 2-3:relu-1:identity --loss mse --optimizer adam " \
           "--dtype float32 --init xavier -o my_trainer.py" in text
    assert 'OPTIMIZER = "adam"' in text and "DTYPE = np.float32" in text
    assert str(tmp_path) not in text
    assert cli_main(["generate", "2-3-1", "-o", str(target)]) == 2
    assert "--force" in capsys.readouterr().err
    assert target.read_text() == text
    assert cli_main(["generate", "2-3-1", "-o", str(target), "--force"]) == 0
    assert target.read_text() != text


@pytest.mark.parametrize("name", ["my-trainer.py", "class.py", "1net.py", "net.txt"])
def test_generate_refuses_a_module_name_that_is_not_an_identifier(tmp_path, capsys, name):
    assert cli_main(["generate", "2-3-1", "-o", str(tmp_path / name)]) == 2
    assert "identifier" in capsys.readouterr().err
    assert not (tmp_path / name).exists()


def test_generate_rejects_bad_options(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["generate", "2-3-1", "--optimizer", "lbfgs"])
    assert exc.value.code == 2
    assert cli_main(["generate", "2-3:softmax-1"]) == 2


def test_generated_module_command_line(tmp_path):
    trainer = tmp_path / "digits_trainer.py"
    trainer.write_text(source("4-6:relu-3:softmax", "cross_entropy"))
    rng = np.random.default_rng(8)
    X = rng.standard_normal((60, 4))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    np.savez(tmp_path / "data.npz", X=X, Y=np.eye(3)[labels])
    result = subprocess.run([sys.executable, str(trainer), "--data", "data.npz", "--epochs",
                             "5", "--lr", "0.2", "--batch-size", "10", "--out", "w.npz"],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith("epoch 1/5") and out[4].startswith("epoch 5/5")
    assert out[5].startswith("final cost ") and out[6].startswith("training accuracy ")
    assert (tmp_path / "w.npz").exists()
    np.savetxt(tmp_path / "data.csv", np.column_stack([X, labels]), delimiter=",")
    result = subprocess.run([sys.executable, str(trainer), "--data", "data.csv", "--targets",
                             "1", "--epochs", "2"], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert "training accuracy" in result.stdout
    bad = subprocess.run([sys.executable, str(trainer), "--data", "data.csv", "--targets", "2"],
                         capture_output=True, text=True, cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "shape" in bad.stderr


# --- the printer's rules, one by one ----------------------------------------------------------------

def _equal_at(lhs, rhs, symbols, points=12, digits=50):
    """lhs == rhs at random points (|values| from 1e-3 to 400, both signs), to 40 digits."""
    import sympy as sp

    rng = np.random.default_rng(zlib.crc32(str(lhs).encode()))
    for _ in range(points):
        point = {s: sp.Float(float(rng.choice([-1, 1]) * 10 ** rng.uniform(-3, 2.6)), digits)
                 for s in symbols}
        left, right = sp.N(lhs.xreplace(point), digits), sp.N(rhs.xreplace(point), digits)
        assert left.is_finite and right.is_finite, (lhs, rhs, point)
        assert abs(left - right) <= sp.Float(10) ** -40 * max(1, abs(left)), (lhs, rhs, point)


def test_every_rule_of_the_tables_is_an_equality():
    """Each row of STABLE_FORMS, PRODUCT_FORMS and MINMAX_FORMS, with its wild symbols made
    real symbols (and the negative power p -1, -2 and -1/2), is equal on both sides."""
    import sympy as sp

    from symbackprop.codegen.printer import MINMAX_FORMS, PRODUCT_FORMS, STABLE_FORMS, unsaturated

    u = sp.Symbol("u", real=True)
    rows = [*STABLE_FORMS, *PRODUCT_FORMS, *MINMAX_FORMS]
    assert len(rows) >= 15
    for row in rows:
        wilds = sorted(row.lhs.atoms(sp.Wild), key=str)
        powers = [sp.Integer(-1), sp.Integer(-2), sp.Rational(-1, 2)]
        for p in powers if any(w.name == "p" for w in wilds) else [None]:
            rep = {w: (p if w.name == "p" else u) for w in wilds}
            # a saturated form is the exact function once its clamp is read as u (below: the
            # clamp changes no rounded value)
            _equal_at(row.lhs.xreplace(rep), unsaturated(row.rhs.xreplace(rep)), [u])
        assert row.why


def test_every_saturated_form_rounds_to_its_value_at_the_clamp():
    """Each SATURATED_FORMS row reads u through min(u, c) only (c = SATURATION), so beyond c
    it computes lhs(c). There lhs is monotone (its derivative has one sign for every u > c,
    proven by SymPy) and lhs(c) rounds to lhs's limit in float32 and float64: every lhs(u),
    u > c, lies between the two and rounds to the same float. And e^c is finite in float32."""
    import mpmath
    import sympy as sp

    from symbackprop.codegen.printer import SATURATED_FORMS, SATURATION

    u, t = sp.Symbol("u", real=True), sp.Symbol("t", positive=True)
    assert np.isfinite(np.exp(np.float32(float(SATURATION))))
    for row in SATURATED_FORMS:
        wild = row.lhs.atoms(sp.Wild).pop()
        lhs, rhs = row.lhs.xreplace({wild: u}), row.rhs.xreplace({wild: u})
        for beyond in (SATURATION + sp.Rational(1, 1000), 2 * SATURATION, sp.Integer(10) ** 6):
            assert rhs.xreplace({u: beyond}) == rhs.xreplace({u: SATURATION})
        slope = sp.simplify(sp.diff(lhs, u).xreplace({u: SATURATION + t}))
        assert slope.is_positive or slope.is_negative, (row, slope)
        limit = sp.limit(lhs, u, sp.oo)
        assert limit.is_finite
        with mpmath.workdps(60):
            at_clamp = mpmath.mpf(str(sp.N(lhs.xreplace({u: SATURATION}), 60)))
            for dtype in (np.float32, np.float64):
                info = np.finfo(dtype)
                half_ulp = mpmath.mpf(float(info.epsneg if limit > 0 else info.eps)) / 2 \
                    * abs(mpmath.mpf(str(limit)))
                assert abs(at_clamp - mpmath.mpf(str(limit))) < half_ulp, (row, dtype)


def _entry_forms():
    """Every entry's expression and derivative: (label, expression, variables)."""
    import sympy as sp

    from symbackprop.registry import a, y, z

    forms = []
    for name in ELEMENTWISE:
        expr = activation(name).expr
        forms += [(name, expr, [z]), (f"{name}'", sp.diff(expr, z), [z])]
    for name in [*LOSSES, *USER_LOSSES]:
        term = loss_entry(name).term.xreplace({sp.Symbol("n", integer=True, positive=True): 3})
        if tuple(loss_entry(name).a_domain) == (0.05, 0.95):
            continue  # logs of probabilities: the generator writes them through z (below)
        forms += [(name, term, [a, y]), (f"d{name}/da", sp.diff(term, a), [a, y])]
    return forms


@pytest.mark.parametrize("label,expr,variables", _entry_forms(), ids=[f[0] for f in _entry_forms()])
def test_stable_is_the_same_function_for_every_entry(label, expr, variables):
    """The form the trainer computes equals the entry (and its derivative) at 50 digits, and
    check_printable accepts it."""
    from symbackprop.codegen.printer import check_printable, stable, unsaturated

    _equal_at(expr, unsaturated(stable(expr)), variables, points=8)
    check_printable(expr, [] if "'" in label or "/d" in label else variables)


def test_stable_forms_of_the_common_cases():
    import sympy as sp
    from sympy.codegen.cfunctions import expm1, log1p

    from symbackprop.codegen.printer import GuardedPiecewise, expand_logs, stable

    z = sp.Symbol("z", real=True)
    sigmoid = 1 / (1 + sp.exp(-z))
    # relative accuracy for z < 0, no overflow for z > 0 (the tanh form returned 0 at z < -38):
    # four calls, z clamped where sigmoid rounds to 1
    clamped = sp.exp(sp.Min(40, z))
    assert stable(sigmoid) == clamped / (1 + clamped)
    assert stable(z * sigmoid) == z * clamped / (1 + clamped)
    # beside another exp, which a clamp merged with could overflow: the exact form
    assert stable(sp.exp(z) * sigmoid) == sp.exp(z + sp.Min(0, z)) / (1 + sp.exp(-sp.Abs(z)))
    assert stable(sp.exp(-z) * sigmoid ** 2) == \
        sp.exp(-sp.Abs(z)) / (1 + sp.exp(-sp.Abs(z))) ** 2
    assert stable(sp.log(1 + sp.exp(z))) == sp.Max(0, z) + log1p(sp.exp(-sp.Abs(z)))
    assert stable(expand_logs(sp.log(sigmoid))) == sp.Min(0, z) - log1p(sp.exp(-sp.Abs(z)))
    assert stable(sp.Piecewise((z, z > 0), (z / 100, True))) == \
        z * sp.Piecewise((1, z > 0), (sp.Rational(1, 100), True))
    # a Piecewise continuous at 0: no mask, and exp is evaluated at min(z, 0) only
    assert stable(sp.Piecewise((z, z > 0), (sp.exp(z) - 1, True))) == \
        sp.Max(0, z) + expm1(sp.Min(0, z))
    assert stable(sp.Piecewise((1, z > 0), (sp.exp(z), True))) == sp.exp(sp.Min(0, z))
    # discontinuous: the exp branch clamped into its condition
    assert stable(sp.Piecewise((1, z > 0), (2 * sp.exp(z), True))) == \
        sp.Piecewise((1, z > 0), (2 * sp.exp(sp.Min(0, z)), True))
    assert stable(sp.log(sp.cosh(z))) == sp.Abs(z) + log1p(sp.exp(-2 * sp.Abs(z))) - sp.log(2)
    assert stable(sp.sinh(z) / sp.cosh(z) * 3) == 3 * sp.tanh(z)
    # no clamp of z keeps 1/(1 - z^2) finite outside z^2 < 1: computed where it holds only
    bump = sp.Piecewise((sp.exp(1 / (z**2 - 1)), z**2 < 1), (0, True))
    assert isinstance(stable(bump), GuardedPiecewise)
    assert not stable(sp.Piecewise((z**2, z**2 < 1), (0, True))).has(GuardedPiecewise)


def test_check_printable_refuses_what_has_no_numpy_form():
    import sympy as sp

    from symbackprop.codegen.printer import GenerationError, check_printable

    z = sp.Symbol("z", real=True)
    for expr, message in [(sp.Function("f")(z), "no NumPy ufunc for f"),
                          (sp.gamma(z), "no NumPy ufunc for gamma"),
                          (sp.besselj(0, z), "besselj"),
                          (sp.I * z, "not a finite real"),
                          (sp.Piecewise((z, z > 0)), "no branch for 'otherwise'")]:
        with pytest.raises(GenerationError, match=message):
            check_printable(expr, [z])
    check_printable(sp.erf(z) * sp.Abs(z) + sp.Max(z, 1) + sp.cosh(z), [z])
    check_printable(sp.sign(z))  # its derivative, a delta, has no NumPy form: not asked here


def test_shift_invariance_is_proven_not_assumed():
    import sympy as sp

    from symbackprop.codegen.printer import shift_invariant

    z, y, s = sp.symbols("z y s", real=True)
    exp_sum = {s: sp.exp(z)}
    assert shift_invariant(sp.exp(z) / s, z, exp_sum)  # softmax
    assert shift_invariant(-y * (z - sp.log(s)), z, exp_sum)  # its cross-entropy
    assert not shift_invariant(sp.exp(z), z, {})  # exp alone changes with the shift
    assert not shift_invariant(z * sp.exp(z) / s, z, exp_sum)


def test_kernel_printer_writes_in_place_calls():
    import sympy as sp

    from symbackprop.codegen.printer import GuardedPiecewise, KernelPrinter

    a, da = sp.symbols("A[1] dA[1]")
    temps = iter(["t0", "t1"])
    printer = KernelPrinter({a: "A1", da: "dA1"}, lambda shape: next(temps))
    printer.emit(da * (1 - a**2), "dZ1")  # built in dZ1 itself: no scratch buffer
    assert printer.lines == ["np.square(A1, dZ1)", "np.subtract(1.0, dZ1, dZ1)",
                             "np.multiply(dZ1, dA1, dZ1)"]
    # When dZ1 shares dA1's memory, dA1 is read by the first call that writes dZ1.
    printer = KernelPrinter({a: "A1", da: "dA1"}, lambda shape: next(temps))
    printer.preferred = da
    printer.emit(da * (1 - a**2), "dZ1")
    assert printer.lines == ["np.square(A1, t0)", "np.subtract(1.0, t0, t0)",
                             "np.multiply(dA1, t0, dZ1)"]
    # A Piecewise of values: each times the 0/1 mask of its branch, the last one's the
    # complement of the first (values finite everywhere: 0 times the other is exactly 0).
    temps = iter(["t0", "t1", "t2"])
    printer = KernelPrinter({a: "A1"}, lambda shape: next(temps))
    printer.emit(sp.Piecewise((1, a > 0), (a, True)), "out")
    assert printer.lines == ["np.greater(A1, 0.0, t0)", "np.multiply(t0, 1.0, out)",
                             "np.logical_not(t0, t1)", "np.copyto(t2, A1)",
                             "np.multiply(t2, t1, t2)", "np.add(out, t2, out)"]
    # min/max take their output by keyword; -|x| is one call
    printer = KernelPrinter({a: "A1"}, None)
    printer.emit(sp.exp(sp.Min(a, 0)), "out")
    assert printer.lines == ["np.minimum(0.0, A1, out=out)", "np.exp(out, out)"]
    printer = KernelPrinter({a: "A1"}, None)
    printer.emit(-2 * sp.Abs(a), "out")
    assert printer.lines == ["np.copysign(A1, -1.0, out)", "np.multiply(out, 2.0, out)"]
    # A guarded Piecewise: every call restricted to its branch's boolean mask
    temps = iter(["m0", "t0", "m1"])
    printer = KernelPrinter({a: "A1"}, lambda shape: next(temps))
    printer.emit(GuardedPiecewise((sp.log(a), a > 1), (0, True)), "out")
    assert printer.lines == ["np.greater(A1, 1.0, m0)", "np.log(A1, out=t0, where=m0)",
                             "np.copyto(out, t0, where=m0)", "np.logical_not(m0, m1)",
                             "np.copyto(out, 0.0, where=m1)"]


# --- erf: the kernel the generated modules carry -----------------------------------------------

def _erf_grid():
    tails = np.geomspace(1e-320, 30.0, 4000)
    return np.concatenate([np.linspace(-30.0, 30.0, 120001), tails, -tails,
                           [0.0, 0.46875, np.nextafter(0.46875, 1), 4.0, np.nextafter(4.0, 5),
                            26.5, 27.3, 1e300, -1e300]])


@pytest.mark.parametrize("dtype,tolerance", [("float64", 1e-14), ("float32", 1e-6)])
@pytest.mark.parametrize("name", ["_erf", "_erfc"])
def test_erf_kernels_against_math(name, dtype, tolerance):
    """Relative error against math.erf / math.erfc on |x| <= 30 and beyond, subnormal x
    included; where the exact value is subnormal, within one of its units in the last place.
    In place (out is x) gives the same bits. No warning for any input."""
    import math

    from symbackprop.codegen import kernels

    kernel = getattr(kernels, name)
    exact_fn = math.erf if name == "_erf" else math.erfc
    with np.errstate(over="ignore"):
        x = _erf_grid().astype(dtype)
    scratch = [np.empty_like(x) for _ in range(kernels.SCRATCH[name])]
    out = np.empty_like(x)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        kernel(x, *scratch, out)
        again = x.copy()
        kernel(again, *scratch, again)
    np.testing.assert_array_equal(again, out)
    exact = np.array([exact_fn(float(v)) for v in x])
    info = np.finfo(dtype)
    error = np.abs(out.astype(np.float64) - exact)
    normal = np.abs(exact) >= info.tiny
    worst = np.max(error[normal] / np.abs(exact[normal]))
    assert worst < tolerance, f"{name} {dtype}: relative error {worst:.2e}"
    assert np.all(error[~normal] <= 2 * info.smallest_subnormal), name


def test_erf_kernel_is_in_a_module_only_when_used():
    with_erf = source("2-3:gelu-1:identity", "half_sse")
    assert "def _erfc(" in with_erf and "_erfc(H1, " in with_erf
    assert "import scipy" not in with_erf
    assert "def _erf" not in source("2-3:relu-1:identity", "half_sse")
