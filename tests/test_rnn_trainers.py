"""Generated trainers of recurrent (Elman rnn) networks: gradients against central differences
for many-to-one and many-to-many layers, tanh, relu and sigmoid recurrent activations, heads of
one and two dense layers, float64 and float32, with and without L2; against PyTorch's
torch.nn.RNN autograd; stable at |z| = 1000; the parameters' names and shapes; the module API
on sequences, on NumPy alone; real data (scikit-learn's digits read row by row)."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from codegen_helpers import HIDDEN, SEQUENCE_NETS, load, relative_error, source, targets

NETS = SEQUENCE_NETS


def _data(module, loss, m, rng):
    T, n = module.ARCH["sequence"]
    X = rng.standard_normal((m, T, n))
    every = module.ARCH["features"][0].endswith(":all")
    Y = targets(loss, module.ARCH["sizes"][-1], m * T if every else m, rng)
    return X, (Y.reshape(m, T, -1) if every else Y)


def _perturbed(module, rng, dtype=np.float64):
    params = module.init_params(seed=int(rng.integers(0, 100)))
    return {k: (v + 0.2 * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}


def test_every_recurrent_activation_and_both_layer_kinds_are_covered():
    from symbackprop.spec import parse_arch

    archs = [parse_arch(spec, loss) for spec, loss in NETS]
    assert {a.recurrent.activation for a in archs} == {"tanh", "relu", "sigmoid"}
    assert {a.every_step for a in archs} == {False, True}
    assert {len(a.sizes) - 1 for a in archs} == {1, 2}  # dense layers after the rnn layer


@pytest.mark.parametrize("l2", [0, "0.01"])
@pytest.mark.parametrize("spec,loss", NETS)
def test_gradients_match_numeric_differences_float64(spec, loss, l2):
    module = load(spec, loss, l2=l2) if l2 else load(spec, loss)
    rng = np.random.default_rng(len(spec))
    X, Y = _data(module, loss, 4, rng)
    params = _perturbed(module, rng)
    grads = module.gradients(params, X, Y)
    numeric = module.numeric_gradients(params, X, Y)
    assert set(grads) == set(params)
    for name in params:
        assert grads[name].shape == params[name].shape
    assert relative_error(grads, numeric) < 1e-7, relative_error(grads, numeric)


@pytest.mark.parametrize("act", HIDDEN)
def test_every_elementwise_activation_as_the_recurrent_one(act):
    """Built in or the user's: the rnn layer's g and BP4 come from the derivation's maps."""
    module = load(f"seq3x2-rnn3:{act}-2:softmax", "cross_entropy")
    rng = np.random.default_rng(11)
    X, Y = _data(module, "cross_entropy", 4, rng)
    params = _perturbed(module, rng)
    err = relative_error(module.gradients(params, X, Y), module.numeric_gradients(params, X, Y))
    assert err < 1e-7, err


@pytest.mark.parametrize("spec,loss", NETS)
def test_gradients_float32_agree_with_float64(spec, loss):
    module = load(spec, loss, dtype="float32")
    rng = np.random.default_rng(7)
    X, Y = _data(module, loss, 4, rng)
    params = _perturbed(module, rng)
    numeric = module.numeric_gradients(params, X, Y)  # float64 differences
    grads32 = module.gradients({k: v.astype(np.float32) for k, v in params.items()}, X, Y)
    assert all(g.dtype == np.float32 for g in grads32.values())
    assert relative_error(grads32, numeric) < 1e-4


def test_l2_penalises_the_recurrent_weights_too():
    """J gains (l2/2m)(||W1||^2 + ||U1||^2 + ||W2||^2), biases free."""
    spec, loss = "seq3x2-rnn4:tanh-3:softmax", "cross_entropy"
    module, plain = load(spec, loss, l2="0.5"), load(spec, loss)
    rng = np.random.default_rng(2)
    X, Y = _data(module, loss, 5, rng)
    params = _perturbed(module, rng)
    penalty = 0.5 / (2 * 5) * sum(np.sum(params[k] ** 2) for k in ("W1", "U1", "W2"))
    assert module.cost(params, X, Y) == pytest.approx(plain.cost(params, X, Y) + penalty,
                                                      rel=1e-12)


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("every", [False, True], ids=["last", "every"])
def test_torch_computes_the_same_cost_and_gradients(act, every):
    torch = pytest.importorskip("torch", reason="torch==2.13.0 (CPU) is a test dependency")
    F = torch.nn.functional
    spec = f"seq5x3-rnn4:{act}{':all' if every else ''}-6:tanh-3:softmax"
    module = load(spec, "cross_entropy")
    rng = np.random.default_rng(4)
    X, Y = _data(module, "cross_entropy", 6, rng)
    params = _perturbed(module, rng)
    rnn = torch.nn.RNN(3, 4, batch_first=True, nonlinearity=act, dtype=torch.float64)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items() if k[-1] != "1"}
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(params["W1"]))
        rnn.weight_hh_l0.copy_(torch.from_numpy(params["U1"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(params["b1"]))
        rnn.bias_hh_l0.zero_()
    out, h_n = rnn(torch.from_numpy(X))
    A = out.reshape(-1, 4) if every else h_n[0]  # row T k + t: example k at step t
    logits = torch.tanh(A @ P["W2"].T + P["b2"]) @ P["W3"].T + P["b3"]
    labels = torch.from_numpy(Y.reshape(-1, 3).argmax(axis=1))
    cost = F.cross_entropy(logits, labels)  # the mean over examples (and steps)
    cost.backward()
    assert abs(cost.item() - module.cost(params, X, Y)) < 1e-12
    grads = module.gradients(params, X, Y)
    theirs = {"W1": rnn.weight_ih_l0.grad, "U1": rnn.weight_hh_l0.grad,
              "b1": rnn.bias_ih_l0.grad, **{k: v.grad for k, v in P.items()}}
    for name, value in theirs.items():
        assert np.allclose(grads[name], value.numpy(), rtol=1e-10, atol=1e-12), name
    assert np.allclose(module.forward(params, X).reshape(-1, 3),
                       F.softmax(logits, 1).detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec,loss", [NETS[0], NETS[2], NETS[4]], ids=["tanh", "sigmoid", "relu"])
def test_stable_at_pre_activations_of_1000(spec, loss, dtype):
    """Weights scaled so that |z| reaches about 1000 in the recurrent layer and the head: finite
    outputs, cost and gradients, and no overflow, division by zero, invalid operation or
    warning."""
    module = load(spec, loss)
    rng = np.random.default_rng(5)
    X, Y = _data(module, loss, 4, rng)
    params = {k: (v * 1000.0 / max(1.0, float(np.abs(v).max()))).astype(dtype)
              for k, v in _perturbed(module, rng).items()}
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


def test_parameters_are_numbered_by_layer_position_in_torch_layout():
    module = load("seq8x8-rnn64:tanh-10:softmax", "cross_entropy")
    shapes = {k: v.shape for k, v in module.init_params().items()}
    assert shapes == {"W1": (64, 8), "U1": (64, 64), "b1": (64,), "W2": (10, 64), "b2": (10,)}
    assert [name for name, _ in module._SHAPES] == ["W1", "U1", "b1", "W2", "b2"]


def test_init_params_orthogonal_recurrent_weights_and_zero_biases():
    module = load("seq8x8-rnn64:tanh-10:softmax", "cross_entropy")
    params = module.init_params(seed=3)
    U = params["U1"]
    assert np.allclose(U @ U.T, np.eye(64), atol=1e-12)
    assert not params["b1"].any() and not params["b2"].any()
    assert params["W1"].std() == pytest.approx(np.sqrt(2 / 8), rel=0.15)  # he: fan-in n
    again = module.init_params(seed=3)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert not np.array_equal(module.init_params(seed=4)["U1"], U)


def test_sequences_are_checked_and_rows_accepted():
    module = load("seq3x2-rnn4:tanh-2:softmax", "cross_entropy")
    params = module.init_params()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3, 2))
    assert module.forward(params, X).shape == (5, 2)
    assert np.array_equal(module.forward(params, X), module.forward(params, X.reshape(5, 6)))
    for bad in (rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 5)),
                np.full((2, 3, 2), np.nan), rng.standard_normal((5, 3))):
        with pytest.raises(ValueError, match=r"X"):
            module.forward(params, bad)
    with pytest.raises(ValueError, match=r"Y"):
        module.cost(params, X, np.eye(2)[[0, 1, 0, 1]])


def test_many_to_many_targets_and_outputs_are_per_step():
    module = load("seq3x2-rnn4:tanh:all-2:softmax", "cross_entropy")
    params = module.init_params()
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 3, 2))
    Y = np.eye(2)[rng.integers(0, 2, (5, 3))]
    out = module.forward(params, X)
    assert out.shape == (5, 3, 2) and np.allclose(out.sum(axis=2), 1.0)
    # J is the mean over the 15 (example, step) pairs
    assert module.cost(params, X, Y) == pytest.approx(-np.sum(Y * np.log(out)) / 15, rel=1e-12)
    # each step's output depends on that step and the earlier ones only
    later = X.copy()
    later[:, 2] += 1.0
    changed = module.forward(params, later)
    assert np.array_equal(changed[:, :2], out[:, :2]) and not np.allclose(changed[:, 2],
                                                                           out[:, 2])
    assert np.array_equal(module.cost(params, X, Y.reshape(5, 6)), module.cost(params, X, Y))
    for bad in (Y[:, :2], Y.reshape(15, 2), Y[:4]):
        with pytest.raises(ValueError, match=r"Y"):
            module.cost(params, X, bad)
    trainer = module.Trainer(lr=0.05, optimizer="adam", batch_size=2, seed=0)
    costs = trainer.fit(X, Y, epochs=30, verbose=False)
    assert costs[-1] < costs[0] / 2
    assert trainer.predict(X).shape == (5, 3, 2)


def test_trainer_fits_saves_and_loads_sequences(tmp_path):
    module = load("seq6x2-rnn8:tanh-2:softmax", "cross_entropy")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 6, 2))
    labels = (X[:, :, 0].sum(axis=1) > 0).astype(int)  # needs every step
    Y = np.eye(2)[labels]
    trainer = module.Trainer(lr=0.02, batch_size=8, optimizer="adam", seed=1)
    costs = trainer.fit(X, Y, epochs=40, verbose=False)
    assert costs[-1] < costs[0] / 4
    assert np.mean(trainer.predict(X).argmax(axis=1) == labels) > 0.9
    path = tmp_path / "rnn.npz"
    trainer.save(path)
    again = module.Trainer.load(path)
    assert np.array_equal(again.predict(X), trainer.predict(X))
    other = load("seq6x2-rnn8:relu-2:softmax", "cross_entropy")
    with pytest.raises(ValueError, match="different network"):
        other.Trainer.load(path)


def test_generated_module_runs_on_numpy_alone(tmp_path):
    """The module imports only NumPy and the standard library: it runs with symbackprop,
    SymPy and PyTorch made unimportable, from the command line on .npz and .csv data."""
    path = tmp_path / "rnn_trainer.py"
    path.write_text(source("seq4x3-rnn5:sigmoid-3:softmax", "cross_entropy"), encoding="utf-8")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4, 3))
    labels = rng.integers(0, 3, 30)
    np.savez(tmp_path / "seq.npz", X=X, Y=np.eye(3)[labels])
    np.savetxt(tmp_path / "rows.csv", np.column_stack([X.reshape(30, 12), labels]),
               delimiter=",")
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    for name in ("sympy", "symbackprop", "torch", "sklearn", "scipy"):
        (blocker / f"{name}.py").write_text(f"raise ImportError('{name} is blocked')\n")
    env = {"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"}
    for data, extra in (("seq.npz", []), ("rows.csv", ["--targets", "1"])):
        run = subprocess.run([sys.executable, str(path), "--data", str(tmp_path / data),
                              "--epochs", "2", "--optimizer", "adam", *extra],
                             capture_output=True, text=True, check=False, env=env,
                             cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert "final cost" in run.stdout and "training accuracy" in run.stdout


def test_digits_read_row_by_row_reach_at_least_095_test_accuracy():
    """scikit-learn's digits, each image read as a sequence of its 8 rows (X/16 as (m, 8, 8)),
    the dense digits test's split; seq8x8-rnn64:tanh-10:softmax, Adam lr 0.01, batch 32, 40
    epochs. Seed 1; the test accuracy of this setup varies with the seed (late loss spikes
    of Adam at lr 0.01 on an unclipped RNN), as PyTorch's nn.RNN's does on it."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    module = load("seq8x8-rnn64:tanh-10:softmax", "cross_entropy")
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, random_state=0,
        stratify=digits.target)
    X_train, X_test = X_train.reshape(-1, 8, 8), X_test.reshape(-1, 8, 8)
    trainer = module.Trainer(lr=0.01, optimizer="adam", batch_size=32, seed=1)
    # One BLAS thread: GEMMs this small gain nothing from a second one, and on a loaded
    # machine its waits made the 1,720 steps take 50 s instead of 1.5 s
    with threadpool_limits(limits=1, user_api="blas"):
        costs = trainer.fit(X_train, np.eye(10)[y_train], epochs=40, verbose=False)
    accuracy = float(np.mean(trainer.predict(X_test).argmax(axis=1) == y_test))
    print(f"digits read row by row: test accuracy {accuracy:.4f}, final cost {costs[-1]:.4f}")
    assert costs[-1] < costs[0] / 10
    assert accuracy >= 0.95, accuracy
