"""Generated modules imported as real modules (in sys.modules, from a file), so that pickle,
copy and scikit-learn's clone find their classes; for the estimator, resume and trainer
command-line tests. Also the data they train on."""
from __future__ import annotations

import atexit
import importlib.util
import re
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
from codegen_helpers import source

_FOLDER = Path(tempfile.mkdtemp(prefix="symbackprop_modules_"))
atexit.register(shutil.rmtree, _FOLDER, ignore_errors=True)


def path_of(spec: str, loss: str, l2=0, **options) -> Path:
    """The generated module's file (written once)."""
    name = "gen_" + re.sub(r"\W+", "_", f"{spec}_{loss}_{l2}_{sorted(options.items())}")
    path = _FOLDER / f"{name}.py"
    if not path.exists():
        path.write_text(source(spec, loss, l2, **options))
    return path


@cache
def module(spec: str, loss: str, l2=0, **options):
    """The generated module for (spec, loss), imported from its file under its own name."""
    path = path_of(spec, loss, l2, **options)
    spec_ = importlib.util.spec_from_file_location(path.stem, path)
    loaded = importlib.util.module_from_spec(spec_)
    sys.modules[path.stem] = loaded
    spec_.loader.exec_module(loaded)
    return loaded


@cache
def digits():
    """scikit-learn's digits, X/16, split as the README's reference: X_train, X_test, y_train,
    y_test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    return tuple(train_test_split(data.data / 16.0, data.target, test_size=0.25, random_state=0,
                                  stratify=data.target))


def blobs(m, n_features, n_classes, seed=0):
    """Separable classes around random centres: X (m, n_features), integer labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (n_classes, n_features))
    labels = rng.integers(0, n_classes, m)
    return centres[labels] + rng.normal(0, 0.3, (m, n_features)), labels


def regression(m=64, seed=1):
    """X (m, 3) and a target column of a smooth function of it: unbounded regression data."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 3))
    return X, (X @ [1.0, -2.0, 0.5] + 0.3 * np.sin(3 * X[:, 0]))[:, None]
