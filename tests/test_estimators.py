"""The estimators of generated modules: scikit-learn's conventions, checked by scikit-learn's own
tools (clone, Pipeline, GridSearchCV, cross_val_score, check_estimator) and against its metrics;
NumPy alone when scikit-learn is missing; the L2 hyper-parameter against the derived penalty."""
from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import warnings
from unittest import SkipTest

import numpy as np
import pytest
from estimator_helpers import blobs, digits, module, path_of
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import _check_name, estimator_checks_generator

SOFTMAX = ("4-8:tanh-3:softmax", "cross_entropy")
BINARY = ("4-8:tanh-1:sigmoid", "bce")
MULTILABEL = ("4-8:tanh-3:sigmoid", "bce")
REGRESSION = ("4-8:tanh-1:identity", "mse")
MULTI_OUTPUT = ("4-8:tanh-2:identity", "mse")


# Every estimator test runs on both backends' modules: the NumPy module's estimators, and the
# array-API module's (on NumPy arrays by default; array_library picks another library).
BACKENDS = ["numpy", "array-api"]


@pytest.fixture(params=BACKENDS)
def mod_of(request):
    """module(spec, loss, ...) of the backend under test."""
    return lambda spec, loss, *args, **options: module(spec, loss, *args,
                                                       backend=request.param, **options)


def fast(cls, **params):
    return cls(max_iter=params.pop("max_iter", 15), random_state=params.pop("random_state", 0),
               **params)


# --- what each module defines -------------------------------------------------------------------

@pytest.mark.parametrize("spec,loss,name,mixin", [
    (*SOFTMAX, "Classifier", ClassifierMixin), (*BINARY, "Classifier", ClassifierMixin),
    (*MULTILABEL, "Classifier", ClassifierMixin), (*REGRESSION, "Regressor", RegressorMixin),
    ("1x6x6-conv2k3:relu-flatten-3:softmax", "cross_entropy", "Classifier", ClassifierMixin),
    ("seq4x3-rnn5:tanh-2:identity", "huber", "Regressor", RegressorMixin),
])
def test_each_module_has_the_estimator_its_loss_calls_for(spec, loss, name, mixin, mod_of):
    mod = mod_of(spec, loss)
    cls = getattr(mod, name)
    assert issubclass(cls, BaseEstimator) and issubclass(cls, mixin)
    assert cls.__module__ == mod.__name__ and cls.__qualname__ == name
    assert getattr(mod, name) is cls  # built once
    other = {"Classifier": "Regressor", "Regressor": "Classifier"}[name]
    with pytest.raises(AttributeError, match=other):
        getattr(mod, other)
    assert name in dir(mod)


def test_init_only_stores_and_params_round_trip(mod_of):
    cls = mod_of(*SOFTMAX).Classifier
    est = cls(learning_rate_init=-5, optimizer="nonsense", max_iter=0)  # refused at fit only
    assert est.get_params()["optimizer"] == "nonsense"
    est.set_params(optimizer="sgd", learning_rate_init=0.1, max_iter=3)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    assert repr(twin) == "Classifier(learning_rate_init=0.1, max_iter=3, optimizer='sgd')"
    X, y = blobs(30, 4, 3)
    with pytest.raises(ValueError, match="learning_rate_init must be"):
        cls(learning_rate_init=-5).fit(X, y)
    with pytest.raises(ValueError, match="learning_rate must be one of constant, invscaling"):
        cls(learning_rate="linear").fit(X, y)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        cls(max_iter=0).fit(X, y)
    with pytest.raises(ValueError, match="alpha must be"):
        cls(alpha=-1.0).fit(X, y)


# --- classifiers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("labels", [np.array([3, 7, 11]), np.array(["cat", "dog", "emu"]),
                                    np.array([-1.0, 0.0, 2.0]), np.array([True, False, True])[:2]],
                         ids=["ints", "strings", "floats", "bools"])
def test_labels_of_any_type(labels, mod_of):
    spec = SOFTMAX if len(labels) == 3 else BINARY
    X, codes = blobs(90, 4, len(labels), seed=1)
    y = labels[codes]
    est = fast(mod_of(*spec).Classifier, max_iter=40)
    assert est.fit(X, y) is est
    np.testing.assert_array_equal(est.classes_, np.unique(labels))
    predicted = est.predict(X)
    assert predicted.dtype == y.dtype and set(predicted) <= set(labels)
    proba = est.predict_proba(X)
    assert proba.shape == (90, len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], predicted)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba))
    score = est.score(X, y)
    assert score == pytest.approx(accuracy_score(y, predicted)) and score > 0.9
    weights = np.linspace(0.1, 2.0, 90)
    assert est.score(X, y, sample_weight=weights) == pytest.approx(
        accuracy_score(y, predicted, sample_weight=weights))


def test_fitted_attributes(mod_of):
    X, y = blobs(60, 4, 3)
    est = fast(mod_of(*SOFTMAX).Classifier, max_iter=7).fit(X, y)
    assert est.n_features_in_ == 4 and est.n_iter_ == 7 and est.t_ == 7 * 60
    assert len(est.loss_curve_) == 7 and est.loss_ == est.loss_curve_[-1]
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    stopping = fast(mod_of(*SOFTMAX).Classifier, max_iter=7, early_stopping=True).fit(X, y)
    assert len(stopping.validation_scores_) == stopping.n_iter_
    assert stopping.best_validation_score_ == max(stopping.validation_scores_)
    assert stopping.best_loss_ is None
    # the held-out 10% are not trained on: 54 examples an epoch
    assert stopping.t_ == 54 * stopping.n_iter_


def test_partial_fit_continues_one_epoch_a_call(mod_of):
    X, y = blobs(40, 4, 3)
    cls = mod_of(*SOFTMAX).Classifier
    est = fast(cls)
    with pytest.raises(ValueError, match="3 output units"):
        fast(cls).partial_fit(X[y < 2], y[y < 2])  # 2 of the 3 classes, no classes=
    est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    est.partial_fit(X, y)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    whole = fast(cls)
    whole.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2]).partial_fit(X, y)
    np.testing.assert_array_equal(whole.predict_proba(X), est.predict_proba(X))
    with pytest.raises(ValueError, match="not in classes_"):
        est.partial_fit(X[:3], [0, 1, 5])
    with pytest.raises(ValueError, match="early_stopping"):
        fast(cls, early_stopping=True).partial_fit(X, y)


def test_binary_classifier_on_one_sigmoid_unit(mod_of):
    X, codes = blobs(80, 4, 2, seed=3)
    y = np.array(["no", "yes"])[codes]
    est = fast(mod_of(*BINARY).Classifier, max_iter=30).fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (80, 2)
    np.testing.assert_allclose(proba[:, 1], est.trainer_.predict(X)[:, 0])
    np.testing.assert_array_equal(est.predict(X), np.where(proba[:, 1] > 0.5, "yes", "no"))
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        est.fit(*blobs(30, 4, 3))


def test_multilabel_classifier_takes_zero_one_rows(mod_of):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(90, 4))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 1] > 0]).astype(int)
    est = fast(mod_of(*MULTILABEL).Classifier, max_iter=60).fit(X, Y)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    predicted = est.predict(X)
    assert predicted.shape == (90, 3) and set(np.unique(predicted)) <= {0, 1}
    score = est.score(X, Y)
    assert score == pytest.approx(accuracy_score(Y, predicted)) and score > 0.8
    with pytest.raises(ValueError, match="class labels, one an example, need a network"):
        est.fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="0 or 1 for each label"):
        est.fit(X, Y * 2)


def test_classifier_refusals_say_what_is_wrong(mod_of):
    cls = mod_of(*SOFTMAX).Classifier
    X, y = blobs(30, 4, 3)
    with pytest.raises(NotFittedError):
        cls().predict(X)
    with pytest.raises(ValueError, match=r"X has 5 features, but Classifier is expecting 4 "
                                         r"features as input: the network 4-8:tanh-3:softmax"):
        cls().fit(np.ones((30, 5)), y)
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        cls().fit(X, None)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        cls().fit(X, y + 0.5)
    with pytest.raises(ValueError, match=r"y has 1 class \(0\)"):
        cls().fit(X, np.zeros(30, int))
    with pytest.raises(ValueError, match=r"y has 4 classes, but the network 4-8:tanh-3:softmax "
                                         r"has 3 output units.*generate it with 4 outputs"):
        cls().fit(*blobs(30, 4, 4))
    with pytest.raises(ValueError, match="Input y contains NaN"):
        cls().fit(X, np.where(y == 0, np.nan, y))
    with pytest.raises(ValueError, match="mixes labels of types"):
        cls().fit(X[:3], np.array([1, "a", 2.5], dtype=object))
    with pytest.raises(TypeError, match="sparse"):
        from scipy import sparse

        cls().fit(sparse.csr_matrix(X), y)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        fast(cls, max_iter=2).fit(X, y[:, None])


# --- regressors ----------------------------------------------------------------------------------

def test_regressor_shapes_and_score(mod_of):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 4))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    est = fast(mod_of(*REGRESSION).Regressor, max_iter=60).fit(X, y)
    assert est.predict(X).shape == (120,)
    score = est.score(X, y)
    assert score == pytest.approx(r2_score(y, est.predict(X))) and score > 0.8
    weights = np.linspace(0.1, 3, 120)
    assert est.score(X, y, sample_weight=weights) == pytest.approx(
        r2_score(y, est.predict(X), sample_weight=weights))
    Y = np.column_stack([y, X[:, 2] - X[:, 3]])
    multi = fast(mod_of(*MULTI_OUTPUT).Regressor, max_iter=60).fit(X, Y)
    assert multi.predict(X).shape == (120, 2)
    score = multi.score(X, Y)
    assert score == pytest.approx(r2_score(Y, multi.predict(X))) and score > 0.8
    with pytest.raises(ValueError, match=r"y must have shape \(120, 2\)"):
        multi.fit(X, y)
    with pytest.raises(ValueError, match="Input y contains infinity"):
        est.fit(X, np.where(y > 1, np.inf, y))
    with pytest.raises(ValueError, match="y must hold real numbers"):
        est.fit(X, np.array(["a"] * 120))


def test_r2_of_constant_targets_is_scikit_learns(mod_of):
    cls = mod_of(*REGRESSION).Regressor
    X = np.random.default_rng(6).normal(size=(20, 4))
    est = fast(cls, max_iter=2).fit(X, np.zeros(20))
    assert est.score(X, np.full(20, 3.0)) == r2_score(np.full(20, 3.0), est.predict(X))


# --- image and recurrent networks ---------------------------------------------------------------

def test_image_classifier_takes_images_or_rows(mod_of):
    mod = mod_of("1x6x6-conv2k3:relu-flatten-3:softmax", "cross_entropy")
    X, y = blobs(60, 36, 3, seed=7)
    est = fast(mod.Classifier, max_iter=20).fit(X.reshape(60, 1, 6, 6), y)
    assert est.n_features_in_ == 36
    np.testing.assert_array_equal(est.predict(X), est.predict(X.reshape(60, 1, 6, 6)))
    assert est.score(X, y) > 0.9
    with pytest.raises(ValueError, match=r"X has 35 features.*X of shape \(m, 1, 6, 6\)"):
        est.predict(X[:, :35])


def test_recurrent_classifier_with_a_label_at_every_step(mod_of):
    mod = mod_of("seq4x3-rnn6:tanh:all-3:softmax", "cross_entropy")
    rng = np.random.default_rng(8)
    X = rng.normal(size=(80, 4, 3))
    y = np.array(["a", "b", "c"])[X.argmax(axis=2)]  # the largest feature of each step
    est = fast(mod.Classifier, max_iter=60).fit(X, y)
    predicted = est.predict(X)
    assert predicted.shape == (80, 4) and est.predict_proba(X).shape == (80, 4, 3)
    score = est.score(X, y)
    assert score == pytest.approx(np.mean(predicted == y)) and score > 0.8
    with pytest.raises(ValueError, match=r"y must have shape \(80, 4\): one class label for each "
                                         r"of the 80 examples and each step"):
        est.fit(X, y[:, 0])


def test_recurrent_regressor_many_to_one(mod_of):
    mod = mod_of("seq5x2-rnn8:tanh-1:identity", "mse")
    rng = np.random.default_rng(9)
    X = rng.normal(size=(100, 5, 2))
    y = X[:, :, 0].sum(axis=1) / 3
    est = fast(mod.Regressor, max_iter=80).fit(X, y)
    assert est.predict(X).shape == (100,)
    score = est.score(X, y)
    assert score == pytest.approx(r2_score(y, est.predict(X))) and score > 0.8


# --- scikit-learn's tools ------------------------------------------------------------------------

@pytest.mark.parametrize("spec,shape", [
    ("64-16:relu-10:softmax", (-1, 64)), ("1x8x8-conv4k3p1:relu-maxpool2-flatten-10:softmax",
                                          (-1, 1, 8, 8)),
    ("seq8x8-rnn16:tanh-10:softmax", (-1, 8, 8))], ids=["dense", "image", "recurrent"])
def test_pipeline_grid_search_and_cross_validation(spec, shape, mod_of):
    X_train, _, y_train, _ = digits()
    X, y = X_train[:600] * 16, y_train[:600]  # raw pixels: the pipeline scales them
    cls = mod_of(spec, "cross_entropy").Classifier
    pipeline = make_pipeline(StandardScaler(), fast(cls, max_iter=15))
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.6
    grid = GridSearchCV(pipeline, {"classifier__learning_rate_init": [0.003, 0.01]}, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["classifier__learning_rate_init"] in (0.003, 0.01)
    assert grid.score(X, y) > 0.7
    if len(shape) > 2:  # the network's own shape of X works without a pipeline
        assert cross_val_score(fast(cls, max_iter=15), X.reshape(shape) / 16, y, cv=2).min() > 0.6


def test_pickle_copy_and_clone_keep_a_fitted_estimator(mod_of):
    X, y = blobs(50, 4, 3)
    est = fast(mod_of(*SOFTMAX).Classifier, optimizer="momentum", learning_rate_init=0.05)
    est.fit(X, y)
    for twin in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        np.testing.assert_array_equal(twin.predict_proba(X), est.predict_proba(X))
        # the copy trains on by itself: its views are of its own parameters
        twin.partial_fit(X, y)
        assert not np.array_equal(twin.predict_proba(X), est.predict_proba(X))
        again = pickle.loads(pickle.dumps(est))
        again.partial_fit(X, y)
        np.testing.assert_array_equal(again.predict_proba(X), twin.predict_proba(X))
    assert not hasattr(clone(est), "trainer_")


# --- alpha, the L2 penalty at run time, against the derived one --------------------------------

@pytest.mark.parametrize("spec,loss", [
    ("4-6:tanh-3:softmax", "cross_entropy"), ("1x5x5-conv2k3:tanh-flatten-2:identity", "mse"),
    ("seq3x2-rnn4:tanh:all-2:softmax", "cross_entropy")], ids=["dense", "image", "recurrent"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_l2_at_run_time_equals_the_derived_penalty(spec, loss, optimizer, mod_of):
    """A module generated without --l2 trained with l2=0.3 matches the module generated with
    --l2 0.3 (whose penalty is derived and printed into its step), and one generated with
    --l2 0.1 trained with l2=0.3 does too: the same cost and the same parameters after
    training, to rounding."""
    plain, derived, other = (mod_of(spec, loss, l2) for l2 in (0, "0.3", "0.1"))
    rng = np.random.default_rng(10)
    trainer = derived.Trainer(seed=1)
    X = rng.normal(size=(24, *derived._check(np.zeros((1, derived._N_FEATURES)))[0].shape[1:]))
    Y = derived.forward(trainer.params, rng.normal(size=X.shape))  # targets the loss takes
    if loss == "mse":
        Y = rng.normal(size=Y.shape)
    runs = [mod.Trainer(lr=0.05, optimizer=optimizer, batch_size=8, seed=1, l2=l2)
            for mod, l2 in ((derived, None), (plain, 0.3), (other, 0.3))]
    costs = [run.fit(X, Y, epochs=3, verbose=False) for run in runs]
    for run, cost in zip(runs[1:], costs[1:]):
        np.testing.assert_allclose(cost, costs[0], rtol=1e-12)
        for name, value in run.params.items():
            np.testing.assert_allclose(np.asarray(value), np.asarray(runs[0].params[name]),
                                       rtol=1e-10, atol=1e-13)
    assert derived.ARCH["l2"] == 0.3 and runs[1].l2 == 0.3


def test_alpha_is_the_estimators_l2(mod_of):
    X, y = blobs(40, 4, 3)
    cls = mod_of(*SOFTMAX).Classifier
    assert cls().alpha == 0.0 and mod_of(*SOFTMAX, "0.01").Classifier().alpha == 0.01
    settings = {"optimizer": "sgd", "learning_rate_init": 0.1, "batch_size": 40, "max_iter": 30}
    small = fast(cls, alpha=0.0, **settings).fit(X, y).trainer_
    large = fast(cls, alpha=20.0, **settings).fit(X, y).trainer_
    weights = [name for name, _ in mod_of(*SOFTMAX)._SHAPES if not name.startswith("b")]
    assert large.l2 == 20.0
    assert sum(np.sum(large.params[w] ** 2) for w in weights) \
        < 0.5 * sum(np.sum(small.params[w] ** 2) for w in weights)


# --- NumPy alone ---------------------------------------------------------------------------------

NUMPY_ALONE = r"""
import sys
class NoSklearn:
    def find_spec(self, name, path=None, target=None):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("no scikit-learn here")
sys.meta_path.insert(0, NoSklearn())
import numpy as np
sys.path.insert(0, sys.argv[1])
mod = __import__(sys.argv[2])
est = mod.Classifier(max_iter=200, random_state=0)
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4)); y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)]
assert est.fit(X, y) is est
print(est.score(X, y) > 0.8, list(est.predict(X[:2])), est.predict_proba(X).shape)
print(repr(mod.Classifier(max_iter=3)), mod.Classifier.__mro__[1].__name__,
      mod.Classifier.__mro__[2].__name__)
twin = type(est)(**est.get_params()).set_params(alpha=0.5)
print(twin.alpha, sorted(twin.get_params())[:3])
try:
    mod.Classifier().predict(X)
except ValueError as exc:
    print(type(exc).__name__, isinstance(exc, AttributeError))
try:
    twin.set_params(nonsense=1)
except ValueError as exc:
    print("refused", "nonsense" in str(exc))
print("sklearn" in sys.modules)
"""


def test_numpy_alone_without_scikit_learn(tmp_path):
    path = path_of(*SOFTMAX)
    run = subprocess.run([sys.executable, "-c", NUMPY_ALONE, str(path.parent), path.stem],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("True [")
    assert lines[0].endswith("(60, 3)")
    assert lines[1] == "Classifier(max_iter=3) _Classifier _Estimator"
    assert lines[2] == "0.5 ['alpha', 'batch_size', 'dtype']"
    assert lines[3:] == ["_NotFittedError True", "refused True", "False"]


def test_importing_the_module_or_running_its_command_line_imports_no_scikit_learn():
    path = path_of(*SOFTMAX)
    code = (f"import sys; sys.path.insert(0, {str(path.parent)!r}); import {path.stem} as m; "
            "m.Trainer(); print('sklearn' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert run.stdout.strip() == "False"


# --- scikit-learn's common checks ---------------------------------------------------------------

class _Stop(BaseException):
    """Ends a check at its first fit: past any ``except Exception`` of the check."""


def _data_of(check, cls, params):
    """(features, classes or outputs) of the data a check first fits, or None."""
    seen = []

    class Probe(cls):
        def fit(self, X, y=None, *args, **kwargs):
            seen.append((X, y))
            raise _Stop

        partial_fit = fit

    Probe.__name__ = Probe.__qualname__ = cls.__name__
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check(Probe(**params))
    except BaseException:  # noqa: BLE001, S110 - whatever the check does after our _Stop
        pass
    if not seen:
        return None
    X, y = (np.asarray(a) if a is not None else None for a in seen[0])
    if X.ndim < 2 or X.shape[1] == 0:
        return None
    outputs = None
    if y is not None and issubclass(cls, RegressorMixin):
        outputs = y.shape[1] if y.ndim == 2 else 1
    elif y is not None and y.ndim == 2:
        outputs = y.shape[1]
    elif y is not None and (y.dtype.kind in "iubUSO" or np.all(y == np.round(y))):
        outputs = len(np.unique(y)) if len(np.unique(y)) >= 2 else None
    return int(np.prod(X.shape[1:])), outputs


def _run_check(check, estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


# (spec of the module under test, a spec for other sizes, loss, units of the one under test)
CHECKED = {
    "softmax": ("3-8:tanh-3:softmax", "{w}-8:tanh-{k}:softmax", "cross_entropy", 3),
    "softmax binary": ("3-8:tanh-2:softmax", "{w}-8:tanh-{k}:softmax", "cross_entropy", 2),
    "sigmoid binary": ("3-8:tanh-1:sigmoid", "{w}-8:tanh-1:sigmoid", "bce", 2),
    "regressor": ("3-8:tanh-1:identity", "{w}-8:tanh-{k}:identity", "mse", 1),
    "multi-output regressor": ("3-8:tanh-2:identity", "{w}-8:tanh-{k}:identity", "mse", 2),
}


@pytest.mark.parametrize("kind", list(CHECKED))
def test_check_estimator(kind, mod_of):
    """Every check of sklearn.utils.estimator_checks passes, but those the module lists. A
    check whose data has another number of features (or classes, or outputs) than the network
    fails with the network's ValueError saying so: it runs again on a module generated for its
    data, and must pass there. The sizes are probed from the check's first fit."""
    spec, other, loss, outputs = CHECKED[kind]
    mod = mod_of(spec, loss)
    cls = getattr(mod, "Classifier", None) or mod.Regressor
    expected = mod.SKLEARN_EXPECTED_FAILURES
    width = mod._N_FEATURES
    failed, resized, passed, listed = [], set(), 0, set()
    for estimator, check in estimator_checks_generator(cls(), legacy=True):
        name = _check_name(check)
        try:
            _run_check(check, estimator)
            passed += 1
            continue
        except SkipTest:
            continue
        except Exception as exc:  # noqa: BLE001 - each check's own failure, looked at below
            error = exc
        if name in expected:
            listed.add(name)
            continue
        data = _data_of(check, cls, estimator.get_params())
        tried = set()
        if data is not None:
            # the network's classes first (the point of some checks is the class count)
            tried = {(data[0], outputs), (data[0], data[1] or outputs)} - {(width, outputs)}
        for w, k in sorted(tried):
            resized_cls = getattr(mod_of(other.format(w=w, k=k), loss), cls.__name__)
            try:
                _run_check(check, resized_cls(**estimator.get_params()))
            except SkipTest:
                break
            except Exception as exc:  # noqa: BLE001
                error = exc
                continue
            resized.add(name)
            break
        else:
            failed.append(f"{name}: {str(error).splitlines()[0] if str(error) else error!r}")
    print(f"{kind}: {passed} checks pass as they are, {len(resized)} more on their data's sizes")
    assert not failed, "\n".join(failed)
    assert listed == set(expected), "listed checks that pass now: " \
        f"{sorted(set(expected) - listed)}"
    assert passed >= 18 and passed + len(resized) >= 45, (passed, sorted(resized))


def test_multilabel_network_refuses_class_labels_in_its_own_words(mod_of):
    """A multilabel network (independent sigmoid units) takes 0/1 rows only: scikit-learn's
    checks that fit class labels one an example fail with its ValueError saying so, and its
    multilabel checks pass on a module of their data's size."""
    mod = mod_of("3-8:tanh-3:sigmoid", "bce")
    cls = mod.Classifier
    messages, multilabel = set(), []
    for estimator, check in estimator_checks_generator(cls(), legacy=True):
        name = _check_name(check)
        if not name.startswith("check_classifiers_multilabel"):
            continue
        w, k = _data_of(check, cls, estimator.get_params())
        try:
            _run_check(check, mod_of(f"{w}-8:tanh-{k}:sigmoid", "bce").Classifier())
        except SkipTest:  # decision_function's: the estimators have none
            continue
        multilabel.append(name)
    assert len(multilabel) >= 3
    X = np.random.default_rng(0).normal(size=(10, 3))
    for y in (np.arange(10) % 2, np.arange(10) % 3, (np.arange(10) % 2)[:, None]):
        with pytest.raises(ValueError) as exc:
            cls().fit(X, y)
        messages.add(str(exc.value).split(";")[-1])
    assert messages == {(" class labels, one an example, need a network with one output unit a "
                         "class")}
