"""``example`` and ``explain`` on image networks, against an independent computation.

The oracle here knows nothing of the derivation: it runs the network forward from the spec's
layers (torch's conv2d cross-correlation with zero padding, max pooling whose ties go to the
first maximum in row-major order, average pooling, flatten in channel, row, column order, dense
layers) on dual numbers, so that every parameter's derivative of the cost is the exact derivative
of the concretely expanded network (forward-mode differentiation). A few checks compare it with
central differences too. The worked example's numbers come from the derived entry equations;
they must agree with the oracle to 30 digits.
"""
from __future__ import annotations

import itertools
import random
from fractions import Fraction

import mpmath
import pytest
import sympy as sp

from symbackprop.cli import main
from symbackprop.engine import derive
from symbackprop.spec import parse_arch
from symbackprop.teach.inputs import draw_parameters, parameters_from_mapping, parse_samples
from symbackprop.teach.worked import work_example

mpmath.mp.dps = 60
TOLERANCE = mpmath.mpf("1e-30")


# --- the oracle: dual numbers through the network's own definition ------------------------

class Dual:
    """value + derivative·ε with ε² = 0."""

    def __init__(self, value, derivative=0):
        self.v, self.d = mpmath.mpf(value), mpmath.mpf(derivative)

    @staticmethod
    def of(x):
        return x if isinstance(x, Dual) else Dual(x)

    def __add__(self, o):
        o = Dual.of(o)
        return Dual(self.v + o.v, self.d + o.d)

    __radd__ = __add__

    def __neg__(self):
        return Dual(-self.v, -self.d)

    def __sub__(self, o):
        return self + (-Dual.of(o))

    def __rsub__(self, o):
        return Dual.of(o) - self

    def __mul__(self, o):
        o = Dual.of(o)
        return Dual(self.v * o.v, self.d * o.v + self.v * o.d)

    __rmul__ = __mul__

    def __truediv__(self, o):
        o = Dual.of(o)
        return Dual(self.v / o.v, (self.d * o.v - self.v * o.d) / o.v ** 2)

    def __rtruediv__(self, o):
        return Dual.of(o) / self

    def __gt__(self, o):
        return self.v > Dual.of(o).v


def d_exp(z):
    e = mpmath.exp(z.v)
    return Dual(e, e * z.d)


def d_log(z):
    return Dual(mpmath.log(z.v), z.d / z.v)


def d_tanh(z):
    t = mpmath.tanh(z.v)
    return Dual(t, (1 - t * t) * z.d)


ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: z if z > 0 else Dual(0),
    "tanh": d_tanh,
    "sigmoid": lambda z: 1 / (1 + d_exp(-z)),
}


def softmax(column):
    exps = [d_exp(z) for z in column]
    total = sum(exps[1:], exps[0])
    return [e / total for e in exps]


LOSSES = {
    "half_sse": lambda a, y: sum(((p - q) * (p - q) for p, q in zip(a, y)), Dual(0)) / 2,
    "mse": lambda a, y: sum(((p - q) * (p - q) for p, q in zip(a, y)), Dual(0)) / len(a),
    "bce": lambda a, y: -sum((q * d_log(p) + (1 - q) * d_log(1 - p) for p, q in zip(a, y)),
                             Dual(0)),
    "cross_entropy": lambda a, y: -sum((q * d_log(p) for p, q in zip(a, y)), Dual(0)),
}


def conv(A, W, b, stride, padding):
    """Z[r][x][y] = b[r] + Σ_t Σ_μ Σ_ν W[r][t][μ][ν] A[t][s x+μ-p][s y+ν-p] (0 outside)."""
    C, H, Wd = len(A), len(A[0]), len(A[0][0])
    K = len(W[0][0])
    rows, cols = (H + 2 * padding - K) // stride + 1, (Wd + 2 * padding - K) // stride + 1

    def at(t, h, w):
        return A[t][h][w] if 0 <= h < H and 0 <= w < Wd else Dual(0)
    return [[[sum((W[r][t][mu][nu] * at(t, stride * x + mu - padding, stride * y + nu - padding)
                   for t in range(C) for mu in range(K) for nu in range(K)), b[r])
              for y in range(cols)] for x in range(rows)] for r in range(len(W))]


def pool(A, how, K, stride):
    rows, cols = (len(A[0]) - K) // stride + 1, (len(A[0][0]) - K) // stride + 1

    def window(c, x, y):
        return [A[c][stride * x + mu][stride * y + nu] for mu in range(K) for nu in range(K)]

    def first_max(values):
        best = values[0]
        for v in values[1:]:
            if v > best:  # noqa: PLR1730 - strictly larger: a tie keeps the first maximum
                best = v
        return best
    if how == "maxpool":
        return [[[first_max(window(c, x, y)) for y in range(cols)] for x in range(rows)]
                for c in range(len(A))]
    return [[[sum(window(c, x, y), Dual(0)) / (K * K) for y in range(cols)]
             for x in range(rows)] for c in range(len(A))]


def forward(arch, params, x):
    """The output column of one sample; ``params`` {label: (W, b)} as nested lists of Duals,
    ``x`` the sample's C·H·W numbers in channel, row, column order."""
    C, H, Wd = arch.image
    A = [[[Dual(x[c * H * Wd + h * Wd + w]) for w in range(Wd)] for h in range(H)]
         for c in range(C)]
    for label, f in enumerate(arch.features, start=1):
        if f.kind == "conv":
            W, b = params[label]
            A = [[[ACTIVATIONS[f.activation](z) for z in row] for row in chan]
                 for chan in conv(A, W, b, f.stride, f.padding)]
        elif f.kind in ("maxpool", "avgpool"):
            A = pool(A, f.kind, f.kernel, f.stride)
        else:
            A = [v for chan in A for row in chan for v in row]
    for label, act in zip(arch.dense_labels, arch.activations):
        W, b = params[label]
        Z = [sum((W[r][t] * A[t] for t in range(len(A))), b[r]) for r in range(len(b))]
        A = softmax(Z) if act == "softmax" else [ACTIVATIONS[act](z) for z in Z]
    return A


def cost(arch, params, X, Y):
    total = sum((LOSSES[arch.loss](forward(arch, params, x), y) for x, y in zip(X, Y)),
                Dual(0))
    if arch.l2:  # (λ/2) Σ_l ‖W^[l]‖², then the mean over the examples as for the losses
        lam = mpmath.mpf(arch.l2.numerator) / arch.l2.denominator
        for W, _ in params.values():
            for index in every_entry(_shape(W)):
                entry = _get(W, index)
                total = total + entry * entry * (lam / 2)
    return total / len(X)


def nested(value):
    """An exact matrix or array as nested lists of Duals."""
    rows = value.tolist()

    def wrap(v):
        return [wrap(u) for u in v] if isinstance(v, list) else Dual(_mp(v))
    return wrap(rows)


def _mp(value):
    value = sp.sympify(value)
    return mpmath.mpf(int(value.p)) / int(value.q)


def every_entry(shape):
    return itertools.product(*[range(n) for n in shape])


def oracle_gradients(arch, parameters, X, Y):
    """{(kind, label, index): ∂J/∂θ} for every weight and bias, by forward-mode derivatives."""
    base = {}
    for label in parameters.labels:
        W, b = parameters.of(label)
        base[label] = (nested(W), [v[0] if isinstance(v, list) else v for v in nested(b)])
    out = {}
    for label in parameters.labels:
        for kind, pos in (("W", 0), ("b", 1)):
            array = base[label][pos]
            shape = _shape(array)
            for index in every_entry(shape):
                entry = _get(array, index)
                entry.d = mpmath.mpf(1)
                out[(kind, label, index)] = cost(arch, base, X, Y).d
                entry.d = mpmath.mpf(0)
    return out


def _shape(nested_list):
    shape = []
    while isinstance(nested_list, list):
        shape.append(len(nested_list))
        nested_list = nested_list[0]
    return tuple(shape)


def _get(nested_list, index):
    for i in index:
        nested_list = nested_list[i]
    return nested_list


def samples_of(arch, X, Y):
    def text(rows):
        return "; ".join(", ".join(str(v) for v in row) for row in rows)
    C, H, W = arch.image
    return parse_samples(text(X), text(Y), C * H * W, arch.sizes[-1], arch.image)


def random_inputs(arch, m, seed):
    rng = random.Random(seed)
    C, H, W = arch.image
    X = [[Fraction(rng.randint(-24, 24), 8) for _ in range(C * H * W)] for _ in range(m)]
    n = arch.sizes[-1]
    if arch.loss == "cross_entropy":
        Y = [[Fraction(1 if c == k % n else 0) for c in range(n)] for k in range(m)]
    elif arch.loss == "bce":
        Y = [[Fraction(rng.randint(0, 4), 4) for _ in range(n)] for _ in range(m)]
    else:
        Y = [[Fraction(rng.randint(-8, 8), 4) for _ in range(n)] for _ in range(m)]
    return X, Y


def _value(worked, kind, label, index):
    value = worked.value_of(f"d{kind}[{label}]")
    if isinstance(value, sp.MatrixBase) and len(index) == 1:
        index = (index[0], 0)
    return value[index]


def assert_worked_matches_oracle(worked, arch, X, Y):
    oracle = oracle_gradients(arch, worked.parameters, [[_mp(v) for v in x] for x in X],
                              [[_mp(v) for v in y] for y in Y])
    assert oracle
    for (kind, label, index), expected in oracle.items():
        derived = mpmath.mpf(sp.Float(_value(worked, kind, label, index), 60)._mpf_)
        assert abs(derived - expected) < TOLERANCE, (kind, label, index, derived, expected)
    return oracle


# The table of small nets: padding, stride, both poolings, overlapping windows, two convolutions,
# two input channels, every output kind.
NETS = [
    ("1x3x3-conv1k2:relu-flatten-1:sigmoid", "bce", 1),
    ("1x4x4-conv2k3p1:tanh-flatten-2:identity", "mse", 2),
    ("1x5x5-conv1k3s2:sigmoid-flatten-1:sigmoid", "bce", 1),
    ("1x5x5-conv2k3s2p1:relu-flatten-2:identity", "half_sse", 2),
    ("1x4x4-conv2k2:relu-maxpool2-flatten-2:softmax", "cross_entropy", 2),
    ("1x4x4-conv1k2p1:tanh-maxpool2s1-flatten-1:identity", "mse", 1),
    ("1x4x4-conv2k2:tanh-avgpool2s1-flatten-2:softmax", "cross_entropy", 2),
    ("2x4x4-conv2k2:tanh-conv1k2s1:relu-flatten-2:identity", "mse", 2),
    ("1x4x4-avgpool2-conv1k2:sigmoid-flatten-1:identity", "half_sse", 1),
]


@pytest.mark.parametrize("spec,loss,m", NETS, ids=[n[0] for n in NETS])
def test_worked_gradients_are_the_derivatives_of_the_network(spec, loss, m):
    arch = parse_arch(spec, loss)
    X, Y = random_inputs(arch, m, seed=len(spec))
    parameters = draw_parameters(7, arch)
    worked = work_example(derive(arch), parameters, samples_of(arch, X, Y), sp.Rational(1, 10))
    oracle = assert_worked_matches_oracle(worked, arch, X, Y)
    # the update is W - α dW, entry by entry
    for (kind, label, index), gradient in oracle.items():
        W, b = parameters.of(label)
        before = (W if kind == "W" else b)
        key = (index[0], 0) if isinstance(before, sp.MatrixBase) and len(index) == 1 else index
        after = worked.updated_value(f"{kind}[{label}]")[key]
        step = _mp(before[key]) - gradient / 10
        assert abs(mpmath.mpf(sp.Float(after, 60)._mpf_) - step) < TOLERANCE


@pytest.mark.parametrize("spec,loss,m", [NETS[2], NETS[4], NETS[7]], ids=[NETS[2][0], NETS[4][0],
                                                                          NETS[7][0]])
def test_worked_gradients_with_an_l2_penalty(spec, loss, m):
    """With --l2, conv kernels and dense weights carry the penalty's derivative (λ/m) W."""
    arch = parse_arch(spec, loss, l2="0.5")
    X, Y = random_inputs(arch, m, seed=len(spec))
    parameters = draw_parameters(7, arch)
    worked = work_example(derive(arch), parameters, samples_of(arch, X, Y), sp.Rational(1, 10))
    assert_worked_matches_oracle(worked, arch, X, Y)
    base = {}
    for label in parameters.labels:
        W, b = parameters.of(label)
        base[label] = (nested(W), [v[0] if isinstance(v, list) else v for v in nested(b)])
    expected = cost(arch, base, [[_mp(v) for v in x] for x in X],
                    [[_mp(v) for v in y] for y in Y]).v
    assert abs(mpmath.mpf(sp.Float(worked.cost, 60)._mpf_) - expected) < TOLERANCE


def test_the_oracle_agrees_with_central_differences():
    """The dual numbers themselves, checked once against differences of the cost."""
    arch = parse_arch("1x4x4-conv2k3p1:tanh-avgpool2-flatten-2:sigmoid", "bce")
    X, Y = random_inputs(arch, 2, seed=3)
    parameters = draw_parameters(5, arch)
    Xm = [[_mp(v) for v in x] for x in X]
    Ym = [[_mp(v) for v in y] for y in Y]
    oracle = oracle_gradients(arch, parameters, Xm, Ym)
    h = mpmath.mpf("1e-25")
    base = {label: (nested(parameters.of(label)[0]),
                    [v[0] if isinstance(v, list) else v for v in nested(parameters.of(label)[1])])
            for label in parameters.labels}
    for kind, label, index in [("W", 1, (1, 0, 2, 1)), ("b", 1, (0,)), ("W", 4, (1, 3))]:
        entry = _get(base[label][0 if kind == "W" else 1], index)
        entry.v += h
        up = cost(arch, base, Xm, Ym).v
        entry.v -= 2 * h
        down = cost(arch, base, Xm, Ym).v
        entry.v += h
        assert abs((up - down) / (2 * h) - oracle[(kind, label, index)]) < mpmath.mpf("1e-20")


def test_max_pooling_ties_go_to_the_first_maximum():
    """Two channels through a 1x1 convolution make equal maxima from unequal inputs: which
    entry of a tied window receives the gradient changes dW, and the first one does."""
    arch = parse_arch("2x2x2-conv1k1-maxpool2-flatten-1:identity", "half_sse")
    weights = {"W1": [1, 1], "b1": [0], "W4": [[2]], "b4": [0]}
    parameters = parameters_from_mapping(weights, arch, "weights")
    # channel 0 = [[1, 0], [0, 0]], channel 1 = [[0, 1], [0, 0]]: A[1] = [[1, 1], [0, 0]], a tie
    X, Y = [[1, 0, 0, 0, 0, 1, 0, 0]], [[Fraction(1, 2)]]
    worked = work_example(derive(arch), parameters, samples_of(arch, X, Y), sp.Rational(1, 10))
    M = worked.value_of("M[2]")
    assert [M[0, 0, 0, 0, mu, nu] for mu in range(2) for nu in range(2)] == [1, 0, 0, 0]
    assert_worked_matches_oracle(worked, arch, X, Y)
    # dZ[4] = 2·1 - 1/2 = 3/2, dA[3] = 3; the first maximum (row 0, column 0) takes it, so
    # dW[1] = (3 · x_0[0,0], 3 · x_1[0,0]) = (3, 0), not (0, 3) as the tie's other entry gives
    dW = worked.value_of("dW[1]")
    assert [dW[0, c, 0, 0] for c in range(2)] == [3, 0]


def test_the_command_prints_maps_and_every_gradient(capsys):
    argv = ["example", "1x3x3-conv1k2:relu-flatten-1:sigmoid", "--loss", "bce", "--init", "0",
            "--x", "1 2 0  -1 0.5 1  0 1 -2", "--y", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for line in ("  W[1][0,0,:,:] = [  0.1   0.1 ]", "  Z[1][0,0,:,:] = [  0.75  -0.15 ]",
                 "  A[2][4 c + 2 h + w, k] = A[1][k,c,h,w]", "  dW[1][0,0,:,:] ≈ [ -0.133196"):
        assert line in out, line
    for heading in ("Forward pass", "layer 1: conv1k2:relu", "layer 2: flatten", "Cost",
                    "Backward pass, output layer first", "Update"):
        assert heading in out


# --- explain: the paths of a shared weight ---------------------------------------------------

def _point_value(worked, entry):
    """The number of an entry of the example's arrays (m = 1), from the worked forward pass."""
    from sympy.matrices.expressions.matexpr import MatrixElement

    if isinstance(entry, MatrixElement):
        return worked.value_of(entry.parent.name)[tuple(int(i) for i in entry.indices)]
    return worked.value_of(str(entry.base.label))[tuple(int(i) for i in entry.indices)]


def _at_point(worked, expr):
    from sympy.matrices.expressions.matexpr import MatrixElement

    from symbackprop.teach.concrete import expand_sums

    expr = expand_sums(expr)
    atoms = expr.atoms(sp.Indexed) | expr.atoms(MatrixElement)
    value = expr.xreplace({a: _point_value(worked, a) for a in atoms})
    return mpmath.mpf(sp.Float(sp.N(value, 60), 60)._mpf_)


def _some_parameters(arch):
    """A few parameters of every kind: the first and last kernel entry of the first
    convolution, its first bias, and one weight of the dense head."""
    from symbackprop.teach.inputs import parameter_shapes

    shapes = parameter_shapes(arch)
    out = []
    for label, (w_shape, b_shape, _) in shapes.items():
        if len(w_shape) == 4 and not out:
            first, last = [0] * 4, [n - 1 for n in w_shape]
            out += [f"W{label}[{','.join(map(str, first))}]",
                    f"W{label}[{','.join(map(str, last))}]", f"b{label}[{b_shape[0] - 1}]"]
    label = arch.depth
    out.append(f"W{label}[0,{arch.size(label - 1) - 1}]")
    return out


@pytest.mark.parametrize("spec,loss,m", NETS, ids=[n[0] for n in NETS])
def test_path_sum_is_the_gradient_and_backprop_is_that_sum(spec, loss, m):
    from symbackprop.teach.paths import explain, parse_parameter

    arch = parse_arch(spec, loss)
    d = derive(arch)
    X, Y = random_inputs(arch, 1, seed=len(spec) + 1)
    parameters = draw_parameters(11, arch)
    worked = work_example(d, parameters, samples_of(arch, X, Y), sp.Rational(1, 10))
    oracle = oracle_gradients(arch, parameters, [[_mp(v) for v in X[0]]],
                              [[_mp(v) for v in Y[0]]])
    for text in _some_parameters(arch):
        p = parse_parameter(text, arch)
        e = explain(d, p)
        assert e.agrees is True, text  # the path sum is backpropagation, expanded
        assert len(list(_all_paths(e))) == e.path_count == sum(e.per_use)
        expected = oracle[(p.kind, p.layer, p.indices)]
        paths = sum(_at_point(worked, path.product) for path in _all_paths(e))
        assert abs(paths - expected) < TOLERANCE, (text, paths, expected)
        # backpropagation's entry, its errors from the worked backward pass
        assert abs(_at_point(worked, e.expanded) - expected) < TOLERANCE, text


def _all_paths(e):
    from symbackprop.teach.graph import Graph, _paths

    return _paths(Graph(e.derivation), e.theta, e.uses)


def test_one_path_per_position_the_weight_touches():
    from symbackprop.teach.paths import explain, parse_parameter

    # 1x5x5 input, 3x3 kernel, stride 2, padding 1: a 3x3 output; kernel row u reads input row
    # 2x + u - 1, so u = 0 misses row -1 at x = 0: 2 rows (x = 1, 2) for u = 0, 3 for u = 1
    arch = parse_arch("1x5x5-conv1k3s2p1:relu-flatten-1:identity", "half_sse")
    d = derive(arch)
    for text, rows, cols in [("W1[0,0,0,0]", 2, 2), ("W1[0,0,1,0]", 3, 2),
                             ("W1[0,0,1,1]", 3, 3), ("W1[0,0,2,2]", 2, 2), ("b1[0]", 3, 3)]:
        e = explain(d, parse_parameter(text, arch))
        assert len(e.uses) == rows * cols == e.path_count, text  # one dense output unit
        assert [len(axis.values) for axis in e.axes] == [rows, cols]
        assert e.agrees is True


def test_every_path_of_two_convolutions_and_a_pool_is_counted():
    from symbackprop.teach.paths import explain, parse_parameter

    arch = parse_arch("1x4x4-conv1k2:tanh-conv2k2:identity-avgpool2s1-flatten-2:identity", "mse")
    e = explain(derive(arch), parse_parameter("W1[0,0,0,0]", arch))
    # Z[1] is 3x3; each of its entries reaches the 2x2 output windows of conv 2 that cover
    # it (1, 2 or 4 of them) in each of 2 channels; each entry of that 2x2 map is in the one
    # 2x2 pooling window; then 2 dense units
    covering = [1, 2, 1, 2, 4, 2, 1, 2, 1]
    assert list(e.per_use) == [c * 2 * 1 * 2 for c in covering]
    assert e.path_count == 64 and len(e.paths) == 5 and e.path_sum is None
    assert e.agrees is True


def test_counting_on_the_graph_is_the_dense_formula_on_dense_networks():
    from symbackprop.teach.graph import Graph
    from symbackprop.teach.paths import multiplications_by_backprop, multiplications_by_paths

    for spec, loss in [("2-3-2-1", "half_sse"), ("2-2:tanh-3:softmax", "cross_entropy")]:
        d = derive(parse_arch(spec, loss))
        counts = Graph(d).counts(None)
        assert (counts.by_paths, counts.by_backprop) == \
            (multiplications_by_paths(d), multiplications_by_backprop(d))


def test_random_points_tell_equal_from_unequal():
    from symbackprop.teach.graph import _equal_at_random_points

    A = sp.IndexedBase("A[1]", shape=(1, 1, 2, 2))
    a, b = A[0, 0, 0, 0], A[0, 0, 1, 1]
    assert _equal_at_random_points(sp.exp(a + b) - sp.exp(a) * sp.exp(b))
    assert not _equal_at_random_points(sp.exp(a + b) - sp.exp(a) - sp.exp(b))


EXPLAIN = ["explain", "1x3x3-conv1k2:relu-flatten-1:sigmoid", "--loss", "bce",
           "--param", "W1[0,0,0,0]"]


def test_explain_text_shows_positions_paths_sum_and_correlation(capsys):
    assert main(EXPLAIN) == 0
    out = capsys.readouterr().out
    for line in (
            "2. Weight sharing: W[1][0,0,0,0] is used at 4 positions of Z[1]",
            "3. Paths from W[1][0,0,0,0] to L: 4, each a product of 6 local derivatives",
            "  4 = 4 positions × 1 path from each",
            "  ∂Z[1][0,1,1]/∂W[1][0,0,0,0] = A[0][0,1,1]",
            "  path 4: W[1][0,0,0,0] → Z[1][0,1,1] → A[1][0,1,1] → A[2][3] → Z[3][0] → A[3][0] → L",
            "  ∂L/∂W[1][0,0,0,0] = Σ[y=0..1] Σ[x=0..1] dZ[1][0,x,y] A[0][0,x,y]    [BP1]",
            ("  dW[1][r,c,u,v] = (1/m) Σ[y=0..n_W[1] - 1] Σ[x=0..n_H[1] - 1] Σ[i=0..m - 1] "
             "dZ[1][i,r,x,y] A[0][i, c, s[1] x + u - p[1], s[1] y + v - p[1]]    [BP1]"),
            ("  Substituting the cached values gives the sum over paths again: their "
             "difference expands to 0.")):
        assert line in out, line


@pytest.mark.parametrize("param,message", [
    ("W1[0,0]", ("'W1[0,0]': a kernel needs four indices, [r,c,u,v] (out channel, in channel, "
                "kernel row, kernel column), e.g. W1[0,0,0,0]; W1 has shape (1, 1, 2, 2) = "
                "(n_C[1], n_C[0], f[1], f[1])")),
    ("W1[0,0,2,0]", ("'W1[0,0,2,0]' is out of range: W1 has shape (1, 1, 2, 2) = (n_C[1], "
                    "n_C[0], f[1], f[1]), so the indices are in 0..0, 0..0, 0..1, 0..1")),
    ("b1[1]", ("'b1[1]' is out of range: b1 has shape (1,) = (n_C[1],), so the indices are in "
              "0..0")),
    ("b1[0,0]", ("'b1[0,0]': a bias needs one index, e.g. b1[0]; b1 has shape (1,) = (n_C[1],)")),
    ("W2[0,0]", ("'W2[0,0]': layer 2 (flatten) has no parameters; this network's layers with "
                "parameters are 1, 3")),
    ("W3[0,0,0,0]", ("'W3[0,0,0,0]': a weight needs a row and a column, e.g. W3[0,0]; W3 has "
                    "shape (1, 4) = (n_3, n_2)")),
])
def test_explain_refuses_a_wrong_parameter_in_one_line(capsys, param, message):
    assert main([*EXPLAIN[:-1], param]) == 2
    err = capsys.readouterr().err
    assert err == f"symbackprop explain: error: {message}\n"


def test_example_refuses_inputs_of_the_wrong_size_in_one_line(capsys):
    argv = ["example", "1x3x3-conv1k2:relu-flatten-1:sigmoid", "--loss", "bce", "--init", "0",
            "--x", "1 2 3", "--y", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sample 1 has 3 number(s), but the input image 1x3x3 " \
        "(C·H·W numbers in channel, row, column order) needs 9" in err


def test_weights_file_takes_kernels_nested_or_flat(tmp_path):
    arch = parse_arch("1x3x3-conv2k2:relu-flatten-1:sigmoid", "bce")
    nested = {"W1": [[[[1, 2], [3, 4]]], [[[5, 6], [7, 8]]]], "b1": [0, 1],
              "W3": [[1] * 8], "b3": [0]}
    flat = {**nested, "W1": list(range(1, 9))}
    one = parameters_from_mapping(nested, arch, "a.json")
    two = parameters_from_mapping(flat, arch, "b.json")
    assert one.of(1)[0] == two.of(1)[0] and one.of(1)[0][1, 0, 0, 1] == 6
    from symbackprop.teach.inputs import InputError

    message = r"'W1' must hold 8 numbers: W1 has shape \(2, 1, 2, 2\) = \(n_C\[1\], n_C\[0\]"
    with pytest.raises(InputError, match=message):
        parameters_from_mapping({**nested, "W1": [1, 2, 3]}, arch, "c.json")


FORMATS_CASES = [
    EXPLAIN,
    ["explain", "1x4x4-conv2k2:relu-maxpool2-flatten-2:softmax", "--loss", "cross_entropy",
     "--param", "b1[1]"],
    ["example", "1x3x3-conv1k2:relu-flatten-1:sigmoid", "--loss", "bce", "--init", "0",
     "--x", "1 2 0  -1 0.5 1  0 1 -2", "--y", "1"],
    ["example", "1x4x4-conv2k2s2p1:tanh-maxpool2s1-flatten-2:softmax", "--loss",
     "cross_entropy", "--init", "3", "--x",
     "1 2 0 1 -1 0.5 1 2 0 1 -2 1 1 1 1 0; 0 0 1 2 3 1 1 1 0 0 2 1 1 -1 1 0", "--y", "1 0; 0 1"],
]


@pytest.mark.parametrize("argv", FORMATS_CASES, ids=[" ".join(a[:2]) + " " + a[-1]
                                                     for a in FORMATS_CASES])
def test_every_format_carries_the_same_numbers_and_latex_compiles(tmp_path, capsys, argv):
    import re
    import shutil
    import subprocess

    outputs = {}
    for fmt in ("text", "markdown", "latex"):
        assert main([*argv, "--format", fmt, *(["--standalone"] if fmt == "latex" else [])]) == 0
        outputs[fmt] = capsys.readouterr().out
    md, tex = outputs["markdown"], outputs["latex"]
    assert md.count("$$") % 2 == 0 and md.count("$$") >= 4
    for block in re.findall(r"\$\$(.*?)\$\$", md, flags=re.DOTALL):
        assert block.count("{") == block.count("}"), block
        assert "\n\n" not in block.strip()
    outside = re.sub(r"\$\$.*?\$\$", "", md, flags=re.DOTALL)
    assert all(line.count("$") % 2 == 0 for line in outside.splitlines())
    for number in set(re.findall(r"(?<![\w\[.])-?\d+\.\d+(?!\w)", outputs["text"])):
        assert number in tex and number in md, number
    if shutil.which("pdflatex") is None:
        return
    (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "Undefined control sequence" not in log and "Missing $" not in log


def test_output_is_the_same_under_any_hash_seed():
    import os
    import subprocess
    import sys

    outs = set()
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run([sys.executable, "-m", "symbackprop", *FORMATS_CASES[1]],
                                capture_output=True, env=env, check=True)
        outs.add(result.stdout)
    assert len(outs) == 1
