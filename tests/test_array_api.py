"""The array-API backend: ``generate --backend array-api`` prints the plan the NumPy module is
printed from as pure functions of any array-API library's arrays.

For every output activation × loss the registry allows (and the user's functions), and for
every image network (convolution, both poolings, strides, padding) and recurrent network
(many-to-one and many-to-many) of the NumPy trainers' tables, on NumPy
(through array-api-compat), array-api-strict (nothing but the standard), PyTorch CPU tensors and,
where installed, JAX: the gradients equal the NumPy backend's to 1e-12 relative in float64 (and
those are checked against numeric differences in test_codegen), the results are arrays of the
inputs' library, dtype and device; one SGD, momentum and Adam step equal the NumPy Trainer's;
fit lowers the cost; train_step runs under jax.jit; a CUDA device, when there is one, gives the
same gradients. Bad input raises ValueError; an operation the backend has no rule for raises
GenerationError."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from functools import cache

import array_api_compat
import array_api_strict
import numpy as np
import pytest
import torch
from codegen_helpers import (
    IMAGE_NETS,
    SEQUENCE_NETS,
    arch,
    combinations,
    load,
    module_from_source,
    relative_error,
    spec_for,
    targets,
)
from estimator_helpers import blobs, regression

from symbackprop.codegen import generate, xp_kernels
from symbackprop.codegen.backends import ArrayAPIBackend
from symbackprop.codegen.ops import Op
from symbackprop.errors import GenerationError


def _jax():
    if importlib.util.find_spec("jax") is None:
        return None
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax.numpy


# name -> (the namespace, arrays of it from NumPy's, NumPy's from its arrays)
LIBRARIES = {
    "numpy": (array_api_compat.array_namespace(np.empty(0)), np.asarray, np.asarray),
    "array-api-strict": (array_api_strict, array_api_strict.asarray, np.asarray),
    "torch": (array_api_compat.array_namespace(torch.empty(0)), torch.asarray,
              lambda t: t.detach().cpu().numpy()),
}
if _jax() is not None:
    LIBRARIES["jax"] = (_jax(), _jax().asarray, np.asarray)
LIBS = list(LIBRARIES)

COMBOS = list(combinations())


@cache
def xp_module(spec, loss, l2=0, **options):
    return module_from_source(generate(arch(spec, loss, l2), backend="array-api", **options),
                              "array_api_trainer")


@cache
def net_for(act, loss):
    """A random 3-layer network ending in ``act``, the same on every call."""
    return spec_for(act, 3, np.random.default_rng(sum(map(ord, act + loss))))


@cache
def xp_source(spec, loss):
    """The array-API module of a network of the tables, with an L2 penalty: printed once for
    the tests that read its text."""
    return generate(arch(spec, loss, "0.01"), backend="array-api")


def problem(spec, loss, m=7, seed=0):
    """X (m, n_0), (m, C, H, W) or (m, T, n), and Y: (m, T, n_out) for a many-to-many
    network."""
    a = arch(spec, loss)
    rng = np.random.default_rng(seed)
    dims = a.image if a.image is not None else a.sequence
    X = rng.standard_normal((m, *(dims if dims is not None else (a.sizes[0],))))
    if a.every_step:
        T = a.sequence[0]
        return X, targets(loss, a.sizes[-1], m * T, rng).reshape(m, T, -1)
    return X, targets(loss, a.sizes[-1], m, rng)


def _to(lib, params):
    return {k: LIBRARIES[lib][1](v) for k, v in params.items()}


def _back(lib, arrays):
    return {k: LIBRARIES[lib][2](v) for k, v in arrays.items()}


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("act,loss", COMBOS, ids=[f"{a}-{l}" for a, l in COMBOS])
def test_gradients_equal_the_numpy_backends(act, loss, lib):
    spec = net_for(act, loss)
    npm, xpm = load(spec, loss), xp_module(spec, loss)
    X, Y = problem(spec, loss)
    params = npm.init_params(seed=3)
    for key in params:  # biases away from 0, so that no unit sits at a kink
        params[key] = params[key] + 0.1 * np.sin(np.arange(params[key].size)).reshape(
            params[key].shape)
    expected = npm.gradients(params, X, Y)
    xp, to, _ = LIBRARIES[lib]
    got = xpm.gradients(_to(lib, params), to(X), to(Y))
    assert all(type(g) is type(to(X)) and g.dtype == xp.float64 for g in got.values())
    assert relative_error(_back(lib, got), expected) < 1e-12
    assert xpm.cost(_to(lib, params), to(X), to(Y)) == pytest.approx(
        npm.cost(params, X, Y), rel=1e-12, abs=1e-300)
    out = LIBRARIES[lib][2](xpm.forward(_to(lib, params), to(X)))
    np.testing.assert_allclose(out, npm.forward(params, X), rtol=1e-12, atol=1e-300)


STEPS = [("sgd", {}), ("momentum", {"momentum": 0.8}), ("adam", {})]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("optimizer,settings", STEPS, ids=[s[0] for s in STEPS])
@pytest.mark.parametrize("spec,loss", [
    ("4-6:tanh-5:relu-3:softmax", "cross_entropy"), ("3-4:gelu-2:sigmoid", "bce"),
    IMAGE_NETS[2], SEQUENCE_NETS[0], SEQUENCE_NETS[5]],
    ids=["dense", "gelu", "image", "rnn-last", "rnn-every"])
def test_steps_equal_the_numpy_trainers(spec, loss, optimizer, settings, lib):
    """Three steps of each optimizer: the costs and the parameters after them agree."""
    npm, xpm = load(spec, loss), xp_module(spec, loss)
    X, Y = problem(spec, loss, m=8)
    params = npm.init_params(seed=5)
    ours = npm.Trainer({k: v.copy() for k, v in params.items()}, lr=0.05,
                       optimizer=optimizer, **settings)
    theirs = xpm.Trainer(_to(lib, params), lr=0.05, optimizer=optimizer, **settings)
    to = LIBRARIES[lib][1]
    for _ in range(3):
        assert theirs.step(to(X), to(Y)) == pytest.approx(ours.step(X, Y), rel=1e-12)
    assert relative_error(_back(lib, theirs.params), ours.params) < 1e-12


@pytest.mark.parametrize("lib", LIBS)
def test_fit_lowers_the_cost(lib):
    spec, loss = "4-8:relu-3:softmax", "cross_entropy"
    xpm = xp_module(spec, loss)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((96, 4))
    Y = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    to = LIBRARIES[lib][1]
    trainer = xpm.Trainer(xp=LIBRARIES[lib][0], lr=0.2, batch_size=16, seed=2)
    costs = trainer.fit(to(X), to(Y), epochs=25, verbose=False)
    assert costs[-1] < 0.5 * costs[0] and trainer.epoch == 25
    assert type(trainer.predict(to(X))) is type(to(X))


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_init_params_are_the_numpy_modules_in_the_asked_library(lib, dtype):
    spec, loss = "5-4:tanh-2:sigmoid", "bce"
    xp, to, back = LIBRARIES[lib]
    params = xp_module(spec, loss).init_params(seed=7, dtype=dtype, xp=xp)
    expected = load(spec, loss, dtype=dtype).init_params(seed=7)
    for name, value in params.items():
        assert type(value) is type(to(np.zeros(1))) and value.dtype == getattr(xp, dtype)
        np.testing.assert_array_equal(back(value), expected[name])


@pytest.mark.parametrize("lib", ["array-api-strict", "torch"])
def test_float32_stays_float32(lib):
    spec, loss = "4-8:relu-3:softmax", "cross_entropy"
    xp, to, back = LIBRARIES[lib]
    xpm = xp_module(spec, loss)
    params = xpm.init_params(seed=1, dtype="float32", xp=xp)
    X, Y = problem(spec, loss)
    grads = xpm.gradients(params, to(X), to(Y))
    assert all(g.dtype == xp.float32 for g in grads.values())
    expected = load(spec, loss).gradients(_back(lib, params), X, Y)  # float64
    assert relative_error({k: back(g).astype(float) for k, g in grads.items()}, expected) < 1e-5


def test_train_step_runs_under_jax_jit():
    jnp = _jax()
    if jnp is None:
        pytest.skip("jax is not installed: pip install jax to run this test")
    import jax

    spec, loss = "4-5:gelu-3:softmax", "cross_entropy"
    npm, xpm = load(spec, loss), xp_module(spec, loss)
    X, Y = problem(spec, loss, m=8)
    params = npm.init_params(seed=1)
    step = jax.jit(xpm.train_step)
    P = _to("jax", params)
    for _ in range(3):
        J, P = step(P, jnp.asarray(X), jnp.asarray(Y), 0.1)
    trainer = npm.Trainer({k: v.copy() for k, v in params.items()}, lr=0.1, batch_size=8)
    for _ in range(3):
        expected = trainer.step(X, Y)
    assert float(J) == pytest.approx(expected, rel=1e-12)
    assert relative_error(_back("jax", P), trainer.params) < 1e-12


def test_cuda_gives_the_same_gradients():
    """On a CUDA device: the gradients of a dense, an image and a many-to-many net, an
    estimator's fit there, and a step, equal NumPy's."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False here")
    for spec, loss in [("784-128:relu-10:softmax", "cross_entropy"), IMAGE_NETS[0],
                       SEQUENCE_NETS[3]]:
        npm, xpm = load(spec, loss), xp_module(spec, loss)
        X, Y = problem(spec, loss, m=64)
        params = npm.init_params(seed=0)
        on_gpu = {k: torch.asarray(v, device="cuda") for k, v in params.items()}
        tX, tY = torch.asarray(X, device="cuda"), torch.asarray(Y, device="cuda")
        got = xpm.gradients(on_gpu, tX, tY)
        assert all(g.device.type == "cuda" for g in got.values())
        assert relative_error({k: g.cpu().numpy() for k, g in got.items()},
                              npm.gradients(params, X, Y)) < 1e-12
        trainer = xpm.Trainer(on_gpu, lr=0.05, optimizer="adam")
        ours = npm.Trainer(params, lr=0.05, optimizer="adam")
        assert trainer.step(tX, tY) == pytest.approx(ours.step(X, Y), rel=1e-12)
        assert relative_error({k: v.cpu().numpy() for k, v in trainer.params.items()},
                              ours.params) < 1e-12


# --- image and recurrent networks -------------------------------------------------------------

LAYERED = IMAGE_NETS + SEQUENCE_NETS
LAYERED_IDS = [spec for spec, _ in LAYERED]
# the networks whose modules' text the tests read: one a combination, and the layered ones
TEXT_NETS = [(net_for(act, loss), loss) for act, loss in COMBOS] + LAYERED


def perturbed(npm, seed=3):
    """init_params moved off zero biases and away from kinks, the same on every call."""
    params = npm.init_params(seed=seed)
    return {k: v + 0.2 * np.sin(np.arange(v.size) + len(k)).reshape(v.shape)
            for k, v in params.items()}


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("spec,loss", LAYERED, ids=LAYERED_IDS)
def test_image_and_recurrent_gradients_equal_the_numpy_backends(spec, loss, lib):
    """Every layer kind, with and without L2 (every other entry): gradients, cost and output
    equal the NumPy module's (whose gradients test_conv_trainers and test_rnn_trainers hold to
    numeric differences), as arrays of the inputs' library in float64."""
    l2 = "0.01" if LAYERED.index((spec, loss)) % 2 else 0
    npm, xpm = load(spec, loss, l2=l2), xp_module(spec, loss, l2)
    X, Y = problem(spec, loss, m=5)
    params = perturbed(npm)
    xp, to, back = LIBRARIES[lib]
    got = xpm.gradients(_to(lib, params), to(X), to(Y))
    assert all(type(g) is type(to(X)) and g.dtype == xp.float64 for g in got.values())
    assert {k: tuple(g.shape) for k, g in got.items()} == {k: v.shape for k, v in params.items()}
    assert relative_error(_back(lib, got), npm.gradients(params, X, Y)) < 1e-12
    assert xpm.cost(_to(lib, params), to(X), to(Y)) == pytest.approx(npm.cost(params, X, Y),
                                                                     rel=1e-12)
    out = back(xpm.forward(_to(lib, params), to(X)))
    assert out.shape == Y.shape
    np.testing.assert_allclose(out, npm.forward(params, X), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("spec,loss", [IMAGE_NETS[1], SEQUENCE_NETS[3]], ids=["image", "every"])
def test_image_and_recurrent_gradients_match_numeric_differences(spec, loss):
    """The array-API module's own check, on array-api-strict: its gradients against its
    central differences."""
    xpm = xp_module(spec, loss)
    X, Y = problem(spec, loss, m=3)
    params = _to("array-api-strict", perturbed(load(spec, loss)))
    X, Y = array_api_strict.asarray(X), array_api_strict.asarray(Y)
    got = _back("array-api-strict", xpm.gradients(params, X, Y))
    numeric = _back("array-api-strict", xpm.numeric_gradients(params, X, Y))
    assert relative_error(got, numeric) < 1e-7


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("spec,loss", [IMAGE_NETS[0], SEQUENCE_NETS[0]], ids=["image", "rnn"])
def test_image_and_recurrent_init_params_are_the_numpy_modules(spec, loss, lib):
    """The same draws as the NumPy module's (the rnn's orthogonal U included)."""
    npm, xpm = load(spec, loss), xp_module(spec, loss)
    got = _back(lib, xpm.init_params(seed=7, xp=LIBRARIES[lib][0]))
    expected = npm.init_params(seed=7)
    assert relative_error(got, expected) < 1e-15
    if "U1" in got:
        np.testing.assert_allclose(got["U1"] @ got["U1"].T, np.eye(len(got["U1"])), atol=1e-12)


def test_images_and_sequences_arrive_as_rows_too():
    """X of rows of C*H*W (or T*n) numbers, Y of a many-to-many network as rows of T*n_out:
    the same as the shaped arrays; other shapes are one-line ValueErrors."""
    for spec, loss in (IMAGE_NETS[0], SEQUENCE_NETS[3]):
        xpm = xp_module(spec, loss)
        X, Y = problem(spec, loss, m=5)
        params = xpm.init_params(seed=2)
        rows = np.reshape(X, (X.shape[0], -1))
        assert xpm.cost(params, rows, np.reshape(Y, (Y.shape[0], -1))) == xpm.cost(params, X, Y)
        with pytest.raises(ValueError) as err:
            xpm.forward(params, X[:, :, :1])
        shape = "(m, " + ", ".join(map(str, X.shape[1:])) + ")"
        assert f"X must have shape {shape}, got {X[:, :, :1].shape}" == str(err.value)


@pytest.mark.skipif(_jax() is None, reason="jax is not installed")
@pytest.mark.parametrize("spec,loss", LAYERED, ids=LAYERED_IDS)
def test_image_and_recurrent_steps_run_under_jax_jit(spec, loss):
    import jax

    npm, xpm = load(spec, loss), xp_module(spec, loss)
    X, Y = problem(spec, loss, m=4)
    params = npm.init_params(seed=1)
    jnp = _jax()
    J, new = jax.jit(xpm.train_step)({k: jnp.asarray(v) for k, v in params.items()},
                                     jnp.asarray(X), jnp.asarray(Y), 0.1)
    trainer = npm.Trainer({k: v.copy() for k, v in params.items()}, lr=0.1, batch_size=4)
    assert float(J) == pytest.approx(trainer.step(X, Y), rel=1e-12)
    assert relative_error({k: np.asarray(v) for k, v in new.items()}, trainer.params) < 1e-12


def test_every_array_api_kernel_is_called_by_a_module_of_the_tables():
    """Each pure kernel (xp_kernels.RETURNS) is printed into some module the tests above run."""
    import re

    from symbackprop.spec import Definition, parse_arch

    erf = parse_arch("3-4:erfish-2:identity", "mse",  # erf itself, as a user may write it
                     definitions=(Definition("activation", "erfish", "erf(z)"),))
    texts = [*(xp_source(s, l) for s, l in TEXT_NETS), generate(erf, backend="array-api")]
    called = set()
    for text in texts:
        called |= set(re.findall(r"= (_[a-z0-9_]+)\(xp, ", text))
    assert set(xp_kernels.RETURNS) <= called, set(xp_kernels.RETURNS) - called


# --- files: the NumPy module's archives --------------------------------------------------------

FILE_NETS = [("4-8:relu-3:softmax", "cross_entropy"), IMAGE_NETS[1], SEQUENCE_NETS[3]]


@pytest.mark.parametrize("lib", ["numpy", "array-api-strict", "torch"])
@pytest.mark.parametrize("spec,loss", FILE_NETS, ids=["dense", "image", "rnn-every"])
def test_save_then_load_fits_on_as_the_trainer_would(spec, loss, lib, tmp_path):
    """One epoch, save, load into the same library, two more: the costs and parameters of
    three epochs in one go, bit for bit (Adam's moments, the epoch, the shuffling stream)."""
    xpm = xp_module(spec, loss)
    X, Y = problem(spec, loss, m=12)
    xp, to, _ = LIBRARIES[lib]
    X, Y = to(X), to(Y)
    whole = xpm.Trainer(xp=xp, lr=0.05, optimizer="adam", batch_size=5, seed=3)
    expected = whole.fit(X, Y, epochs=3, verbose=False)
    first = xpm.Trainer(xp=xp, lr=0.05, optimizer="adam", batch_size=5, seed=3)
    costs = first.fit(X, Y, epochs=1, verbose=False)
    first.save(tmp_path / "w")
    again = xpm.Trainer.load(tmp_path / "w", xp=xp)
    assert type(again.params["W1"]) is type(X) and again.epoch == 1
    assert costs + again.fit(X, Y, epochs=2, verbose=False) == expected
    assert again.loss_curve == whole.loss_curve
    assert relative_error(_back(lib, again.params), _back(lib, whole.params)) == 0


@pytest.mark.parametrize("spec,loss", FILE_NETS, ids=["dense", "image", "rnn-every"])
def test_the_numpy_module_reads_the_archive_and_the_other_way(spec, loss, tmp_path):
    """Trained on PyTorch tensors, saved, loaded by the NumPy module's Trainer: the same
    parameters, settings and outputs; a NumPy module's archive loads here as well."""
    npm, xpm = load(spec, loss), xp_module(spec, loss)
    X, Y = problem(spec, loss, m=10)
    trainer = xpm.Trainer(xp=LIBRARIES["torch"][0], lr=0.02, optimizer="momentum",
                          momentum=0.7, batch_size=4, seed=9)
    trainer.fit(torch.asarray(X), torch.asarray(Y), epochs=2, verbose=False)
    trainer.save(tmp_path / "xp.npz")
    theirs = npm.Trainer.load(tmp_path / "xp.npz")
    assert relative_error(theirs.params, _back("torch", trainer.params)) == 0
    assert (theirs.lr, theirs.optimizer, theirs.momentum, theirs.batch_size, theirs.seed) == (
        0.02, "momentum", 0.7, 4, 9)
    np.testing.assert_allclose(theirs.predict(X), trainer.predict(torch.asarray(X)).numpy(),
                               rtol=1e-12)
    theirs.fit(X, Y, epochs=1, verbose=False)
    theirs.save(tmp_path / "np.npz")
    ours = xpm.Trainer.load(tmp_path / "np.npz", xp=array_api_strict)
    assert relative_error(_back("array-api-strict", ours.params), theirs.params) == 0
    assert type(ours.params["W1"]) is type(array_api_strict.asarray(X))


# (id, the Trainer's settings): every schedule, a run-time L2, validation with early stopping
SETTINGS = [
    ("invscaling", {"schedule": "invscaling", "power_t": 0.3}),
    ("cosine", {"schedule": "cosine", "max_epochs": 4}),
    ("adaptive", {"schedule": "adaptive", "n_iter_no_change": 1, "tol": 10.0}),
    ("l2 adam", {"l2": 0.05, "optimizer": "adam"}),
    ("early stopping", {"validation_fraction": 0.25, "early_stopping": True,
                        "n_iter_no_change": 1, "tol": 0.5}),
    ("watched cost", {"n_iter_no_change": 1, "tol": 10.0, "optimizer": "momentum"}),
]


@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("case,settings", SETTINGS, ids=[c for c, _ in SETTINGS])
@pytest.mark.parametrize("spec,loss", FILE_NETS, ids=["dense", "image", "rnn-every"])
def test_fit_with_every_setting_is_the_numpy_trainers(spec, loss, case, settings, lib):
    """Four epochs unshuffled: the same costs, validation scores, learning rate, stopping
    epoch and parameters as the NumPy module's Trainer with the same settings."""
    npm, xpm = load(spec, loss), xp_module(spec, loss)
    X, Y = problem(spec, loss, m=16)
    ours = npm.Trainer(lr=0.1, batch_size=5, seed=2, **settings)
    theirs = xpm.Trainer(lr=0.1, batch_size=5, seed=2, xp=LIBRARIES[lib][0], **settings)
    to = LIBRARIES[lib][1]
    expected = ours.fit(X, Y, epochs=4, shuffle=False, verbose=False)
    costs = theirs.fit(to(X), to(Y), epochs=4, shuffle=False, verbose=False)
    assert costs == pytest.approx(expected, rel=1e-12) and theirs.epoch == ours.epoch
    assert theirs.validation_scores == pytest.approx(ours.validation_scores, rel=1e-12)
    assert theirs.learning_rate == ours.learning_rate and theirs.best_epoch == ours.best_epoch
    assert relative_error(_back(lib, theirs.params), ours.params) < 1e-12


def test_the_settings_change_what_fit_does():
    """Each row of SETTINGS trains otherwise than the plain trainer (a test of the table)."""
    spec, loss = FILE_NETS[0]
    xpm = xp_module(spec, loss)
    X, Y = problem(spec, loss, m=16)
    plain = xpm.Trainer(lr=0.1, batch_size=5, seed=2).fit(X, Y, epochs=4, verbose=False)
    for case, settings in SETTINGS:
        costs = xpm.Trainer(lr=0.1, batch_size=5, seed=2, **settings).fit(
            X, Y, epochs=4, verbose=False)
        assert costs != plain, case


# --- training that goes wrong, said as the NumPy module says it -------------------------------

@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_divergence_is_named_and_the_trainer_kept_as_the_numpy_module_does(lib):
    """A learning rate too high, unscaled inputs, NaN, a tenfold rise: TrainingDiverged with
    the NumPy module's message, the trainer as after its last complete epoch."""
    spec, loss = "3-8:relu-1:identity", "mse"
    npm, xpm = load(spec, loss), xp_module(spec, loss)
    xp, to, back = LIBRARIES[lib]
    X, Y = regression()
    messages = []
    for module, data in ((npm, (X, Y)), (xpm, (to(X), to(Y)))):
        trainer = module.Trainer(lr=3.0, batch_size=8, seed=2)
        if module is xpm:
            trainer = module.Trainer(_to(lib, npm.init_params(2)), lr=3.0, batch_size=8, seed=2)
        with pytest.raises(module.TrainingDiverged) as caught:
            trainer.fit(*data, epochs=20, shuffle=False, verbose=False)
        messages.append((str(caught.value), trainer.epoch, trainer.params))
    assert messages[1][0] == messages[0][0] and messages[1][1] == messages[0][1]
    assert "the learning rate is too high for this network and data (lr=3): try lr=0.3" \
        in messages[1][0]
    assert relative_error(_back(lib, messages[1][2]), messages[0][2]) < 1e-12
    with pytest.warns(UserWarning, match=r"X is far from unit scale \(root mean square"), \
            pytest.raises(xpm.TrainingDiverged, match="Likely cause: X is far from unit scale"):
        xpm.Trainer(xp=xp, lr=0.05, batch_size=8).fit(to(X * 40), to(Y), epochs=30,
                                                        verbose=False)
    trainer = xpm.Trainer(xp=xp, lr=0.01, batch_size=64)
    first = trainer.fit(to(X), to(Y), epochs=1, verbose=False)[0]
    big = xpm.Trainer({**trainer.params, "W1": trainer.params["W1"] * 1e3}, lr=0.01,
                      batch_size=64)
    big._first_cost = first  # the next step's cost is far above the first epoch's
    with pytest.raises(xpm.TrainingDiverged, match=r"the cost became [\d.e+]+, over ten times "
                                                   rf"the first epoch's mean {first:.4g}"):
        big.fit(to(X), to(Y), epochs=1, verbose=False)
    nan = np.asarray(back(trainer.params["W1"])).copy()
    nan[0, 0] = np.nan
    with pytest.raises(xpm.TrainingDiverged, match="the cost became nan"):
        xpm.Trainer({**trainer.params, "W1": to(nan)}).fit(to(X), to(Y), epochs=1,
                                                             verbose=False)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_a_network_whose_output_stops_depending_on_its_input_has_collapsed(lib):
    """Every hidden ReLU dead: TrainingDiverged says the training collapsed, the parameters as
    they were; examples that do not differ draw no such conclusion."""
    spec, loss = "6-16:relu-3:softmax", "cross_entropy"
    xpm = xp_module(spec, loss)
    xp, to, _ = LIBRARIES[lib]
    X, labels = blobs(128, 6, 3)
    X, Y = to(X), to(np.eye(3)[labels])
    trainer = xpm.Trainer(xp=xp, lr=0.05, batch_size=16, seed=0)
    trainer.fit(X, Y, epochs=1, verbose=False)
    dead = xpm.Trainer({**trainer.params, "b1": trainer.params["b1"] * 0 - 1e3}, lr=0.05,
                       batch_size=16)
    dead.epoch = 1
    with pytest.raises(xpm.TrainingDiverged, match=r"training collapsed in epoch 2: the network's "
                                                   r"output became the same for every example"):
        dead.fit(X, Y, epochs=3, verbose=False)
    assert relative_error(_back(lib, dead.params), {**_back(lib, trainer.params), "b1": np.full(
        16, -1e3)}) == 0 and dead.epoch == 1
    xpm.Trainer(xp=xp, batch_size=16).fit(X * 0, Y, epochs=1, verbose=False)


FILE_FAULTS = [  # (id, what the file holds, the error's type and words)
    ("missing", None, FileNotFoundError, ""),
    ("empty", b"", ValueError, "is empty"),
    ("not an archive", b"not a zip file at all", ValueError, "is not a .npz archive"),
    ("another network", "other", ValueError, "holds a different network"),
    ("a setting Trainer does not take", "bogus", ValueError,
     "settings has bogus, which Trainer does not take"),
    ("a setting Trainer refuses", "refused", ValueError, "schedule must be one of"),
]


@pytest.mark.parametrize("case,content,error,words", FILE_FAULTS, ids=[f[0] for f in FILE_FAULTS])
def test_a_file_load_cannot_use_is_one_line_naming_why(case, content, error, words, tmp_path):
    spec, loss = "4-8:relu-3:softmax", "cross_entropy"
    path = tmp_path / "w.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "other":
        load("4-9:relu-3:softmax", loss).Trainer().save(path)
    elif content in ("bogus", "refused"):
        trainer = load(spec, loss).Trainer()
        settings = {"lr": 0.1, "bogus": 1} if content == "bogus" else {"schedule": "wild"}
        np.savez(path, arch=json.dumps(xp_module(spec, loss).ARCH),
                 settings=json.dumps(settings), **trainer.params)
    with pytest.raises(error) as err:
        xp_module(spec, loss).Trainer.load(path)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_save_refuses_a_folder_and_keeps_the_old_file_when_it_fails(tmp_path, monkeypatch):
    xpm = xp_module("4-8:relu-3:softmax", "cross_entropy")
    with pytest.raises(ValueError, match="is a directory, not a regular file"):
        (tmp_path / "d.npz").mkdir()
        xpm.Trainer().save(tmp_path / "d.npz")
    xpm.Trainer(seed=1).save(tmp_path / "w.npz")
    before = (tmp_path / "w.npz").read_bytes()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(xpm.np, "savez", full)
    with pytest.raises(OSError, match="No space left"):
        xpm.Trainer(seed=2).save(tmp_path / "w.npz")
    assert (tmp_path / "w.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "w.npz"]


# --- the module is pure array-API code --------------------------------------------------------

@pytest.mark.parametrize("spec,loss,least", [
    ("4-8:gelu-3:softmax", "cross_entropy", 3),  # GELU's erfc and what it calls
    (IMAGE_NETS[2][0], IMAGE_NETS[2][1], 10),
    (SEQUENCE_NETS[4][0], SEQUENCE_NETS[4][1], 5)], ids=["dense", "image", "sequence"])
def test_the_module_writes_nothing_in_place(spec, loss, least):
    """No out= and no ufunc method anywhere; in the step functions and kernels no augmented or
    subscripted assignment (JAX arrays are immutable) and no NumPy; NumPy named only where the
    initial weights are drawn, the default namespace is made, files are read and written, and
    a validation split is drawn and scored on the host."""
    import ast

    text = generate(arch(spec, loss), backend="array-api")
    tree = ast.parse(text)
    functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.keyword) and node.arg == "out")
        assert not (isinstance(node, ast.Attribute) and node.attr in ("reduce", "at"))
    kernels = [name for name in functions
               if not name.startswith("__") and hasattr(xp_kernels, name)]
    assert len(kernels) >= least
    pure = ["_forward", "_cost", "_train_step", "train_step", *kernels]
    for name in pure:
        for node in ast.walk(functions[name]):
            assert not isinstance(node, ast.AugAssign), name
            assert not (isinstance(node, ast.Assign)
                        and any(isinstance(t, ast.Subscript) for t in node.targets)), name
    numpy_users = {name for name, f in functions.items()
                   if any(isinstance(n, ast.Name) and n.id == "np" for n in ast.walk(f))}
    cls = next(c for c in ast.walk(tree) if isinstance(c, ast.ClassDef) and c.name == "Trainer")
    trainer = {f.name for f in ast.walk(cls) if isinstance(f, ast.FunctionDef)}
    host = {"save", "load", "_resume", "__init__", "_held_out", "_validate"}  # files; the split
    assert "_normals" in numpy_users and not numpy_users & set(pure)
    assert numpy_users & trainer <= host, numpy_users & trainer  # not in a step, nor in fit


BAD = [  # (id, call(module, params, X, Y), the message's words)
    ("two libraries", lambda m, P, X, Y: m.gradients(
        {**P, "W1": torch.asarray(np.asarray(P["W1"]))}, X, Y), "not of one array-API library"),
    ("X of another shape", lambda m, P, X, Y: m.forward(P, X[:, :2]),
     "X must have shape (m, 4), got (7, 2)"),
    ("Y of other rows", lambda m, P, X, Y: m.cost(P, X, Y[:3]), "Y must have 7 rows"),
    ("a missing parameter", lambda m, P, X, Y: m.forward({"W1": P["W1"]}, X),
     "params must be a dict with the keys W1, b1, W2, b2"),
    ("a parameter of another shape", lambda m, P, X, Y: m.forward({**P, "b1": P["W1"]}, X),
     "params['b1'] must be a float array of shape (8,)"),
    ("a bad optimizer", lambda m, P, X, Y: m.Trainer(P, optimizer="rmsprop"),
     "optimizer must be one of sgd, momentum, adam"),
    ("lr inf", lambda m, P, X, Y: m.Trainer(P, lr=float("inf")), "lr must be a finite number"),
    ("NaN in X", lambda m, P, X, Y: m.Trainer(P).fit(X * np.nan, Y), "X holds NaN or inf"),
    ("a bad dtype", lambda m, P, X, Y: m.init_params(dtype="int8"),
     "dtype must be float32 or float64"),
    ("a bad seed", lambda m, P, X, Y: m.init_params(seed=-1), "seed must be an integer >= 0"),
    ("a bad schedule", lambda m, P, X, Y: m.Trainer(P, schedule="step"),
     "schedule must be one of constant, invscaling, adaptive, cosine"),
    ("cosine without max_epochs", lambda m, P, X, Y: m.Trainer(P, schedule="cosine"),
     "schedule 'cosine' needs max_epochs"),
    ("validation_fraction 1", lambda m, P, X, Y: m.Trainer(P, validation_fraction=1),
     "validation_fraction must be a number in [0, 1)"),
    ("early stopping without validation", lambda m, P, X, Y: m.Trainer(
        P, early_stopping=True).fit(X, Y), "early_stopping needs a validation set"),
    ("l2 negative", lambda m, P, X, Y: m.Trainer(P, l2=-1), "l2 must be a finite number >= 0"),
    ("epochs 1.5", lambda m, P, X, Y: m.Trainer(P).fit(X, Y, epochs=1.5),
     "epochs must be an integer >= 0"),
    ("a validation triple", lambda m, P, X, Y: m.Trainer(P).fit(X, Y, validation=(X, Y, X)),
     "validation must be a pair (X, Y)"),
]


@pytest.mark.parametrize("case,call,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_value_error(case, call, words):
    spec, loss = "4-8:relu-3:softmax", "cross_entropy"
    xpm = xp_module(spec, loss)
    X, Y = problem(spec, loss)
    with pytest.raises(ValueError) as err:
        call(xpm, xpm.init_params(), np.asarray(X), np.asarray(Y))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_an_operation_without_a_rule_is_refused():
    backend = ArrayAPIBackend([])
    with pytest.raises(GenerationError, match="no kernel _fft2d yet; use --backend numpy"):
        backend.op_lines(Op("_fft2d", ("A0", "Z1")))
    with pytest.raises(GenerationError, match="reads A1 before anything writes it"):
        ArrayAPIBackend([_buffer("Z1"), _buffer("A1", alias="Z1")]).op_lines(
            Op("exp", ("A1", "A2")))


def _buffer(name, alias=None):
    from symbackprop.codegen.generator import Buffer

    return Buffer(name, 3, alias=alias)


def test_the_command_line_writes_an_image_network_s_module(tmp_path):
    out = tmp_path / "t.py"
    result = subprocess.run([sys.executable, "-m", "symbackprop", "generate",
                             "1x4x4-conv2k3-flatten-2", "--loss", "mse", "--backend",
                             "array-api", "-o", str(out)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    module = module_from_source(out.read_text(), "cli_array_api")
    assert module.ARCH["image"] == (1, 4, 4) and "_conv2d_forward" in out.read_text()


def test_an_unknown_backend_is_refused():
    with pytest.raises(GenerationError, match="unknown backend 'cuda' .known: numpy, array-api"):
        generate(arch("2-3-1", "mse"), backend="cuda")


def test_every_array_api_module_is_ruff_clean(tmp_path):
    """One module a combination: the printed code is what a linter accepts."""
    for k, (spec, loss) in enumerate(TEXT_NETS):
        (tmp_path / f"t{k}.py").write_text(xp_source(spec, loss))
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(tmp_path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]


def _dead_stores(body, returned=()) -> list[str]:
    """The assignments of a straight-line function body that nothing after them reads (a
    name of a tuple target other than ``_`` included), last statement first; nested
    functions are checked the same way."""
    import ast

    def loads(node):
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load)}

    live, dead = set(returned), []
    for st in reversed(body):
        if isinstance(st, ast.Return):
            live |= loads(st)
        elif isinstance(st, ast.Assign):
            names = [n.id for t in st.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            dead += [f"line {st.lineno}: {n}" for n in names if n != "_" and n not in live]
            live = (live - set(names)) | loads(st.value)
        elif isinstance(st, ast.FunctionDef):
            dead += [f"line {st.lineno}: def {st.name}"] if st.name not in live else []
            dead += _dead_stores(st.body)
            live = (live - {st.name}) | loads(st)  # what it reads of the enclosing scope
        else:  # a docstring
            live |= loads(st)
    return dead


def test_every_array_api_function_computes_only_what_it_returns():
    """Each function of the plan (_forward, _cost, _train_step) in every array-API module
    assigns no value that is not read afterwards: the cost function does not compute an
    output the cost reads through Z, a kernel's result nothing needs is ``_``."""
    import ast

    for spec, loss in TEXT_NETS:
        tree = ast.parse(xp_source(spec, loss))
        functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
        for name in ("_forward", "_cost", "_train_step"):
            assert not _dead_stores(functions[name].body), (spec, loss, name,
                                                             _dead_stores(functions[name].body))


@pytest.mark.parametrize("lib", ["numpy", "array-api-strict"])
def test_the_array_api_erf_and_erfc_are_cody_s(lib):
    """Against math.erf and math.erfc, over every interval and the far tails."""
    import math

    from symbackprop.codegen import xp_kernels

    xp, to, back = LIBRARIES[lib]
    x = np.concatenate([np.linspace(-30, 30, 6001), [0.0, 0.46875, -0.46875, 4.0, 27.3, 1e-300]])
    erf, erfc = back(xp_kernels._erf(xp, to(x))), back(xp_kernels._erfc(xp, to(x)))
    for got, exact in ((erf, math.erf), (erfc, math.erfc)):
        want = np.array([exact(v) for v in x])
        tiny = np.abs(want) < 1e-300
        assert np.all(np.abs(got[~tiny] - want[~tiny]) <= 2e-14 * np.abs(want[~tiny]))
        assert np.all(np.abs(got[tiny]) < 1e-300)


# --- Dask: data chunked by rows, on a LocalCluster ----------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                           dashboard_address=None)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_gradients_on_a_dask_cluster_equal_numpys(dask_client):
    """X and Y in 4 chunks of rows: the gradients are lazy dask arrays, computed on the
    cluster's workers, equal to the NumPy backend's."""
    import dask
    import dask.array as da

    spec, loss = "8-16:gelu-3:softmax", "cross_entropy"
    npm, xpm = load(spec, loss), xp_module(spec, loss)
    X, Y = problem(spec, loss, m=1000)
    params = npm.init_params(seed=1)
    lazy = xpm.gradients({k: da.from_array(v) for k, v in params.items()},
                         da.from_array(X, chunks=(250, 8)), da.from_array(Y, chunks=(250, 3)))
    assert all(isinstance(g, da.Array) for g in lazy.values())
    assert dask.base.get_scheduler() == dask_client.get  # computed by the cluster
    done = dict(zip(lazy, dask.compute(*lazy.values())))
    assert relative_error(done, npm.gradients(params, X, Y)) < 1e-12


@pytest.mark.parametrize("spec,loss", [IMAGE_NETS[0], SEQUENCE_NETS[3]], ids=["image", "every"])
def test_image_and_recurrent_gradients_on_a_dask_cluster_equal_numpys(spec, loss, dask_client):
    import dask
    import dask.array as da

    npm, xpm = load(spec, loss), xp_module(spec, loss)
    X, Y = problem(spec, loss, m=40)
    params = perturbed(npm)
    lazy = xpm.gradients({k: da.from_array(v) for k, v in params.items()},
                         da.from_array(X, chunks=(10, *X.shape[1:])),
                         da.from_array(Y, chunks=(10, *Y.shape[1:])))
    assert all(isinstance(g, da.Array) for g in lazy.values())
    done = dict(zip(lazy, dask.compute(*lazy.values())))
    assert relative_error(done, npm.gradients(params, X, Y)) < 1e-12


def test_fit_on_a_dask_cluster_is_fit_on_numpy(dask_client):
    """The same trainer on the same rows, once as dask arrays in chunks, once as NumPy's: the
    same costs epoch by epoch and the same parameters (the state persisted step by step)."""
    import dask
    import dask.array as da

    spec, loss = "8-16:relu-3:softmax", "cross_entropy"
    xpm = xp_module(spec, loss)
    X, Y = problem(spec, loss, m=400)
    params = load(spec, loss).init_params(seed=1)
    on_numpy = xpm.Trainer(_to("numpy", params), lr=0.5, batch_size=100, seed=4)
    on_dask = xpm.Trainer({k: da.from_array(v) for k, v in params.items()}, lr=0.5,
                          batch_size=100, seed=4)
    expected = on_numpy.fit(X, Y, epochs=3, verbose=False)
    costs = on_dask.fit(da.from_array(X, chunks=(100, 8)), da.from_array(Y, chunks=(100, 3)),
                        epochs=3, verbose=False)
    assert costs == pytest.approx(expected, rel=1e-12) and costs[-1] < costs[0]
    final = dict(zip(on_dask.params, dask.compute(*on_dask.params.values())))
    assert relative_error(final, on_numpy.params) < 1e-12
