"""``symbackprop explain``: the sum over paths is the gradient, and backprop is that sum cached."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from symbackprop import naming as N
from symbackprop.cli import main
from symbackprop.engine import derive
from symbackprop.spec import parse_arch
from symbackprop.teach.paths import (
    Parameter,
    explain,
    multiplications_by_backprop,
    multiplications_by_paths,
    parse_parameter,
)


def every_parameter(sizes):
    for l in range(1, len(sizes)):
        for r, c in itertools.product(range(sizes[l]), range(sizes[l - 1])):
            yield Parameter("W", l, r, c)
        for r in range(sizes[l]):
            yield Parameter("b", l, r, None)


# An independent forward pass in NumPy, and central differences of its loss -----------------

ACT = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
       "relu": lambda z: np.where(z > 0, z, 0.0), "identity": lambda z: z,
       "softmax": lambda z: np.exp(z) / np.exp(z).sum(),
       "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z), "softplus": lambda z: np.log1p(np.exp(z))}
LOSS = {"half_sse": lambda a, y: 0.5 * np.sum((a - y) ** 2),
        "mse": lambda a, y: np.sum((a - y) ** 2) / len(a),
        "cross_entropy": lambda a, y: -np.sum(y * np.log(a)),
        "bce": lambda a, y: -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a))}


def forward(W, b, x, acts):
    Zs, As = [], [x]
    for Wl, bl, g in zip(W, b, acts):
        Zs.append(Wl @ As[-1] + bl)
        As.append(ACT[g](Zs[-1]))
    return Zs, As


def numeric_gradient(W, b, x, y, acts, loss, p: Parameter, h=1e-6):
    def at(delta):
        W2, b2 = [M.copy() for M in W], [v.copy() for v in b]
        if p.kind == "W":
            W2[p.layer - 1][p.row, p.col] += delta
        else:
            b2[p.layer - 1][p.row] += delta
        return LOSS[loss](forward(W2, b2, x, acts)[1][-1], y)
    return (at(h) - at(-h)) / (2 * h)


def values_of(e, W, b, x, y, Zs, As):
    """Numbers for every symbol a path product can contain."""
    values = {}
    for expr in [e.path_sum if e.path_sum is not None else e.closed_form.doit(), e.gradient]:
        for elem in {s for s in sp.preorder_traversal(expr) if isinstance(s, MatrixElement)}:
            kind, label = elem.parent.name.rstrip("]").split("[") if "[" in elem.parent.name \
                else (elem.parent.name, None)
            row, col = int(elem.indices[0]), int(elem.indices[1])
            if kind == "Y":
                values[elem] = y[row]
                continue
            l = int(label)
            values[elem] = {"W": lambda: W[l - 1][row, col], "b": lambda: b[l - 1][row],  # noqa: B023
                            "Z": lambda: Zs[l - 1][row], "A": lambda: As[l][row]}[kind]()  # noqa: B023
    return values


@pytest.mark.parametrize("spec,loss", [("2-3-2-1", "half_sse"),
                                       ("2-3:tanh-3:softmax", "cross_entropy"),
                                       ("2-3:relu-2:identity", "mse"),
                                       ("2-2:leaky_relu-2:softplus-1:sigmoid", "bce")])
def test_path_sum_equals_backprop_exactly_and_central_differences(spec, loss):
    arch = parse_arch(spec, loss)
    d = derive(arch)
    rng = np.random.default_rng(0)
    W = [rng.normal(0, 0.8, (arch.sizes[l], arch.sizes[l - 1])) for l in range(1, len(arch.sizes))]
    b = [rng.normal(0, 0.5, arch.sizes[l]) for l in range(1, len(arch.sizes))]
    x = rng.normal(0, 1, arch.sizes[0])
    y = {"cross_entropy": rng.dirichlet(np.ones(arch.sizes[-1])),
         "bce": rng.uniform(0, 1, arch.sizes[-1])}.get(loss, rng.normal(0, 1, arch.sizes[-1]))
    Zs, As = forward(W, b, x, arch.activations)
    checked = 0
    for p in every_parameter(arch.sizes):
        e = explain(d, p)
        assert e.all_shown and e.agrees is True, p  # expanded symbolically: difference is 0
        assert sp.expand(e.path_sum - e.gradient) == 0, p  # exact, independently of agrees
        values = values_of(e, W, b, x, y, Zs, As)
        by_paths = float(e.path_sum.xreplace(values))
        by_backprop = float(e.gradient.xreplace(values))
        numeric = numeric_gradient(W, b, x, y, arch.activations, loss, p)
        assert by_paths == pytest.approx(numeric, abs=1e-7), p
        assert by_backprop == pytest.approx(by_paths, abs=1e-12), p
        checked += 1
    assert checked == sum(arch.sizes[l] * (arch.sizes[l - 1] + 1)
                          for l in range(1, len(arch.sizes)))


def test_edges_are_the_textbook_local_derivatives():
    d = derive(parse_arch("2-3-2-1"))
    e = explain(d, parse_parameter("W1[2,1]", d.arch.sizes))
    kinds = [edge.kind for edge in e.edges]
    assert kinds == ["parameter", "activation", "weight", "activation", "weight", "activation",
                     "loss"]
    first = e.edges[0]
    assert str(first.derivative) == "A[0][1, 0]"  # ∂Z/∂W = A of the layer before
    assert str(e.edges[1].derivative) in ("(1 - A[1][2, 0])*A[1][2, 0]",
                                          "A[1][2, 0]*(1 - A[1][2, 0])")  # σ' = A(1 - A)
    assert str(e.edges[2].derivative) == "W[2][u_2, 2]"  # ∂Z^[2]/∂A^[1] = W^[2]
    # one output unit: no index runs over it (a sum over one value is its term)
    assert str(e.edges[-1].derivative) == "A[3][0, 0] - Y[0, 0]"
    assert e.path_count == 2 * 1 and len(e.paths) == 2
    assert [str(n) for n in e.paths[1].nodes] == [
        "W[1][2, 1]", "Z[1][2, 0]", "A[1][2, 0]", "Z[2][1, 0]", "A[2][1, 0]", "Z[3][0, 0]",
        "A[3][0, 0]", "L"]
    lhs, rhs = e.entry
    assert str(lhs) == "dW[1][2, 1]" and str(rhs) == "Sum(A[0][1, i]*dZ[1][2, i], (i, 0, m - 1))/m"


def test_softmax_couples_every_output_unit_through_its_jacobian():
    d = derive(parse_arch("2-3:tanh-3:softmax", "cross_entropy"))
    e = explain(d, parse_parameter("W2[1,0]", d.arch.sizes))
    # Z^[2]_1 reaches all three outputs: three paths, one per A^[2]_c
    assert e.path_count == 3
    nodes = [tuple(str(n) for n in path.nodes[1:3]) for path in e.paths]
    assert nodes == [("Z[2][1, 0]", f"A[2][{c}, 0]") for c in range(3)]
    jacobian = [str(path.factors[1]) for path in e.paths]
    assert jacobian[0] == "-A[2][0, 0]*A[2][1, 0]"  # ∂A_0/∂Z_1 = -A_0 A_1
    assert jacobian[1] == "-A[2][1, 0]**2 + A[2][1, 0]"  # ∂A_1/∂Z_1 = A_1(1 - A_1)
    assert jacobian[2] == "-A[2][1, 0]*A[2][2, 0]"
    # the derivation's output error A - Y needs the targets to sum to 1: said, not hidden
    assert e.targets_sum_to_one
    cached = {s.rule: s for s in e.cached}
    assert str(cached["BP4"].simplified) != str(cached["BP4"].rhs)


def test_relu_edge_is_zero_at_the_kink():
    d = derive(parse_arch("2-2:relu-1:identity", "half_sse"))
    e = explain(d, parse_parameter("W1[0,0]", d.arch.sizes))
    slope = e.edges[1].derivative
    Z = e.edges[1].source
    assert slope.xreplace({Z: 0}) == 0 and slope.xreplace({Z: sp.Rational(1, 10)}) == 1


def test_many_paths_show_a_few_and_keep_the_exact_closed_form(capsys):
    d = derive(parse_arch("3-6-5-4-2"))
    e = explain(d, parse_parameter("W1[0,2]", d.arch.sizes))
    assert e.path_count == 5 * 4 * 2 == 40
    assert len(e.paths) == 5 and e.path_sum is None and not e.all_shown
    assert e.agrees is True  # the 40 paths were still summed and expanded for the check
    # the closed form, summed out, is exactly backpropagation's value
    assert isinstance(e.closed_form, sp.Sum)
    assert sp.expand(e.closed_form.doit() - e.gradient) == 0
    assert main(["explain", "3-6-5-4-2", "--param", "W1[0,2]"]) == 0
    out = capsys.readouterr().out
    assert "Paths from W[1][0,2] to L: 40" in out
    assert "path 5:" in out and "path 6:" not in out and "... and 35 more paths." in out
    assert "In closed form" in out and "Σ[u_4=0..1] Σ[u_3=0..3] Σ[u_2=0..4]" in out


def test_multiplication_counts_by_hand_and_by_enumeration():
    d = derive(parse_arch("2-3-1"))
    # paths: layer 2, 3 weights x 2 + 1 bias x 1; layer 1, 6 weights x 4 + 3 biases x 3
    assert multiplications_by_paths(d) == 6 + 1 + 24 + 9 == 40
    # backprop: dZ2 1, dW2 3, dA1 3, dZ1 3, dW1 6
    assert multiplications_by_backprop(d) == 16
    for spec, loss in [("2-3-2-1", "half_sse"), ("2-2:tanh-3:softmax", "cross_entropy")]:
        d = derive(parse_arch(spec, loss))
        enumerated = 0
        for p in every_parameter(d.arch.sizes):
            e = explain(d, p)
            assert e.all_shown
            enumerated += sum(len(path.factors) - 1 - (p.kind == "b") for path in e.paths)
        assert enumerated == multiplications_by_paths(d)
    assert multiplications_by_backprop(derive(parse_arch("784-128:relu-10:softmax",
                                                         "cross_entropy"))) == \
        10 * 10 + 10 * 128 + 10 * 128 + 128 + 128 * 784


def test_text_output_walks_through_all_five_parts(capsys):
    assert main(["explain", "2-3-2-1", "--param", "W2[1,2]"]) == 0
    out = capsys.readouterr().out
    for heading in ("1. The computation graph", "2. Paths from W[2][1,2] to L: 1",
                    "3. The sum over paths", "4. Backpropagation", "5. Cost"):
        assert heading in out
    assert "∂Z[2][1]/∂W[2][1,2] = A[1][2]" in out
    assert "dZ[2][1] = dA[2][1] A[2][1] (1 - A[2][1])    [BP4]" in out
    assert "dW[2][1,2] = (1/m) Σ[i=0..m - 1] dZ[2][1,i] A[1][2,i]    [BP1]" in out
    assert "their difference expands to 0" in out
    assert "path by path (each path of k factors takes k - 1): 137" in out
    assert "by backpropagation (dZ ⊙ g', Wᵀ dZ and dZ Aᵀ, every layer once): 28" in out


@pytest.mark.parametrize("param,expected", [
    ("W3[0,0]", "no layer 3; this network's layers with parameters are 1..2"),
    ("W0[0,0]", "no layer 0"),
    ("W2[0,3]", "W2 has shape (1, 3) = (n_2, n_1), so the row is in 0..0 and the column in 0..2"),
    ("W1[3,0]", "W1 has shape (3, 2) = (n_1, n_0), so the row is in 0..2 and the column in 0..1"),
    ("b1[3]", "b1 has 3 entries (n_1 = 3), so the index is in 0..2"),
    ("b1[0,0]", "a bias has one index"),
    ("W1[0]", "a weight needs a row and a column"),
    ("V1[0,0]", "write W<l>[row,col] or b<l>[row] with layer l in 1..2"),
    ("W1[-1,0]", "cannot read parameter"),
])
def test_bad_parameters_exit_2_naming_the_valid_range(capsys, param, expected):
    code = main(["explain", "2-3-1", "--param", param])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert expected in captured.err and len(captured.err.strip().splitlines()) == 1


def test_param_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "2-3-1"])
    assert exit_info.value.code == 2


def test_beyond_the_check_limit_the_output_says_the_sum_was_not_expanded(capsys):
    d = derive(parse_arch("2-3-30-20-1"))
    e = explain(d, parse_parameter("b1[0]", d.arch.sizes))
    assert e.path_count == 30 * 20 == 600
    assert e.agrees is None and e.gradient is None and len(e.paths) == 5
    assert main(["explain", "2-3-30-20-1", "--param", "b1[0]"]) == 0
    out = capsys.readouterr().out
    assert "Too many paths to expand the sum here" in out and "expands to 0" not in out
    assert "... and 595 more paths." in out


# --- the L2 penalty: a weight reaches J directly ----------------------------------------------

@pytest.mark.parametrize("spec,loss", [("2-3:relu-2:identity", "mse"), ("2-2:tanh-2-1", "half_sse")])
def test_with_l2_paths_plus_the_penalty_edge_equal_central_differences_of_the_cost(spec, loss):
    lam = 0.3
    arch = parse_arch(spec, loss, l2="0.3")
    d = derive(arch)
    rng = np.random.default_rng(1)
    W = [rng.normal(0, 0.8, (arch.sizes[l], arch.sizes[l - 1])) for l in range(1, len(arch.sizes))]
    b = [rng.normal(0, 0.5, arch.sizes[l]) for l in range(1, len(arch.sizes))]
    x, y = rng.normal(0, 1, arch.sizes[0]), rng.normal(0, 1, arch.sizes[-1])
    Zs, As = forward(W, b, x, arch.activations)

    def cost(W2, b2):  # one example: J = L + (λ/2) Σ_l ‖W^[l]‖²
        return LOSS[loss](forward(W2, b2, x, arch.activations)[1][-1], y) + \
            lam / 2 * sum(np.sum(M ** 2) for M in W2)

    for p in every_parameter(arch.sizes):
        e = explain(d, p)
        assert e.agrees is True and e.penalised, p
        values = values_of(e, W, b, x, y, Zs, As)
        values[N.lam] = lam
        direct = 0.0
        if p.kind == "W":
            assert e.penalty_edge.derivative == N.lam * e.theta  # (λ/m) W with m = 1
            values[e.theta] = W[p.layer - 1][p.row, p.col]
            direct = float(e.penalty_edge.derivative.xreplace(values))
        else:
            assert e.penalty_edge is None  # biases are not penalised
        h = 1e-6
        W_up, W_down = [M.copy() for M in W], [M.copy() for M in W]
        b_up, b_down = [v.copy() for v in b], [v.copy() for v in b]
        if p.kind == "W":
            W_up[p.layer - 1][p.row, p.col] += h
            W_down[p.layer - 1][p.row, p.col] -= h
        else:
            b_up[p.layer - 1][p.row] += h
            b_down[p.layer - 1][p.row] -= h
        numeric = (cost(W_up, b_up) - cost(W_down, b_down)) / (2 * h)
        assert float(e.path_sum.xreplace(values)) + direct == pytest.approx(numeric, abs=1e-7), p


def test_l2_explain_shows_the_penalty_edge_and_splits_bp1(capsys):
    assert main(["explain", "2-2:relu-1:identity", "--loss", "mse", "--param", "W1[0,1]",
                 "--l2", "0.1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The gradient of the cost with respect to W[1][0,1]")
    assert "  J = L + (λ/2) Σ[t=0..1] Σ[j=0..1] W[1][j,t]² + (λ/2) Σ[t=0..1] Σ[j=0..0] W[2][j,t]²" \
        in out
    assert "∂J/∂W[1][0,1] = λ W[1][0,1]    (the L2 penalty's derivative: the weight reaches J " \
        "directly)" in out
    assert "and the penalty's one edge straight from W[1][0,1] to J." in out
    assert "  ∂J/∂W[1][0,1] = ∂L/∂W[1][0,1] + λ W[1][0,1]\n" in out
    # the path sum is ∂L/∂θ: backpropagation's loss part, then BP1 with the penalty
    assert "  ∂L/∂W[1][0,1] = dZ[1][0] A[0][1]    [BP1]" in out
    assert "  ∂J/∂W[1][0,1] = λ W[1][0,1] + dZ[1][0] A[0][1]    [penalty]" in out
    assert "dW[1][0,1] = (λ/m) W[1][0,1] + (1/m) Σ[i=0..m - 1] dZ[1][0,i] A[0][1,i]    [BP1]" in out
    assert "their difference expands to 0" in out


def test_l2_explain_of_a_bias_says_biases_are_not_penalised(capsys):
    assert main(["explain", "2-2:relu-1:identity", "--loss", "mse", "--param", "b1[1]",
                 "--l2", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "biases are not penalised, and ∂J/∂b[1][1] = ∂L/∂b[1][1]." in out
    assert "  ∂J/∂b[1][1] = ∂L/∂b[1][1]\n" in out
    assert "λ b" not in out and "[penalty]" not in out and "straight from" not in out


def test_piecewise_edges_of_elu_selu_and_huber():
    from symbackprop import registry

    for name in ("elu", "selu"):
        act = registry.ACTIVATIONS[name]
        d = derive(parse_arch(f"1-2:{name}-1:identity", "huber"))
        e = explain(d, parse_parameter("W1[1,0]", d.arch.sizes))
        edge = e.edges[1]
        assert edge.kind == "activation" and isinstance(edge.derivative, (sp.Mul, sp.Piecewise))
        for value in (sp.Rational(1, 3), sp.Rational(-2, 3)):  # both branches, g' of the entry
            assert sp.simplify(edge.derivative.xreplace({edge.source: value})
                               - act.derivative.xreplace({registry.z: value})) == 0
        # the loss's edge: Huber's branches, the Kronecker delta summed out of them
        loss_edge = e.edges[-1]
        assert isinstance(loss_edge.derivative, sp.Piecewise)
        assert not loss_edge.derivative.has(sp.KroneckerDelta)
        (inside, _), (outside, _) = loss_edge.derivative.args
        A, Y = loss_edge.source, d.Y.xreplace({d.m: 1, N.units(2): 1})[loss_edge.source.indices]
        assert inside == A - Y and outside == sp.sign(A - Y)
        assert e.agrees is True
