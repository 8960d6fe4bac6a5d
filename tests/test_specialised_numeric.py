"""The specialised equations a document prints, evaluated at random values, against gradients
of the cost by central differences of an independent NumPy forward pass.

The SymPy expressions are those ``printing.document.specialised`` hands to the printer (the rows
of the "This network, layer by layer" section); nothing of the engine's is used to compute the
reference, which is built here from the activations' and losses' textbook definitions.
"""
from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import sympy as sp

from symbackprop import naming as N
from symbackprop.engine import derive
from symbackprop.printing.document import specialised
from symbackprop.spec import parse_arch

M = 4  # examples


def _softmax(Z, axis):
    e = np.exp(Z - Z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def activation(name, Z, rows_are_examples):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0)
    if name == "softmax":
        return _softmax(Z, 1 if rows_are_examples else 0)
    raise AssertionError(name)


def loss(name, A, Y, n_out):
    """The cost J: the mean over examples of the loss summed over output units."""
    if name == "half_sse":
        per = 0.5 * (A - Y) ** 2
    elif name == "mse":
        per = (A - Y) ** 2 / n_out
    elif name == "bce":
        per = -(Y * np.log(A) + (1 - Y) * np.log(1 - A))
    elif name == "cross_entropy":
        per = -Y * np.log(A)
    else:
        raise AssertionError(name)
    return per.sum() / M


class Net:
    """Concrete weights, inputs and targets; the forward pass in NumPy."""

    def __init__(self, arch, notation, rng):
        self.arch, self.rowvec = arch, notation == "rowvec"
        sizes = arch.sizes
        self.W, self.b = [], []
        for n_in, n_out in itertools.pairwise(sizes):
            shape = (n_in, n_out) if self.rowvec else (n_out, n_in)
            self.W.append(rng.normal(0, 0.8, shape))
            self.b.append(rng.normal(0, 0.5, (1, n_out) if self.rowvec else (n_out, 1)))
        self.X = rng.normal(0, 1, (M, sizes[0]) if self.rowvec else (sizes[0], M))
        n_out = sizes[-1]
        out_shape = (M, n_out) if self.rowvec else (n_out, M)
        if arch.loss == "cross_entropy":  # one-hot targets
            hot = rng.integers(0, n_out, M)
            Y = np.eye(n_out)[hot]
            self.Y = Y if self.rowvec else Y.T
        elif arch.loss == "bce":
            self.Y = rng.uniform(0.05, 0.95, out_shape)
        else:
            self.Y = rng.normal(0, 1, out_shape)

    def forward(self):
        A, Zs, As = self.X, [], [self.X]
        for W, b, g in zip(self.W, self.b, self.arch.activations):
            Z = A @ W + b if self.rowvec else W @ A + b
            A = activation(g, Z, self.rowvec)
            Zs.append(Z)
            As.append(A)
        return Zs, As

    def cost(self):
        return loss(self.arch.loss, self.forward()[1][-1], self.Y, self.arch.sizes[-1])

    def central_difference(self, param, eps=1e-6):
        grad = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            old = param[idx]
            param[idx] = old + eps
            up = self.cost()
            param[idx] = old - eps
            down = self.cost()
            param[idx] = old
            grad[idx] = (up - down) / (2 * eps)
        return grad


def evaluate(expr, values: dict, sizes: dict) -> np.ndarray:
    """A printed matrix expression at concrete values: matrices first, then the sizes."""
    concrete = {sym: sp.ImmutableMatrix(val) for sym, val in values.items()}
    out = expr.xreplace(concrete).subs(sizes).doit()
    if hasattr(out, "as_explicit"):
        out = out.as_explicit()
    return np.array(sp.ImmutableMatrix(out).evalf(), dtype=float)


CASES = [("2-3-1", "half_sse"), ("3-1:relu-2:relu", "mse"), ("5-4:relu-3:softmax", "cross_entropy"),
         ("3-4:tanh-4:tanh-4:tanh-2:sigmoid", "bce"), ("2-3:tanh-2:sigmoid", "half_sse")]


@pytest.mark.parametrize("notation", ["ng", "rowvec"])
@pytest.mark.parametrize("spec,loss_name", CASES)
def test_specialised_equations_match_central_differences(spec, loss_name, notation):
    arch = parse_arch(spec, loss_name)
    d = derive(arch, notation)
    net = Net(arch, notation, np.random.default_rng(zlib.crc32(f"{spec} {notation}".encode())))
    Zs, As = net.forward()
    sizes = {N.units(label): n for label, n in enumerate(arch.sizes)}
    sizes[d.m] = M
    values = {d.Y: net.Y}
    for layer, Z, A, A_prev, W, b in zip(d.layers, Zs, As[1:], As, net.W, net.b):
        values.update({layer.Z: Z, layer.A: A, layer.A_prev: A_prev, layer.W: W, layer.b: b})

    checked = 0
    for block in specialised(d):  # output layer first: each dZ feeds the layer below
        for row in block.rows:
            values[row.lhs] = evaluate(row.rhs, values, sizes)
        layer = d.layer(int(block.title))
        position = layer.index - 1
        for name, param in (("dW", net.W[position]), ("db", net.b[position])):
            printed = values[getattr(layer, name)]
            reference = net.central_difference(param)
            assert printed.shape == reference.shape
            np.testing.assert_allclose(printed, reference, rtol=1e-5, atol=1e-7,
                                       err_msg=f"{name}[{layer.index}] of {spec} ({notation})")
            checked += 1
    assert checked == 2 * arch.depth


def test_a_wrong_equation_would_be_caught():
    """The check has teeth: dropping the local derivative from dZ[1] breaks it."""
    arch = parse_arch("2-3-1")
    d = derive(arch)
    net = Net(arch, "ng", np.random.default_rng(0))
    Zs, As = net.forward()
    sizes = {N.units(label): n for label, n in enumerate(arch.sizes)} | {d.m: M}
    values = {d.Y: net.Y}
    for layer, Z, A, A_prev, W, b in zip(d.layers, Zs, As[1:], As, net.W, net.b):
        values.update({layer.Z: Z, layer.A: A, layer.A_prev: A_prev, layer.W: W, layer.b: b})
    out, hidden = specialised(d)
    for row in out.rows:
        values[row.lhs] = evaluate(row.rhs, values, sizes)
    values[hidden.rows[0].lhs] = evaluate(d.layer(2).W.T * d.layer(2).dZ, values, sizes)
    dW1 = evaluate(hidden.rows[1].rhs, values, sizes)
    assert not np.allclose(dW1, net.central_difference(net.W[0]), rtol=1e-3)
