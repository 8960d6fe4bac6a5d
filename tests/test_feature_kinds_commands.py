"""Every feature kind through every command: a small image network holding the kind (built from
the kind's own example token) is derived in every format, proven, generated and gradient-
checked, explained and worked. Adding a kind adds its rows here."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from codegen_helpers import module_from_source, relative_error

from symbackprop.codegen import generate
from symbackprop.kinds import FEATURE_KINDS
from symbackprop.spec import parse_arch

LOSS = "bce"


def _spec(kind) -> str:
    """A small network holding the kind: after an image input (and before flatten) or after a
    sequence input, as the kind reads."""
    if kind.needs == "sequence":
        return f"seq3x2-{kind.example}-2:sigmoid"
    tokens = [kind.example] if kind.name != "flatten" else []
    return "-".join(["1x4x4", *tokens, "flatten", "2:sigmoid"])


def _run(*argv):
    return subprocess.run([sys.executable, "-m", "symbackprop", *argv], capture_output=True,
                          text=True, check=False)


SPECS = {name: _spec(kind) for name, kind in FEATURE_KINDS.items()}
# The parameter explain follows, for a kind with parameters of its own (else the output's).
PARAMS = {"conv": "W1[0,0,0,0]", "rnn": "U1[0,1]"}


def test_each_kind_parses_from_its_example():
    for name, spec in SPECS.items():
        arch = parse_arch(spec, LOSS)
        assert arch.features[0].kind == name


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("fmt", ["text", "markdown", "latex"])
def test_derive(name, fmt):
    result = _run("derive", SPECS[name], "--loss", LOSS, "--format", fmt)
    assert result.returncode == 0, result.stderr
    if fmt == "text":  # the diagram line holds every feature map's shape
        for shape in parse_arch(SPECS[name], LOSS).shapes():
            assert "×".join(map(str, shape)) in result.stdout


@pytest.mark.parametrize("name", sorted(SPECS))
def test_verify(name):
    result = _run("verify", SPECS[name], "--loss", LOSS)
    assert result.returncode == 0 and result.stdout.startswith("PROVEN"), result.stdout


@pytest.mark.parametrize("name", sorted(SPECS))
def test_generate(name):
    arch = parse_arch(SPECS[name], LOSS)
    module = module_from_source(generate(arch))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, *arch.shapes()[0]))
    Y = rng.uniform(0, 1, (3, 2))
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in module.init_params().items()}
    error = relative_error(module.gradients(params, X, Y),
                           module.numeric_gradients(params, X, Y))
    assert error < 1e-7


@pytest.mark.parametrize("name", sorted(SPECS))
def test_explain_and_example(name):
    arch = parse_arch(SPECS[name], LOSS)
    param = PARAMS.get(name, f"W{arch.depth}[0,0]")
    explained = _run("explain", SPECS[name], "--loss", LOSS, "--param", param)
    assert explained.returncode == 0, explained.stderr
    x = ", ".join(str((k % 5) - 2) for k in range(int(np.prod(arch.shapes()[0]))))
    worked = _run("example", SPECS[name], "--loss", LOSS, "--init", "0", "--x", x, "--y",
                  "1, 0", "--lr", "0.1")
    assert worked.returncode == 0, worked.stderr
