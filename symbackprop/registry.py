"""Activations and losses: one entry each, holding its SymPy expression and valid domain.

Everything else symbackprop knows about an activation or a loss -- its derivative, the derivative
in terms of the layer's output, its LaTeX, its NumPy code -- is derived or printed from the entry.
Adding an activation is adding one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

# The scalar variables every entry is written in.
z = sp.Symbol("z", real=True)  # pre-activation
a = sp.Symbol("a", real=True)  # activation output / prediction
y = sp.Symbol("y", real=True)  # target
n = sp.Symbol("n", integer=True, positive=True)  # size of the layer (number of classes)

# Vector activations (softmax) are written over a column z_0 .. z_{n-1}.
zvec = sp.IndexedBase("z")
c_idx, j_idx = sp.symbols("c j", integer=True)


@dataclass(frozen=True)
class Activation:
    """g: R -> R applied entry by entry, or (softmax) a map of a whole column."""

    name: str
    expr: sp.Expr  # in z; for a vector activation, entry c of the output in zvec[.]
    latex: str  # the name as a LaTeX operator, e.g. r"\sigma"
    domain: tuple[float, float] = (-4.0, 4.0)  # where tests sample z
    elementwise: bool = True
    output_only: bool = False  # softmax couples the units: allowed on the output layer only

    def __repr__(self) -> str:
        return f"Activation({self.name}: {self.expr})"

    @cached_property
    def derivative(self) -> sp.Expr:
        """g'(z), by differentiating the entry (elementwise activations only)."""
        return sp.diff(self.expr, z)

    @cached_property
    def derivative_of_output(self) -> sp.Expr | None:
        """g'(z) written in a = g(z) where that is no longer than in z (sigma' = a(1 - a)).

        Found by algebra: first replace g(z) by a inside g'(z) (tanh' = 1 - tanh^2 -> 1 - a^2);
        else solve a = g(z) for z and substitute. None when neither gives an expression free of z
        that is at most as long as g'(z) in z.
        """
        if not self.elementwise or self.expr.has(sp.Piecewise) or self.expr == z:
            return None
        gp = self.derivative
        candidates = [gp.subs(self.expr, a)]
        try:
            for root in sp.solve(sp.Eq(a, self.expr), z):
                candidates.append(sp.simplify(gp.subs(z, root)))
        except NotImplementedError:  # pragma: no cover - solve gives up on some entries
            pass
        good = [h for h in candidates if not h.has(z)]
        if not good:
            return None
        best = min(good, key=sp.count_ops)
        return best if sp.count_ops(best) <= sp.count_ops(gp) else None


@dataclass(frozen=True)
class Loss:
    """Per-example loss L = sum over output units c of term(a_c, y_c)."""

    name: str
    term: sp.Expr  # in a, y and n (the number of output units)
    latex: str  # how the loss is named in documents
    description: str
    output_activations: tuple[str, ...] | None = None  # allowed output activations; None: any
    targets_sum_to_one: bool = False  # Y columns are probability distributions
    a_domain: tuple[float, float] = (-2.0, 2.0)  # where tests sample predictions
    y_domain: tuple[float, float] = (-2.0, 2.0)  # where tests sample targets

    def __repr__(self) -> str:
        return f"Loss({self.name}: sum_c {self.term})"


def _softmax() -> sp.Expr:
    return sp.exp(zvec[c_idx]) / sp.Sum(sp.exp(zvec[j_idx]), (j_idx, 0, n - 1))


ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in [
        Activation("identity", z, r"\operatorname{id}"),
        Activation("sigmoid", 1 / (1 + sp.exp(-z)), r"\sigma"),
        Activation("tanh", sp.tanh(z), r"\tanh"),
        # Piecewise, not Max(0, z): d/dz Max(0, z) is Heaviside(z) and Heaviside(0) = 1/2;
        # relu'(0) = 0 and leaky_relu'(0) = 0.01, as PyTorch and scikit-learn have them.
        Activation("relu", sp.Piecewise((z, z > 0), (0, True)), r"\operatorname{ReLU}"),
        Activation(
            "leaky_relu",
            sp.Piecewise((z, z > 0), (sp.Rational(1, 100) * z, True)),
            r"\operatorname{LReLU}",
        ),
        Activation("softplus", sp.log(1 + sp.exp(z)), r"\operatorname{softplus}"),
        Activation("softmax", _softmax(), r"\operatorname{softmax}", elementwise=False,
                   output_only=True),
    ]
}

LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in [
        Loss("half_sse", (a - y) ** 2 / 2, r"\tfrac{1}{2}\lVert a - y\rVert^2",
             "half the sum of squared errors"),
        Loss("mse", (a - y) ** 2 / n, r"\tfrac{1}{n}\lVert a - y\rVert^2",
             "mean squared error over the output units"),
        Loss("bce", -(y * sp.log(a) + (1 - y) * sp.log(1 - a)), r"\mathrm{BCE}",
             "binary cross-entropy, summed over the output units",
             output_activations=("sigmoid",), a_domain=(0.05, 0.95), y_domain=(0.0, 1.0)),
        Loss("cross_entropy", -y * sp.log(a), r"\mathrm{CE}",
             "categorical cross-entropy (targets one-hot or probabilities)",
             output_activations=("softmax",), targets_sum_to_one=True,
             a_domain=(0.05, 0.95), y_domain=(0.0, 1.0)),
    ]
}

