"""The operations of feature layers, as nodes: each defined entry by entry.

A node is a named operation on feature maps (example, channel, row, column arrays) and kernels,
with its definition in index notation (``entry``). Forward definitions of the feature kinds are
these entries; the engine derives every gradient by the chain rule, and then recognises it as a
node by checking that the derived entry *is* the node's entry, symbol for symbol (a mismatch is
a DerivationError, never a silent rename). The printers print nodes by type (⋆ for a
correlation, rot180 for a flipped kernel) and the code generator maps each node type to a
kernel.

The sizes are symbols (``naming.feature_size``); entries of a map outside its rows and columns
are 0 (the zero padding), and a derived range condition is kept as a Piecewise.
"""
from __future__ import annotations

import sympy as sp

from . import naming as N


def _name(text):
    """A word argument (max/avg, a layout) as the Symbol a node holds; rebuilding a node from
    its args (xreplace) passes the Symbol back."""
    return text if isinstance(text, sp.Symbol) else sp.Symbol(text)


def _in_range(value, size):
    return sp.And(sp.Le(0, value), sp.Le(value, size - 1))


class Node(sp.Basic):
    """A vectorised operation. Subclasses define ``entry(*indices)`` and ``shape``."""

    is_commutative = False
    kind = "node"

    def entry(self, *indices):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @property
    def operands(self) -> tuple:
        return tuple(a for a in self.args if isinstance(a, (sp.IndexedBase, sp.MatrixSymbol,
                                                              Node)))

    def __str__(self) -> str:
        from .printing.linear import text

        return text(self)

    __repr__ = __str__

    def _sympystr(self, printer):
        from .matrices import readable

        return readable(self, printer, "text")

    def _latex(self, printer):
        from .matrices import readable

        return readable(self, printer, "latex")


class Correlate(Node):
    """W ⋆_{s,p} A + b: Z_krxy = Σ_t Σ_μ Σ_ν W_rtμν A_{k,t,s x+μ-p,s y+ν-p} + b_r, the
    cross-correlation of torch's conv2d (stride s, zero padding p)."""

    kind = "correlate"

    def __new__(cls, W, A, b, s, p):
        return sp.Basic.__new__(cls, W, A, b, sp.sympify(s), sp.sympify(p))

    W, A, b, s, p = (property(lambda self, n=n: self.args[n]) for n in range(5))

    @property
    def kernel(self):
        return self.W.shape[2]

    def entry(self, k, r, x, y):
        W, A, b, s, p = self.args
        t, mu, nu = N.t, N.mu, N.nu
        f = self.kernel
        return sp.Sum(W[r, t, mu, nu] * A[k, t, s * x + mu - p, s * y + nu - p],
                      (t, 0, W.shape[1] - 1), (mu, 0, f - 1), (nu, 0, f - 1)) + b[r]


class WeightCorrelate(Node):
    """Σ_i A_i ⋆ dZ_i: entry (r, c, u, v) = Σ_i Σ_x Σ_y dZ_irxy A_{i,c,s x+u-p,s y+v-p},
    the correlation of the input with the output's error (dilated by the stride)."""

    kind = "weight_correlate"

    def __new__(cls, A, dZ, s, p):
        return sp.Basic.__new__(cls, A, dZ, sp.sympify(s), sp.sympify(p))

    A, dZ, s, p = (property(lambda self, n=n: self.args[n]) for n in range(4))

    def entry(self, r, c, u, v):
        A, dZ, s, p = self.args
        i, x, y = N.i, N.x, N.y
        m, _, rows, cols = dZ.shape
        return sp.Sum(A[i, c, s * x + u - p, s * y + v - p] * dZ[i, r, x, y],
                      (i, 0, m - 1), (x, 0, rows - 1), (y, 0, cols - 1))


class ChannelSum(Node):
    """Σ over examples, rows and columns of each channel: entry r = Σ_i Σ_x Σ_y dZ_irxy."""

    kind = "channel_sum"

    def __new__(cls, dZ):
        return sp.Basic.__new__(cls, dZ)

    @property
    def dZ(self):
        return self.args[0]

    def entry(self, r):
        dZ = self.dZ
        i, x, y = N.i, N.x, N.y
        m, _, rows, cols = dZ.shape
        return sp.Sum(dZ[i, r, x, y], (i, 0, m - 1), (x, 0, rows - 1), (y, 0, cols - 1))


class FullCorrelate(Node):
    """dZ ⋆_full rot180(W), the stride dilating dZ and the padding cropping the result:
    entry (k, c, h, w) = Σ_j Σ_x Σ_y dZ_kjxy W_{j,c,h+p-s x,w+p-s y}, the sum over the
    output positions whose window covers (h, w): 0 <= h + p - s x <= f - 1, and so for w."""

    kind = "full_correlate"

    def __new__(cls, dZ, W, s, p):
        return sp.Basic.__new__(cls, dZ, W, sp.sympify(s), sp.sympify(p))

    dZ, W, s, p = (property(lambda self, n=n: self.args[n]) for n in range(4))

    def entry(self, k, c, h, w):
        dZ, W, s, p = self.args
        j, x, y = N.j, N.x, N.y
        _, channels, rows, cols = dZ.shape
        f = W.shape[2]
        u, v = h + p - s * x, w + p - s * y
        body = sp.Piecewise((W[j, c, u, v] * dZ[k, j, x, y],
                             sp.And(_in_range(u, f), _in_range(v, f))), (0, True))
        return sp.Sum(body, (j, 0, channels - 1), (x, 0, rows - 1), (y, 0, cols - 1))


class Pool(Node):
    """max or average of each f x f window, stride s: entry (k, c, x, y) =
    Σ_μ Σ_ν M_kcxyμν A_{k,c,s x+μ,s y+ν} (max: M the window's arg-max indicator, 1 at its
    first maximum in row-major order) or (1/f²) Σ_μ Σ_ν A_{k,c,s x+μ,s y+ν} (average)."""

    kind = "pool"

    def __new__(cls, how, A, f, s, M=None):
        args = (_name(how), A, sp.sympify(f), sp.sympify(s))
        return sp.Basic.__new__(cls, *args, *((M,) if M is not None else ()))

    @property
    def how(self) -> str:
        return self.args[0].name

    A, f, s = (property(lambda self, n=n: self.args[n]) for n in range(1, 4))

    @property
    def M(self):
        return self.args[4] if len(self.args) > 4 else None

    def weight(self, k, c, x, y, mu, nu):
        return self.M[k, c, x, y, mu, nu] if self.how == "max" else 1 / self.f ** 2

    def entry(self, k, c, x, y):
        mu, nu, s, f = N.mu, N.nu, self.s, self.f
        return sp.Sum(self.weight(k, c, x, y, mu, nu) * self.A[k, c, s * x + mu, s * y + nu],
                      (mu, 0, f - 1), (nu, 0, f - 1))


class Unpool(Node):
    """The input error of a pooling layer: each window's error goes back to the entries it
    pooled, weighted as the forward pass weighted them (max: to the arg-max; average: 1/f²
    each). Entry (k, c, h, w) = Σ_x Σ_y dA_kcxy weight(h - s x, w - s y) over the windows
    that hold (h, w): 0 <= h - s x <= f - 1, and so for w."""

    kind = "unpool"

    def __new__(cls, how, dA, f, s, M=None):
        args = (_name(how), dA, sp.sympify(f), sp.sympify(s))
        return sp.Basic.__new__(cls, *args, *((M,) if M is not None else ()))

    @property
    def how(self) -> str:
        return self.args[0].name

    dA, f, s = (property(lambda self, n=n: self.args[n]) for n in range(1, 4))

    @property
    def M(self):
        return self.args[4] if len(self.args) > 4 else None

    def entry(self, k, c, h, w):
        x, y, s, f, dA = N.x, N.y, self.s, self.f, self.dA
        u, v = h - s * x, w - s * y
        weight = self.M[k, c, x, y, u, v] if self.how == "max" else 1 / f ** 2
        _, _, rows, cols = dA.shape
        body = sp.Piecewise((weight * dA[k, c, x, y], sp.And(_in_range(u, f), _in_range(v, f))),
                            (0, True))
        return sp.Sum(body, (x, 0, rows - 1), (y, 0, cols - 1))


class Flatten(Node):
    """The feature map A (m, n_C, n_H, n_W) as a matrix of vectors, entry (c, h, w) at
    position c n_H n_W + h n_W + w (PyTorch's order)."""

    kind = "flatten"

    def __new__(cls, A, layout_name="ng"):
        return sp.Basic.__new__(cls, A, _name(layout_name))

    @property
    def A(self):
        return self.args[0]

    def entry(self, k, c, h, w):
        return self.A[k, c, h, w]

    @staticmethod
    def position(A, c, h, w):
        """The unit index of entry (c, h, w) of a map shaped as A."""
        _, _, rows, cols = A.shape
        return c * rows * cols + h * cols + w


class Unflatten(Node):
    """The error of the flat vectors, dA, back in the shape of the feature map: entry
    (k, c, h, w) = dA at unit c n_H n_W + h n_W + w of example k."""

    kind = "unflatten"

    def __new__(cls, dA, A, layout_name="ng"):
        return sp.Basic.__new__(cls, dA, A, _name(layout_name))

    dA, A = (property(lambda self, n=n: self.args[n]) for n in range(2))

    def entry(self, k, c, h, w):
        unit = Flatten.position(self.A, c, h, w)
        return self.dA[(unit, k) if self.args[2].name == "ng" else (k, unit)]


class Map(Node):
    """A scalar function applied entry by entry to maps of one shape (g(Z), dA ⊙ g'(Z))."""

    kind = "map"

    def __new__(cls, fn: sp.Lambda, *tensors):
        return sp.Basic.__new__(cls, fn, *tensors)

    @property
    def fn(self) -> sp.Lambda:
        return self.args[0]

    @property
    def tensors(self) -> tuple:
        return self.args[1:]

    def entry(self, *indices):
        return self.fn(*[T[indices] for T in self.tensors])


def recognise_map(entry, indices):
    """``entry`` as a Map when every array in it is read at ``indices`` (else None)."""
    bases = sorted({e.base for e in entry.atoms(sp.Indexed)}, key=sp.default_sort_key)
    if any(tuple(e.indices) != tuple(indices) for e in entry.atoms(sp.Indexed)):
        return None
    if entry.atoms(sp.Sum) or not bases:
        return None
    placeholders = [sp.Symbol(N.split(str(B.label))[0].lower() + "_") for B in bases]
    body = entry.xreplace({B[tuple(indices)]: ph for B, ph in zip(bases, placeholders)})
    if any(var in body.free_symbols for var in indices):
        return None
    return Map(sp.Lambda(tuple(placeholders), body), *bases)


class Scaled(Node):
    """A scalar factor times an operation: (1/m) Σ_i A_i ⋆ dZ_i."""

    kind = "scaled"

    def __new__(cls, factor, node):
        return sp.Basic.__new__(cls, sp.sympify(factor), node)

    factor, node = (property(lambda self, n=n: self.args[n]) for n in range(2))

    def entry(self, *indices):
        inner = self.node
        return self.factor * (inner.entry(*indices) if isinstance(inner, Node)
                              else inner[indices])


def core(node):
    """The operation under a parameter gradient's 1/m (and its L2 term): (1/m) Σ_i A_i ⋆ dZ_i
    -> the correlation, (1/m)(StepOuter + λ W) -> StepOuter."""
    if isinstance(node, Plus):
        node = node.args[0]
    if isinstance(node, Scaled):
        node = node.node
    return node


class Plus(Node):
    """The sum of two operations (a gradient with its L2 penalty: (1/m)(A ⋆ dZ + λ W))."""

    kind = "plus"

    def __new__(cls, *terms):
        return sp.Basic.__new__(cls, *terms)

    def entry(self, *indices):
        return sp.Add(*[t.entry(*indices) for t in self.args])


# --- recurrent layers --------------------------------------------------------------------
# A sequence of vectors is an (example, step, unit) array; the hidden state before step 0 is
# 0 (H_{k,-1,ν} = 0), so a term reading step -1 is 0.

class Recurrence(Node):
    """W x_t + U H_{t-1} + b, an Elman layer's pre-activation: entry (k, τ, r) =
    Σ_μ W_rμ X_kτμ + Σ_ν U_rν H_{k,τ-1,ν} + b_r, with H_{k,-1,ν} = 0."""

    kind = "recurrence"

    def __new__(cls, W, X, U, H, b):
        return sp.Basic.__new__(cls, W, X, U, H, b)

    W, X, U, H, b = (property(lambda self, n=n: self.args[n]) for n in range(5))

    def entry(self, k, tau, r):
        W, X, U, H, b = self.args
        mu, nu = N.mu, N.nu
        return (sp.Sum(W[r, mu] * X[k, tau, mu], (mu, 0, W.shape[1] - 1))
                + sp.Sum(U[r, nu] * H[k, tau - 1, nu], (nu, 0, U.shape[1] - 1)) + b[r])


class LastStep(Node):
    """The last hidden state of each example as a matrix of vectors: the column of example k
    is H_{k,T-1,·} (many-to-one)."""

    kind = "last_step"

    def __new__(cls, H, layout_name="ng"):
        return sp.Basic.__new__(cls, H, _name(layout_name))

    @property
    def H(self):
        return self.args[0]

    @property
    def steps(self):
        return self.H.shape[1]

    def entry(self, k, r):
        return self.H[k, self.steps - 1, r]


class EveryStep(Node):
    """Every hidden state as a matrix of vectors: column T k + τ holds H_{k,τ,·}, example k at
    step τ (many-to-many: the dense head applies at every step)."""

    kind = "every_step"

    def __new__(cls, H, layout_name="ng"):
        return sp.Basic.__new__(cls, H, _name(layout_name))

    @property
    def H(self):
        return self.args[0]

    def entry(self, k, tau, r):
        return self.H[k, tau, r]

    @staticmethod
    def position(H, k, tau):
        """The column of example k at step τ."""
        return H.shape[1] * k + tau


def _at(matrix, layout_name, unit, column):
    return matrix[(unit, column) if str(layout_name) == "ng" else (column, unit)]


class BackThroughTime(Node):
    """The error of the hidden states, backward in time: entry (k, τ, r) =
    [τ + 1 <= T - 1] Σ_j U_jr dZ_{k,τ+1,j} (through the next step, none after the last)
    + the error of what the layer passes on at τ: δ_{τ,T-1} dA_rk (the last state only) or
    dA_{r,Tk+τ} (every state)."""

    kind = "back_through_time"

    def __new__(cls, U, dZ, dA, every_step=False, layout_name="ng"):
        return sp.Basic.__new__(cls, U, dZ, dA, sp.true if every_step else sp.false,
                                _name(layout_name))

    U, dZ, dA = (property(lambda self, n=n: self.args[n]) for n in range(3))

    @property
    def every_step(self) -> bool:
        return bool(self.args[3])

    @property
    def steps(self):
        return self.dZ.shape[1]

    def through_next(self, k, tau, r):
        """The next step's part: Σ_j U_jr dZ_{k,τ+1,j} where step τ + 1 exists."""
        j, T = N.j, self.steps
        return sp.Sum(sp.Piecewise((self.U[j, r] * self.dZ[k, tau + 1, j],
                                    sp.Le(tau + 1, T - 1)), (0, True)),
                      (j, 0, self.U.shape[0] - 1))

    def passed_on(self, k, tau, r):
        """The part through what the layer passes on to the dense head at step τ."""
        layout = self.args[4]
        if self.every_step:
            return _at(self.dA, layout, r, EveryStep.position(self.dZ, k, tau))
        return sp.KroneckerDelta(tau, self.steps - 1) * _at(self.dA, layout, r, k)

    def entry(self, k, tau, r):
        return self.through_next(k, tau, r) + self.passed_on(k, tau, r)


class StepOuter(Node):
    """Σ_i Σ_t dZ_{i,t} A_{i,t-lag}ᵀ, the weight gradient summed over examples and steps:
    entry (r, s) = Σ_i Σ_t dZ_itr A_{i,t-lag,s} (lag 1: the previous hidden state, 0 at t = 0)."""

    kind = "step_outer"

    def __new__(cls, dZ, A, lag=0):
        return sp.Basic.__new__(cls, dZ, A, sp.sympify(lag))

    dZ, A, lag = (property(lambda self, n=n: self.args[n]) for n in range(3))

    def entry(self, r, s):
        i, t = N.i, N.t
        m, steps, _ = self.dZ.shape
        return sp.Sum(self.dZ[i, t, r] * self.A[i, t - self.lag, s],
                      (i, 0, m - 1), (t, 0, steps - 1))


class StepSum(Node):
    """Σ over examples and steps of each unit: entry r = Σ_i Σ_t dZ_itr."""

    kind = "step_sum"

    def __new__(cls, dZ):
        return sp.Basic.__new__(cls, dZ)

    @property
    def dZ(self):
        return self.args[0]

    def entry(self, r):
        i, t = N.i, N.t
        m, steps, _ = self.dZ.shape
        return sp.Sum(self.dZ[i, t, r], (i, 0, m - 1), (t, 0, steps - 1))
