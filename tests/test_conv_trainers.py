"""Generated trainers of image networks: gradients against numeric differences for every feature
kind with strides, padding, both poolings, dense heads and L2, in float64 and float32; the
module API on images; real data (scikit-learn's digits as 1x8x8 images)."""
from __future__ import annotations

import numpy as np
import pytest
from codegen_helpers import IMAGE_NETS, load, relative_error, targets

from symbackprop.kinds import IMAGE_KINDS
from symbackprop.spec import parse_arch

NETS = IMAGE_NETS


def test_every_feature_kind_is_in_the_table():
    used = {f.kind for spec, _ in NETS for f in parse_arch(spec).features}
    assert used == set(IMAGE_KINDS)


def _data(module, loss, m, rng):
    shape = module.ARCH["image"]
    X = rng.standard_normal((m, *shape))
    return X, targets(loss, module.ARCH["sizes"][-1], m, rng)


def _perturbed(module, rng, dtype=np.float64):
    params = module.init_params(seed=int(rng.integers(0, 100)))
    return {k: (v + 0.2 * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}


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


def test_parameters_are_numbered_by_layer_position_in_torch_layout():
    module = load("1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax", "cross_entropy")
    shapes = {k: v.shape for k, v in module.init_params().items()}
    assert shapes == {"W1": (16, 1, 3, 3), "b1": (16,), "W4": (10, 256), "b4": (10,)}


def test_a_changed_weight_changes_only_what_it_touches():
    """Weight sharing: one kernel entry moves every output position (a sanity check of the
    generated forward pass against a direct correlation)."""
    module = load("1x4x4-conv1k2-flatten-1:identity", "half_sse")
    params = module.init_params()
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    W, b = params["W1"][0, 0], params["b1"][0]
    Z = np.array([[np.sum(W * X[0, 0, x:x + 2, y:y + 2]) + b for y in range(3)]
                  for x in range(3)])
    expected = params["W3"] @ Z.reshape(9) + params["b3"]
    assert np.allclose(module.forward(params, X)[0], expected)


def test_images_are_checked_and_rows_accepted():
    module = load("1x4x4-conv2k3-flatten-2:softmax", "cross_entropy")
    params = module.init_params()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 1, 4, 4))
    assert np.allclose(module.forward(params, X), module.forward(params, X.reshape(3, 16)))
    for bad in (rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 15)),
                np.full((2, 1, 4, 4), np.nan)):
        with pytest.raises(ValueError, match=r"X"):
            module.forward(params, bad)


def test_trainer_fits_saves_and_loads_images(tmp_path):
    module = load("1x6x6-conv3k3:relu-maxpool2-flatten-2:softmax", "cross_entropy")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 1, 6, 6))
    labels = (X[:, 0, :3].sum(axis=(1, 2)) > X[:, 0, 3:].sum(axis=(1, 2))).astype(int)
    Y = np.eye(2)[labels]
    trainer = module.Trainer(lr=0.1, batch_size=8, optimizer="adam", seed=1)
    costs = trainer.fit(X, Y, epochs=30, verbose=False)
    assert costs[-1] < costs[0] / 2
    path = tmp_path / "cnn.npz"
    trainer.save(path)
    again = module.Trainer.load(path)
    assert np.array_equal(again.predict(X), trainer.predict(X))


def test_digits_as_images_reach_at_least_0975_mean_test_accuracy():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    assert sklearn
    module = load("1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax", "cross_entropy")
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, random_state=0,
        stratify=digits.target)
    X_train, X_test = X_train.reshape(-1, 1, 8, 8), X_test.reshape(-1, 1, 8, 8)
    accuracies = []
    for seed in (0, 1, 2):
        trainer = module.Trainer(lr=0.1, optimizer="sgd", batch_size=32, seed=seed)
        costs = trainer.fit(X_train, np.eye(10)[y_train], epochs=50, verbose=False)
        accuracy = float(np.mean(trainer.predict(X_test).argmax(axis=1) == y_test))
        print(f"seed {seed}: digits 1x8x8 test accuracy {accuracy:.4f}, cost {costs[-1]:.4f}")
        assert costs[-1] < costs[0] / 10
        accuracies.append(accuracy)
    assert np.mean(accuracies) >= 0.975, accuracies


def test_torch_computes_the_same_gradients():
    torch = pytest.importorskip("torch", reason="torch==2.13.0 (CPU) is an optional oracle")
    F = torch.nn.functional
    spec = "2x7x7-conv3k3s2p1:relu-maxpool2s1-conv2k2:tanh-avgpool2-flatten-4:sigmoid"
    module = load(spec, "bce")
    rng = np.random.default_rng(3)
    X, Y = _data(module, "bce", 5, rng)
    params = _perturbed(module, rng)
    grads = module.gradients(params, X, Y)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x = torch.tensor(X)
    h = torch.relu(F.conv2d(x, P["W1"], P["b1"], stride=2, padding=1))
    h = F.max_pool2d(h, 2, 1)
    h = torch.tanh(F.conv2d(h, P["W3"], P["b3"]))
    h = F.avg_pool2d(h, 2).flatten(1)
    out = torch.sigmoid(h @ P["W6"].T + P["b6"])
    cost = F.binary_cross_entropy(out, torch.tensor(Y), reduction="sum") / X.shape[0]
    cost.backward()
    assert abs(cost.item() - module.cost(params, X, Y)) < 1e-12
    for name, value in P.items():
        assert np.allclose(grads[name], value.grad.numpy(), rtol=1e-10, atol=1e-12), name


def test_generated_file_trains_from_the_command_line_on_images(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "cnn_trainer.py"
    spec = "1x4x4-conv2k3p1:relu-maxpool2-flatten-3:softmax"
    made = subprocess.run([sys.executable, "-m", "symbackprop", "generate", spec, "--loss",
                           "cross_entropy", "-o", str(out)], capture_output=True, text=True,
                          check=False)
    assert made.returncode == 0, made.stderr
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 1, 4, 4))
    labels = rng.integers(0, 3, 24)
    np.savez(tmp_path / "images.npz", X=X, Y=np.eye(3)[labels])
    np.savetxt(tmp_path / "rows.csv", np.column_stack([X.reshape(24, 16), labels]),
               delimiter=",")
    for data, extra in (("images.npz", []), ("rows.csv", ["--targets", "1"])):
        run = subprocess.run([sys.executable, str(out), "--data", str(tmp_path / data),
                              "--epochs", "3", *extra], capture_output=True, text=True,
                             check=False)
        assert run.returncode == 0, run.stderr
        assert "final cost" in run.stdout and "training accuracy" in run.stdout
