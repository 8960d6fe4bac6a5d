"""Exact resume: Trainer.save keeps the parameters, the settings, the optimizer's moments and
step count, the shuffling RNG, the epochs and examples trained, the learning rate and the
early-stopping bookkeeping, so that save, load and fit give bit for bit what one uninterrupted
fit gives; for dense, image and recurrent networks, every optimizer and schedule."""
from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
from estimator_helpers import blobs, module

NETS = {
    "dense": ("16-6:tanh-3:softmax", "cross_entropy"),
    "image": ("1x4x4-conv2k3p1:relu-maxpool2-flatten-3:softmax", "cross_entropy"),
    "recurrent": ("seq4x4-rnn5:tanh-3:softmax", "cross_entropy"),
    "recurrent every step": ("seq4x4-rnn5:tanh:all-2:identity", "mse"),
}
SETTINGS = {
    "sgd": {"optimizer": "sgd", "lr": 0.2},
    "momentum invscaling l2": {"optimizer": "momentum", "lr": 0.05, "schedule": "invscaling",
                               "l2": 0.3},
    "adam cosine": {"optimizer": "adam", "lr": 0.02, "schedule": "cosine", "max_epochs": 7},
    "adaptive early stopping": {"optimizer": "sgd", "lr": 0.5, "schedule": "adaptive",
                                "validation_fraction": 0.25, "early_stopping": True,
                                "n_iter_no_change": 1, "max_epochs": 7},
}


def _data(mod, loss, m=44):
    X, labels = blobs(m, 16, 3, seed=11)
    if loss == "mse":
        X = X.reshape(m, 4, 4)
        return X, np.stack([X.sum(axis=2), X[:, :, 0]], axis=2) / 4
    return X, np.eye(3)[labels]


def _state(trainer):
    return (trainer._theta.tobytes(), trainer._velocity.tobytes(), trainer._second.tobytes(),
            trainer._t, trainer.epoch, trainer.samples_seen, trainer.learning_rate,
            trainer.loss_curve, trainer.validation_scores, trainer.best_loss,
            trainer.best_validation_score, trainer.best_epoch, trainer._no_improvement,
            None if trainer._best is None else trainer._best.tobytes(),
            json.dumps(trainer._rng.bit_generator.state))


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("net", list(NETS))
def test_save_load_fit_is_an_uninterrupted_fit_bit_for_bit(net, setting, tmp_path):
    spec, loss = NETS[net]
    mod = module(spec, loss)
    X, Y = _data(mod, loss)
    settings = {"batch_size": 8, "seed": 5, **SETTINGS[setting]}
    whole = mod.Trainer(**settings)
    whole.fit(X, Y, epochs=7, verbose=False)
    part = mod.Trainer(**settings)
    part.fit(X, Y, epochs=3, verbose=False)
    part.save(tmp_path / "half")
    resumed = mod.Trainer.load(tmp_path / "half")  # .npz added as save adds it
    resumed.fit(X, Y, epochs=7 - resumed.epoch, verbose=False)
    assert _state(resumed) == _state(whole)
    np.testing.assert_array_equal(resumed.predict(X), whole.predict(X))
    # pickle and copy keep the same state, and train on the same way
    for twin in (pickle.loads(pickle.dumps(part)), copy.deepcopy(part)):
        twin.fit(X, Y, epochs=7 - twin.epoch, verbose=False)
        assert _state(twin) == _state(whole)


def test_the_run_really_moves_the_state():
    """The comparison above is not between trainers that never changed: each setting changes
    the parameters, moments, learning rate and RNG as it should."""
    mod = module(*NETS["dense"])
    X, Y = _data(mod, "cross_entropy")
    for setting, values in SETTINGS.items():
        trainer = mod.Trainer(batch_size=8, seed=5, **values)
        before = _state(trainer)
        trainer.fit(X, Y, epochs=3, verbose=False)
        after = _state(trainer)
        assert after[0] != before[0] and after[-1] != before[-1], setting
        assert (after[1] != before[1]) == (values["optimizer"] != "sgd"), setting
        schedule = values.get("schedule", "constant")
        if schedule != "adaptive":  # adaptive's moves when the cost stalls
            assert (after[6] != before[6]) == (schedule != "constant"), setting


def test_early_stopping_resume_keeps_the_best_parameters(tmp_path):
    mod = module(*NETS["dense"])
    X, Y = _data(mod, "cross_entropy")
    trainer = mod.Trainer(batch_size=8, seed=5, **SETTINGS["adaptive early stopping"])
    trainer.fit(X, Y, epochs=4, verbose=False)
    assert trainer._best is not None
    trainer.save(tmp_path / "t.npz")
    loaded = mod.Trainer.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(loaded._best, trainer._best)
    assert (loaded.best_epoch, loaded.best_validation_score, loaded.early_stopping) == \
        (trainer.best_epoch, trainer.best_validation_score, True)


def test_the_estimator_resumes_through_its_trainer(tmp_path):
    mod = module(*NETS["dense"])
    X, y = blobs(44, 16, 3, seed=11)
    whole = mod.Classifier(max_iter=5, random_state=2, batch_size=8)
    for _ in range(5):
        whole.partial_fit(X, y, classes=[0, 1, 2])
    part = mod.Classifier(max_iter=5, random_state=2, batch_size=8)
    for _ in range(2):
        part.partial_fit(X, y, classes=[0, 1, 2])
    part.trainer_.save(tmp_path / "t.npz")
    trainer = mod.Trainer.load(tmp_path / "t.npz")
    trainer.fit(X, np.eye(3)[y], epochs=3, verbose=False)
    assert _state(trainer) == _state(whole.trainer_)
    again = pickle.loads(pickle.dumps(part))
    for _ in range(3):
        again.partial_fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), whole.predict_proba(X))
    assert again.loss_curve_ == whole.loss_curve_ and again.n_iter_ == 5


def test_a_file_without_training_state_still_loads(tmp_path):
    """Files that saves before exact resume wrote: parameters and the first settings only."""
    mod = module(*NETS["dense"])
    params = mod.init_params(seed=4)
    settings = {"lr": 0.05, "optimizer": "momentum", "momentum": 0.9, "batch_size": 5,
                "seed": 2, "dtype": "float64"}
    np.savez(tmp_path / "old.npz", arch=json.dumps(mod.ARCH), settings=json.dumps(settings),
             **params)
    trainer = mod.Trainer.load(tmp_path / "old.npz")
    assert trainer.epoch == 0 and trainer.loss_curve == [] and trainer.schedule == "constant"
    for name, value in params.items():
        np.testing.assert_array_equal(trainer.params[name], value)


@pytest.mark.parametrize("spoil,message", [
    (lambda state, arrays: state.pop("rng"), "training state is not what save writes"),
    (lambda state, arrays: state.update(loss_curve="many"), "training state is not what save"),
    (lambda state, arrays: arrays.update(velocity=np.zeros(3)), "velocity must be"),
], ids=["no rng", "bad curve", "short moments"])
def test_a_spoiled_training_state_is_refused(tmp_path, spoil, message):
    mod = module(*NETS["dense"])
    X, Y = _data(mod, "cross_entropy")
    trainer = mod.Trainer(batch_size=8)
    trainer.fit(X, Y, epochs=1, verbose=False)
    trainer.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz") as data:
        arrays = {name: data[name] for name in data.files}
    state = json.loads(str(arrays["state"]))
    spoil(state, arrays)
    arrays["state"] = np.array(json.dumps(state))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        mod.Trainer.load(tmp_path / "bad.npz")
