"""Bad input to a generated trainer's API is refused before any work, with a ValueError of one
line naming the expected shape or range: X and Y finite in float64 but not in float32, NaN or
inf parameters, learning rates and momenta out of range, batch sizes and epochs that are not
integers, files that Trainer.save did not write. Every case runs on every kind of network the
generator prints (dense, image, recurrent many-to-one and many-to-many), and checks that the
trainer's parameters, stdout and the files around it are unchanged. Valid input that used to
be refused (NumPy integers, save("w") then load("w")) is accepted."""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
from codegen_helpers import load

from symbackprop import parse_arch
from symbackprop.codegen import generate
from symbackprop.codegen.printer import GenerationError
from symbackprop.errors import SymbackpropError

M = 6  # examples in every data set here


@dataclass(frozen=True)
class Net:
    """A network of one kind, with the shapes its trainer's messages name."""
    name: str
    spec: str
    loss: str
    x: tuple  # one example's shape
    y: tuple  # one example's targets' shape
    labels: bool  # do the targets hold classes (one-hot rows)?


NETS = [
    Net("dense", "4-5:relu-3:softmax", "cross_entropy", (4,), (3,), True),
    Net("image", "1x4x4-conv2k3:relu-flatten-3:softmax", "cross_entropy", (1, 4, 4), (3,), True),
    Net("rnn", "seq3x2-rnn4:tanh-3:softmax", "cross_entropy", (3, 2), (3,), True),
    Net("rnn_all", "seq3x2-rnn4:tanh:all-2:identity", "mse", (3, 2), (3, 2), False),
]
IDS = [net.name for net in NETS]


@cache
def module(net: Net, dtype: str = "float64"):
    return load(net.spec, net.loss, dtype=dtype)


def data(net: Net, m: int = M, seed: int = 0):
    """X and Y the trainer of ``net`` accepts: one-hot rows for classes, reals otherwise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, *net.x))
    if net.labels:
        return X, np.eye(net.y[-1])[rng.integers(0, net.y[-1], m)]
    return X, rng.standard_normal((m, *net.y))


def shape(dims) -> str:
    return "(m, " + ", ".join(map(str, dims)) + ")"


def _snapshot(folder):
    return {p: p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


# --- X, Y and the parameters --------------------------------------------------------------------
# (id, call(module, X, Y, params), the message's words: {x} and {y} X's and Y's shapes,
# {w} the first weight's)
BIG = 1e39  # finite in float64, inf in float32
ARRAYS = [
    ("X beyond float32", lambda mod, X, Y, P: mod.Trainer(dtype=np.float32).fit(X * 0 + BIG, Y),
     "X of shape {x} holds 1e+39, beyond the float32 range"),
    ("X beyond float32 step", lambda mod, X, Y, P: mod.Trainer(dtype=np.float32).step(
        np.where(X > 0, -BIG, X), Y), "X of shape {x} holds 1e+39, beyond the float32 range"),
    ("X beyond float32 predict", lambda mod, X, Y, P: mod.Trainer(dtype=np.float32).predict(
        X * BIG), "beyond the float32 range of this trainer"),
    ("X beyond float32 forward", lambda mod, X, Y, P: mod.forward(
        {k: v.astype(np.float32) for k, v in P.items()}, X * BIG), "X of shape {x} holds"),
    ("Y beyond float32", lambda mod, X, Y, P: mod.Trainer(dtype=np.float32).fit(X, Y * 0 + BIG),
     "Y of shape {y} holds 1e+39, beyond the float32 range"),
    ("X longdouble beyond float64", lambda mod, X, Y, P: mod.cost(
        P, X.astype(np.longdouble) * np.longdouble(1e300) * 1e300, Y),
     "beyond the float64 range") if np.finfo(np.longdouble).max > 1e308 else
    ("X inf", lambda mod, X, Y, P: mod.cost(P, X * np.inf, Y), "X of shape {x} contains NaN"),
    ("X NaN", lambda mod, X, Y, P: mod.gradients(P, np.where(X > 0, np.nan, X), Y),
     "X of shape {x} contains NaN or inf"),
    ("X ragged", lambda mod, X, Y, P: mod.forward(P, [[1.0, 2.0], [3.0]]),
     "X must be a real-valued array of shape {x}"),
    ("X complex", lambda mod, X, Y, P: mod.forward(P, X + 1j), "X must be a real-valued array"),
    ("X strings", lambda mod, X, Y, P: mod.forward(P, X.astype(str)), "got dtype <U"),
    ("X no rows", lambda mod, X, Y, P: mod.forward(P, X[:0]), "got (0, "),
    ("W NaN gradients", lambda mod, X, Y, P: mod.gradients(_spoil(P, np.nan), X, Y),
     "params['W1'] of shape {w} contains NaN or inf"),
    ("W inf forward", lambda mod, X, Y, P: mod.forward(_spoil(P, np.inf), X),
     "params['W1'] of shape {w} contains NaN or inf"),
    ("W NaN cost", lambda mod, X, Y, P: mod.cost(_spoil(P, -np.inf), X, Y),
     "params['W1'] of shape {w} contains NaN or inf"),
    ("W NaN numeric", lambda mod, X, Y, P: mod.numeric_gradients(_spoil(P, np.nan), X, Y),
     "params['W1'] of shape {w} contains NaN or inf"),
    ("W NaN Trainer", lambda mod, X, Y, P: mod.Trainer(_spoil(P, np.nan)),
     "params['W1'] of shape {w} contains NaN or inf"),
    ("W beyond float32 Trainer", lambda mod, X, Y, P: mod.Trainer(_spoil(P, BIG),
                                                                  dtype=np.float32),
     "params['W1'] of shape {w} holds 1e+39, beyond the float32 range"),
    ("W ragged", lambda mod, X, Y, P: mod.forward({**P, "W1": [[1.0], [1.0, 2.0]]}, X),
     "params['W1'] must be a real array of shape {w}, got list of ragged rows"),
    ("params missing", lambda mod, X, Y, P: mod.forward({"W1": P["W1"]}, X),
     "params must be a dict with the keys W1"),
    ("params not a dict", lambda mod, X, Y, P: mod.Trainer(list(P.values())),
     "params must be a dict with the keys"),
]


def _spoil(params, value):
    """params with W1[0, ...] set to value (a copy)."""
    bad = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    bad["W1"].reshape(-1)[0] = value
    return bad


# --- settings and arguments ---------------------------------------------------------------------
SETTINGS = [(f"lr={value!r}", {"lr": value}, "lr must be a finite number > 0")
            for value in (np.inf, -np.inf, np.nan, 0, -0.1, 0.0, "0.1", True, None, 1j,
                          np.array([0.1]), 1e-400)] \
    + [(f"momentum={value!r}", {"momentum": value}, "momentum must be a number in [0, 1)")
       for value in (1, 1.0, -0.1, 1.5, np.nan, np.inf, "0.9", False)] \
    + [(f"batch_size={value!r}", {"batch_size": value}, "batch_size must be an integer >= 1")
       for value in (True, False, np.bool_(True), 0, -3, 16.0, "16", None, np.int64(0))] \
    + [(f"seed={value!r}", {"seed": value}, "seed must be an integer >= 0")
       for value in (-1, 1.5, "0", True, np.int64(-2))] \
    + [(f"dtype={value!r}", {"dtype": value}, "dtype must be float32 or float64")
       for value in ("junk", np.int64, np.float16, object, "complex128")] \
    + [(f"optimizer={value!r}", {"optimizer": value}, "optimizer must be one of sgd, momentum")
       for value in ("rmsprop", None, "", "SGD", np.array(["sgd"]))]

FIT = [(f"epochs={value!r}", value, "epochs must be an integer >= 0")
       for value in (-1, -100, 1.5, True, "3", None, np.float64(2.0))]

EPS = [(f"eps={value!r}", value, "eps must be a finite number > 0")
       for value in (0, -1e-6, np.nan, np.inf, "1e-6")]


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("case,call,words", ARRAYS, ids=[a[0] for a in ARRAYS])
def test_bad_arrays_are_refused_before_any_work(net, case, call, words, tmp_path, capsys):
    mod = module(net)
    X, Y = data(net)
    params = mod.init_params(seed=1)
    kept = {k: v.copy() for k, v in params.items()}
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError) as err:
        call(mod, X, Y, params)
    message = str(err.value)
    expected = words.format(x=shape(net.x), y=f"({M}, " + ", ".join(map(str, net.y)) + ")",
                            w=params["W1"].shape)
    assert expected in message, message
    assert "\n" not in message and len(message) < 300, message
    assert capsys.readouterr().out == ""  # no epoch ran
    for key, value in kept.items():
        np.testing.assert_array_equal(params[key], value)  # nothing written into params
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("case,settings,words", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_bad_settings_are_refused(net, case, settings, words):
    with pytest.raises(ValueError) as err:
        module(net).Trainer(**settings)
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("case,epochs,words", FIT, ids=[f[0] for f in FIT])
def test_bad_epochs_are_refused_before_any_step(net, case, epochs, words, capsys):
    mod = module(net)
    trainer = mod.Trainer(batch_size=2)
    kept = {k: v.copy() for k, v in trainer.params.items()}
    with pytest.raises(ValueError, match=words):
        trainer.fit(*data(net), epochs=epochs)
    assert capsys.readouterr().out == ""
    for key, value in kept.items():
        np.testing.assert_array_equal(trainer.params[key], value)


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("case,eps,words", EPS, ids=[e[0] for e in EPS])
def test_bad_eps_is_refused(net, case, eps, words):
    mod = module(net)
    with pytest.raises(ValueError, match=words):
        mod.numeric_gradients(mod.init_params(), *data(net), eps=eps)


# --- what used to be refused although valid -----------------------------------------------------

@pytest.mark.parametrize("net", NETS, ids=IDS)
def test_numpy_integers_and_reals_are_settings(net, capsys):
    mod = module(net)
    trainer = mod.Trainer(batch_size=np.int64(4), seed=np.int32(3), lr=np.float32(0.05),
                          momentum=np.float64(0.0), optimizer="momentum")
    costs = trainer.fit(*data(net), epochs=np.int64(2), verbose=False)
    assert len(costs) == 2 and all(np.isfinite(costs))
    assert (trainer.batch_size, trainer.seed) == (4, 3)
    assert type(trainer.batch_size) is int and type(trainer.lr) is float
    assert trainer.fit(*data(net), epochs=0) == []  # no epochs is no work, not an error


@pytest.mark.parametrize("net", NETS, ids=IDS)
def test_bool_arrays_are_numbers(net):
    mod = module(net)
    X, _ = data(net)
    np.testing.assert_array_equal(mod.forward(mod.init_params(), X > 0),
                                  mod.forward(mod.init_params(), (X > 0).astype(float)))


def test_one_target_a_row_may_be_a_vector():
    net = Net("regression", "2-3:relu-1:identity", "mse", (2,), (1,), False)
    mod = module(net, "float32")
    X, Y = data(net)
    assert mod.cost(mod.init_params(), X, Y[:, 0]) == mod.cost(mod.init_params(), X, Y)
    with pytest.raises(ValueError, match=r"X of shape \(m, 2\) holds 1e\+39"):
        mod.Trainer().fit(X * 0 + BIG, Y)  # the module's own dtype is float32


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("name", ["w", "w.npz", "sub.dir/w"])
def test_save_and_load_agree_on_the_name(net, name, tmp_path, monkeypatch):
    mod = module(net)
    X, Y = data(net)
    trainer = mod.Trainer(batch_size=np.int64(3), seed=np.int64(5), optimizer="adam", lr=0.01)
    trainer.fit(X, Y, epochs=2, verbose=False)
    (tmp_path / "sub.dir").mkdir()
    monkeypatch.chdir(tmp_path)
    trainer.save(name)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.npz"))
    assert written == [name if name.endswith(".npz") else name + ".npz"]
    again = mod.Trainer.load(name)
    assert (again.lr, again.optimizer, again.batch_size, again.seed) == (0.01, "adam", 3, 5)
    np.testing.assert_array_equal(again.predict(X), trainer.predict(X))
    again = mod.Trainer.load(tmp_path / written[0])  # a Path, with its extension
    np.testing.assert_array_equal(again.predict(X), trainer.predict(X))


# --- Trainer.load of files that save did not write ----------------------------------------------

def _saved(mod, folder):
    path = folder / "good.npz"
    mod.Trainer(seed=2).save(path)
    return path


def _rewrite(path, **changes):
    """The arrays of the .npz at path, with ``changes`` (None: left out)."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def _npz(**arrays):
    def make(path, mod, good):
        np.savez(path, **{k: (v(mod, good) if callable(v) else v) for k, v in arrays.items()})
    return make


def _bytes(content):
    def make(path, mod, good):
        path.write_bytes(content(good.read_bytes()) if callable(content) else content)
    return make


def _changed(**changes):
    def make(path, mod, good):
        np.savez(path, **_rewrite(good, **changes))
    return make


def _last_bias(mod):
    return mod._SHAPES[-1][0]


def _without_last_bias(path, mod, good):
    np.savez(path, **_rewrite(good, **{_last_bias(mod): None}))


def _oversized(path, mod, good):
    np.savez(path, **_rewrite(good, W1=np.zeros(10 ** 5)))


def _other_network(path, mod, good):
    other = module(NETS[0]) if mod.ARCH != module(NETS[0]).ARCH else module(NETS[1])
    other.Trainer().save(path)


LOADS = [  # (id, make(path, module, good file), the message's words)
    ("empty", _bytes(b""), "is empty; it needs arch, settings and W1"),
    ("truncated to 10 bytes", _bytes(lambda b: b[:10]), "is not a .npz archive (truncated"),
    ("truncated by half", _bytes(lambda b: b[:len(b) // 2]), "is not a .npz archive"),
    ("truncated by 1 byte", _bytes(lambda b: b[:-1]), "is not a .npz archive"),
    ("a text file", _bytes(b"W1,b1\n1,2\n"), "is not a .npz archive"),
    ("a pickle", _bytes(pickle.dumps({"W1": [1.0]})), "is not a .npz archive"),
    ("an .npy file", _bytes(lambda b: _npy_bytes()), "is not a .npz archive"),
    ("a data file", _npz(X=np.zeros((2, 2)), Y=np.zeros((2, 1))),
     "needs arch, settings and W1"),
    ("without the last bias", _without_last_bias, "as Trainer.save writes them; it has no b"),
    ("without settings", _changed(settings=None), "it has no settings"),
    ("another network", _other_network, "holds a different network"),
    ("arch not JSON", _changed(arch=np.asarray("{not json")), "arch is not valid JSON"),
    ("arch an array", _changed(arch=np.zeros(3)), "arch is not the JSON text"),
    ("settings a list", _changed(settings=np.asarray("[1, 2]")),
     "settings is not a table of Trainer's settings"),
    ("settings deep", _changed(settings=np.asarray("[" * 100_000 + "]" * 100_000)),
     "settings is not valid JSON"),
    ("settings unknown", _changed(settings=np.asarray('{"lr": 0.1, "warp": 9}')),
     "unexpected keyword argument 'warp'"),
    ("settings lr inf", _changed(settings=np.asarray('{"lr": Infinity}')),
     "lr must be a finite number > 0"),
    ("settings momentum 2", _changed(settings=np.asarray('{"momentum": 2}')),
     "momentum must be a number in [0, 1)"),
    ("W1 NaN", lambda path, mod, good: np.savez(path, **_rewrite(good, W1=_nan_like(good))),
     "params['W1'] of shape"),
    ("W1 of another shape", _changed(W1=np.zeros((2, 2))),
     "params['W1'] must be a real array of shape"),
    ("W1 oversized", _oversized, "its W1 holds"),
    ("W1 an object array", _changed(W1=np.array([None, 1.0], dtype=object)),
     "its arrays cannot be read"),
]


def _npy_bytes():
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


def _load(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _nan_like(good):
    W = _load(good)["W1"].copy()
    W.reshape(-1)[0] = np.nan
    return W


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("case,make,words", LOADS, ids=[c[0] for c in LOADS])
def test_load_of_a_file_save_did_not_write(net, case, make, words, tmp_path):
    mod = module(net)
    good = _saved(mod, tmp_path)
    path = tmp_path / "bad.npz"
    make(path, mod, good)
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError) as err:
        mod.Trainer.load(path)
    message = str(err.value)
    assert words in message and "\n" not in message and len(message) < 400, message
    assert f"Trainer.load: {str(path)!r}" in message, message  # the file is named
    assert _snapshot(tmp_path) == before


SPECIAL = [  # a path that is not a regular file -> the words
    ("fifo", lambda p: os.mkfifo(p), "is a FIFO, not a regular file"),
    ("directory", lambda p: p.mkdir(), "is a directory, not a regular file"),
    ("/dev/zero", lambda p: p.symlink_to("/dev/zero"), "is a device, not a regular file"),
    ("/dev/null", lambda p: p.symlink_to("/dev/null"), "is a device, not a regular file"),
]


@pytest.mark.parametrize("net", NETS[:1], ids=IDS[:1])
@pytest.mark.parametrize("case,make,words", SPECIAL, ids=[s[0] for s in SPECIAL])
def test_load_refuses_special_files_without_opening_them(net, case, make, words, tmp_path):
    path = tmp_path / "w.npz"
    make(path)
    with pytest.raises(ValueError, match=words):
        module(net).Trainer.load(path)  # a FIFO would block, /dev/zero never end


def test_load_of_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        module(NETS[0]).Trainer.load(tmp_path / "nothing")


def test_load_reads_a_file_by_its_own_name(tmp_path):
    """A saved file renamed without .npz still loads by its name."""
    mod = module(NETS[0])
    good = _saved(mod, tmp_path)
    good.rename(tmp_path / "weights")
    np.testing.assert_array_equal(mod.Trainer.load(tmp_path / "weights").params["W1"],
                                  mod.Trainer(seed=2).params["W1"])


@pytest.mark.parametrize("value", [None, 3, 2.5, ["w"]])
def test_save_and_load_want_a_file_name(value):
    mod = module(NETS[0])
    for call in (lambda: mod.Trainer().save(value), lambda: mod.Trainer.load(value)):
        with pytest.raises(ValueError, match="path must be a file name"):
            call()


INIT = [  # (id, keyword arguments of init_params, the message's words)
    ("seed=-1", {"seed": -1}, "seed must be an integer >= 0, got -1"),
    ("seed=1.5", {"seed": 1.5}, "seed must be an integer >= 0, got 1.5"),
    ("seed='x'", {"seed": "x"}, "seed must be an integer >= 0, got 'x'"),
    ("seed=True", {"seed": True}, "seed must be an integer >= 0, got True"),
    ("dtype='junk'", {"dtype": "junk"}, "dtype must be float32 or float64, got 'junk'"),
    ("dtype=int32", {"dtype": "int32"}, "dtype must be float32 or float64, got int32"),
    ("dtype=float16", {"dtype": np.float16}, "dtype must be float32 or float64, got float16"),
]


@pytest.mark.parametrize("net", NETS, ids=IDS)
@pytest.mark.parametrize("case,kwargs,words", INIT, ids=[i[0] for i in INIT])
def test_init_params_refuses_bad_seeds_and_dtypes(net, case, kwargs, words):
    with pytest.raises(ValueError) as err:
        module(net).init_params(**kwargs)
    assert str(err.value) == words


@pytest.mark.parametrize("net", NETS, ids=IDS)
def test_init_params_takes_numpy_integers_and_no_seed(net):
    mod = module(net)
    for name, value in mod.init_params(seed=np.int64(3), dtype="float32").items():
        np.testing.assert_array_equal(value, mod.init_params(seed=3, dtype=np.float32)[name])
        assert value.dtype == np.float32
    assert mod.init_params(seed=None).keys() == mod.init_params().keys()


# --- Trainer.save: atomic, modes kept, special files refused --------------------------------------

def _full_disk(real):
    """np.savez that writes part of the archive, then fails as a full disk does."""
    def savez(file, **arrays):
        file.write(b"PK\x03\x04 a partial archive")
        raise OSError(28, "No space left on device")
    return savez


@pytest.mark.parametrize("net", NETS, ids=IDS)
def test_a_failed_save_leaves_the_old_file_whole(net, tmp_path, monkeypatch):
    mod = module(net)
    good = _saved(mod, tmp_path)
    before = _snapshot(tmp_path)
    monkeypatch.setattr(mod.np, "savez", _full_disk(np.savez))
    with pytest.raises(OSError, match="No space left"):
        mod.Trainer(seed=9).save(good)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before  # the same bytes, and no temporary file left
    np.testing.assert_array_equal(mod.Trainer.load(good).params["b1"],
                                  mod.Trainer(seed=2).params["b1"])


def test_an_interrupted_save_leaves_nothing_behind(tmp_path, monkeypatch):
    mod = module(NETS[0])

    def interrupted(file, **arrays):
        raise KeyboardInterrupt
    monkeypatch.setattr(mod.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mod.Trainer().save(tmp_path / "w")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_save_has_the_users_umask(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        module(NETS[0]).Trainer().save(tmp_path / "w")
    finally:
        os.umask(old)
    assert (tmp_path / "w.npz").stat().st_mode & 0o777 == mode


def test_a_save_over_a_file_keeps_its_mode_and_links(tmp_path):
    mod = module(NETS[0])
    real = _saved(mod, tmp_path)
    real.chmod(0o640)
    link = tmp_path / "link.npz"
    link.symlink_to(real.name)
    mod.Trainer(seed=7).save(link)
    assert link.is_symlink() and real.stat().st_mode & 0o777 == 0o640
    np.testing.assert_array_equal(mod.Trainer.load(real).params["W1"],
                                  mod.Trainer(seed=7).params["W1"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npz", "link.npz"]


@pytest.mark.parametrize("case,make,words", SPECIAL, ids=[s[0] for s in SPECIAL])
def test_save_never_replaces_a_special_file(case, make, words, tmp_path):
    path = tmp_path / "w.npz"
    make(path)
    kind = os.lstat(path).st_mode
    with pytest.raises(ValueError, match=f"Trainer.save: .* {words}"):
        module(NETS[0]).Trainer().save(path)
    assert os.lstat(path).st_mode == kind and sorted(tmp_path.iterdir()) == [path]


def test_the_packages_errors_are_exported():
    import symbackprop
    from symbackprop.io import OutputError

    assert symbackprop.GenerationError is GenerationError
    assert symbackprop.OutputError is OutputError
    assert {"GenerationError", "OutputError"} <= set(symbackprop.__all__)
    assert all(issubclass(e, SymbackpropError) for e in (GenerationError, OutputError))


# --- the generator's own options ----------------------------------------------------------------
GENERATE = [
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop' (known: sgd, momentum, adam)"),
    ({"optimizer": None}, "unknown optimizer None"),
    ({"dtype": "float16"}, "unknown dtype 'float16' (known: float64, float32)"),
    ({"init": "zeros"}, "unknown init 'zeros' (known: he, xavier, normal)"),
]


@pytest.mark.parametrize("options,words", GENERATE, ids=[str(g[0]) for g in GENERATE])
def test_generate_raises_its_own_exception(options, words):
    with pytest.raises(GenerationError) as err:
        generate(parse_arch("2-3-1"), **options)
    assert isinstance(err.value, SymbackpropError) and isinstance(err.value, ValueError)
    assert str(err.value) == words or str(err.value).startswith(words)
