"""The generated module as text: the plan of a derivation, laid out by ``trainer.py.j2``."""
from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from math import prod

import sympy as sp

from .. import registry
from ..engine import derive
from ..templating import render
from . import conv_kernels, kernels, rnn_kernels, xp_kernels
from .backends import NUMPY, ArrayAPIBackend
from .generator import Block
from .generator import plan as make_plan
from .options import BACKENDS, DTYPES, INITS, OPTIMIZERS, SCHEDULES
from .printer import GenerationError, decimal


def command_line(arch, optimizer="sgd", dtype="float64", init="he", output=None,
                 backend="numpy") -> str:
    """The canonical command that generates this module (no paths but the file's name)."""
    used = arch.used_definitions()
    loss = [d for d in used if d.kind == "loss"]
    parts = ["symbackprop generate", str(arch),
             f"--loss {shlex.quote(f'{loss[0].name}={loss[0].text}') if loss else arch.loss}"]
    parts += [f"--activation {shlex.quote(f'{d.name}={d.text}')}" for d in used
              if d.kind == "activation"]
    if arch.l2:
        parts.append(f"--l2 {decimal(arch.l2)}")
    defaults = {"optimizer": "sgd", "dtype": "float64", "init": "he"}
    for key, value in (("optimizer", optimizer), ("dtype", dtype), ("init", init)):
        if value != defaults[key]:
            parts.append(f"--{key} {value}")
    if backend != "numpy":
        parts.append(f"--backend {backend}")
    if output:
        parts.append(f"-o {output}")
    return " ".join(parts)


def _arch_dict(arch) -> str:
    """ARCH as the module records it: sizes, activations, loss, l2, and the user's functions
    the network uses (``define``, as a spec file writes them). The expression language has
    no quotes, so every string prints in double quotes."""
    text = (f'{{"sizes": {tuple(arch.sizes)!r}, "activations": {tuple(arch.activations)!r}, '
            f'"loss": {arch.loss!r}, "l2": {float(arch.l2)!r}')
    if arch.image is not None:
        text += (f', "image": {tuple(arch.image)!r}, '
                 f'"features": {tuple(f.token() for f in arch.features)!r}')
    if arch.sequence is not None:
        text += (f', "sequence": {tuple(arch.sequence)!r}, '
                 f'"features": {tuple(f.token() for f in arch.features)!r}')
    used = arch.used_definitions()
    if used:
        define = {key: {d.name: d.text for d in used if d.kind == kind}
                  for key, kind in (("activations", "activation"), ("losses", "loss"))
                  if any(d.kind == kind for d in used)}
        text += f', "define": {define!r}'
    return (text + "}").replace("'", '"')


def _x_dims(arch) -> tuple[int, ...]:
    """The numbers of X after m: (n_0,), (C, H, W) for images, (T, n) for sequences."""
    if arch.sequence is not None:
        return tuple(arch.sequence)
    return tuple(arch.image) if arch.image is not None else (arch.sizes[0],)


def _y_dims(arch) -> tuple[int, ...]:
    """The numbers of Y (and of the output) after m: (n_out,), or (T, n_out) with one target
    per step."""
    return (arch.sequence[0], arch.sizes[-1]) if arch.every_step else (arch.sizes[-1],)


def _shape_text(dims) -> str:
    """A shape as the docstrings write it: (m, 1, 8, 8)."""
    return "(m, " + ", ".join(map(str, dims)) + ")"


def _x_shape(arch) -> str:
    return _shape_text(_x_dims(arch))


def _y_shape(arch) -> str:
    return _shape_text(_y_dims(arch))


def _sequence_options(arch) -> dict:
    """What the template lays out differently for a recurrent network (None elsewhere):
    ``rows``, the number of rows the cost averages over, as code of the batch size m (m*T
    (example, step) pairs when the head applies at every step); ``out_reshape``, the
    output's rows back to (m, T, n_out)."""
    if arch.sequence is None:
        return {"sequence": None, "every_step": False, "rows": "m", "out_reshape": "",
                "n_in_sequence": None}
    T, n = arch.sequence
    every = arch.every_step
    return {"sequence": (T, n), "every_step": every, "rows": f"({T} * m)" if every else "m",
            "out_reshape": f".reshape(X.shape[0], {T}, {arch.sizes[-1]})" if every else "",
            "n_in_sequence": T * n}


def _target_checks(loss, n_out, shape=None, axis=1) -> list[str]:
    """Lines of _check that hold Y to what the loss needs (``shape``: Y's, as its message
    writes it; ``axis``: the one a distribution sums over)."""
    shape = shape or f"(m, {n_out})"
    lines = []
    if tuple(loss.y_domain) == (0.0, 1.0):
        lines += ["if ((Y < 0) | (Y > 1)).any():",
                  f"    raise ValueError(\"Y of shape {shape} must hold probabilities in [0, 1]\")"]
    if loss.targets_sum_to_one:
        lines += [f"if not np.allclose(Y.sum(axis={axis}), 1.0, atol=1e-6):",
                  f"    raise ValueError(\"Y of shape {shape} must hold one-hot rows (or \"",
                  "                     \"probabilities summing to 1), one row per example\")"]
    return lines


@dataclass(frozen=True)
class Task:
    """What a network's targets are, from its loss, and the estimator the module builds on it."""

    name: str  # one_of: one class an example (one-hot rows); each_of: every unit 0 or 1;
    #            values: real numbers
    estimator: str  # the class the module defines
    mixin: str  # its scikit-learn mixin
    metric: str  # what the module scores a validation or test set by


# One entry per kind of target; ``task_of`` picks the entry from the loss alone.
TASKS = {
    "one_of": Task("one_of", "Classifier", "ClassifierMixin", "accuracy"),
    "each_of": Task("each_of", "Classifier", "ClassifierMixin", "accuracy"),
    "values": Task("values", "Regressor", "RegressorMixin", "R2"),
}


def task_of(loss) -> Task:
    """Targets summing to one are one class an example; targets in [0, 1] make each output
    unit a yes/no answer (binary, or multilabel with several units); others are values."""
    if loss.targets_sum_to_one:
        return TASKS["one_of"]
    if tuple(loss.y_domain) == (0.0, 1.0):
        return TASKS["each_of"]
    return TASKS["values"]


def _log_outputs(arch) -> bool:
    """Whether the output layer gives log-probabilities (they sum to 1 after exp) rather than
    probabilities (they sum to 1 as they are), found by evaluating its activation at a point
    of 3 units; False for an entry-by-entry output activation."""
    act = arch.activation_entries[-1]
    if act.elementwise:
        return False
    point = {registry.zvec[k]: v for k, v in enumerate((0.3, -1.2, 2.0))}
    entries = [act.expr.subs(registry.n, 3).subs(registry.c_idx, c).doit().xreplace(point)
               for c in range(3)]
    return abs(float(sum(sp.exp(e) for e in entries)) - 1) < 1e-9 \
        and abs(float(sum(entries)) - 1) > 1e-6


def _estimator_options(arch) -> dict:
    """What the estimators (templates/trainer_estimators.py.j2) lay out for this network."""
    task = task_of(arch.loss_entry)
    n_out = arch.sizes[-1]
    if arch.image is not None:
        n_features = prod(arch.image)
    elif arch.sequence is not None:
        n_features = prod(arch.sequence)
    else:
        n_features = arch.sizes[0]
    return {
        "task": task.name, "estimator": task.estimator, "mixin": task.mixin,
        "metric": task.metric, "n_features": n_features, "log_outputs": _log_outputs(arch),
        "l2_default": repr(float(arch.l2)),
        # a validation split keeps each class's share (one class an example, one a sequence)
        "stratify": task.name == "one_of" and not arch.every_step,
        # several numbers a target: several units (multilabel, multi-output) or one each step
        "multi_output": arch.every_step or (task.name != "one_of" and n_out > 1),
    }


def _n_targets(arch) -> int:
    """Numbers of Y an example: n_out, or T n_out with a target every step."""
    return arch.sizes[-1] * (arch.sequence[0] if arch.every_step else 1)


def _unpack(names, blocks, extra=()) -> str:
    """``a, _, c`` for unpacking ``names``: those the blocks do not use become ``_``."""
    used = set(extra)
    for block in blocks:
        for line in block.code:
            used |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", line))
    return ", ".join(name if name in used else "_" for name in names) + ","


def generate(arch, optimizer: str = "sgd", dtype: str = "float64", init: str = "he",
             command: str | None = None, backend: str = "numpy") -> str:
    """The source of a standalone trainer module for ``arch``: ``backend`` "numpy" (in place,
    NumPy alone) or "array-api" (pure functions of any array-API library's arrays)."""
    for option, value, known in (("optimizer", optimizer, OPTIMIZERS), ("dtype", dtype, DTYPES),
                                 ("init", init, INITS), ("backend", backend, BACKENDS)):
        if value not in known:
            raise GenerationError(f"unknown {option} {value!r} (known: {', '.join(known)})")
    if backend == "array-api":
        return _generate_array_api(arch, optimizer, dtype, init, command)
    plan = make_plan(derive(arch))
    backend = NUMPY
    forward, cost, backward = ([Block(b.comments + b.memory, backend.lines(b.code)) for b in part]
                               for part in (plan.forward, plan.cost, plan.backward))
    cost_value, penalty = backend.value(plan.cost_value), backend.penalty(plan.penalty)
    loss = arch.loss_entry
    sizes = arch.sizes
    arch_dict = _arch_dict(arch)
    defined = [f"{d.name}({'z' if d.kind == 'activation' else 'a, y'}) = {d.text}"
               for d in arch.used_definitions()]
    notes = []
    if defined:
        notes += textwrap.wrap("Functions defined for this network: " + "; ".join(defined) + ".",
                               92, break_long_words=False, break_on_hyphens=False)
    if plan.penalty:
        notes += textwrap.wrap(f"The cost adds {plan.penalty_note}.", 92)
    targets_note = ", one-hot rows" if loss.targets_sum_to_one else ""
    seq = _sequence_options(arch)
    buffers = [b.name for b in plan.buffers]
    params = [name for name, _ in plan.params]
    grads = ["d" + name for name in params]
    cost_uses = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", cost_value + penalty)
    all_blocks = forward + cost + backward
    return render(
        "trainer.py.j2",
        forward_unpack={"P": _unpack(params, forward),
                        "B": _unpack(buffers, forward, [plan.output])},
        cost_unpack={"B": _unpack(buffers, cost, cost_uses),
                     "P": _unpack(params, cost, cost_uses)},
        step_unpack={"P": _unpack(params, all_blocks), "G": _unpack(grads, all_blocks),
                     "B": _unpack(buffers, all_blocks, cost_uses)},
        arch_text=str(arch), loss=arch.loss, loss_description=loss.description,
        command=command or command_line(arch, optimizer, dtype, init),
        n_in=sizes[0], n_out=sizes[-1], targets_note=targets_note,
        image=tuple(arch.image) if arch.image is not None else None,
        n_in_image=prod(arch.image) if arch.image is not None else None,
        x_shape=_x_shape(arch),
        arch_dict=arch_dict, dtype=dtype, optimizer=optimizer, init=init,
        init_std=INITS[init],
        init_std_image=INITS[init].replace("n_in", "int(np.prod(shape[1:]))").replace(
            "n_out", "shape[0] * int(np.prod(shape[2:]))"),
        init_std_sequence=INITS[init].replace("n_in", "shape[1]").replace("n_out", "shape[0]"),
        params=plan.params, size=sum(prod(shape) for _, shape in plan.params),
        transposed="{" + ", ".join(f'"{name}"' for name in plan.transposed) + "}"
        if plan.transposed else "",
        buffers=plan.buffers, buffer_names=buffers, output_index=buffers.index(plan.output),
        optimizers="(" + ", ".join(f"\"{name}\"" for name in OPTIMIZERS) + ")",
        schedules="(" + ", ".join(f"\"{name}\"" for name in SCHEDULES) + ")",
        forward=forward, output=plan.output, cost=cost, cost_value=cost_value,
        backward=backward, scale_note=plan.scale_note,
        target_checks=_target_checks(loss, sizes[-1], _y_shape(arch),
                                     -1 if arch.every_step else 1),
        y_shape=_y_shape(arch), **seq, **_estimator_options(arch),
        n_targets=_n_targets(arch),
        kernels=[kernels.source(name) for name in plan.kernels],
        conv_kernels=[conv_kernels.source(name) for name in plan.conv_kernels],
        rnn_kernels=[rnn_kernels.source(name) for name in plan.rnn_kernels],
        penalty=penalty, penalty_note=plan.penalty_note, notes=notes,
        best_copy="self._theta.copy()", **_PLACEMENT["numpy"],
    )


# The estimators' hyper-parameters that place the trainer's arrays, by backend: the signature's
# text, the names, what Trainer is given, and the docstring's words.
_PLACEMENT = {
    "numpy": {"placement_params": "", "placement_names": (), "placement_args": "",
              "placement_doc": "", "placement_cli": "", "placement_load": ""},
    "array-api": {
        "placement_params": ",\n                 array_library=\"numpy\", device=None",
        "placement_names": ("array_library", "device"),
        "placement_args": ",\n                           xp=_library(self.array_library), "
                          "device=self.device",
        "placement_doc": (", array_library (the module of the arrays the\n    network "
                          "trains on: \"numpy\", \"torch\", \"cupy\", \"jax.numpy\", "
                          "\"array_api_strict\") and\n    device (theirs: \"cuda\", ...; "
                          "None, the library's default)"),
        "placement_cli": ",\n                       xp=_library(args.array_library), "
                         "device=args.device",
        "placement_load": ", xp=_library(args.array_library), device=args.device",
    },
}

# init_params's first lines, by the input the network reads ({} the scaling)
_INIT_DOCS = {
    "dense": "Weights W{{l}} of shape (n_l, n_{{l-1}}) drawn with {} scaling, biases b{{l}} zero.",
    "image": ("Weights W{{l}} drawn with {} scaling, n_in and n_out the fan-in and fan-out\n"
              "    (C*K*K and F*K*K for a (F, C, K, K) kernel, as PyTorch counts them); biases "
              "b{{l}} zero."),
    "sequence": ("Input and dense weights W{{l}} (n_out, n_in) drawn with {} scaling; "
                 "recurrent\n    weights U{{l}} orthogonal (the Q of a Gaussian matrix's QR, "
                 "its signs fixed); biases\n    b{{l}} zero."),
}


def _generate_array_api(arch, optimizer, dtype, init, command) -> str:
    """The array-API module: the same plan as the NumPy module's, printed by the array-API
    backend as pure functions."""
    plan = make_plan(derive(arch))
    seq = _sequence_options(arch)
    backend = ArrayAPIBackend(plan.buffers, dict(plan.params), seq["rows"])
    params = [name for name, _ in plan.params]
    grads = ["d" + name for name in params]
    bound = [*params, "A0", "Y", "m", "scale", *backend.constant_names()]

    def printed(parts, results):
        """The blocks of one function, part by part, printed in order (the bindings carry
        over), with only the ops that ``results`` need: a block whose ops none are is left
        out."""
        backend.start(bound)
        ops = [o for part in parts for b in part for o in b.code]
        needed = {id(o): unused for o, unused in backend.needed(ops, results)}
        out = []
        for part in parts:
            out.append([])
            for b in part:
                kept = [o for o in b.code if id(o) in needed]
                if b.code and not kept:
                    continue
                out[-1].append(Block(b.comments, [line for o in kept for line in
                                                  backend.op_lines(o, needed[id(o)])]))
        return out

    # each function's blocks printed in its own bindings; the cost's value and the gradients'
    # names are read where their function has computed them
    forward, = printed([plan.forward], [plan.output])
    forward_output = backend.resolve(plan.output)
    cost_blocks = [b for part in printed([plan.forward, plan.cost], plan.cost_value.args)
                   for b in part]
    cost_value, penalty = backend.value(plan.cost_value), backend.penalty(plan.penalty)
    *head, backward = printed([plan.forward, plan.cost, plan.backward],
                              [*grads, *plan.cost_value.args])
    head = [b for part in head for b in part]
    step = [*head, *backward]
    gradients = [backend.resolve(g) for g in grads]
    if arch.every_step:  # the output's rows back to (m, T, n_out)
        forward_output = (f"xp.reshape({forward_output}, (A0.shape[0], {arch.sequence[0]}, "
                          f"{arch.sizes[-1]}))")
    loss = arch.loss_entry
    notes = textwrap.wrap(f"The cost adds {plan.penalty_note}.", 92) if plan.penalty else []
    value_names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", cost_value + penalty)

    def used(blocks, extra=()):
        """The names the blocks (and ``extra``) read: to define only the constants they use."""
        text = " ".join(line for b in blocks for line in b.code)
        return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)) | set(extra)

    constants = {"forward": backend.constants(used(forward)),
                 "cost": backend.constants(used(cost_blocks, value_names)),
                 "step": backend.constants(used(step, value_names))}
    reads = {"forward": used(forward, [forward_output]), "cost": used(cost_blocks, value_names),
             "step": used(step, value_names)}
    # dtype and device: where a constant, a zeros or a cast needs them
    typed = {key: "    dtype, device = A0.dtype, _device(A0)\n"
             if constants[key] or {"dtype", "device"} & reads[key] else "" for key in reads}
    fans = [f"{name} = {text}" for name, text in (
        ("n_in", "math.prod(shape[1:])"), ("n_out", "shape[0] * math.prod(shape[2:])"))
        if name in INITS[init]]

    return render(
        "trainer_array_api.py.j2",
        kernels=[xp_kernels.source(name) for name in xp_kernels.needed(backend.kernels)],
        forward_unpack=_unpack(params, forward),
        cost_unpack=_unpack(params, cost_blocks, value_names),
        step_unpack=_unpack(params, step, [*gradients, *value_names]),
        arch_text=str(arch), loss=arch.loss, loss_description=loss.description,
        command=command or command_line(arch, optimizer, dtype, init, backend="array-api"),
        n_in=arch.sizes[0], n_out=arch.sizes[-1],
        targets_note=", one-hot rows" if loss.targets_sum_to_one else "",
        arch_dict=_arch_dict(arch), dtype=dtype, optimizer=optimizer, init=init,
        init_std=INITS[init].replace("np.sqrt", "math.sqrt"), params=plan.params,
        init_doc=_INIT_DOCS["image" if arch.image is not None else
                            "sequence" if arch.sequence is not None else "dense"].format(init),
        image=tuple(arch.image) if arch.image is not None else None,
        n_in_image=prod(arch.image) if arch.image is not None else None,
        sequence=seq["sequence"], every_step=seq["every_step"],
        n_in_sequence=seq["n_in_sequence"], n_targets=_n_targets(arch),
        target_checks=_target_checks(loss, arch.sizes[-1], _y_shape(arch),
                                     -1 if arch.every_step else 1),
        x_shape=_x_shape(arch), y_shape=_y_shape(arch),
        x_dims=repr(_x_dims(arch)), y_dims=repr(_y_dims(arch)), n_x=prod(_x_dims(arch)),
        rows_of_x=f"X.shape[0] * {arch.sequence[0]}" if arch.every_step else "X.shape[0]",
        forward_return=forward_output,
        optimizers="(" + ", ".join(f"\"{name}\"" for name in OPTIMIZERS) + ")",
        schedules="(" + ", ".join(f"\"{name}\"" for name in SCHEDULES) + ")",
        best_copy="self._P", **_estimator_options(arch), **_PLACEMENT["array-api"],
        forward=forward, output=plan.output,
        cost=cost_blocks, head=head, backward=backward,
        cost_value=cost_value, penalty=penalty, penalty_note=plan.penalty_note,
        scale_note=plan.scale_note, gradients=gradients, notes=notes,
        forward_m="m" in used(forward) or "m" in forward_output,
        constants=constants, typed=typed, init_fans=fans,
    )
