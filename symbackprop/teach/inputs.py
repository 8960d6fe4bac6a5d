"""The numbers of a worked example: weights, inputs and targets, read exactly and checked.

Shapes follow the derivation's notation (columns are examples): W^[l] is n_l × n_{l-1},
b^[l] has n_l entries, X is n_0 × m and Y is n_L × m. On the command line and in files every
row is one sample, so the rows given become the columns of X and Y.

An image network's input is a feature map (example, channel, row, column): a sample is its
C·H·W numbers in channel, row, column order (PyTorch's), and X holds them as columns until the
worked example reads them as maps (``Samples.maps``). A convolution's kernel W^[l] has shape
(n_C^[l], n_C^[l-1], f^[l], f^[l]) and is given as that nested list or as its numbers in that
order, flattened; its bias has n_C^[l] entries. Dense layers after flatten are as above.

A recurrent network's input is a sequence (example, step, feature): a sample is its T·n numbers
row by row, step 0's n features first (X[k, τ, q] is number τ n + q of sample k). Its rnn layer
has W^[1] (n_1, n_0), U^[1] (n_1, n_1) and b^[1] (n_1,), held as arrays of those shapes. With
``:all`` the dense head reads every step: a sample's targets are T·n_L numbers, step by step,
and Y has a column per (sample, step), column T k + τ for sample k at step τ.
"""
from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass
from fractions import Fraction
from math import prod
from pathlib import Path

import sympy as sp

from ..errors import SymbackpropError
from .numbers import (
    NumberError,
    decimal_text,
    exact,
    parse_json_float,
    parse_json_int,
    parse_number,
)


class InputError(SymbackpropError, ValueError):
    """Weights, inputs or targets are missing, malformed, or of the wrong shape."""


@dataclass(frozen=True)
class Parameters:
    """W^[l] and b^[l] for l = 1..L, as exact SymPy matrices (b^[l] is a column)."""

    weights: tuple[sp.ImmutableMatrix, ...]
    biases: tuple[sp.ImmutableMatrix, ...]
    source: str  # how they were obtained, for the reader: a file name or the seed
    # The layer of each (W, b), in order; empty: 1..L. An image network's convolutions hold
    # their kernels as ImmutableDenseNDimArray (F, C, K, K) and biases as arrays (F,).
    labels: tuple[int, ...] = ()
    # Arrays other than W and b, by (kind, label): an rnn layer's recurrent weights U.
    others: tuple[tuple[tuple[str, int], object], ...] = ()

    def of(self, label: int) -> tuple:
        """(W, b) of layer ``label``."""
        labels = self.labels or tuple(range(1, len(self.weights) + 1))
        pos = labels.index(label)
        return self.weights[pos], self.biases[pos]

    def get(self, kind: str, label: int):
        """The array ``kind`` (W, U or b) of layer ``label``."""
        if kind in ("W", "b"):
            return self.of(label)[0 if kind == "W" else 1]
        return dict(self.others)[(kind, label)]

    def named(self):
        """(kind, label, value) of every array, layer by layer, W (U) b."""
        labels = self.labels or tuple(range(1, len(self.weights) + 1))
        others = dict(self.others)
        for label in labels:
            W, b = self.of(label)
            yield "W", label, W
            for (kind, at), value in others.items():
                if at == label:
                    yield kind, label, value
            yield "b", label, b


@dataclass(frozen=True)
class Samples:
    """X (n_0 × m) and Y (n_L × m): one column per sample (a recurrent network's ``:all``
    head: Y has a column per sample and step)."""

    X: sp.ImmutableMatrix
    Y: sp.ImmutableMatrix
    image: tuple[int, int, int] | None = None  # (C, H, W) of an image input
    sequence: tuple[int, int] | None = None  # (T, n) of a sequence input

    @property
    def m(self) -> int:
        return self.X.shape[1]

    @property
    def sequences(self) -> sp.ImmutableDenseNDimArray:
        """A recurrent network's inputs as sequences (m, T, n): column k of X, read step by
        step, is example k."""
        flat = [self.X[unit, k] for k in range(self.m) for unit in range(self.X.shape[0])]
        return sp.ImmutableDenseNDimArray(flat, (self.m, *self.sequence))

    @property
    def maps(self) -> sp.ImmutableDenseNDimArray:
        """An image network's inputs as feature maps (m, C, H, W): column k of X, read in
        channel, row, column order, is example k."""
        flat = [self.X[unit, k] for k in range(self.m) for unit in range(self.X.shape[0])]
        return sp.ImmutableDenseNDimArray(flat, (self.m, *self.image))


def has_features(arch) -> bool:
    """Whether ``arch`` (an Architecture, or layer sizes) has layers before its dense head:
    an image network's or a recurrent network's."""
    return bool(getattr(arch, "features", ()))


def _shape_text(rows, cols, label) -> str:
    return f"shape ({rows}, {cols}) = (n_{label}, n_{label - 1})"


#: A message quotes at most this much of a value it refuses.
SHOWN = 60


def shown(value) -> str:
    """A value as a message quotes it: its JSON, cut to SHOWN characters."""
    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({len(text)} characters)"


def _number(value, where) -> sp.Rational:
    if isinstance(value, (bool, str)) or value is None or isinstance(value, (list, dict)):
        raise InputError(f"{where} must be a number, got {shown(value)}")
    if isinstance(value, float):  # a float from json.load: its shortest decimal, exactly
        if not math.isfinite(value):
            raise InputError(f"{where} must be a finite number, got {value}")
        return parse_number(repr(value), where)
    if not isinstance(value, (int, Fraction, sp.Rational)):
        raise InputError(f"{where} must be a number, got {type(value).__name__}")
    return exact(value)


def parameters_from_mapping(data, sizes, source: str) -> Parameters:
    """``{"W1": [[...]], "b1": [...], ...}`` -> Parameters, checking every key and shape.

    ``sizes``: the layer sizes, or the Architecture (an image network's kernels need it)."""
    if has_features(sizes):
        return _image_parameters(data, sizes, source)
    sizes = getattr(sizes, "sizes", sizes)
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object with keys W1, b1, ..., "
                         f"got {type(data).__name__}")
    depth = len(sizes) - 1
    expected = [f"{kind}{label}" for label in range(1, depth + 1) for kind in ("W", "b")]
    unknown = sorted(set(data) - set(expected))
    if unknown:
        raise InputError(f"{source}: unknown key {unknown[0]!r}; this network has "
                         f"{', '.join(expected)}")
    weights, biases = [], []
    for label in range(1, depth + 1):
        rows, cols = sizes[label], sizes[label - 1]
        key = f"W{label}"
        shape = _shape_text(rows, cols, label)
        if key not in data:
            raise InputError(f"{source}: missing key {key!r}: a list of {rows} rows of {cols} "
                             f"numbers, {shape}")
        value = data[key]
        if not isinstance(value, list) or len(value) != rows or \
                any(not isinstance(row, list) or len(row) != cols for row in value):
            raise InputError(f"{source}: {key!r} must be a list of {rows} rows of {cols} "
                             f"numbers, {shape}; got {shown(value)}")
        weights.append(sp.ImmutableMatrix(
            [[_number(value[i][j], f"{source}: {key}[{i}][{j}]") for j in range(cols)]
             for i in range(rows)]))
        key = f"b{label}"
        if key not in data:
            raise InputError(f"{source}: missing key {key!r}: a list of {rows} numbers "
                             f"(n_{label} = {rows})")
        value = data[key]
        if isinstance(value, list) and all(isinstance(v, list) and len(v) == 1 for v in value):
            value = [v[0] for v in value]  # a column [[b0], [b1]] is accepted too
        if not isinstance(value, list) or len(value) != rows:
            raise InputError(f"{source}: {key!r} must be a list of {rows} numbers "
                             f"(n_{label} = {rows}); got {shown(value)}")
        biases.append(sp.ImmutableMatrix(
            [[_number(value[i], f"{source}: {key}[{i}]")] for i in range(rows)]))
    return Parameters(tuple(weights), tuple(biases), source)


# --- feature networks: kernels (F, C, K, K) or an rnn's W, U, b, then the dense layers ----

def _conv_arrays(feature, label, shapes):
    F, C, K = feature.channels, shapes[label - 1][0], feature.kernel
    return (("W", (F, C, K, K), f"(n_C[{label}], n_C[{label - 1}], f[{label}], f[{label}])"),
            ("b", (F,), f"(n_C[{label}],)"))


def _rnn_arrays(feature, label, shapes):
    H, n = feature.units, shapes[label - 1][-1]
    return (("W", (H, n), f"(n_{label}, n_{label - 1})"),
            ("U", (H, H), f"(n_{label}, n_{label})"), ("b", (H,), f"(n_{label},)"))


#: The parameter arrays of each feature kind that has any: (kind, shape, what it names), in
#: the order they are given, drawn and shown.
FEATURE_ARRAYS = {"conv": _conv_arrays, "rnn": _rnn_arrays}


def parameter_arrays(arch) -> dict:
    """{label: ((kind, shape, what the shape names), ...)} of every layer with parameters, in
    label order: a convolution's kernel (F, C, K, K) and bias, an rnn layer's W, U and b, a
    dense layer's W (n_l, n_{l-1}) and b."""
    out = {}
    shapes = arch.shapes()
    for label, feature in enumerate(arch.features, start=1):
        if feature.kind in FEATURE_ARRAYS:
            out[label] = FEATURE_ARRAYS[feature.kind](feature, label, shapes)
    for label in arch.dense_labels:
        rows, cols = arch.size(label), arch.size(label - 1)
        out[label] = (("W", (rows, cols), f"(n_{label}, n_{label - 1})"),
                      ("b", (rows,), f"(n_{label},)"))
    return out


def is_dense(arch, label) -> bool:
    """Whether layer ``label`` is a dense layer (its W a matrix, its b a column), not a feature
    layer's arrays."""
    return label > arch.offset


def parameter_shapes(arch) -> dict:
    """{label: (shape of W, shape of b, what W's shape names)} of every layer with parameters,
    in label order: a convolution's kernel (F, C, K, K), a dense layer's (n_l, n_{l-1})."""
    out = {}
    for label, arrays in parameter_arrays(arch).items():
        found = {kind: (shape, what) for kind, shape, what in arrays}
        out[label] = (found["W"][0], found["b"][0], found["W"][1])
    return out


def _nested(value, shape) -> list | None:
    """The numbers of ``value`` in row-major order if it is a list of ``shape`` (nested), or a
    flat list of as many numbers; else None."""
    count = prod(shape)
    if isinstance(value, list) and len(value) == count and \
            not any(isinstance(v, list) for v in value):
        return value
    def walk(v, dims):
        if not dims:
            return None if isinstance(v, list) else [v]
        if not isinstance(v, list) or len(v) != dims[0]:
            return None
        out = []
        for item in v:
            inner = walk(item, dims[1:])
            if inner is None:
                return None
            out += inner
        return out
    return walk(value, list(shape))


def _image_parameters(data, arch, source: str) -> Parameters:
    """A feature network's parameters (an image network's kernels, an rnn layer's W, U, b, the
    dense head's W, b) from a mapping, every key and shape checked."""
    arrays = parameter_arrays(arch)
    expected = _keys(arrays)
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object with keys "
                         f"{', '.join(expected)}, got {type(data).__name__}")
    unknown = sorted(set(data) - set(expected))
    if unknown:
        raise InputError(f"{source}: unknown key {unknown[0]!r}; this network has "
                         f"{', '.join(expected)}")
    values = {}
    for label, layer_arrays in arrays.items():
        for kind, shape, what in layer_arrays:
            key = f"{kind}{label}"
            count = prod(shape)
            described = (f"{key} has shape {shape} = {what}"
                         + (", as a nested list or its numbers in that order"
                            if len(shape) > 2 else ""))
            if key not in data:
                raise InputError(f"{source}: missing key {key!r}: {described}")
            value = data[key]
            if kind == "b" and isinstance(value, list) and \
                    all(isinstance(v, list) and len(v) == 1 for v in value):
                value = [v[0] for v in value]  # a column [[b0], [b1]] is accepted too
            numbers = _nested(value, shape)
            if numbers is None:
                raise InputError(f"{source}: {key!r} must hold {count} numbers: {described}; "
                                 f"got {shown(value)}")
            numbers = [_number(v, f"{source}: {key}[{n}]") for n, v in enumerate(numbers)]
            values[(kind, label)] = _array(numbers, shape, is_dense(arch, label))
    return _parameters(values, arrays, source)


def _parameters(values: dict, arrays: dict, source: str) -> Parameters:
    """Parameters from {(kind, label): value} of a feature network's ``parameter_arrays``."""
    labels = tuple(arrays)
    others = tuple(((kind, label), values[(kind, label)]) for label in labels
                   for kind, _, _ in arrays[label] if kind not in ("W", "b"))
    return Parameters(tuple(values[("W", label)] for label in labels),
                      tuple(values[("b", label)] for label in labels), source, labels, others)


def _keys(arrays) -> list[str]:
    return [f"{kind}{label}" for label, layer in arrays.items() for kind, _, _ in layer]


def _array(numbers, shape, dense: bool):
    """A dense layer's W as a matrix and its b as a column; a kernel or a convolution's bias as
    an array of its shape."""
    if dense:
        cols = shape[1] if len(shape) == 2 else 1
        return sp.ImmutableMatrix(shape[0], cols, lambda i, j: numbers[i * cols + j])
    return sp.ImmutableDenseNDimArray(numbers, shape)


#: The largest weights file and data file read (a worked example's numbers fit in far less).
MAX_WEIGHTS_BYTES = 16 << 20
MAX_DATA_BYTES = 16 << 20


def read_input_file(path, what: str, limit: int) -> str:
    """The text of a weights or data file: a regular file of at most ``limit`` bytes, UTF-8 (a
    byte-order mark allowed). A FIFO or a device is refused before it is opened, so reading
    never blocks or runs out of memory."""
    import os
    import stat

    name = str(path)
    quoted = repr(name if len(name) <= 80 else name[:80] + "...")
    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {what} {quoted}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else \
            "a FIFO" if stat.S_ISFIFO(info.st_mode) else \
            "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else \
            "not a regular file"
        raise InputError(f"{what} {quoted} is {kind}; give a regular file")
    if info.st_size > limit:
        raise InputError(f"{what} {quoted} is {info.st_size} bytes; at most {limit} are read "
                         "(a worked example's numbers fit in far less)")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what} {quoted}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(f"{what} {quoted} is more than {limit} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {quoted} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                         f"offset {exc.start}); save it as UTF-8") from None


def load_parameters(path, sizes) -> Parameters:
    """Read a weights JSON file; decimals are read exactly (``0.1`` is 1/10), within the bounds
    of ``numbers.parse_number``."""
    path = Path(path)
    text = read_input_file(path, "weights file", MAX_WEIGHTS_BYTES)
    try:
        data = json.loads(text, parse_float=parse_json_float, parse_int=parse_json_int,
                          parse_constant=_refuse_constant)
    except NumberError as exc:
        raise InputError(f"weights file {str(path)!r}: {exc}") from None
    except RecursionError:
        raise InputError(f"weights file {str(path)!r} nests lists too deeply; a weight array "
                         "has at most 4 dimensions") from None
    except ValueError as exc:
        raise InputError(f"weights file {str(path)!r} is not valid JSON: {exc}") from None
    return parameters_from_mapping(data, sizes, path.name)


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number symbackprop can compute with")


#: Weights drawn by ``--init``: one decimal place, from -0.5 to 0.5, so a step can be done by hand.
INIT_CHOICES = tuple(sp.Rational(k, 10) for k in range(-5, 6))


def draw_parameters(seed: int, sizes) -> Parameters:
    """Small reproducible weights: each entry drawn from INIT_CHOICES; biases 0.

    ``sizes``: the layer sizes, or the Architecture; an image network's kernels are drawn
    layer by layer in (F, C, K, K) order, then its dense layers' rows."""
    if has_features(sizes):
        return _draw_image_parameters(seed, sizes)
    sizes = getattr(sizes, "sizes", sizes)
    rng = random.Random(seed)
    weights = tuple(sp.ImmutableMatrix(sizes[l], sizes[l - 1],
                                       lambda i, j: rng.choice(INIT_CHOICES))
                    for l in range(1, len(sizes)))
    biases = tuple(sp.zeros(sizes[l], 1).as_immutable() for l in range(1, len(sizes)))
    return Parameters(weights, biases, f"--init {seed}")


def _draw_image_parameters(seed: int, arch) -> Parameters:
    """Each weight array's entries drawn in turn (layer by layer, W then U), biases 0."""
    rng = random.Random(seed)
    arrays = parameter_arrays(arch)
    values = {}
    for label, layer_arrays in arrays.items():
        for kind, shape, _ in layer_arrays:
            numbers = [sp.Integer(0) if kind == "b" else rng.choice(INIT_CHOICES)
                       for _ in range(prod(shape))]
            values[(kind, label)] = _array(numbers, shape, is_dense(arch, label))
    return _parameters(values, arrays, f"--init {seed}")


def parse_rows(text: str, width: int, option: str, what: str) -> list[list[sp.Rational]]:
    """``"1, 2; 3, 4"`` -> [[1, 2], [3, 4]]: rows split by ';', entries by ',' or spaces."""
    rows = [row for row in str(text).split(";")]
    if not any(row.strip() for row in rows):
        raise InputError(f"{option} is empty; give {width} number(s) per sample, "
                         f"samples separated by ';'")
    parsed = []
    for number, row in enumerate(rows, start=1):
        entries = row.replace(",", " ").split()
        if len(entries) != width:
            raise InputError(f"{option}: sample {number} has {len(entries)} number(s), but "
                             f"{what} needs {width}; e.g. {option} \"{_example_row(width)}\"")
        try:
            parsed.append([parse_number(e, f"{option} sample {number}") for e in entries])
        except NumberError as exc:
            raise InputError(str(exc)) from None
    return parsed


def _example_row(width) -> str:
    """Two samples of ``width`` numbers, as --x takes them; a wide one as its first numbers."""
    if width > 4:
        return f"0.5, 0.5, ..., 0.5 ({width} numbers); 1, 1, ..., 1"
    return ", ".join(["0.5"] * width) + "; " + ", ".join(["1"] * width)


def samples_from_rows(x_rows, y_rows, option_y="--y", image=None, sequence=None,
                      every_step=False) -> Samples:
    """Samples from rows of numbers; with ``every_step`` a row of targets holds T steps of n_L
    numbers, and becomes T columns of Y (column T k + τ: sample k at step τ)."""
    if len(x_rows) != len(y_rows):
        raise InputError(f"{len(x_rows)} input sample(s) but {len(y_rows)} target(s) in "
                         f"{option_y}; give one row of targets per sample")
    X = sp.ImmutableMatrix(x_rows).T
    if every_step:
        steps = sequence[0]
        n_out = len(y_rows[0]) // steps
        y_rows = [row[tau * n_out:(tau + 1) * n_out] for row in y_rows for tau in range(steps)]
    Y = sp.ImmutableMatrix(y_rows).T
    return Samples(X, Y, image, sequence)


def input_description(n_in: int, image=None, sequence=None) -> str:
    """What one sample's inputs are, for messages."""
    if sequence is not None:
        steps, features = sequence
        return (f"the input sequence seq{steps}x{features} (T·n = {steps}·{features} numbers "
                f"a sample, row by row: step 0's {features} features, then step 1's, ...)")
    if image is None:
        return f"the input layer (n_0 = {n_in})"
    shape = "x".join(map(str, image))
    return f"the input image {shape} (C·H·W numbers in channel, row, column order)"


def target_description(n_out: int, sequence=None, every_step=False) -> str:
    if every_step:
        steps = sequence[0]
        return (f"the output layer at every step (T·n_L = {steps}·{n_out // steps} numbers a "
                "sample, step by step)")
    return f"the output layer (n_L = {n_out})"


@dataclass(frozen=True)
class SampleForm:
    """How many numbers one sample's inputs and targets have in a network, and what they are."""

    n_in: int
    n_out: int
    image: tuple[int, int, int] | None = None
    sequence: tuple[int, int] | None = None
    every_step: bool = False

    @property
    def inputs(self) -> str:
        return input_description(self.n_in, self.image, self.sequence)

    @property
    def targets(self) -> str:
        return target_description(self.n_out, self.sequence, self.every_step)


def sample_form(arch) -> SampleForm:
    """A sample of ``arch``: n_0 inputs, C·H·W for an image, T·n for a sequence; n_L targets,
    T·n_L for an rnn head at every step (``:all``)."""
    n_out = arch.sizes[-1]
    if arch.sequence is not None:
        steps, features = arch.sequence
        return SampleForm(steps * features, n_out * (steps if arch.every_step else 1),
                          sequence=tuple(arch.sequence), every_step=arch.every_step)
    if arch.image is not None:
        return SampleForm(prod(arch.image), n_out, image=tuple(arch.image))
    return SampleForm(arch.sizes[0], n_out)


def probability_targets(loss) -> bool:
    """Whether ``loss`` reads its targets as probabilities, each from 0 to 1: a cross-entropy
    (its targets sum to 1), binary cross-entropy, a user's loss defined for y in [0, 1] only
    (the registry's y_domain)."""
    return loss.targets_sum_to_one or tuple(loss.y_domain) == (0.0, 1.0)


def check_targets(samples: Samples, loss) -> None:
    """Targets a loss can take: probabilities (each from 0 to 1) for a loss of probabilities,
    and each column summing to 1 for one whose derivation assumes that."""
    steps = samples.Y.shape[1] // samples.m

    def where(column):
        return f"sample {column // steps + 1}" + (f" at step {column % steps}"
                                                  if steps > 1 else "")
    if probability_targets(loss):
        for column in range(samples.Y.shape[1]):
            for unit in range(samples.Y.shape[0]):
                value = samples.Y[unit, column]
                if not 0 <= value <= 1:
                    raise InputError(
                        f"loss {loss.name} reads targets as probabilities, from 0 to 1, but "
                        f"{where(column)} has {decimal_text(value)[0]} (output unit {unit}); "
                        "give one-hot rows such as \"0, 1, 0\" or probabilities")
    if not loss.targets_sum_to_one:
        return
    for column in range(samples.Y.shape[1]):
        total = sum(samples.Y[:, column])
        if total != 1:
            raise InputError(
                f"loss {loss.name} needs each sample's targets to sum to 1 (its output error "
                f"A - Y is derived with that), but {where(column)} sums to "
                f"{decimal_text(total)[0]}; give one-hot rows such as \"0, 1, 0\" or "
                "probabilities")


def parse_samples(x_text: str, y_text: str, n_in: int, n_out: int, image=None) -> Samples:
    """``image``: (C, H, W) of an image input, whose samples have C·H·W = ``n_in`` numbers."""
    return parse_samples_of(SampleForm(n_in, n_out, image), x_text, y_text)


def parse_samples_of(form: SampleForm, x_text: str, y_text: str) -> Samples:
    """--x and --y of a network whose samples have ``form``."""
    x_rows = parse_rows(x_text, form.n_in, "--x", form.inputs)
    y_rows = parse_rows(y_text, form.n_out, "--y", form.targets)
    return samples_from_rows(x_rows, y_rows, image=form.image, sequence=form.sequence,
                             every_step=form.every_step)


def load_samples(path, n_in: int, n_out: int, image=None) -> Samples:
    return load_samples_of(SampleForm(n_in, n_out, image), path)


def load_samples_of(form: SampleForm, path) -> Samples:
    """A CSV file, one sample a row: n_0 inputs then n_L targets; a header row (no cell a
    number) is skipped."""
    import io

    n_in, n_out, image = form.n_in, form.n_out, form.image
    path = Path(path)
    text = read_input_file(path, "data file", MAX_DATA_BYTES)
    try:
        lines = [row for row in csv.reader(io.StringIO(text, newline=""))
                 if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise InputError(f"data file {path.name!r} is not CSV: {exc}") from None
    width = n_in + n_out
    if lines and not any(_is_number(cell) for cell in lines[0]):
        lines = lines[1:]
    if not lines:
        raise InputError(f"data file {path.name!r} has no samples; each row needs {n_in} "
                         f"input(s) then {n_out} target(s)")
    x_rows, y_rows = [], []
    for number, row in enumerate(lines, start=1):
        if len(row) != width:
            raise InputError(f"data file {path.name!r}: sample {number} has {len(row)} "
                             f"column(s), expected {width} ({n_in} input(s), then {n_out} "
                             "target(s))")
        try:
            values = [parse_number(cell, f"{path.name} sample {number}") for cell in row]
        except NumberError as exc:
            raise InputError(str(exc)) from None
        x_rows.append(values[:n_in])
        y_rows.append(values[n_in:])
    return samples_from_rows(x_rows, y_rows, image=image, sequence=form.sequence,
                             every_step=form.every_step)


def _is_number(cell) -> bool:
    try:
        parse_number(cell, "")
    except NumberError:
        return False
    return True
