"""The numbers of a worked example: weights, inputs and targets, read exactly and checked.

Shapes follow the derivation's notation (columns are examples): W^[l] is n_l × n_{l-1},
b^[l] has n_l entries, X is n_0 × m and Y is n_L × m. On the command line and in files every
row is one sample, so the rows given become the columns of X and Y.
"""
from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from fractions import Fraction
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


@dataclass(frozen=True)
class Samples:
    """X (n_0 × m) and Y (n_L × m): one column per sample."""

    X: sp.ImmutableMatrix
    Y: sp.ImmutableMatrix

    @property
    def m(self) -> int:
        return self.X.shape[1]


def _shape_text(rows, cols, label) -> str:
    return f"shape ({rows}, {cols}) = (n_{label}, n_{label - 1})"


def _number(value, where) -> sp.Rational:
    if isinstance(value, (bool, str)) or value is None or isinstance(value, (list, dict)):
        raise InputError(f"{where} must be a number, got {json.dumps(value, default=str)}")
    return exact(value)


def parameters_from_mapping(data, sizes, source: str) -> Parameters:
    """``{"W1": [[...]], "b1": [...], ...}`` -> Parameters, checking every key and shape."""
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
    """Small reproducible weights: each entry drawn from INIT_CHOICES; biases 0."""
    rng = random.Random(seed)
    weights = tuple(sp.ImmutableMatrix(sizes[l], sizes[l - 1],
                                       lambda i, j: rng.choice(INIT_CHOICES))
                    for l in range(1, len(sizes)))
    biases = tuple(sp.zeros(sizes[l], 1).as_immutable() for l in range(1, len(sizes)))
    return Parameters(weights, biases, f"--init {seed}")


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


def samples_from_rows(x_rows, y_rows, option_y="--y") -> Samples:
    if len(x_rows) != len(y_rows):
        raise InputError(f"{len(x_rows)} input sample(s) but {len(y_rows)} target(s) in "
                         f"{option_y}; give one row of targets per sample")
    X = sp.ImmutableMatrix(x_rows).T
    Y = sp.ImmutableMatrix(y_rows).T
    return Samples(X, Y)


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


def parse_samples(x_text: str, y_text: str, n_in: int, n_out: int) -> Samples:
    x_rows = parse_rows(x_text, n_in, "--x", f"the input layer (n_0 = {n_in})")
    y_rows = parse_rows(y_text, n_out, "--y", f"the output layer (n_L = {n_out})")
    return samples_from_rows(x_rows, y_rows)


def load_samples(path, n_in: int, n_out: int) -> Samples:
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
    return samples_from_rows(x_rows, y_rows)


def _is_numeric_row(row) -> bool:
    try:
        for cell in row:
            Fraction(cell.strip())
    except (ValueError, ZeroDivisionError):
        return False
    return True
