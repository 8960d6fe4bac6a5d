"""Image-network specs: the one-line form, spec files and the Python API give one architecture;
every bad spec is one line naming the fault and the fix (exit 2 on the command line)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from symbackprop.errors import SpecError
from symbackprop.kinds import IMAGE_KINDS
from symbackprop.spec import Architecture, Feature, load_arch, parse_arch

GOOD = [
    ("1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax",
     [(1, 8, 8), (16, 8, 8), (16, 4, 4), (256,), (10,)]),
    ("1x28x28-conv8k5:relu-maxpool2-conv16k5:relu-maxpool2-flatten-10:softmax",
     [(1, 28, 28), (8, 24, 24), (8, 12, 12), (16, 8, 8), (16, 4, 4), (256,), (10,)]),
    ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid",
     [(1, 4, 4), (2, 2, 2), (2, 1, 1), (2,), (3,)]),
    ("3x7x5-avgpool3s2-conv4k2-flatten-2", [(3, 7, 5), (3, 3, 2), (4, 2, 1), (8,), (2,)]),
]


def _torch_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


@pytest.mark.parametrize("text,shapes", GOOD)
def test_shapes_follow_torch_and_spec_round_trips(text, shapes):
    arch = parse_arch(text, "cross_entropy" if "softmax" in text else None)
    assert [tuple(s) for s in arch.shapes()] == shapes
    assert parse_arch(arch.spec(), arch.loss) == arch
    assert arch.depth == len(shapes) - 1
    assert arch.offset == len(arch.features)
    # The shape rule agrees with torch's formula, layer by layer.
    for f, before, after in zip(arch.features, shapes, shapes[1:]):
        if f.kind == "flatten":
            assert after == (before[0] * before[1] * before[2],)
            continue
        p = f.padding if f.kind == "conv" else 0
        assert after[1:] == (_torch_size(before[1], f.kernel, f.stride, p),
                             _torch_size(before[2], f.kernel, f.stride, p))


def test_spec_file_and_python_api_give_the_same_architecture(tmp_path):
    text = "1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax"
    one_line = parse_arch(text, "cross_entropy")
    path = tmp_path / "cnn.json"
    path.write_text(json.dumps({"arch": text, "loss": "cross_entropy"}))
    toml = tmp_path / "cnn.toml"
    toml.write_text(f'arch = "{text}"\nloss = "cross_entropy"\n')
    api = Architecture([10], ["softmax"], "cross_entropy", image=(1, 8, 8), features=[
        Feature("conv", channels=16, kernel=3, stride=1, padding=1, activation="relu"),
        Feature("maxpool", kernel=2, stride=2), Feature("flatten")])
    assert load_arch(path) == one_line == load_arch(toml) == api


BAD = [
    ("1x3x3-conv2k5-flatten-2", "larger than its input 3x3"),
    ("1x1x1-conv2k4p1-flatten-2", "larger than its padded input 3x3"),
    ("1x2x2-maxpool3-flatten-1", "larger than its input 2x2"),
    ("1x4x4-avgpool2s0-flatten-1", "stride must be a positive integer"),
    ("1x4x4-avgpool5-flatten-1", "larger than its input 4x4"),
    ("1x8x8-conv16k3-10", "put 'flatten' before it"),
    ("1x8x8-maxpool2-10:softmax", "put 'flatten' before it"),
    ("1x8x8-flatten-conv3k3-2", "after flatten"),
    ("8-conv3k3-flatten-2", "needs an image input CxHxW"),
    ("1x8x8-conv3k3:softmax-flatten-2", "cannot follow a conv layer"),
    ("1x8x8-conv0k3-flatten-2", "channels must be a positive integer"),
    ("1x8x8-conv3k0-flatten-2", "kernel must be a positive integer"),
    ("1x8x8-conv3k3s0-flatten-2", "stride must be a positive integer"),
    ("1x8x8-conv3k3p3-flatten-2", "padding must be between 0"),
    ("0x8x8-flatten-2", "positive integers"),
    ("1x8x8-pool2-flatten-2", "unknown layer 'pool2'"),
    ("1x8x8-conv3k3-flatten", "followed by dense layers"),
    ("1x8x8-conv3k3-maxpool2", "needs 'flatten'"),
    ("1x8x8-maxpool2:relu-flatten-2", "takes no activation"),
    ("1x8x8-conv3k3:nope-flatten-2", "unknown activation 'nope'"),
    ("1x8x8-conv3k3:-flatten-2", "empty activation"),
]


def test_every_feature_kind_has_a_bad_case():
    tokens = " ".join(text for text, _ in BAD)
    for name in IMAGE_KINDS:
        assert name in tokens


@pytest.mark.parametrize("text,message", BAD)
def test_bad_specs_name_the_fault(text, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        parse_arch(text)


@pytest.mark.parametrize("text,message", BAD[:6])
def test_bad_specs_exit_2_with_one_line(text, message):
    result = subprocess.run([sys.executable, "-m", "symbackprop", "derive", text],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_api_refuses_features_without_an_image_and_an_image_without_flatten():
    with pytest.raises(SpecError, match="image input"):
        Architecture([4, 2], features=[Feature("flatten")])
    with pytest.raises(SpecError, match="flatten"):
        Architecture([2], image=(1, 4, 4), features=[Feature("maxpool", kernel=2, stride=2)])
    with pytest.raises(SpecError, match="channels, height, width"):
        Architecture([2], image=(4, 4), features=[Feature("flatten")])
