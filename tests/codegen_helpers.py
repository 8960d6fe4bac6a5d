"""Shared by the trainer tests: generating a module, loading it, data it accepts, and the
entries the tests run over: every built-in activation and loss of the registry, and a few
functions users write (through the same definitions a spec file or --activation makes)."""
from __future__ import annotations

import importlib.util
import sys
import types
from functools import cache
from pathlib import Path

import numpy as np

from symbackprop import registry
from symbackprop.codegen import generate
from symbackprop.registry import ACTIVATIONS, LOSSES
from symbackprop.spec import Definition, parse_arch

# Functions users write, as --activation / --loss or [define.*] in a spec file would give them:
# a smooth product, a where() continuous at its threshold (a log on one side), a where() that
# no clamp of z can keep finite outside its branch (z*z < 4), abs/min/max; two losses.
USER_DEFINITIONS = (
    Definition("activation", "swish", "z*sigmoid(z)"),
    Definition("activation", "log_above_one", "where(z > 1, 1 + log(z), z)"),
    Definition("activation", "bump", "where(z*z < 4, exp(1 - 4/(4 - z*z)), 0)"),
    Definition("activation", "clipped", "min(max(z, -2), 2) + abs(z)/10"),
    Definition("loss", "pseudo_huber", "sqrt(1 + (a - y)**2) - 1"),
    Definition("loss", "asymmetric", "where(a > y, (a - y)**2, 2*abs(y - a))"),
)
USER_ACTIVATIONS = [d.name for d in USER_DEFINITIONS if d.kind == "activation"]
USER_LOSSES = [d.name for d in USER_DEFINITIONS if d.kind == "loss"]


def activation(name: str):
    """The entry of activation ``name``: a built-in, or one of USER_DEFINITIONS."""
    return registry.activation(name, USER_DEFINITIONS)


def loss_entry(name: str):
    return registry.loss(name, USER_DEFINITIONS)


def arch(spec: str, loss: str, l2=0):
    """The architecture of ``spec``, with the user's definitions it uses."""
    used = {part.partition(":")[2] for part in spec.split("-")} | {loss}
    definitions = tuple(d for d in USER_DEFINITIONS if d.name in used)
    return parse_arch(spec, loss, definitions=definitions, l2=l2)


@cache
def source(spec: str, loss: str, l2=0, **options) -> str:
    return generate(arch(spec, loss, l2), **options)


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
    loss = loss_entry(loss_name)
    if loss.targets_sum_to_one:
        return np.eye(n_out)[rng.integers(0, n_out, m)]
    lo, hi = loss.y_domain
    return rng.uniform(lo, hi, (m, n_out))


def allowed(act: str, loss_name: str) -> bool:
    """May ``act`` be the output activation of a network trained on ``loss_name``?"""
    loss = loss_entry(loss_name)
    if loss.output_activations is not None:
        return act in loss.output_activations
    # A loss of probabilities (a user's, with a in (0, 1)) needs outputs in (0, 1).
    return tuple(loss.a_domain) != (0.05, 0.95) or act == "sigmoid"


def combinations():
    """Every (output activation, loss) the registry allows, then each user function with the
    first built-in loss (activations) or the first activations (losses), and the two paired."""
    for act in ACTIVATIONS:
        for loss_name in LOSSES:
            if allowed(act, loss_name):
                yield act, loss_name
    first_loss = next(iter(LOSSES))
    for act in USER_ACTIVATIONS:
        yield act, first_loss
    for loss_name in USER_LOSSES:
        for act in [*list(ACTIVATIONS)[:2], *USER_ACTIVATIONS[:1]]:
            if allowed(act, loss_name):
                yield act, loss_name


HIDDEN = [name for name, act in ACTIVATIONS.items() if not act.output_only] + USER_ACTIVATIONS


def hidden_for(output: str) -> str:
    """An activation for the hidden layers in front of ``output`` (itself where it can be)."""
    return "tanh" if activation(output).output_only else output


def spec_for(output: str, depth: int, rng, start: int = 0) -> str:
    """A random architecture of ``depth`` layers ending in ``output``; hidden layers cycle
    through every elementwise activation from position ``start``."""
    sizes = [int(rng.integers(1, 5)) for _ in range(depth + 1)]
    if activation(output).output_only:
        sizes[-1] = max(sizes[-1], 2)
    parts = [str(sizes[0])]
    for l in range(1, depth):
        parts.append(f"{sizes[l]}:{HIDDEN[(start + l) % len(HIDDEN)]}")
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


# (spec, loss): every feature kind, strides 1-3, padding 0-2, overlapping and remainder
# windows, pooling first, two convolutions, identity convs, dense heads of one and two layers.
IMAGE_NETS = [
    ("1x8x8-conv4k3p1:relu-maxpool2-flatten-10:softmax", "cross_entropy"),
    ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse"),
    ("2x6x6-conv3k3:relu-maxpool2s1-conv2k2s2p1:sigmoid-avgpool2-flatten-4:relu-3:softmax",
     "cross_entropy"),
    ("1x6x6-avgpool3s1-conv2k2:tanh-maxpool3s2-flatten-2:identity", "half_sse"),
    ("1x7x7-conv2k3s2:relu-flatten-2:sigmoid", "bce"),
    ("3x5x7-conv2k3s3p2-maxpool2s1-flatten-2:sigmoid", "bce"),
    ("1x9x9-maxpool3s2-conv2k2:gelu-flatten-5:tanh-2:identity", "mse"),
]

# (spec, loss): many-to-one and many-to-many, every recurrent activation the issue names,
# heads of one and two dense layers.
SEQUENCE_NETS = [
    ("seq4x3-rnn5:tanh-3:softmax", "cross_entropy"),
    ("seq3x2-rnn4:relu-4:tanh-2:identity", "mse"),
    ("seq3x3-rnn4:sigmoid-2:sigmoid", "bce"),
    ("seq3x2-rnn4:tanh:all-3:softmax", "cross_entropy"),
    ("seq3x2-rnn4:relu:all-5:sigmoid-2:identity", "half_sse"),
    ("seq4x2-rnn3:sigmoid:all-4:relu-3:softmax", "cross_entropy"),
]
