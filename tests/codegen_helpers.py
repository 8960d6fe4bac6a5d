"""Shared by the trainer tests: generating a module, loading it, data it accepts."""
from __future__ import annotations

import importlib.util
import sys
import types
from functools import cache
from pathlib import Path

import numpy as np

from symbackprop.codegen import generate
from symbackprop.registry import ACTIVATIONS, LOSSES
from symbackprop.spec import parse_arch


@cache
def source(spec: str, loss: str, **options) -> str:
    return generate(parse_arch(spec, loss), **options)


def module_from_source(text: str, name: str = "generated_trainer") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(text, f"<{name}>", "exec"), module.__dict__)  # noqa: S102 - our own output
    return module


def load(spec: str, loss: str, **options) -> types.ModuleType:
    return module_from_source(source(spec, loss, **options))


def import_path(path: Path) -> types.ModuleType:
    """Import a generated file as a real module, the way a user would."""
    name = f"trainer_{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def targets(loss_name: str, n_out: int, m: int, rng) -> np.ndarray:
    """Targets the loss accepts: one-hot rows, probabilities, or any reals."""
    loss = LOSSES[loss_name]
    if loss.targets_sum_to_one:
        return np.eye(n_out)[rng.integers(0, n_out, m)]
    lo, hi = loss.y_domain
    return rng.uniform(lo, hi, (m, n_out))


def combinations():
    """Every (output activation, loss) the registry allows."""
    for act in ACTIVATIONS:
        for loss_name, loss in LOSSES.items():
            if loss.output_activations is None or act in loss.output_activations:
                yield act, loss_name


HIDDEN = [name for name, act in ACTIVATIONS.items() if not act.output_only]


def spec_for(output: str, depth: int, rng) -> str:
    """A random architecture of ``depth`` layers ending in ``output``; hidden layers cycle
    through the elementwise activations."""
    sizes = [int(rng.integers(1, 5)) for _ in range(depth + 1)]
    if ACTIVATIONS[output].output_only:
        sizes[-1] = max(sizes[-1], 2)
    parts = [str(sizes[0])]
    for l in range(1, depth):
        parts.append(f"{sizes[l]}:{HIDDEN[(l + depth) % len(HIDDEN)]}")
    parts.append(f"{sizes[-1]}:{output}")
    return "-".join(parts)


def relative_error(g: dict, n: dict) -> float:
    """||g - n|| / (||g|| + ||n||) over all parameters as one vector (0 if both vanish)."""
    diff = np.sqrt(sum(float(np.sum((g[k] - n[k]) ** 2)) for k in g))
    size = np.sqrt(sum(float(np.sum(g[k] ** 2)) for k in g)) \
        + np.sqrt(sum(float(np.sum(n[k] ** 2)) for k in g))
    return float(diff / size) if size > 0 else 0.0


def random_params(module, rng, scale=1.0):
    params = module.init_params(seed=int(rng.integers(0, 1000)))
    for key in params:
        params[key] = params[key] * scale
        if key.startswith("b"):
            params[key] = rng.normal(0, 0.3 * scale, params[key].shape)
    return params
