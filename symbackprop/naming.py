"""Every name symbackprop gives a quantity, in one place.

A matrix is called ``KIND[LABEL]``: ``W[2]``, ``dZ[l]``, ``A[l-1]``; the targets are ``Y``.
Printers read the kind and the label back from the name: LaTeX ``W^{[2]}``, code ``W2``.
"""
from __future__ import annotations

import sympy as sp

KINDS = ("W", "b", "Z", "A", "dW", "db", "dZ", "dA")

# Index symbols: r, s, k name the entry being differentiated (unit of layer l, unit of layer
# l-1, example); j, t, i are summed over (unit of layer l, unit of layer l-1, example); c runs
# over the output units in the loss.
r, s, k, j, t, i, c = sp.symbols("r s k j t i c", integer=True)
m = sp.Symbol("m", integer=True, positive=True)
J = sp.Symbol("J")
lam = sp.Symbol("lambda", nonnegative=True)  # λ, the weight of the L2 penalty
L = sp.IndexedBase("L")  # L[i]: the loss of example i


def previous(label):
    """The label of the layer before ``label``: 2 -> 1, "l" -> "l-1"."""
    return label - 1 if isinstance(label, int) else f"{label}-1"


def units(label) -> sp.Symbol:
    """n_l, the number of units of layer ``label``."""
    text = str(label)
    return sp.Symbol(f"n_{text}" if len(text) == 1 else f"n_{{{text}}}", integer=True,
                     positive=True)


def unit_sizes(sizes) -> dict:
    """{n_0: sizes[0], n_1: sizes[1], ...}: the size symbols of a concrete network."""
    return {units(label): size for label, size in enumerate(sizes)}


def matrix(kind: str, label, rows, cols) -> sp.MatrixSymbol:
    return sp.MatrixSymbol(f"{kind}[{label}]", rows, cols)


def split(name: str) -> tuple[str, str | None]:
    """``"dZ[2]"`` -> ``("dZ", "2")``; ``"Y"`` -> ``("Y", None)``."""
    if name.endswith("]") and "[" in name:
        kind, label = name[:-1].split("[", 1)
        return kind, label
    return name, None


def code_name(name: str) -> str:
    """The identifier generated code uses: ``W[2]`` -> ``W2``, ``A[l-1]`` -> ``A_prev``."""
    kind, label = split(name)
    if label is None:
        return kind
    return kind + label.replace("-1", "_prev") if not label.isdigit() else kind + label


# --- feature maps (image networks) --------------------------------------------------------
# A feature map is an (example, channel, row, column) array, PyTorch's NCHW. Entry indices:
# k (example), r (output channel), c (input channel), x, y (output row and column), u, v
# (kernel offsets of a weight), h, w (row and column of the layer's input). Summed: i, j, t,
# x, y, and mu, nu over a kernel window.
h, w, u, v, x, y = sp.symbols("h w u v x y", integer=True)
mu, nu = sp.symbols("mu nu", integer=True)

# Sizes of layer l, in Ng's notation: n_C^[l] channels, n_H^[l] rows, n_W^[l] columns; a
# kernel of f^[l] x f^[l], stride s^[l], padding p^[l].
FEATURE_SIZES = ("n_C", "n_H", "n_W", "f", "s", "p")


def feature_size(kind: str, label) -> sp.Symbol:
    """The size symbol ``kind[label]`` (``n_C[1]``, ``f[2]``); padding may be 0."""
    if kind not in FEATURE_SIZES:
        raise ValueError(f"unknown feature size {kind!r}")
    if kind == "p":
        return sp.Symbol(f"p[{label}]", integer=True, nonnegative=True)
    return sp.Symbol(f"{kind}[{label}]", integer=True, positive=True)


def tensor(kind: str, label, shape) -> sp.IndexedBase:
    """A feature map, kernel or bias array ``KIND[LABEL]`` of the given shape."""
    return sp.IndexedBase(f"{kind}[{label}]", shape=tuple(shape))


def feature_sizes(arch) -> dict:
    """{n_C[l]: C, n_H[l]: H, ..., f[l]: K, n_l: flattened size}: a concrete image network's
    size symbols."""
    out = {}
    for label, shape in enumerate(arch.shapes()):
        if label > arch.offset:
            break
        if len(shape) == 3:
            for kind, value in zip(("n_C", "n_H", "n_W"), shape):
                out[feature_size(kind, label)] = value
    for label, f in enumerate(arch.features, start=1):
        if f.kernel:
            out[feature_size("f", label)] = f.kernel
            out[feature_size("s", label)] = f.stride
        if f.kind == "conv":
            out[feature_size("p", label)] = f.padding
    out[units(arch.offset)] = arch.sizes[0]
    return out


# --- sequences (recurrent networks) -------------------------------------------------------
# A sequence is an (example, step, unit) array, PyTorch's batch_first layout: X[k, τ, q]. T is
# the number of time steps; τ (tau) the time step of an entry, t the time step summed over
# (the chain rule's sums over Z are over example i, step t, unit j). The hidden state before
# the first step is 0: H[k, -1, ·] = 0.
T = sp.Symbol("T", integer=True, positive=True)
tau = sp.Symbol("tau", integer=True, nonnegative=True)


def sequence_sizes(arch) -> dict:
    """{T: steps, n_0: input features, n_1: hidden units}: a recurrent network's size symbols
    (the dense head's n_l come from ``unit_sizes``)."""
    steps, features = arch.sequence
    return {T: steps, units(0): features, units(1): arch.sizes[0]}
