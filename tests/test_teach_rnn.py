"""``example`` and ``explain`` on recurrent networks, against an independent computation.

The oracle knows nothing of the derivation: PyTorch runs the Elman recurrence forward from the
spec (H_t = g(x_t Wᵀ + H_{t-1} Uᵀ + b), H_{-1} = 0, then the dense head on the last state or on
every state) in float64, and its autograd gives every gradient, the error of every hidden state
and the Jacobian from one step's hidden state to the next. The worked example's numbers come
from the derived entry equations, the explanation's paths from the unrolled graph of the
derivation's definitions; both must agree with the oracle. Path counts are checked against the
count of the unrolled graph worked out by hand: from step τ a path crosses one unit at each of
the T - 1 - τ later steps, then one of the head's paths.
"""
from __future__ import annotations

import json
import random
import re
import shutil
from fractions import Fraction
from math import prod

import pytest
import sympy as sp
import torch
from test_latex import _pdflatex

import symbackprop
from symbackprop.cli import main
from symbackprop.engine import derive
from symbackprop.spec import parse_arch
from symbackprop.teach.inputs import draw_parameters, parse_samples_of, sample_form
from symbackprop.teach.numbers import is_approximate
from symbackprop.teach.paths import explain, parse_parameter
from symbackprop.teach.worked import work_example

torch.set_default_dtype(torch.float64)
TOLERANCE = 1e-11

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
               "identity": lambda z: z}
LOSSES = {
    "bce": lambda a, y: -(y * torch.log(a) + (1 - y) * torch.log(1 - a)).sum(1),
    "mse": lambda a, y: ((a - y) ** 2).mean(1),
    "half_sse": lambda a, y: ((a - y) ** 2).sum(1) / 2,
    "cross_entropy": lambda a, y: -(y * torch.log(a)).sum(1),
}


# --- the oracle ---------------------------------------------------------------------------

def torch_parameters(parameters):
    """{"W1": tensor, "U1": ..., "b1": vector, ...} with gradients, from teach Parameters."""
    out = {}
    for kind, label, value in parameters.named():
        numbers = [float(v) for v in sp.flatten(value.tolist())]
        shape = tuple(int(n) for n in value.shape) if kind != "b" else (int(value.shape[0]),)
        out[f"{kind}{label}"] = torch.tensor(numbers).reshape(shape).requires_grad_(True)
    return out


def torch_forward(arch, p, X, H0=None, keep=None):
    """The network on X (m, T, n): (output rows, the hidden states of every step). ``keep``
    collects the states, each one retaining its gradient."""
    feature = arch.features[0]
    g = ACTIVATIONS[feature.activation]
    m, steps, _ = X.shape
    h = torch.zeros(m, feature.units) if H0 is None else H0
    states = []
    for t in range(steps):
        h = g(X[:, t] @ p["W1"].T + h @ p["U1"].T + p["b1"])
        if keep is not None:
            h.retain_grad()
        states.append(h)
    A = torch.stack(states, 1).reshape(m * steps, -1) if arch.every_step else states[-1]
    for label, act in zip(arch.dense_labels, arch.activations):
        Z = A @ p[f"W{label}"].T + p[f"b{label}"]
        A = torch.softmax(Z, 1) if act == "softmax" else ACTIVATIONS[act](Z)
    return A, states


def torch_cost(arch, p, X, Y):
    """J: the loss averaged over the examples (and steps), plus (λ/2m) Σ ‖W‖² over every
    weight matrix, the rnn layer's U included."""
    A, states = torch_forward(arch, p, X, keep=True)
    J = LOSSES[arch.loss](A, Y).mean()
    if arch.l2:
        terms = A.shape[0]
        J = J + float(arch.l2) / (2 * terms) * sum((value ** 2).sum() for key, value in p.items()
                                                   if not key.startswith("b"))
    return J, states


def tensors_of(samples):
    X = torch.tensor([[[float(v) for v in step] for step in sample]
                      for sample in samples.sequences.tolist()])
    Y = torch.tensor([[float(v) for v in row] for row in samples.Y.T.tolist()])
    return X, Y


def number(value) -> float:
    return float(sp.Float(value, 30))


def close(first, second, tolerance=TOLERANCE) -> bool:
    return abs(first - second) <= tolerance * max(1.0, abs(second))


def random_samples(arch, m, seed):
    rng = random.Random(seed)
    form = sample_form(arch)
    x = "; ".join(", ".join(str(Fraction(rng.choice([-3, -2, -1, 1, 2, 3]), rng.choice([2, 4])))
                            for _ in range(form.n_in)) for _ in range(m))
    n, per = arch.sizes[-1], form.n_out // arch.sizes[-1]
    rows = []
    for k in range(m):
        if arch.loss == "cross_entropy":
            row = [1 if c == (k + step) % n else 0 for step in range(per) for c in range(n)]
        elif arch.loss == "bce":
            row = [Fraction(rng.randint(0, 4), 4) for _ in range(form.n_out)]
        else:
            row = [Fraction(rng.randint(-4, 4), 2) for _ in range(form.n_out)]
        rows.append(", ".join(map(str, row)))
    return parse_samples_of(form, x, "; ".join(rows))


# Many-to-one and many-to-many, tanh, relu and sigmoid recurrences, one- and two-layer heads,
# sigmoid, identity and softmax outputs, one sample and several.
NETS = [
    ("seq3x2-rnn3:tanh-2:sigmoid", "bce", 1),
    ("seq2x2-rnn2:relu-2:identity", "mse", 2),
    ("seq3x2-rnn2:sigmoid-3:tanh-2:softmax", "cross_entropy", 2),
    ("seq3x1-rnn2:tanh:all-1:identity", "half_sse", 2),
    ("seq2x2-rnn2:relu:all-2:sigmoid", "bce", 1),
]


@pytest.mark.parametrize("spec,loss,m,l2", [*[(*net, 0) for net in NETS],
                                             (*NETS[1], "0.5"), (*NETS[3], "0.2")],
                         ids=[*[n[0] for n in NETS], f"{NETS[1][0]} --l2", f"{NETS[3][0]} --l2"])
def test_worked_step_is_backpropagation_through_time(spec, loss, m, l2):
    arch = parse_arch(spec, loss, l2=l2)
    samples = random_samples(arch, m, seed=len(spec))
    parameters = draw_parameters(3, arch)
    rate = sp.Rational(1, 10)
    worked = work_example(derive(arch), parameters, samples, rate)
    p = torch_parameters(parameters)
    X, Y = tensors_of(samples)
    J, states = torch_cost(arch, p, X, Y)
    J.backward()
    assert close(number(worked.cost), J.item())
    H = worked.value_of("H[1]")
    for tau, state in enumerate(states):  # the forward states, step by step
        for k in range(m):
            for r in range(arch.sizes[0]):
                assert close(number(H[k, tau, r]), state[k, r].item())
    # the error of every hidden state: dH = (number of loss terms) ∂J/∂H
    terms = m * arch.sequence[0] if arch.every_step else m
    dH = worked.value_of("dH[1]")
    for tau, state in enumerate(states):
        for k in range(m):
            for r in range(arch.sizes[0]):
                assert close(number(dH[k, tau, r]), terms * state.grad[k, r].item()), (tau, k, r)
    for kind, label, value in parameters.named():
        gradient = worked.value_of(f"d{kind}[{label}]")
        after = worked.updated_value(f"{kind}[{label}]")
        expected = p[f"{kind}{label}"].grad
        for index in _entries(value, kind):
            at = index if len(expected.shape) == len(index) else index[:1]
            assert close(number(gradient[index]), expected[at].item()), (kind, label, index)
            assert close(number(after[index]), number(value[index]) - 0.1 * expected[at].item())


def _entries(value, kind):
    shape = value.shape
    if kind == "b" and len(shape) == 2:  # a dense bias: a column
        return [(r, 0) for r in range(shape[0])]
    import itertools

    return list(itertools.product(*map(range, shape)))


def test_the_manual_recurrence_is_torch_rnn():
    """The oracle's loop against torch.nn.RNN itself, once."""
    arch = parse_arch("seq4x3-rnn5:tanh-2:identity", "mse")
    parameters = draw_parameters(2, arch)
    p = torch_parameters(parameters)
    rnn = torch.nn.RNN(3, 5, nonlinearity="tanh", batch_first=True, bias=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(p["W1"])
        rnn.weight_hh_l0.copy_(p["U1"])
        rnn.bias_ih_l0.copy_(p["b1"])
        rnn.bias_hh_l0.zero_()
    X = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(0))
    out, _ = rnn(X)
    _, states = torch_forward(arch, p, X)
    assert torch.allclose(out, torch.stack(states, 1), atol=1e-14)


def test_relu_and_identity_steps_are_exact_rationals():
    arch = parse_arch("seq3x2-rnn2:relu-1:identity", "mse")
    worked = work_example(derive(arch), draw_parameters(0, arch),
                          parse_samples_of(sample_form(arch), "1, 2, 0.5, -1, 2, 1; 0, 1, 1, 1, "
                                           "-1, 0", "1; 0"), sp.Rational(1, 10))
    values = [worked.cost]
    for stage in (*worked.forward, *worked.backward):
        for item in stage.values:
            values += list(sp.flatten(item.value.tolist()))
    assert values and not any(is_approximate(v) for v in values)


def test_inputs_are_read_row_by_row_step_by_step():
    arch = parse_arch("seq3x2-rnn2-1", "half_sse")
    samples = parse_samples_of(sample_form(arch), "1, 2, 3, 4, 5, 6; 7, 8, 9, 10, 11, 12",
                               "0; 1")
    X = samples.sequences
    assert X.shape == (2, 3, 2)
    assert [X[0, tau, q] for tau in range(3) for q in range(2)] == [1, 2, 3, 4, 5, 6]
    assert X[1, 2, 1] == 12


def test_many_to_many_targets_are_one_column_per_sample_and_step():
    arch = parse_arch("seq2x1-rnn2:all-2", "half_sse")
    samples = parse_samples_of(sample_form(arch), "1, 2; 3, 4", "1, 2, 3, 4; 5, 6, 7, 8")
    # column T k + τ holds sample k's targets at step τ
    assert samples.Y.tolist() == [[1, 3, 5, 7], [2, 4, 6, 8]]


# --- explain ------------------------------------------------------------------------------

EXPLAINED = [
    ("seq3x2-rnn3:tanh-2:sigmoid", "bce", "U1[0,1]", 0),
    ("seq4x2-rnn2:tanh-1:sigmoid", "bce", "U1[1,0]", 0),
    ("seq3x1-rnn2:relu-2:identity", "mse", "W1[1,0]", 0),
    ("seq3x2-rnn2:sigmoid-2:softmax", "cross_entropy", "b1[1]", 0),
    ("seq3x2-rnn2:tanh-1:sigmoid", "bce", "U1[0,1]", "0.3"),
    # the head at every step (':all'): paths leave for the head at every step, J averages
    ("seq3x1-rnn2:tanh:all-1:identity", "half_sse", "U1[0,1]", 0),
    ("seq3x2-rnn2:relu:all-2:sigmoid", "bce", "W1[1,0]", 0),
    ("seq2x2-rnn2:tanh:all-2:softmax", "cross_entropy", "W2[1,0]", "0.2"),
]


@pytest.mark.parametrize("spec,loss,param,l2", EXPLAINED,
                         ids=[f"{n[0]} {n[2]}" + (" --l2" if n[3] else "") for n in EXPLAINED])
def test_explanation_numbers_are_torch_autograd(spec, loss, param, l2):
    arch = parse_arch(spec, loss, l2=l2)
    samples = random_samples(arch, 1, seed=len(spec) + 5)
    parameters = draw_parameters(4, arch)
    p_theta = parse_parameter(param, arch)
    explained = explain(derive(arch), p_theta, parameters=parameters, samples=samples,
                        drawn=(False, False))
    assert explained.graph.agrees is True  # the path sum is backpropagation through time
    e = explained.numbers
    p = torch_parameters(parameters)
    X, Y = tensors_of(samples)
    J, states = torch_cost(arch, p, X, Y)
    J.backward()
    expected = p[f"{p_theta.kind}{p_theta.layer}"].grad[p_theta.indices].item()
    assert close(number(e.gradient), expected)
    # one term per step (and the penalty's), summing to the gradient
    direct = number(e.penalty[1]) if e.penalty is not None else 0.0
    assert (e.penalty is not None) == bool(l2) and p_theta.kind != "b" or e.penalty is None
    if p_theta.layer == 1:  # a parameter of the rnn layer: one term per step of its sum
        assert close(sum(number(v) for _, _, v in e.contributions) + direct, expected)
    # every path's product at the example's numbers: their sum is the loss's part of it
    known = e.worked
    total = sum(_at_point(known, path.product) for path in _all_paths(explained))
    assert close(total + direct, expected)
    # the error of the hidden state at every step (∂J/∂H; with ':all' J averages the T steps'
    # losses and the error dH is one step's, as the derivation has it: T ∂J/∂H)
    scale = arch.sequence[0] if arch.every_step else 1
    for tau, norm in e.error_norms:
        assert close(number(norm),
                     scale * torch.linalg.vector_norm(states[tau].grad[0]).item())
    # the Jacobian from step to step, and the products a path crosses
    g = ACTIVATIONS[arch.features[0].activation]

    def step(tau):
        return lambda h: g(X[0, tau] @ p["W1"].T.detach() + h @ p["U1"].T.detach()
                           + p["b1"].detach())
    for jac in e.jacobians:
        expected_J = torch.autograd.functional.jacobian(step(jac.tau), states[jac.tau - 1][0]
                                                        .detach())
        assert all(close(number(jac.value[a, b]), expected_J[a, b].item())
                   for a in range(arch.sizes[0]) for b in range(arch.sizes[0]))
        assert close(number(jac.norm), torch.linalg.matrix_norm(expected_J, 2).item())
    steps = arch.sequence[0]
    for product in e.products:
        def unrolled(h, start=product.tau):
            for tau in range(start + 1, steps):
                h = step(tau)(h)
            return h
        expected_P = torch.autograd.functional.jacobian(unrolled, states[product.tau][0]
                                                        .detach())
        assert product.length == steps - 1 - product.tau
        assert close(number(product.norm), torch.linalg.matrix_norm(expected_P, 2).item())
    assert close(number(e.U_norm), torch.linalg.matrix_norm(p["U1"].detach(), 2).item())
    assert [n for n, _ in e.long_bounds] == [10, 50]
    for n, bound in e.long_bounds:
        assert close(number(bound), number(e.largest) ** (n - 1))


def _all_paths(e):
    from symbackprop.teach.graph import Graph, _paths

    return list(_paths(Graph(e.derivation), e.graph.theta, e.graph.uses))


def _at_point(worked, expr):
    """An expression of entries of one example's arrays, at the worked example's values."""
    from sympy.matrices.expressions.matexpr import MatrixElement

    from symbackprop.teach.concrete import expand_sums

    expr = expand_sums(expr)
    values = {}
    for atom in expr.atoms(sp.Indexed) | expr.atoms(MatrixElement):
        base = atom.base if isinstance(atom, sp.Indexed) else atom.parent
        name = str(base.label) if isinstance(atom, sp.Indexed) else base.name
        if name == "Y":
            array = worked.samples.Y
        else:
            try:
                array = worked.value_of(name)
            except KeyError:
                array = worked.updated_value(name)
        index = tuple(int(i) for i in atom.indices)
        if isinstance(array, sp.MatrixBase) and len(index) == 1:
            index = (index[0], 0)
        values[atom] = array[index]
    return number(sp.N(expr.xreplace(values), 40))


def _expected_count(arch, kind, steps):
    """Paths from a parameter of the rnn layer to L, counted by hand: from step τ, one unit at
    each later step (n_1 choices), then a path of the head from the last state (a dense layer
    of n units: n paths; a softmax: n·n, every Z reaching every A); with the head at every
    step (':all') a path leaves for the head at any step s from τ on."""
    units = arch.sizes[0]
    head = prod(n * (n if act == "softmax" else 1)
                for n, act in zip(arch.sizes[1:], arch.activations))
    first = 1 if kind == "U" else 0  # U multiplies H_{-1} = 0 at step 0
    if arch.every_step:
        return sum(units ** (s - tau) * head for tau in range(first, steps)
                   for s in range(tau, steps))
    return sum(units ** (steps - 1 - tau) * head for tau in range(first, steps))


@pytest.mark.parametrize("steps", [2, 3, 4])
@pytest.mark.parametrize("head,loss,param", [
    ("2:sigmoid", "bce", "U1[0,1]"), ("2:sigmoid", "bce", "W1[1,0]"),
    ("3:tanh-2:identity", "mse", "b1[2]"), ("2:softmax", "cross_entropy", "U1[2,2]"),
    ("all-2:sigmoid", "bce", "U1[0,1]"), ("all-3:tanh-2:identity", "mse", "b1[2]"),
])
def test_path_counts_grow_with_the_time_steps(steps, head, loss, param):
    arch = parse_arch(f"seq{steps}x2-rnn3:tanh{'-' if not head.startswith('all') else ':'}"
                      f"{head}", loss)
    p_theta = parse_parameter(param, arch)
    e = explain(derive(arch), p_theta)
    assert e.path_count == _expected_count(arch, p_theta.kind, steps)
    assert len(_all_paths(e)) == e.path_count
    assert [use.tau for use in e.uses] == list(range(1 if p_theta.kind == "U" else 0, steps))
    assert sum(use.paths for use in e.uses) == e.path_count
    # the paths' sum is backpropagation's, checked while the paths are few enough
    assert e.graph.agrees is True or (e.graph.agrees is None and e.path_count > 300)
    for T, count in e.counts_by_steps:  # the same network over other numbers of steps
        other = parse_arch(arch.spec().replace(f"seq{steps}x", f"seq{T}x", 1), loss)
        assert count == _expected_count(other, p_theta.kind, T)
    if steps == 4 and p_theta.kind == "U":
        fewer = parse_arch(arch.spec().replace("seq4x", "seq3x", 1), loss)
        assert e.path_count > _expected_count(fewer, "U", 3)


def test_a_head_parameter_has_its_own_paths_only():
    arch = parse_arch("seq3x2-rnn3:tanh-2:sigmoid", "bce")
    e = explain(derive(arch), parse_parameter("W2[1,2]", arch))
    assert not e.in_rnn and e.uses == () and e.path_count == 1
    assert [count for _, count in e.counts_by_steps] == [1] * 5


# --- the commands and their formats -------------------------------------------------------

EXPLAIN = ["explain", "seq3x2-rnn3:tanh-2:sigmoid", "--loss", "bce", "--param", "U1[0,1]"]
EXAMPLE = ["example", "seq3x2-rnn2:tanh-2:sigmoid", "--loss", "bce", "--init", "1",
           "--x", "1, -1, 0.5, 2, 0, 1; -1, 1, 2, 0.5, 1, 0", "--y", "1, 0; 0, 1"]
EXAMPLE_ALL = ["example", "seq2x2-rnn2:relu:all-1:identity", "--loss", "mse", "--init", "0",
               "--x", "1, 2, 0.5, -1", "--y", "1, 0"]
EXPLAIN_ALL = ["explain", "seq3x1-rnn2:tanh:all-1:sigmoid", "--loss", "bce", "--param",
               "U1[0,1]"]
CASES = [EXPLAIN, EXAMPLE, EXAMPLE_ALL, EXPLAIN_ALL,
         ["explain", "seq2x1-rnn2:relu-1:identity", "--loss", "mse", "--param", "W2[0,1]"]]
IDS = [" ".join(argv[:2]) for argv in CASES]


def produce(capsys, argv, fmt):
    assert main([*argv, "--format", fmt]) == 0
    return capsys.readouterr().out


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("argv", CASES, ids=IDS)
def test_latex_compiles(tmp_path, capsys, argv):
    tex = produce(capsys, [*argv, "--standalone"], "latex")
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
    log = _pdflatex(tmp_path, "doc.tex")
    assert "Undefined control sequence" not in log and "Overfull" not in log


@pytest.mark.parametrize("argv", CASES, ids=IDS)
def test_markdown_is_well_formed_and_carries_the_texts_numbers(capsys, argv):
    text = produce(capsys, argv, "text")
    md = produce(capsys, argv, "markdown")
    latex = produce(capsys, argv, "latex")
    assert md.startswith("# ") and md.count("$$") % 2 == 0 and md.count("$$") >= 4
    outside = re.sub(r"\$\$.*?\$\$", "", md, flags=re.DOTALL)
    for line in outside.splitlines():
        assert line.count("$") % 2 == 0, f"unbalanced inline math: {line!r}"
    for display in re.findall(r"\$\$(.*?)\$\$", md, flags=re.DOTALL):
        assert display.count("{") == display.count("}"), display
        assert "\n\n" not in display.strip()
    for value in set(re.findall(r"(?<![\w\[.])-?\d+\.\d+(?!\w)", text)):
        assert value in latex and value in md, value


def test_explain_text_names_the_paths_through_time_and_the_jacobians(capsys):
    out = produce(capsys, EXPLAIN, "text")
    for line in (
            ("2. Weight sharing in time: U[1][0,1] is used at 2 steps (τ = 1, 2); at τ = 0 it "
             "multiplies the"),
            "3. Paths from U[1][0,1] to L: 8",
            "    from step τ = 1: 3^1 × 2 = 6 paths, each a product of 8 local derivatives",
            "  T = 2: 2, T = 3: 8, T = 4: 26, T = 5: 80, T = 6: 242 paths.",
            "  ∂H[1][τ + 1, p]/∂H[1][τ,q] = U[1][p,q] (1 - tanh(Z[1][τ + 1, p])²)",
            ("  Substituting the cached values gives the sum over paths again: their difference "
             "expands to 0.")):
        assert line in out, line
    assert "diag(g'(Z[1]<τ + 1>)) U[1]" in out and "‖J<2> J<1>‖₂ ≈" in out


def test_explain_with_the_head_at_every_step_says_where_paths_leave(capsys):
    """':all': the loss is the mean of the steps' losses, a path leaves for the head at any
    step, every step's error also comes from its own head."""
    text = produce(capsys, EXPLAIN_ALL, "text")
    assert "L = (1/3) Σ[i=0..2]" in text
    assert "to the head at that step or any later one" in text
    assert "from step τ = 1: (2^0 + 2^1) × 1 = 3 paths" in text
    assert "every step's also from its own head" in text
    assert "dH[1][τ,r] = dA[1][r,τ] + [τ ≤ 1]" in text
    assert "BPU's 1/(T m) averages them" in text
    assert "their difference expands to 0" in text


def test_example_text_goes_forward_then_backward_in_time(capsys):
    out = produce(capsys, EXAMPLE, "text")
    forward = [out.index(f"    Z[1]<{tau}> ") for tau in range(3)]
    backward = [out.index(f"    dH[1]<{tau}> ") for tau in range(3)]
    assert forward == sorted(forward) and backward == sorted(backward, reverse=True)
    assert out.index("Forward pass") < forward[0] < out.index("Cost") < backward[-1]
    # step 0's pre-activation has no recurrent term: the state before it is 0
    assert "    Z[1][k,0,r] = b[1][r] + Σ[μ=0..1] W[1][r,μ] A[0][k,0,μ]\n" in out
    assert "    dH[1][k,2,r] = dA[1][r,k]\n" in out
    for name in ("dW[1]", "dU[1]", "db[1]", "dW[2]", "db[2]"):
        assert f"  {name} " in out
    assert "  U[1] ← U[1] - α dU[1]" in out


# --- errors: one line, exit 2 ---------------------------------------------------------------

@pytest.mark.parametrize("argv,message", [
    ([*EXPLAIN[:-1], "U2[0,0]"], "'U2[0,0]': layer 2 has no U; its parameters are W2, b2"),
    ([*EXPLAIN[:-1], "U1[0,3]"], ("'U1[0,3]' is out of range: U1 has shape (3, 3) = (n_1, n_1), "
                                  "so the indices are in 0..2, 0..2")),
    ([*EXPLAIN[:-1], "U1[0]"], ("'U1[0]': a recurrent weight needs a row and a column, e.g. "
                                "U1[0,0]; U1 has shape (3, 3) = (n_1, n_1)")),
    ([*EXPLAIN[:-1], "V1[0,0]"], ("cannot read parameter 'V1[0,0]'; write W<l>[row,col] for a "
                                  "weight (the rnn layer's input weights W1[r,s]), U<l>[r,s] "
                                  "for its recurrent weights or b<l>[row]")),
    ([*EXPLAIN, "--x", "1, 2, 3"], ("--x: sample 1 has 3 number(s), but the input sequence "
                                    "seq3x2 (T·n = 3·2 numbers a sample, row by row: step 0's "
                                    "2 features, then step 1's, ...) needs 6")),
    ([*EXPLAIN, "--x", "1, 2, 3, 4, 5, six"], "'six' is not a number"),
    ([*EXPLAIN, "--x", "1, 2, 3, 4, 5, 6; 1, 2, 3, 4, 5, 6", "--y", "1, 0; 0, 1"],
     "explain works one example through time; --x has 2 samples: give one"),
    (["explain", "2-3-1", "--param", "W1[0,0]", "--x", "1, 2"],
     "--x: an explanation takes numbers for a recurrent network only"),
    (["explain", "2-3-1", "--param", "U1[0,0]"], "cannot read parameter 'U1[0,0]'"),
    ([*EXAMPLE[:6], "--x", "1, 2, 3", "--y", "1, 0"],
     ("--x: sample 1 has 3 number(s), but the input sequence seq3x2 (T·n = 3·2 numbers a "
      "sample, row by row")),
    ([*EXAMPLE_ALL[:-1], "1"], ("--y: sample 1 has 1 number(s), but the output layer at every "
                                "step (T·n_L = 2·1 numbers a sample, step by step) needs 2")),
])
def test_bad_parameters_and_inputs_are_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"symbackprop {argv[0]}: error: ")
    assert message in captured.err, captured.err


def test_weights_file_holds_the_recurrent_weights(tmp_path, capsys):
    weights = {"W1": [[1, 0], [0, 1]], "U1": [[0.5, 0], [0, 0.5]], "b1": [0, 0],
               "W2": [[1, 1]], "b2": [0]}
    path = tmp_path / "w.json"
    path.write_text(json.dumps(weights), encoding="utf-8")
    argv = ["example", "seq2x2-rnn2:relu-1:identity", "--loss", "mse", "--weights", str(path),
            "--x", "1, 2, 3, 4", "--y", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # H_0 = relu(x_0) = (1, 2); H_1 = relu(x_1 + 0.5 H_0) = (3.5, 5); A = 8.5
    assert "  A[2] = identity(Z[2]) = [ 8.5 ]" in out
    del weights["U1"]
    path.write_text(json.dumps(weights), encoding="utf-8")
    assert main(argv) == 2
    assert "missing key 'U1': U1 has shape (2, 2) = (n_1, n_1)" in capsys.readouterr().err


def test_data_file_takes_sequences(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("x0,x1,x2,x3,y\n1,2,3,4,1\n0,1,-1,2,0\n", encoding="utf-8")
    argv = ["example", "seq2x2-rnn2:relu-1:identity", "--loss", "mse", "--init", "0"]
    assert main([*argv, "--data", str(tmp_path / "d.csv")]) == 0
    from_file = capsys.readouterr().out
    assert main([*argv, "--x", "1, 2, 3, 4; 0, 1, -1, 2", "--y", "1; 0"]) == 0
    assert capsys.readouterr().out == from_file


# --- the Python API -------------------------------------------------------------------------

def test_python_api_explains_and_works_recurrent_networks(capsys):
    explained = symbackprop.explain("seq3x2-rnn3:tanh-2:sigmoid", "U1[0,1]", loss="bce")
    assert main(EXPLAIN) == 0
    assert explained.to_text() == capsys.readouterr().out
    assert explained.to_latex(standalone=True).startswith(r"\documentclass")
    assert r"\documentclass" not in explained.to_latex()  # a fragment to \input
    assert explained.to_markdown().startswith("# ")
    given = symbackprop.explain("seq3x2-rnn3:tanh-2:sigmoid", "U1[0,1]", loss="bce",
                                x="1, 0, 0, 1, 1, 1", y="0, 1", init=2)
    assert given.to_text() != explained.to_text() and "inputs from --x" in given.to_text()
    worked = symbackprop.example("seq3x2-rnn2:tanh-2:sigmoid", EXAMPLE[7], EXAMPLE[9],
                                 init=1, loss="bce")
    assert main(EXAMPLE) == 0
    assert worked.to_text() == capsys.readouterr().out
    half = Fraction(1, 2)
    mapping = {"W1": [[1, 0], [0, 1]], "U1": [[half, 0], [0, half]], "b1": [0, 0],
               "W2": [[1, 1]], "b2": [0]}
    worked = symbackprop.example("seq2x2-rnn2:relu-1:identity", "1, 2, 3, 4", "1",
                                 weights=mapping, loss="mse")
    assert worked.worked.value_of("A[2]")[0, 0] == sp.Rational(17, 2)


def test_random_points_on_the_graph_tell_equal_from_unequal():
    """The check behind "equal at 3 random points": every node computed from its definition
    at random inputs, weights and targets."""
    from symbackprop.teach.graph import Graph, _zero_on_the_graph

    g = Graph(derive(parse_arch("seq2x1-rnn2:tanh-1:sigmoid", "bce")))
    H = next(node for node in g.nodes if str(getattr(node, "base", "")) == "H[1]"
             and node.indices[1] == 1)
    Z = next(iter(e for e in g.definition[H].atoms(sp.Indexed)))
    assert _zero_on_the_graph(g, H - sp.tanh(Z))  # a state is its definition, at every point
    assert not _zero_on_the_graph(g, H - sp.tanh(Z) ** 2)
    assert not _zero_on_the_graph(g, H - sp.tanh(Z) - sp.Rational(1, 10 ** 30))
