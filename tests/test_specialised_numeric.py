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
from symbackprop.registry import ACTIVATIONS, LOSSES, c_idx, zvec
from symbackprop.registry import a as a_var
from symbackprop.registry import n as n_var
from symbackprop.registry import y as y_var
from symbackprop.registry import z as z_var
from symbackprop.spec import parse_arch

M = 4  # examples


def activation(entry, Z, rows_are_examples):
    """g(Z) from the entry's own definition (the registry's expression, not the derivation)."""
    if entry.elementwise:
        return np.vectorize(sp.lambdify(z_var, entry.expr, "math"), otypes=[float])(Z)
    cols = Z if rows_are_examples else Z.T  # one example a row
    out = np.empty_like(cols)
    n_units = cols.shape[1]
    zs = sp.symbols(f"q0:{n_units}")
    for c in range(n_units):
        e = entry.expr.xreplace({c_idx: c, n_var: n_units}).doit().replace(
            lambda x: isinstance(x, sp.Indexed) and x.base == zvec,
            lambda x: zs[int(x.indices[0])])
        f = sp.lambdify(zs, e, "math")
        for row in range(cols.shape[0]):
            out[row, c] = f(*(cols[row] - cols[row].max()))
    return out if rows_are_examples else out.T


def loss(entry, A, Y, n_out):
    """The cost J: the mean over examples of the loss summed over output units."""
    term = np.vectorize(sp.lambdify((a_var, y_var), entry.term.xreplace({n_var: n_out}), "math"),
                        otypes=[float])
    return term(A, Y).sum() / M


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
        entry = arch.loss_entry
        if entry.targets_sum_to_one:  # one-hot targets
            hot = rng.integers(0, n_out, M)
            Y = np.eye(n_out)[hot]
            self.Y = Y if self.rowvec else Y.T
        elif tuple(entry.y_domain) == (0.0, 1.0):
            self.Y = rng.uniform(0.05, 0.95, out_shape)
        else:
            self.Y = rng.normal(0, 1, out_shape)

    def forward(self):
        A, Zs, As = self.X, [], [self.X]
        for W, b, g in zip(self.W, self.b, self.arch.activation_entries):
            Z = A @ W + b if self.rowvec else W @ A + b
            A = activation(g, Z, self.rowvec)
            Zs.append(Z)
            As.append(A)
        return Zs, As

    def cost(self):
        penalty = float(self.arch.l2) / (2 * M) * sum((W ** 2).sum() for W in self.W)
        return loss(self.arch.loss_entry, self.forward()[1][-1], self.Y,
                    self.arch.sizes[-1]) + penalty

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
    concrete = {sym.xreplace(sizes): sp.ImmutableMatrix(val) for sym, val in values.items()}
    out = expr.xreplace(sizes).xreplace(concrete).doit()
    if hasattr(out, "as_explicit"):
        out = out.as_explicit()
    return np.array(sp.ImmutableMatrix(out).evalf(), dtype=float)


USER = {"activations": {"swish": "z*sigmoid(z)", "bent": "where(z > 0, z**2 + z, tanh(z))"},
        "losses": {"pseudo_huber": "sqrt(1 + (a - y)**2) - 1", "l1": "abs(a - y)"}}
WIDTHS = (3, 4, 3, 4, 2)


def _cases():
    """Every hidden activation at depths 1-4, in both notations; every (loss, output activation)
    pair the registry allows; the user's functions; the L2 penalty."""
    hidden = [name for name, act in ACTIVATIONS.items() if not act.output_only]
    for k, name in enumerate(hidden):
        depth = 1 + k % 4
        parts = [str(WIDTHS[0])] + [f"{w}:{name}" for w in WIDTHS[1:depth]] + ["2:identity"]
        for notation in ("ng", "rowvec"):
            yield "-".join(parts), "mse", notation, 0
    for loss_name, entry in LOSSES.items():
        for out in entry.output_activations or list(ACTIVATIONS):
            yield f"3-4:tanh-2:{out}", loss_name, "ng", 0
    yield "3-4:swish-3:bent-2:identity", "pseudo_huber", "ng", 0
    yield "3-4:bent-2:swish", "l1", "rowvec", 0
    yield "3-4:relu-3:softmax", "cross_entropy", "ng", "0.1"
    yield "3-4:tanh-2:sigmoid", "bce", "rowvec", "0.5"


CASES = list(_cases())


@pytest.mark.parametrize("spec,loss_name,notation,l2", CASES)
def test_specialised_equations_match_central_differences(spec, loss_name, notation, l2):
    arch = parse_arch(spec, loss_name, definitions=USER, l2=l2)
    d = derive(arch, notation)
    net = Net(arch, notation, np.random.default_rng(zlib.crc32(f"{spec} {notation}".encode())))
    Zs, As = net.forward()
    sizes = {N.units(label): n for label, n in enumerate(arch.sizes)}
    sizes[d.m] = M
    sizes[N.lam] = d.l2
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
