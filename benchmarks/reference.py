"""Hand-written NumPy training steps: the baseline the generated trainers are measured against.

Written to be as fast as NumPy alone allows, doing the same work per step as a
generated trainer's ``Trainer._step``: forward pass, the cost, every parameter gradient (none
for the input), and the SGD update. What makes them fast, as measured on this project's 2-core VM:
preallocated buffers, in-place ufuncs with positional outputs, ``np.dot(a, b, out)``, a float
0/1 ReLU mask, all parameters as views into one flat vector so the update is one call, and the
learning rate folded into the output error. Rows are examples; W has shape (n_out, n_in) and
is stored either as it is (``transposed=False``) or as its transpose (n_in, n_out), so that the
forward product A Wᵀ reads it untransposed; then dW is written through its transposed view as
A_prevᵀ dZ. Both orientations run in the benchmark, and the faster is the reference.
"""
from __future__ import annotations

import numpy as np


class Reference:
    """A fully connected net: hidden layers of one activation, then an output and its loss.

    ``hidden`` is "relu", "tanh" or "sigmoid"; ``head`` is "softmax_ce" or "sigmoid_mse".
    """

    def __init__(self, params: dict, sizes, hidden: str, head: str, m: int, lr: float,
                 dtype=np.float64, transposed: bool = False):
        self.sizes, self.hidden, self.head, self.m = tuple(sizes), hidden, head, m
        self.transposed = transposed
        self.L = len(sizes) - 1
        shapes = []
        for l in range(1, self.L + 1):
            shapes += [(sizes[l], sizes[l - 1]), (sizes[l],)]
        total = sum(int(np.prod(s)) for s in shapes)
        self.theta = np.empty(total, dtype)
        self.grad = np.zeros(total, dtype)

        def views(flat):
            out, start = [], 0
            for s in shapes:
                n = int(np.prod(s))
                block = flat[start:start + n]
                out.append(block.reshape(s[::-1]).T if transposed and len(s) == 2
                           else block.reshape(s))
                start += n
            return out

        pv, gv = views(self.theta), views(self.grad)
        self.W, self.b = pv[0::2], pv[1::2]
        self.dW, self.db = gv[0::2], gv[1::2]
        for l in range(1, self.L + 1):
            self.W[l - 1][...] = params[f"W{l}"]
            self.b[l - 1][...] = params[f"b{l}"]
        self.Z = [np.empty((m, n), dtype) for n in sizes[1:]]
        self.M = [np.empty((m, n), dtype) for n in sizes[1:]]  # relu masks / scratch
        self.dA = [np.empty((m, n), dtype) for n in sizes[1:]]
        # One scratch array per width, shared by the layers (stays in cache).
        self.scratch = {n: np.empty((m, n), dtype) for n in set(sizes[1:])}
        self.col = np.empty((m, 1), dtype)
        self.col2 = np.empty((m, 1), dtype)
        self.T = np.empty((m, sizes[-1]), dtype)
        self.scale = lr / m
        self.lr = lr
        # Constants as 0-d arrays of the dtype: a Python float is converted on every call.
        self.zero, self.one = np.array(0.0, dtype), np.array(1.0, dtype)
        if self.L == 2 and hidden == "sigmoid" and head == "sigmoid_mse":
            self.step = self._step_sigmoid_mse_2
        elif self.L == 2 and hidden == "relu" and head == "softmax_ce":
            self.step = self._step_relu_softmax_2
        else:
            self.step = self._step_general

    def _dW(self, dZ, A_prev, dW):
        """dW = dZᵀ A_prev, into dW as it is stored (through its transposed view: A_prevᵀ dZ)."""
        if self.transposed:
            np.dot(A_prev.T, dZ, dW.T)
        else:
            np.dot(dZ.T, A_prev, dW)

    # two-layer nets, unrolled ----------------------------------------------------------------
    def _step_sigmoid_mse_2(self, X, Y):
        W1, W2 = self.W
        b1, b2 = self.b
        dW1, dW2 = self.dW
        db1, db2 = self.db
        Z1, Z2 = self.Z
        T1, T2 = self.M
        dA1 = self.dA[0]
        D = self.T
        n = self.sizes[-1]
        one = self.one
        # forward: A = 1/(1 + exp(-Z)), in place
        np.dot(X, W1.T, Z1)
        np.add(Z1, b1, Z1)
        np.negative(Z1, Z1)
        np.exp(Z1, Z1)
        np.add(Z1, one, Z1)
        np.reciprocal(Z1, Z1)
        np.dot(Z1, W2.T, Z2)
        np.add(Z2, b2, Z2)
        np.negative(Z2, Z2)
        np.exp(Z2, Z2)
        np.add(Z2, one, Z2)
        np.reciprocal(Z2, Z2)
        # cost: mean over examples of sum_c (a - y)^2 / n
        np.subtract(Z2, Y, D)
        J = np.vdot(D, D) / (n * X.shape[0])
        # dZ2 = (2/n) (A2 - Y) A2 (1 - A2), times lr/m
        np.subtract(one, Z2, T2)
        np.multiply(T2, Z2, T2)
        np.multiply(D, T2, D)
        np.multiply(D, self.scale * 2.0 / n, D)
        self._dW(D, Z1, dW2)
        np.add.reduce(D, 0, None, db2)
        np.dot(D, W2, dA1)
        np.subtract(one, Z1, T1)
        np.multiply(T1, Z1, T1)
        np.multiply(dA1, T1, dA1)
        self._dW(dA1, X, dW1)
        np.add.reduce(dA1, 0, None, db1)
        np.subtract(self.theta, self.grad, self.theta)
        return J

    def _step_relu_softmax_2(self, X, Y):
        W1, W2 = self.W
        b1, b2 = self.b
        dW1, dW2 = self.dW
        db1, db2 = self.db
        Z1, Z2 = self.Z
        M1, E = self.M
        dA1 = self.dA[0]
        col, col2, T = self.col, self.col2, self.T
        np.dot(X, W1.T, Z1)
        np.add(Z1, b1, Z1)
        np.greater(Z1, self.zero, M1)
        np.multiply(Z1, M1, Z1)
        np.dot(Z1, W2.T, Z2)
        np.add(Z2, b2, Z2)
        # softmax, shifted by the row maximum
        np.maximum.reduce(Z2, 1, None, col, True)
        np.subtract(Z2, col, Z2)
        np.exp(Z2, E)
        np.add.reduce(E, 1, None, col, True)
        np.divide(E, col, E)
        # cost: -mean sum Y * (Z2 - log S)
        np.log(col, col2)
        np.subtract(Z2, col2, T)
        J = -np.vdot(Y, T) / X.shape[0]
        # dZ2 = (A2 - Y) lr/m
        np.subtract(E, Y, E)
        np.multiply(E, self.scale, E)
        self._dW(E, Z1, dW2)
        np.add.reduce(E, 0, None, db2)
        np.dot(E, W2, dA1)
        np.multiply(dA1, M1, dA1)
        self._dW(dA1, X, dW1)
        np.add.reduce(dA1, 0, None, db1)
        np.subtract(self.theta, self.grad, self.theta)
        return J

    # any depth ------------------------------------------------------------------------------
    def _step_general(self, X, Y):
        L, W, b, Z, M, dA = self.L, self.W, self.b, self.Z, self.M, self.dA
        hidden = self.hidden
        A = X
        for l in range(L - 1):
            np.dot(A, W[l].T, Z[l])
            np.add(Z[l], b[l], Z[l])
            if hidden == "relu":
                np.greater(Z[l], self.zero, M[l])
                np.multiply(Z[l], M[l], Z[l])
            elif hidden == "tanh":
                np.tanh(Z[l], Z[l])
            else:
                np.negative(Z[l], Z[l])
                np.exp(Z[l], Z[l])
                np.add(Z[l], self.one, Z[l])
                np.reciprocal(Z[l], Z[l])
            A = Z[l]
        ZL, E, col, col2, T = Z[-1], M[-1], self.col, self.col2, self.T
        np.dot(A, W[-1].T, ZL)
        np.add(ZL, b[-1], ZL)
        np.maximum.reduce(ZL, 1, None, col, True)
        np.subtract(ZL, col, ZL)
        np.exp(ZL, E)
        np.add.reduce(E, 1, None, col, True)
        np.divide(E, col, E)
        np.log(col, col2)
        np.subtract(ZL, col2, T)
        J = -np.vdot(Y, T) / X.shape[0]
        np.subtract(E, Y, E)
        np.multiply(E, self.scale, E)
        D = E
        for l in range(L - 1, -1, -1):
            A_prev = Z[l - 1] if l > 0 else X
            self._dW(D, A_prev, self.dW[l])
            np.add.reduce(D, 0, None, self.db[l])
            if l == 0:
                break
            dA_prev = dA[l - 1]
            np.dot(D, W[l], dA_prev)
            if hidden == "relu":
                np.multiply(dA_prev, M[l - 1], dA_prev)
            elif hidden == "tanh":  # 1 - A^2
                T2 = self.scratch[self.sizes[l]]
                np.square(Z[l - 1], T2)
                np.subtract(self.one, T2, T2)
                np.multiply(dA_prev, T2, dA_prev)
            else:
                T2 = M[l - 1]
                np.subtract(self.one, Z[l - 1], T2)
                np.multiply(T2, Z[l - 1], T2)
                np.multiply(dA_prev, T2, dA_prev)
            D = dA_prev
        np.subtract(self.theta, self.grad, self.theta)
        return J
