"""The engine on feature kinds: every gradient of every stage is derived by the chain rule, comes
out as the operation its kind names, and its range conditions are derived, not assumed: an
entry evaluated by brute force at concrete sizes equals the derivative of the concretely
expanded forward definition."""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import sympy as sp

from symbackprop import naming as N
from symbackprop import tensors as T
from symbackprop.engine import derive
from symbackprop.errors import DerivationError
from symbackprop.kinds import IMAGE_KINDS
from symbackprop.spec import parse_arch

NET = "2x5x5-conv3k3s2p1:tanh-maxpool2s1-avgpool1-flatten-2:sigmoid"

EXPECTED = {  # stage gradient -> the operation it is
    ("conv", "BP4"): T.Map, ("conv", "BP1"): T.Scaled, ("conv", "BP2"): T.Scaled,
    ("conv", "BP3"): T.FullCorrelate, ("maxpool", "BP3"): T.Unpool,
    ("avgpool", "BP3"): T.Unpool, ("flatten", "BP3"): T.Unflatten,
}


def test_every_stage_gradient_is_recognised_as_its_operation():
    d = derive(parse_arch(NET, "bce"))
    assert {f.feature.kind for f in d.features} == set(IMAGE_KINDS)
    for layer in d.features:
        for grad in (g for stage in layer.kind.stages for g in stage.gradients):
            eq = layer.backward[grad.name]
            assert isinstance(eq.rhs, EXPECTED[(layer.feature.kind, grad.name)])
            assert [s.rule for s in eq.steps][:2] == ["chain", "adjoint"]
            assert eq.steps[-1].rule == "vectorise"
    conv = d.features[0].backward
    assert isinstance(conv["BP1"].rhs.node, T.WeightCorrelate)
    assert isinstance(conv["BP2"].rhs.node, T.ChannelSum)


def test_a_kind_naming_the_wrong_operation_is_refused(monkeypatch):
    import symbackprop.kinds as K

    stage = K.CONV_CORRELATION
    wrong = replace(stage.gradients[2], node=lambda sym: T.FullCorrelate(
        sym["dZ"], sym["W"], sym["s"] + 1, sym["p"]))  # the stride changed
    bad = replace(stage, gradients=(*stage.gradients[:2], wrong))
    monkeypatch.setitem(K.FEATURE_KINDS, "conv", replace(K.CONV, stages=(
        bad, K.FEATURE_ACTIVATION)))
    from symbackprop.engine import _derive_cached
    _derive_cached.cache_clear()
    with pytest.raises(DerivationError, match="FullCorrelate"):
        derive(parse_arch("1x4x4-conv1k2s2-flatten-1"))
    _derive_cached.cache_clear()


def _concrete(expr, sizes):
    return expr.xreplace(sizes)


@pytest.mark.parametrize("stride,padding,kernel", [(1, 0, 2), (2, 1, 3), (3, 2, 3), (2, 0, 1)])
def test_input_gradient_range_conditions_by_brute_force(stride, padding, kernel):
    """dA^[0] of a convolution at every input position equals Σ over the outputs of
    dZ · ∂Z/∂A from the expanded correlation (padding as zeros)."""
    text = f"1x5x6-conv2k{kernel}s{stride}p{padding}-flatten-1:identity"
    arch = parse_arch(text)
    d = derive(arch)
    conv = d.features[0]
    sizes = N.feature_sizes(arch)
    eq = conv.backward["BP3"]
    C, H, W = arch.image
    F, Ho, Wo = arch.shapes()[1]
    rng = np.random.default_rng(0)
    Wt = rng.integers(-3, 4, (F, C, kernel, kernel))
    dZ = rng.integers(-3, 4, (1, F, Ho, Wo))
    sym = {key: _concrete(conv.symbols[key], sizes) for key in ("W", "dZ")}
    values = {}
    for idx in itertools.product(*map(range, Wt.shape)):
        values[sym["W"][idx]] = int(Wt[idx])
    for idx in itertools.product(*map(range, dZ.shape)):
        values[sym["dZ"][idx]] = int(dZ[idx])
    entry = _concrete(eq.entry_rhs, sizes)
    for c, h, w in itertools.product(range(C), range(H), range(W)):
        got = entry.xreplace({N.k: 0, N.c: c, N.h: h, N.w: w}).doit().xreplace(values)
        # direct: Z[f,x,y] reads A[c, s x + u - p, s y + v - p]
        want = 0
        for f, x, y, u, v in itertools.product(range(F), range(Ho), range(Wo), range(kernel),
                                               range(kernel)):
            if stride * x + u - padding == h and stride * y + v - padding == w:
                want += int(Wt[f, c, u, v]) * int(dZ[0, f, x, y])
        assert sp.simplify(got) == want, (c, h, w)


def test_deep_image_network_derives_quickly():
    import time

    start = time.perf_counter()
    derive(parse_arch("3x32x32-conv8k3p1:relu-conv8k3p1:relu-maxpool2-conv16k3p1:relu-"
                      "conv16k3p1:relu-maxpool2-conv32k3s2:relu-avgpool2-flatten-64:relu-"
                      "10:softmax", "cross_entropy"))
    assert time.perf_counter() - start < 60
