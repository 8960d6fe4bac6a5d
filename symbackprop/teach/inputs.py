"""The numbers of a worked example: weights, inputs and targets, read exactly and checked.

Shapes follow the derivation's notation (columns are examples): W^[l] is n_l × n_{l-1},
b^[l] has n_l entries, X is n_0 × m and Y is n_L × m. On the command line and in files every
row is one sample, so the rows given become the columns of X and Y.

An image network's input is a feature map (example, channel, row, column): a sample is its
C·H·W numbers in channel, row, column order (PyTorch's), and X holds them as columns until the
worked example reads them as maps (``Samples.maps``). A convolution's kernel W^[l] has shape
(n_C^[l], n_C^[l-1], f^[l], f^[l]) and is given as that nested list or as its numbers in that
order, flattened; its bias has n_C^[l] entries. Dense layers after flatten are as above.
"""
from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from fractions import Fraction
from math import prod
from pathlib import Path

import sympy as sp

from ..errors import SymbackpropError
from .numbers import NumberError, exact, parse_number


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

    def of(self, label: int) -> tuple:
        """(W, b) of layer ``label``."""
        labels = self.labels or tuple(range(1, len(self.weights) + 1))
        pos = labels.index(label)
        return self.weights[pos], self.biases[pos]


@dataclass(frozen=True)
class Samples:
    """X (n_0 × m) and Y (n_L × m): one column per sample."""

    X: sp.ImmutableMatrix
    Y: sp.ImmutableMatrix
    image: tuple[int, int, int] | None = None  # (C, H, W) of an image input

    @property
    def m(self) -> int:
        return self.X.shape[1]

    @property
    def maps(self) -> sp.ImmutableDenseNDimArray:
        """An image network's inputs as feature maps (m, C, H, W): column k of X, read in
        channel, row, column order, is example k."""
        flat = [self.X[unit, k] for k in range(self.m) for unit in range(self.X.shape[0])]
        return sp.ImmutableDenseNDimArray(flat, (self.m, *self.image))


def _shape_text(rows, cols, label) -> str:
    return f"shape ({rows}, {cols}) = (n_{label}, n_{label - 1})"


def _number(value, where) -> sp.Rational:
    if isinstance(value, (bool, str)) or value is None or isinstance(value, (list, dict)):
        raise InputError(f"{where} must be a number, got {json.dumps(value, default=str)}")
    return exact(value)


def parameters_from_mapping(data, sizes, source: str) -> Parameters:
    """``{"W1": [[...]], "b1": [...], ...}`` -> Parameters, checking every key and shape.

    ``sizes``: the layer sizes, or the Architecture (an image network's kernels need it)."""
    if getattr(sizes, "image", None) is not None:
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
                             f"numbers, {shape}; got {json.dumps(value, default=str)}")
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
                             f"(n_{label} = {rows}); got {json.dumps(value, default=str)}")
        biases.append(sp.ImmutableMatrix(
            [[_number(value[i], f"{source}: {key}[{i}]")] for i in range(rows)]))
    return Parameters(tuple(weights), tuple(biases), source)


# --- image networks: kernels (F, C, K, K), then the dense layers --------------------------

def parameter_shapes(arch) -> dict:
    """{label: (shape of W, shape of b, what the shape names)} of every layer with parameters,
    in label order: a convolution's kernel (F, C, K, K), a dense layer's (n_l, n_{l-1})."""
    out = {}
    shapes = arch.shapes()
    for label, feature in enumerate(arch.features, start=1):
        if feature.kind == "conv":
            W = (feature.channels, shapes[label - 1][0], feature.kernel, feature.kernel)
            names = f"(n_C[{label}], n_C[{label - 1}], f[{label}], f[{label}])"
            out[label] = (W, (feature.channels,), names)
    for label in arch.dense_labels:
        rows, cols = arch.size(label), arch.size(label - 1)
        out[label] = ((rows, cols), (rows,), f"(n_{label}, n_{label - 1})")
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
    shapes = parameter_shapes(arch)
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object with keys "
                         f"{', '.join(_keys(shapes))}, got {type(data).__name__}")
    expected = _keys(shapes)
    unknown = sorted(set(data) - set(expected))
    if unknown:
        raise InputError(f"{source}: unknown key {unknown[0]!r}; this network has "
                         f"{', '.join(expected)}")
    weights, biases = [], []
    for label, (w_shape, b_shape, names) in shapes.items():
        for key, shape, what in ((f"W{label}", w_shape, names), (f"b{label}", b_shape, None)):
            count = prod(shape)
            if what is None:
                what = f"(n_C[{label}],)" if len(w_shape) == 4 else f"(n_{label},)"
            described = (f"{key} has shape {shape} = {what}"
                         + (", as a nested list or its numbers in that order"
                            if len(shape) > 2 else ""))
            if key not in data:
                raise InputError(f"{source}: missing key {key!r}: {described}")
            value = data[key]
            if key.startswith("b") and isinstance(value, list) and \
                    all(isinstance(v, list) and len(v) == 1 for v in value):
                value = [v[0] for v in value]  # a column [[b0], [b1]] is accepted too
            numbers = _nested(value, shape)
            if numbers is None:
                raise InputError(f"{source}: {key!r} must hold {count} numbers: {described}; "
                                 f"got {json.dumps(value, default=str)}")
            numbers = [_number(v, f"{source}: {key}[{n}]") for n, v in enumerate(numbers)]
            dense = len(w_shape) == 2
            (weights if key.startswith("W") else biases).append(_array(numbers, shape, dense))
    return Parameters(tuple(weights), tuple(biases), source, tuple(shapes))


def _keys(shapes) -> list[str]:
    return [f"{kind}{label}" for label in shapes for kind in ("W", "b")]


def _array(numbers, shape, dense: bool):
    """A dense layer's W as a matrix and its b as a column; a kernel or a convolution's bias as
    an array of its shape."""
    if dense:
        cols = shape[1] if len(shape) == 2 else 1
        return sp.ImmutableMatrix(shape[0], cols, lambda i, j: numbers[i * cols + j])
    return sp.ImmutableDenseNDimArray(numbers, shape)


def load_parameters(path, sizes) -> Parameters:
    """Read a weights JSON file; decimals are read exactly (``0.1`` is 1/10)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read weights file {str(path)!r}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text, parse_float=Fraction, parse_constant=_refuse_constant)
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
    if getattr(sizes, "image", None) is not None:
        return _draw_image_parameters(seed, sizes)
    sizes = getattr(sizes, "sizes", sizes)
    rng = random.Random(seed)
    weights = tuple(sp.ImmutableMatrix(sizes[l], sizes[l - 1],
                                       lambda i, j: rng.choice(INIT_CHOICES))
                    for l in range(1, len(sizes)))
    biases = tuple(sp.zeros(sizes[l], 1).as_immutable() for l in range(1, len(sizes)))
    return Parameters(weights, biases, f"--init {seed}")


def _draw_image_parameters(seed: int, arch) -> Parameters:
    rng = random.Random(seed)
    shapes = parameter_shapes(arch)
    weights, biases = [], []
    for w_shape, b_shape, _ in shapes.values():
        numbers = [rng.choice(INIT_CHOICES) for _ in range(prod(w_shape))]
        dense = len(w_shape) == 2
        weights.append(_array(numbers, w_shape, dense))
        biases.append(_array([sp.Integer(0)] * prod(b_shape), b_shape, dense))
    return Parameters(tuple(weights), tuple(biases), f"--init {seed}", tuple(shapes))


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
    return ", ".join(["0.5"] * width) + "; " + ", ".join(["1"] * width)


def samples_from_rows(x_rows, y_rows, option_y="--y", image=None) -> Samples:
    if len(x_rows) != len(y_rows):
        raise InputError(f"{len(x_rows)} input sample(s) but {len(y_rows)} target(s) in "
                         f"{option_y}; give one row of targets per sample")
    X = sp.ImmutableMatrix(x_rows).T
    Y = sp.ImmutableMatrix(y_rows).T
    return Samples(X, Y, image)


def input_description(n_in: int, image=None) -> str:
    """What one sample's inputs are, for messages."""
    if image is None:
        return f"the input layer (n_0 = {n_in})"
    shape = "x".join(map(str, image))
    return f"the input image {shape} (C·H·W numbers in channel, row, column order)"


def check_targets(samples: Samples, loss) -> None:
    """A loss whose derivation assumes each column of Y sums to 1 gets such targets."""
    if not loss.targets_sum_to_one:
        return
    for k in range(samples.m):
        total = sum(samples.Y[:, k])
        if total != 1:
            raise InputError(
                f"loss {loss.name} needs each sample's targets to sum to 1 (its output error "
                f"A - Y is derived with that), but sample {k + 1} sums to {total}; "
                "give one-hot rows such as \"0, 1, 0\" or probabilities")


def parse_samples(x_text: str, y_text: str, n_in: int, n_out: int, image=None) -> Samples:
    """``image``: (C, H, W) of an image input, whose samples have C·H·W = ``n_in`` numbers."""
    x_rows = parse_rows(x_text, n_in, "--x", input_description(n_in, image))
    y_rows = parse_rows(y_text, n_out, "--y", f"the output layer (n_L = {n_out})")
    return samples_from_rows(x_rows, y_rows, image=image)


def load_samples(path, n_in: int, n_out: int, image=None) -> Samples:
    """A CSV file, one sample a row: n_0 inputs then n_L targets; a header row is skipped."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            lines = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read data file {str(path)!r}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    width = n_in + n_out
    if lines and not _is_numeric_row(lines[0]):
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
    return samples_from_rows(x_rows, y_rows, image=image)


def _is_numeric_row(row) -> bool:
    try:
        for cell in row:
            Fraction(cell.strip())
    except (ValueError, ZeroDivisionError):
        return False
    return True
