"""The committed trainers in generated/trainers: importable, gradient-checked, ruff-clean.
(Byte-for-byte drift is checked for every golden file by test_golden.py.)"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from codegen_helpers import import_path, relative_error, targets

FOLDER = Path(__file__).resolve().parent.parent / "generated" / "trainers"
TRAINERS = sorted(FOLDER.glob("*.py"))


def test_the_committed_trainers_are_there():
    names = {p.name for p in TRAINERS}
    assert {"sigmoid_2-3-1.py", "relu_3-1-2.py", "digits_64-32-10.py",
            "mnist_784-128-10.py"} <= names


@pytest.mark.parametrize("path", TRAINERS, ids=[p.name for p in TRAINERS])
def test_committed_trainer_gradients_match_central_differences(path):
    module = import_path(path)
    rng = np.random.default_rng(0)
    sizes = module.ARCH["sizes"]
    m = 2 if sizes[0] > 100 else 5
    # An image network's X is (m, C, H, W), a recurrent one's (m, T, n): ARCH records the
    # input's shape; a head at every step has one target per step.
    shape = module.ARCH.get("image") or module.ARCH.get("sequence") or (sizes[0],)
    X = rng.standard_normal((m, *shape))
    every = any(f.endswith(":all") for f in module.ARCH.get("features", ()))
    Y = targets(module.ARCH["loss"], sizes[-1], m * (shape[0] if every else 1), rng)
    if every:
        Y = Y.reshape(m, shape[0], sizes[-1])
    params = module.init_params(seed=1)
    for key in params:
        if key.startswith("b"):
            params[key] = rng.normal(0, 0.3, params[key].shape)
    err = relative_error(module.gradients(params, X, Y), module.numeric_gradients(params, X, Y))
    assert err < 1e-6, f"{path.name}: relative error {err:.2e}"


def test_committed_trainers_are_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(FOLDER)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
