"""The generated module's command line: labels in npz and CSV, --val-split, --test (accuracy,
or R2 for regression, against scikit-learn's metrics of the saved trainer), defaults in --help,
schedules and early stopping, --resume bit for bit, Ctrl-C saving the last complete epoch, and
one-line errors."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from estimator_helpers import blobs, path_of
from estimator_helpers import module as module_of
from sklearn.metrics import accuracy_score, r2_score

CLASSES = ("6-8:tanh-3:softmax", "cross_entropy")
VALUES = ("3-8:tanh-1:identity", "mse")


# The command line of both backends' modules (one template); the array-API module's trains on
# NumPy arrays unless --array-library names another library.
BACKEND = {"backend": "numpy"}


@pytest.fixture(params=["numpy", "array-api"])
def backend(request):
    """The tests that take it run on the module of each backend."""
    BACKEND["backend"] = request.param
    yield request.param
    BACKEND["backend"] = "numpy"


def module(spec, loss):
    return module_of(spec, loss, backend=BACKEND["backend"])


def run(spec, loss, *argv, cwd):
    path = path_of(spec, loss, backend=BACKEND["backend"])
    return subprocess.run([sys.executable, str(path), *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd, check=False)


@pytest.fixture
def classes(tmp_path):
    X, labels = blobs(200, 6, 3, seed=2)
    np.savez(tmp_path / "train.npz", X=X[:150], Y=labels[:150])  # labels, not one-hot rows
    np.savetxt(tmp_path / "test.csv", np.column_stack([X[150:], labels[150:]]), delimiter=",")
    return X, labels


def test_help_shows_every_default(tmp_path, backend):
    result = run(*CLASSES, "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for flag, default in [("--epochs", "10"), ("--lr", "0.1"), ("--batch-size", "32"),
                          ("--optimizer", "sgd"), ("--momentum", "0.9"),
                          ("--schedule", "constant"), ("--l2", "0.0"), ("--val-split", "0.0"),
                          ("--patience", "10"), ("--seed", "0"), ("--targets", "3")]:
        assert re.search(rf"{flag}\b.*?\(default: {re.escape(default)}\)", text), flag
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "class labels 0..2" in text and "{constant,invscaling,adaptive,cosine}" in text


def test_labels_validation_and_test_accuracy(tmp_path, classes, backend):
    X, labels = classes
    result = run(*CLASSES, "--data", "train.npz", "--val-split", "0.2", "--test", "test.csv",
                 "--targets", "1", "--epochs", "6", "--lr", "0.2", "--out", "w", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(re.fullmatch(r"epoch \d/6  cost \d\.\d{6}  val accuracy \d\.\d{4}  \d+\.\d\d s", line)
               for line in lines[:6]), lines
    assert lines[6].startswith("final cost ")
    mod = module(*CLASSES)
    trainer = mod.Trainer.load(tmp_path / "w.npz")
    X_train, Y_train, X_val, Y_val = trainer.split(X[:150], np.eye(3)[labels[:150]])
    assert len(X_val) == 30
    expected = [
        f"training accuracy {accuracy_score(Y_train.argmax(1), trainer.predict(X_train).argmax(1)):.4f}",
        f"validation accuracy {accuracy_score(Y_val.argmax(1), trainer.predict(X_val).argmax(1)):.4f}",
        f"test accuracy {accuracy_score(labels[150:], trainer.predict(X[150:]).argmax(1)):.4f}",
        "saved w.npz"]
    assert lines[7:] == expected
    assert float(lines[6].split()[-1]) == pytest.approx(trainer.loss_curve[-1], abs=1e-6)


def test_regression_reports_r2(tmp_path, backend):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3))
    y = X @ [1.0, -1.0, 0.5]
    np.savetxt(tmp_path / "train.csv", np.column_stack([X[:100], y[:100]]), delimiter=",",
               header="a,b,c,y", comments="")
    np.savez(tmp_path / "test.npz", X=X[100:], Y=y[100:])
    result = run(*VALUES, "--data", "train.csv", "--test", "test.npz", "--epochs", "20",
                 "--optimizer", "adam", "--lr", "0.02", "--schedule", "cosine", "--out",
                 "r.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trainer = module(*VALUES).Trainer.load(tmp_path / "r.npz")
    assert trainer.schedule == "cosine" and trainer.max_epochs == 20
    lines = result.stdout.splitlines()
    assert lines[-3] == f"training R2 {r2_score(y[:100], trainer.predict(X[:100])[:, 0]):.4f}"
    assert lines[-2] == f"test R2 {r2_score(y[100:], trainer.predict(X[100:])[:, 0]):.4f}"
    assert float(lines[-2].split()[-1]) > 0.8


def test_early_stopping_from_the_command_line(tmp_path, classes, backend):
    result = run(*CLASSES, "--data", "train.npz", "--val-split", "0.3", "--early-stopping",
                 "--patience", "1", "--epochs", "200", "--lr", "0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "has not improved by more than tol=0.0001 for 2 epochs: stopping" in result.stdout
    assert re.search(r"the parameters of epoch \d+ \(val accuracy \d\.\d{4}\) are back",
                     result.stdout)
    assert "epoch 200/200" not in result.stdout


def test_resume_continues_bit_for_bit(tmp_path, classes, backend):
    common = ["--data", "train.npz", "--val-split", "0.2", "--optimizer", "adam", "--lr",
              "0.01", "--schedule", "invscaling", "--batch-size", "16", "--seed", "3"]
    assert run(*CLASSES, *common, "--epochs", "5", "--out", "whole", cwd=tmp_path).returncode == 0
    assert run(*CLASSES, *common, "--epochs", "2", "--out", "half", cwd=tmp_path).returncode == 0
    resumed = run(*CLASSES, "--data", "train.npz", "--resume", "half.npz", "--epochs", "3",
                  "--out", "again", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("epoch 3/5  ")
    with np.load(tmp_path / "whole.npz") as whole, np.load(tmp_path / "again.npz") as again:
        assert sorted(whole.files) == sorted(again.files)
        for name in whole.files:
            assert whole[name].tobytes() == again[name].tobytes(), name
        state = "state" if "state" in whole.files else "xp_state"  # the array-API module's
        assert json.loads(str(whole[state]))["epoch"] == 5


def test_ctrl_c_saves_the_last_complete_epoch(tmp_path, backend):
    X, labels = blobs(20000, 6, 3, seed=4)
    np.savez(tmp_path / "big.npz", X=X, Y=labels)
    process = subprocess.Popen([sys.executable, str(path_of(*CLASSES, **BACKEND)),
                                "--data", "big.npz",
                                "--epochs", "100000", "--batch-size", "4", "--out", "w"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path)
    first = process.stdout.readline()
    assert first.startswith("epoch 1/100000"), first + process.stderr.read()
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    match = re.fullmatch(r"interrupted: saved w\.npz after epoch (\d+); continue with --resume "
                         r"w\.npz\n", err)
    assert match, err
    trainer = module(*CLASSES).Trainer.load(tmp_path / "w.npz")
    assert trainer.epoch == int(match.group(1)) == len((first + out).splitlines())
    assert "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["--data", "noY.npz"], r"error: --data 'noY.npz' needs arrays X and Y; it has no Y"),
    (["--data", "wide.csv", "--targets", "3"],
     (r"error: --data 'wide.csv' has 8 columns, 5 inputs and --targets 3, but this network "
      r"takes 6 inputs an example \(X of shape \(m, 6\)\): pass --targets 2$")),
    (["--data", "wide.csv", "--targets", "1"], r"has 8 columns, 7 inputs and --targets 1.*pass --targets 2"),
    (["--data", "train.npz", "--early-stopping"], r"error: --early-stopping needs --val-split"),
    (["--data", "train.npz", "--lr", "-1"], r"error: --lr must be a finite number > 0"),
    (["--data", "train.npz", "--val-split", "1.5"], r"error: --val-split must be a number in"),
    (["--data", "labels.npz"], r"the label 3 of data row 2 is not a class; labels are the int"),
], ids=["npz without Y", "csv columns", "csv targets", "early stopping alone", "bad lr",
        "bad split", "label out of range"])
def test_one_line_errors(tmp_path, classes, argv, message, backend):
    X, labels = classes
    np.savez(tmp_path / "noY.npz", X=X)
    np.savez(tmp_path / "labels.npz", X=X[:3], Y=[0, 3, 1])
    np.savetxt(tmp_path / "wide.csv", np.column_stack([X, labels, labels]), delimiter=",")
    result = run(*CLASSES, *argv, "--out", "w.npz", cwd=tmp_path)
    assert result.returncode == 2
    assert re.search(message, result.stderr), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "w.npz")


def test_unscaled_data_is_a_warning_line(tmp_path, classes, backend):
    X, labels = classes
    np.savez(tmp_path / "raw.npz", X=X * 20, Y=labels)
    result = run(*CLASSES, "--data", "raw.npz", "--epochs", "1", "--lr", "0.001", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"warning: X is far from unit scale \(root mean square [\d.]+, entries up "
                        r"to [\d.]+\): unscaled inputs make the steps too large or too small; "
                        r"scale them, e.g\. X / [\d.]+ or with scikit-learn's StandardScaler\n",
                        result.stderr), result.stderr


def test_divergence_is_one_line_and_nothing_is_saved(tmp_path, backend):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(64, 3))
    np.savez(tmp_path / "data.npz", X=X, Y=X.sum(axis=1))
    spec = ("3-8:relu-1:identity", "mse")
    result = run(*spec, "--data", "data.npz", "--lr", "5", "--epochs", "50", "--out", "w",
                 cwd=tmp_path)
    assert result.returncode == 2
    assert re.fullmatch(r"error: training diverged in epoch \d+, batch \d+: the cost became "
                        r".*Likely cause: the learning rate is too high for this network and data "
                        r"\(lr=5\): try lr=0\.5\. The trainer is as it was after epoch \d+\n",
                        result.stderr), result.stderr
    assert not os.path.exists(tmp_path / "w.npz")


@pytest.mark.parametrize("library", ["torch", "array_api_strict"])
def test_the_array_api_command_line_trains_on_another_library(tmp_path, classes, library):
    """--array-library: trained on that library's arrays, saved as an archive the NumPy
    module's Trainer loads; its report is the one it gives on NumPy arrays (the same steps)."""
    BACKEND["backend"] = "array-api"
    try:
        argv = ["--data", "train.npz", "--val-split", "0.2", "--epochs", "3", "--seed", "1"]
        on_numpy = run(*CLASSES, *argv, cwd=tmp_path)
        result = run(*CLASSES, *argv, "--array-library", library, "--out", "w", cwd=tmp_path)
        bad = run(*CLASSES, "--data", "train.npz", "--array-library", "nonesuch", cwd=tmp_path)
    finally:
        BACKEND["backend"] = "numpy"
    assert result.returncode == 0, result.stderr
    strip = re.compile(r"  \d+\.\d\d s$", re.MULTILINE)  # the clock
    assert strip.sub("", result.stdout).replace("saved w.npz\n", "") == strip.sub(
        "", on_numpy.stdout)
    trainer = module_of(*CLASSES).Trainer.load(tmp_path / "w.npz")
    assert trainer.epoch == 0 and trainer.seed == 1  # the NumPy module starts its state afresh
    assert bad.returncode == 2 and bad.stderr == (
        "error: --array-library 'nonesuch' is not an array library that can be imported here\n")
