"""Training that tells what happens: learning-rate schedules against scikit-learn's and
PyTorch's definitions, validation and early stopping, divergence stopped with its likely cause,
the scale warning, per-epoch lines and the progress bar on a terminal."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from estimator_helpers import blobs, module, regression
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

DENSE = ("6-8:tanh-3:softmax", "cross_entropy")
REGRESSION = ("3-8:tanh-1:identity", "mse")
UNBOUNDED = ("3-8:relu-1:identity", "mse")  # nothing saturates: steps too large blow up


def _classes(m=60, seed=0):
    X, labels = blobs(m, 6, 3, seed=seed)
    return X, np.eye(3)[labels]


def _lrs(trainer, X, Y, epochs):
    """The learning rate of each epoch, fitting one epoch a call."""
    lrs = []
    for _ in range(epochs):
        trainer.fit(X, Y, epochs=1, verbose=False)
        lrs.append(trainer.learning_rate)
    return lrs


# --- schedules -------------------------------------------------------------------------------------

def test_invscaling_is_scikit_learns():
    mod = module(*DENSE)
    X, Y = _classes()
    trainer = mod.Trainer(lr=0.3, schedule="invscaling", power_t=0.4, batch_size=16)
    oracle = SGDOptimizer([np.zeros(1)], learning_rate_init=0.3, lr_schedule="invscaling",
                          power_t=0.4)
    expected, seen = [], 0
    for _ in range(6):
        expected.append(oracle.learning_rate)
        seen += len(X)
        oracle.iteration_ends(seen)
    assert _lrs(trainer, X, Y, 6) == pytest.approx(expected, rel=1e-15)


def test_cosine_is_pytorchs_annealing():
    mod = module(*DENSE)
    X, Y = _classes()
    trainer = mod.Trainer(lr=0.3, optimizer="adam", schedule="cosine", max_epochs=9)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=9)
    expected = []
    for _ in range(9):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    lrs = _lrs(trainer, X, Y, 11)
    assert lrs[:9] == pytest.approx(expected, rel=1e-12)
    assert lrs[9:] == [lrs[8], lrs[8]]  # after max_epochs: its last value
    with pytest.raises(ValueError, match="'cosine' needs max_epochs"):
        mod.Trainer(schedule="cosine")


@pytest.mark.parametrize("schedule", ["adaptive", "constant"])
def test_adaptive_and_stopping_count_as_scikit_learn_does(schedule):
    """The same training costs through Trainer's bookkeeping and through MLPClassifier's own
    methods (its no-improvement count and its optimizer's trigger_stopping): the same learning
    rate after every epoch, and the same epoch to stop at."""
    costs = [2.0, 1.5, 1.49995, 1.5, 1.2, 1.2, 1.19999, 1.3, 1.25, 1.21, 1.2, 1.1,
             *([1.1] * 40)]
    trainer = module(*DENSE).Trainer(lr=0.1, schedule=schedule, n_iter_no_change=2, tol=1e-3)
    mlp = MLPClassifier(tol=1e-3, n_iter_no_change=2)
    mlp.loss_curve_, mlp.best_loss_, mlp._no_improvement_count = [], np.inf, 0
    oracle = SGDOptimizer([np.zeros(1)], learning_rate_init=0.1, lr_schedule=schedule)
    ours, theirs = [], []
    for cost in costs:
        stop, _ = trainer._after_epoch(cost, None)
        ours.append((trainer.learning_rate, stop))
        mlp.loss_curve_.append(cost)
        mlp._update_no_improvement_count(False, None, None, None)
        stopping = False
        if mlp._no_improvement_count > mlp.n_iter_no_change:
            stopping = oracle.trigger_stopping("", False)
            mlp._no_improvement_count = 0
        theirs.append((oracle.learning_rate, stopping))
        if stop or stopping:
            break
    assert [stop for _, stop in ours] == [stop for _, stop in theirs]
    assert [lr for lr, _ in ours] == pytest.approx([lr for lr, _ in theirs], rel=1e-15)
    assert theirs[-1][1] and len(theirs) < len(costs)


def test_sgd_steps_with_the_scheduled_rate():
    """One batch an epoch: the parameters move by the epoch's rate times the gradient."""
    mod = module(*DENSE)
    X, Y = _classes(m=12)
    trainer = mod.Trainer(lr=0.4, schedule="cosine", max_epochs=4, batch_size=12)
    trainer.fit(X, Y, epochs=1, shuffle=False, verbose=False)
    before = {k: v.copy() for k, v in trainer.params.items()}
    grads = mod.gradients(before, X, Y)
    trainer.fit(X, Y, epochs=1, shuffle=False, verbose=False)
    lr = 0.4 * (1 + math.cos(math.pi / 4)) / 2
    for name, value in trainer.params.items():
        np.testing.assert_allclose(value, before[name] - lr * grads[name], rtol=1e-12,
                                   atol=1e-15)


# --- validation and early stopping -------------------------------------------------------------

def test_held_out_examples_are_the_same_every_call_and_keep_each_class():
    mod = module(*DENSE)
    X, Y = _classes(m=90)
    trainer = mod.Trainer(validation_fraction=0.2, seed=4)
    X_train, _, X_val, Y_val = trainer.split(X, Y)
    assert len(X_val) == 18 and len(X_train) == 72
    again = mod.Trainer(validation_fraction=0.2, seed=4)
    again.fit(X, Y, epochs=2, verbose=False)
    np.testing.assert_array_equal(again.split(X, Y)[2], X_val)
    counts = Y.sum(axis=0)
    np.testing.assert_allclose(Y_val.sum(axis=0), counts * 0.2, atol=1)  # each class's share
    rows = {tuple(row) for row in X_val}
    assert not rows & {tuple(row) for row in X_train}
    assert mod.Trainer(validation_fraction=0.2, seed=5).split(X, Y)[2].tobytes() != \
        X_val.tobytes()
    with pytest.raises(ValueError, match="leaves none to train on"):
        mod.Trainer(validation_fraction=0.5).fit(X[:1], Y[:1])
    with pytest.raises(ValueError, match="early_stopping needs a validation set"):
        mod.Trainer(early_stopping=True).fit(X, Y)


def test_validation_scores_are_the_networks_accuracy():
    mod = module(*DENSE)
    X, Y = _classes(m=90)
    trainer = mod.Trainer(validation_fraction=0.3, seed=2, batch_size=8)
    trainer.fit(X, Y, epochs=3, verbose=False)
    _, _, X_val, Y_val = trainer.split(X, Y)
    accuracy = np.mean(trainer.predict(X_val).argmax(axis=1) == Y_val.argmax(axis=1))
    assert trainer.validation_scores[-1] == accuracy and len(trainer.validation_scores) == 3
    given = mod.Trainer(seed=2)
    given.fit(X[:60], Y[:60], epochs=1, verbose=False, validation=(X[60:], Y[60:]))
    assert given.validation_scores == [
        np.mean(given.predict(X[60:]).argmax(axis=1) == Y[60:].argmax(axis=1))]


def test_early_stopping_stops_and_brings_back_the_best_epoch():
    mod = module(*REGRESSION)
    X, Y = regression(m=80)
    settings = {"lr": 0.05, "batch_size": 8, "seed": 1, "validation_fraction": 0.25,
                "early_stopping": True, "n_iter_no_change": 2, "tol": 0.01, "max_epochs": 200}
    trainer = mod.Trainer(**settings)
    trainer.fit(X, Y, epochs=200, verbose=False)
    scores = trainer.validation_scores
    assert trainer.epoch < 200 and len(scores) == trainer.epoch
    # scikit-learn's rule: stop after more than n_iter_no_change epochs without improving the
    # best score by tol
    best, count, stop_at = -np.inf, 0, None
    for epoch, score in enumerate(scores, 1):
        count = count + 1 if score < best + 0.01 else 0
        best = max(best, score)
        if count > 2:
            stop_at = epoch
            break
    assert stop_at == trainer.epoch
    assert trainer.best_epoch == int(np.argmax(scores)) + 1
    twin = mod.Trainer(**settings)  # the same run, epoch by epoch, up to the best epoch
    twin.fit(X, Y, epochs=trainer.best_epoch, verbose=False)
    np.testing.assert_array_equal(trainer._theta, twin._theta)
    _, _, X_val, Y_val = trainer.split(X, Y)
    assert mod._score(trainer.predict(X_val), Y_val) == max(scores)


# --- divergence --------------------------------------------------------------------------------

def test_a_learning_rate_too_high_is_named():
    mod = module(*UNBOUNDED)
    X, Y = regression()
    trainer = mod.Trainer(lr=3.0, batch_size=8, seed=2)
    with pytest.raises(mod.TrainingDiverged) as caught:
        trainer.fit(X, Y, epochs=20, verbose=False)
    message = str(caught.value)
    assert re.match(r"training diverged in epoch \d+, batch \d+: the cost became ", message)
    assert "the learning rate is too high for this network and data (lr=3): try lr=0.3" in message
    assert "unit scale" not in message and isinstance(caught.value, ValueError)
    # the trainer is as it was after its last complete epoch
    twin = mod.Trainer(lr=3.0, batch_size=8, seed=2)
    twin.fit(X, Y, epochs=trainer.epoch, verbose=False)
    np.testing.assert_array_equal(trainer._theta, twin._theta)
    assert trainer.loss_curve == twin.loss_curve
    assert f"as it was after epoch {trainer.epoch}" in message


def test_unscaled_inputs_are_named_first():
    mod = module(*UNBOUNDED)
    X, Y = regression()
    trainer = mod.Trainer(lr=0.05, batch_size=8)
    with pytest.warns(UserWarning, match=r"X is far from unit scale \(root mean square"), \
            pytest.raises(mod.TrainingDiverged) as caught:
        trainer.fit(X * 40, Y, epochs=30, verbose=False)
    message = str(caught.value)
    cause = message.split("Likely cause: ")[1]
    assert cause.startswith("X is far from unit scale") and "StandardScaler" in cause
    assert "; or the learning rate is too high" in cause
    with pytest.warns(UserWarning, match="Y is far from unit scale"):
        mod.Trainer(lr=1e-4).fit(X, Y * 50, epochs=1, verbose=False)


def test_nan_and_a_tenfold_rise_are_divergence():
    mod = module(*UNBOUNDED)
    X, Y = regression()
    trainer = mod.Trainer(lr=0.01, batch_size=64)
    trainer.fit(X, Y, epochs=1, verbose=False)
    first = trainer.loss_curve[0]
    trainer.params["W1"][...] *= 1e3  # the next step's cost is far above the first epoch's
    with pytest.raises(mod.TrainingDiverged, match=r"the cost became [\d.e+]+, over ten times "
                                                   rf"the first epoch's mean {first:.4g}"):
        trainer.fit(X, Y, epochs=1, verbose=False)
    trainer.params["W1"][0, 0] = np.nan
    with pytest.raises(mod.TrainingDiverged, match="the cost became nan"):
        trainer.fit(X, Y, epochs=1, verbose=False)
    assert trainer.epoch == 1


def test_a_network_whose_output_stops_depending_on_its_input_has_collapsed():
    """ReLU units all dead after one huge step: the same output for every example, which no
    more training changes; TrainingDiverged says so, and the trainer is as it was before."""
    mod = module("6-16:relu-3:softmax", "cross_entropy")
    X, Y = _classes(m=128)
    trainer = mod.Trainer(lr=0.05, batch_size=16, seed=0)
    trainer.fit(X, Y, epochs=1, verbose=False)
    kept = trainer._theta.copy()
    trainer.params["b1"][...] = -1e3  # every hidden unit dead for every example
    with pytest.raises(mod.TrainingDiverged, match=r"training collapsed in epoch 2: the network's "
                                                   r"output became the same for every example"):
        trainer.fit(X, Y, epochs=3, verbose=False)
    np.testing.assert_array_equal(trainer.params["W1"], mod._views(kept)[0])  # as it was
    assert (trainer.params["b1"] == -1e3).all() and trainer.epoch == 1
    same = np.zeros_like(X)  # examples that do not differ: no such conclusion
    mod.Trainer(batch_size=16).fit(same, Y, epochs=1, verbose=False)


def test_interrupting_keeps_the_last_complete_epoch():
    mod = module(*DENSE)
    X, Y = _classes()
    trainer = mod.Trainer(batch_size=8, seed=3, optimizer="adam")
    trainer.fit(X, Y, epochs=2, verbose=False)
    steps, step = [0], trainer._step

    def interrupted(Xb, Yb):
        steps[0] += 1
        if steps[0] == 5:
            raise KeyboardInterrupt
        return step(Xb, Yb)

    trainer._step = interrupted
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, Y, epochs=3, verbose=False)
    twin = mod.Trainer(batch_size=8, seed=3, optimizer="adam")
    twin.fit(X, Y, epochs=2, verbose=False)
    assert trainer.epoch == 2 and trainer._t == twin._t
    np.testing.assert_array_equal(trainer._theta, twin._theta)
    np.testing.assert_array_equal(trainer._second, twin._second)
    assert trainer._rng.bit_generator.state == twin._rng.bit_generator.state


# --- what fit prints ---------------------------------------------------------------------------

def test_a_line_an_epoch_with_cost_validation_and_seconds(capsys):
    mod = module(*DENSE)
    X, Y = _classes(m=90)
    trainer = mod.Trainer(validation_fraction=0.2, early_stopping=True, n_iter_no_change=1,
                          tol=0.5, seed=1)
    costs = trainer.fit(X, Y, epochs=10)
    lines = capsys.readouterr().out.splitlines()
    pattern = r"epoch (\d+)/10  cost (\d+\.\d{6})  val accuracy (\d\.\d{4})  \d+\.\d\d s"
    epochs = [re.fullmatch(pattern, line) for line in lines[:len(costs)]]
    assert all(epochs), lines
    assert [float(e.group(2)) for e in epochs] == pytest.approx(costs, abs=1e-6)
    assert [float(e.group(3)) for e in epochs] == pytest.approx(trainer.validation_scores,
                                                                abs=1e-4)
    assert lines[len(costs)] == ("the validation accuracy has not improved by more than tol=0.5 "
                                 "for 2 epochs: stopping")
    assert lines[-1] == (f"the parameters of epoch {trainer.best_epoch} (val accuracy "
                         f"{trainer.best_validation_score:.4f}) are back")


class _Terminal:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_a_progress_bar_on_a_terminal_only(monkeypatch, capsys):
    mod = module(*DENSE)
    X, Y = _classes(m=64)
    mod.Trainer(batch_size=8).fit(X, Y, epochs=2)
    assert capsys.readouterr().err == ""  # not a terminal: no bar
    terminal = _Terminal()
    monkeypatch.setattr(mod.sys, "stderr", terminal)
    monkeypatch.setattr(mod._Bar, "delay", 0.0)
    monkeypatch.setattr(mod._Bar, "every", 0.0)
    mod.Trainer(batch_size=8).fit(X, Y, epochs=2)
    draws = terminal.text.split("\r\033[K")
    assert len(draws) == 3 and draws[-1] == ""  # each epoch's bar wiped before its line
    for epoch, draw in enumerate(draws[:2], 1):
        frames = draw.split("\r")[1:]
        assert len(frames) == 8
        assert frames[0].startswith(f"epoch {epoch}/2 [###...........................] 1/8 "
                                    "batches")
        assert frames[-1].startswith(f"epoch {epoch}/2 [{'#' * 30}] 8/8 batches")
    terminal.text = ""
    mod.Trainer(batch_size=8).fit(X, Y, epochs=2, verbose=False)
    assert terminal.text == ""


# --- the optimizers against PyTorch's ----------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_updates_are_pytorchs_and_scikit_learns(optimizer):
    """Five steps on fixed batches from the same parameters: the parameters after each equal
    those torch.optim.SGD reaches (momentum: dampening 0, v = mu v + g, theta -= lr v), or for
    Adam scikit-learn's AdamOptimizer (Kingma and Ba's form, eps added to sqrt(v) before the
    bias correction, as scikit-learn has it), fed the module's own gradients()."""
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    mod = module(*DENSE)
    X, Y = _classes(m=40, seed=6)
    trainer = mod.Trainer(lr=0.05, optimizer=optimizer, momentum=0.8, batch_size=8, seed=2)
    names = list(trainer.params)
    weights = [torch.nn.Parameter(torch.tensor(v.copy())) for v in trainer.params.values()]
    arrays = [v.copy() for v in trainer.params.values()]
    adam = AdamOptimizer(arrays, learning_rate_init=0.05)
    sgd = torch.optim.SGD(weights, lr=0.05, momentum=0.8 if optimizer == "momentum" else 0)
    for k in range(5):
        batch = slice(8 * k, 8 * k + 8)
        trainer.step(X[batch], Y[batch])
        if optimizer == "adam":
            grads = mod.gradients(dict(zip(names, arrays)), X[batch], Y[batch])
            adam.update_params(arrays, [grads[n] for n in names])
            reached = arrays
        else:
            grads = mod.gradients({n: w.detach().numpy() for n, w in zip(names, weights)},
                                  X[batch], Y[batch])
            for name, weight in zip(names, weights):
                weight.grad = torch.tensor(grads[name])
            sgd.step()
            reached = [w.detach().numpy() for w in weights]
        for name, value in zip(names, reached):
            np.testing.assert_allclose(trainer.params[name], value, rtol=1e-10, atol=1e-13)
