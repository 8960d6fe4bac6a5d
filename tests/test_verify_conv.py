"""The proof of image networks: conv, max and average pooling, flatten, then dense layers."""
import dataclasses
import importlib
import itertools
import json
import random
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

from symbackprop import VerificationError, naming, parse_arch, verify
from symbackprop.registry import a as a_var
from symbackprop.registry import n as n_var
from symbackprop.registry import y as y_var
from symbackprop.registry import z as z_var

verify_module = importlib.import_module("symbackprop.verify")

# (spec, loss, options): every feature kind, strides 1-2, padding 0-1, 1-2 channels in and out,
# with and without the L2 penalty, both notations.
CASES = [
    ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", {}),
    ("2x4x4-conv2k3s2p1:relu-maxpool2s1-flatten-2:softmax", "cross_entropy", {}),
    ("1x6x6-conv2k3:relu-maxpool2-conv2k2:tanh-flatten-3:softmax", "cross_entropy", {}),
    ("1x5x5-conv1k3p1:leaky_relu-maxpool2s2-flatten-2:identity", "mse", {"l2": "1/4"}),
    ("2x5x5-conv2k2s2:sigmoid-avgpool2s1-flatten-2:identity", "half_sse",
     {"l2": "1/10", "notation": "rowvec"}),
    ("1x4x4-conv2k3p1:relu-avgpool2-flatten-2:identity", "mse", {"notation": "rowvec"}),
    ("2x5x5-maxpool3s2-flatten-2:identity", "mse", {"m": 3}),
    ("1x5x5-avgpool2s1-conv2k2s2-flatten-2:tanh", "huber", {"m": 1}),
]
LEMMAS = {"conv": 6, "maxpool": 2, "avgpool": 2, "flatten": 2}  # Z, A, BP4, BP1, BP2, BP3


def _run(spec, loss, options):
    arch_options = {key: options[key] for key in ("l2",) if key in options}
    verify_options = {key: options[key] for key in ("notation", "m") if key in options}
    return verify(parse_arch(spec, loss, **arch_options), **verify_options)


def _parameters(report):
    """Entries of every kernel, bias, weight matrix of the proof's network."""
    proof = report.proof
    shapes = proof.shapes()
    total = sum(f.channels * shapes[l - 1][0] * f.kernel ** 2 + f.channels
                for l, f in enumerate(proof.features, start=1) if f.kind == "conv")
    return total + sum(o * i + o for i, o in itertools.pairwise(report.sizes))


def test_cases_cover_every_kind_stride_padding_and_channels():
    archs = [parse_arch(spec, loss) for spec, loss, _ in CASES]
    features = [f for arch in archs for f in arch.features]
    convs = [f for f in features if f.kind == "conv"]
    pools = [f for f in features if f.kind in ("maxpool", "avgpool")]
    assert {f.kind for f in features} == set(LEMMAS)
    assert {f.stride for f in convs} == {f.stride for f in pools} == {1, 2}
    assert {f.padding for f in convs} == {0, 1}
    assert {f.channels for f in convs} == {1, 2}
    assert {arch.image[0] for arch in archs} == {1, 2}
    assert {"l2" in options for *_, options in CASES} == {True, False}
    assert {options.get("notation", "ng") for *_, options in CASES} == {"ng", "rowvec"}


@pytest.mark.parametrize("spec,loss,options", CASES, ids=[c[0] for c in CASES])
def test_image_network_is_proven(spec, loss, options):
    report = _run(spec, loss, options)
    assert report.ok, str(report)
    arch = report.arch
    assert len(report.lemmas) == sum(LEMMAS[f.kind] for f in arch.features) \
        + 6 * (len(arch.sizes) - 1) + 2
    assert all(lemma.method == "symbolic" for lemma in report.lemmas), str(report)
    assert len(report.gradient) == report.points * _parameters(report)
    names = {c.name.split("]")[0] + "]" for c in report.checks}
    for l, f in enumerate(arch.features, start=1):  # every feature layer's result is compared
        assert f"dA[{l - 1}]" in names
        if f.kind == "conv":
            assert {f"Z[{l}]", f"A[{l}]", f"dZ[{l}]", f"dW[{l}]", f"db[{l}]"} <= names
    if "l2" in options:
        assert f"l2 {Fraction(options['l2'])}" in report.summary()


def test_the_proof_runs_at_the_spec_sizes_and_reports_them():
    report = verify(parse_arch("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse"))
    assert report.shapes == ((1, 4, 4), (2, 2, 2), (2, 1, 1), (2,), (3,))
    assert "at sizes 1x4x4-2x2x2-2x1x1-2-3, m = 2" in report.summary()
    # the direct side reads the input's padding: entries of dW[1] see zero rows and columns
    assert any(c.name == "dW[1][0, 0, 0, 0]" for c in report.gradient)


def test_wide_conv_layers_shrink_to_three_channels():
    report = verify(parse_arch("4x4x4-conv5k3p1:relu-maxpool2-flatten-6:identity", "mse"),
                    points=1)
    assert report.ok, str(report)
    assert report.shapes == ((3, 4, 4), (3, 4, 4), (3, 2, 2), (12,), (3,))
    assert report.sizes == (12, 3)
    with pytest.raises(VerificationError, match="do not fit"):
        verify(report.arch, sizes=(80, 3))


# --- sabotage: a wrong entry formula is caught --------------------------------------------

def _sabotaged(monkeypatch, layer, name, change):
    """verify sees a derivation whose feature-layer equation ``name`` ("forward": its first
    forward equation) of ``layer`` has the entry formula ``change(entry_rhs, symbols)``."""
    from symbackprop import engine

    def derive(arch, notation="ng"):
        d = engine.derive(arch, notation)
        old = d.features[layer - 1]
        eq = old.forward[0] if name == "forward" else old.backward[name]
        new = dataclasses.replace(eq, entry_rhs=change(eq.entry_rhs, old.symbols))
        changed = (dataclasses.replace(old, forward=(new, *old.forward[1:])) if name == "forward"
                   else dataclasses.replace(old, backward={**old.backward, name: new}))
        features = list(d.features)
        features[layer - 1] = changed
        return dataclasses.replace(d, features=tuple(features))
    monkeypatch.setattr(verify_module, "derive", derive)


def _drop_range_condition(entry, sym):
    return entry.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])


def _flip_kernel(entry, sym):
    W, f = sym["W"], sym["f"]
    return entry.replace(lambda e: isinstance(e, sp.Indexed) and e.base == W,
                         lambda e: W[e.indices[0], e.indices[1], f - 1 - e.indices[2],
                                     f - 1 - e.indices[3]])


def _stride_one(entry, sym):
    return entry.xreplace({sym["s"]: 1})


def _mean_over_f(entry, sym):  # 1/f instead of 1/f²
    return entry.xreplace({sym["f"] ** -2: 1 / sym["f"]})


def _rows_for_columns(entry, sym):  # flatten in channel, column, row order
    return entry.xreplace({naming.h: naming.w, naming.w: naming.h})


def _no_penalty(entry, sym):
    return entry.xreplace({naming.lam: 0})


SABOTAGE = [  # (spec, loss, l2, layer, equation, corruption, first wrong entry)
    ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", 0, 1, "BP3",
     _drop_range_condition, "dA[0]"),
    ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", 0, 1, "BP3", _flip_kernel,
     "dA[0]"),
    ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", 0, 1, "BP1", _stride_one,
     "dW[1]"),
    ("1x5x5-conv2k3s2p1:relu-avgpool2-flatten-2:identity", "mse", 0, 1, "forward",
     _stride_one, "Z[1]"),
    ("1x6x6-conv2k3:relu-avgpool2-flatten-2:identity", "mse", 0, 2, "BP3", _mean_over_f,
     "dA[1]"),
    ("1x6x6-conv2k3:relu-maxpool2-conv2k2:tanh-flatten-3:softmax", "cross_entropy", 0, 2,
     "BP3", _drop_range_condition, "dA[1]"),
    ("1x6x6-conv2k3:relu-maxpool2-conv2k2:tanh-flatten-3:softmax", "cross_entropy", 0, 2,
     "BP3", _stride_one, "dA[1]"),
    ("1x4x4-conv2k2:tanh-flatten-2:identity", "mse", 0, 2, "BP3", _rows_for_columns, "dA[1]"),
    ("1x4x4-conv2k3p1:tanh-maxpool2-flatten-2:identity", "mse", "1/2", 1, "BP1", _no_penalty,
     "dW[1]"),
]


@pytest.mark.parametrize("spec,loss,l2,layer,name,change,first", SABOTAGE,
                         ids=[f"{s[5].__name__} {s[4]} layer {s[3]}" for s in SABOTAGE])
def test_a_wrong_entry_formula_is_caught(monkeypatch, spec, loss, l2, layer, name, change,
                                         first):
    _sabotaged(monkeypatch, layer, name, change)
    report = verify(parse_arch(spec, loss, l2=l2))
    assert not report.ok
    assert [(x.layer, x.equation) for x in report.lemmas if not x.ok] == [(layer, name)]
    wrong = report.failures[0]
    assert wrong.equation == name and wrong.name.startswith(first + "[")
    text = str(report)
    assert text.startswith("FAILED") and f"first difference: layer {layer} {name}" in text


def test_a_read_outside_the_kernel_is_a_failure_that_says_so(monkeypatch):
    """Without its range condition, BP3 of a conv reads W outside its f x f kernel: that is
    no value (only feature maps are 0 outside, the padding), and the report names the read."""
    _sabotaged(monkeypatch, 1, "BP3", _drop_range_condition)
    report = verify(parse_arch("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse"))
    notes = [c.note for c in report.failures if c.note]
    assert notes and all("outside its shape 2x1x3x3" in note for note in notes)
    assert "reads W[1][" in str(report)
    data = report.as_dict()
    assert any("note" in c and not c["ok"] for c in data["checks"])


def test_verify_command_exits_1_on_a_wrong_image_derivation(monkeypatch, capsys):
    from symbackprop.cli import main

    _sabotaged(monkeypatch, 1, "BP3", _flip_kernel)
    assert main(["verify", "1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid"]) == 1
    assert capsys.readouterr().out.startswith("FAILED: 1x4x4-conv2k3s2p1")


# --- the direct side is right: against central differences of a NumPy forward pass -----------

def _numpy_activation(act):
    g = sp.lambdify((z_var,), act.expr, "numpy")
    return lambda Z: np.broadcast_to(np.asarray(g(Z), dtype=float), Z.shape)


def _numpy_cost(arch, point, m):
    """J from the definitions, in float64 (torch's conv2d / max_pool2d / avg_pool2d / flatten
    semantics), the loss from the registry's term."""
    term = arch.loss_entry.term.xreplace({n_var: arch.sizes[-1]})
    loss = sp.lambdify((a_var, y_var), term, "numpy")
    shapes = arch.shapes()
    A = np.zeros((m, *arch.image))
    for index, v in point["X"].items():
        A[index] = float(v)
    for l, f in enumerate(arch.features, start=1):
        if f.kind == "conv":
            W = np.zeros((f.channels, shapes[l - 1][0], f.kernel, f.kernel))
            for index, v in point[("W", l)].items():
                W[index] = float(v)
            b = np.array([float(point[("b", l)][(r,)]) for r in range(f.channels)])
            P = np.pad(A, ((0, 0), (0, 0), (f.padding,) * 2, (f.padding,) * 2))
            _, H, Wd = shapes[l]
            Z = np.empty((m, f.channels, H, Wd))
            for x, y in itertools.product(range(H), range(Wd)):
                window = P[:, :, f.stride * x:f.stride * x + f.kernel,
                           f.stride * y:f.stride * y + f.kernel]
                Z[:, :, x, y] = np.einsum("ktuv,rtuv->kr", window, W) + b
            A = _numpy_activation(arch.activation_entry(f.activation))(Z)
        elif f.kind in ("maxpool", "avgpool"):
            _, H, Wd = shapes[l]
            out = np.empty((m, shapes[l][0], H, Wd))
            for x, y in itertools.product(range(H), range(Wd)):
                window = A[:, :, f.stride * x:f.stride * x + f.kernel,
                           f.stride * y:f.stride * y + f.kernel]
                out[:, :, x, y] = (window.max(axis=(2, 3)) if f.kind == "maxpool"
                                   else window.mean(axis=(2, 3)))
            A = out
        else:
            A = A.reshape(m, -1).T  # channel, row, column: C order, columns are examples
    for l in arch.dense_labels:
        W = np.array(point[("W", l)], dtype=float)
        b = np.array(point[("b", l)], dtype=float)
        A = _numpy_activation(arch.activation_entry(arch.activations[l - arch.offset - 1]))(
            W @ A + b)
    Y = np.array(point["Y"], dtype=float)
    return float(np.sum(loss(A, Y))) / m


@pytest.mark.parametrize("spec", ["2x5x5-conv2k3s2p1:tanh-maxpool2s1-flatten-2:identity",
                                  "1x6x6-conv2k3p1:tanh-avgpool2-conv1k2s2-flatten-2:tanh"])
def test_direct_side_matches_central_differences(spec):
    arch = parse_arch(spec, "half_sse")
    m, sizes = 2, verify_module.small_sizes(arch)
    point = verify_module._random_point(arch, sizes, m, random.Random(3))
    direct = verify_module._Direct(arch, sizes, m, verify_module._DIGITS)
    with verify_module._DIGITS.context():
        truth = direct.run(point, lambda text: None)
    assert direct.ties == 0
    h = 1e-6
    for key, scale in ((("W", 1), 1), (("b", 1), 1), ("X", m)):
        grad = truth[("dW", 1)] if key == ("W", 1) else (
            truth[("db", 1)] if key == ("b", 1) else truth[("dA", 0)])
        for index in list(point[key])[:12]:
            moved = []
            for sign in (1, -1):
                changed = {k: dict(v) if isinstance(v, dict) else v for k, v in point.items()}
                changed[key][index] = point[key][index] + Fraction(sign) * Fraction(h)
                moved.append(_numpy_cost(arch, changed, m))
            numeric = scale * (moved[0] - moved[1]) / (2 * h)
            assert float(grad[index]) == pytest.approx(numeric, rel=1e-5, abs=1e-8), (key, index)


def test_ties_go_to_the_first_maximum():
    """A point whose max-pooling windows tie: the direct side routes the gradient to the first
    maximum in row-major order (as torch does), and the derived Unpool, through the arg-max
    indicator M computed from the point, agrees entry for entry."""
    arch = parse_arch("1x4x4-maxpool2-flatten-2:identity", "half_sse")
    m, sizes = 2, verify_module.small_sizes(arch)
    point = verify_module._random_point(arch, sizes, m, random.Random(0))
    for k, x, y in itertools.product(range(m), range(2), range(2)):  # every window ties
        top = Fraction(3, 4) + Fraction(x + 2 * y + 4 * k, 64)
        point["X"][(k, 0, 2 * x, 2 * y + 1)] = top
        point["X"][(k, 0, 2 * x + 1, 2 * y)] = top
        point["X"][(k, 0, 2 * x, 2 * y)] = point["X"][(k, 0, 2 * x + 1, 2 * y + 1)] = 0
    exact = verify_module._EXACT
    direct = verify_module._Direct(arch, sizes, m, exact)
    truth = direct.run(point, lambda text: None)
    assert direct.ties == 8
    dA = truth[("dA", 0)]
    for k, x, y in itertools.product(range(m), range(2), range(2)):
        assert dA[(k, 0, 2 * x, 2 * y + 1)] != 0  # the first of the two maxima
        assert dA[(k, 0, 2 * x + 1, 2 * y)] == 0
    from symbackprop.engine import derive

    derived = verify_module._Derived(derive(arch), sizes, m, exact, arch)
    checks = derived.compare(point, truth, 0, lambda text: None)
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok][:3]
    with pytest.raises(verify_module._Tied):
        direct.run(point, lambda text: None, refuse_ties=True)


# --- the report and the command -------------------------------------------------------------

def test_verify_command_json_for_an_image_network(capsys):
    from symbackprop.cli import main

    assert main(["verify", "1x4x4-conv2k3s2p1:relu-maxpool2s1-flatten-2:softmax", "--loss",
                 "cross_entropy", "--json", "--l2", "0.1", "--points", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "PROVEN" and data["l2"] == "1/10"
    assert data["shapes"] == [[1, 4, 4], [2, 2, 2], [2, 1, 1], [2], [2]]
    assert data["sizes"] == [2, 2] and len(data["ties"]) == 1
    assert "feature layers from their entry formulas" in data["method"]
    lemmas = {(x["layer"], x["equation"]) for x in data["lemmas"]}
    assert {(1, "BP1"), (1, "BP4"), (2, "BP3"), (3, "forward"), (4, "output")} <= lemmas
    names = {c["name"] for c in data["checks"]}
    assert {"dW[1][1, 0, 2, 2]", "db[1][1]", "dA[0][0, 0, 3, 3]", "dA[1][1, 1, 1, 1]",
            "A[3][1, 1]"} <= names
    assert all(set(c) == {"name", "equation", "point", "method", "ok", "derived", "direct"}
               for c in data["checks"])


def test_dense_reports_carry_no_image_fields():
    data = verify(parse_arch("2-3-1")).as_dict()
    assert "shapes" not in data and "ties" not in data
