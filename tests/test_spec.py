"""The architecture spec: the one-line form, spec files, the Python API, and every error."""
import json

import pytest

from symbackprop import Architecture, SpecError, load_arch, parse_arch
from symbackprop.registry import ACTIVATIONS, LOSSES
from symbackprop.spec import resolve_arch


@pytest.mark.parametrize("text,sizes,acts", [
    ("2-3-1", (2, 3, 1), ("sigmoid", "sigmoid")),
    ("784-128:relu-10:softmax", (784, 128, 10), ("relu", "softmax")),
    ("3-1:relu-2:relu", (3, 1, 2), ("relu", "relu")),
    (" 4 - 5:tanh - 1 ", (4, 5, 1), ("tanh", "sigmoid")),
])
def test_one_line_form(text, sizes, acts):
    arch = parse_arch(text)
    assert arch.sizes == sizes and arch.activations == acts and arch.loss == "half_sse"
    assert parse_arch(arch.spec()) == arch  # the printed form parses back


def test_api_and_files_give_the_same_architecture(tmp_path):
    expected = parse_arch("784-128:relu-10:softmax", loss="cross_entropy")
    api = Architecture(sizes=[784, 128, 10], activations=["relu", "softmax"],
                       loss="cross_entropy")
    (tmp_path / "a.json").write_text(json.dumps(
        {"sizes": [784, 128, 10], "activations": ["relu", "softmax"], "loss": "cross_entropy"}))
    (tmp_path / "b.toml").write_text('arch = "784-128:relu-10:softmax"\nloss = "cross_entropy"\n')
    assert api == expected
    assert load_arch(tmp_path / "a.json") == expected
    assert load_arch(tmp_path / "b.toml") == expected
    assert resolve_arch(str(tmp_path / "b.toml")) == expected


def test_loss_given_apart_overrides_the_file(tmp_path):
    (tmp_path / "a.toml").write_text('arch = "2-3-1"\nloss = "mse"\n')
    assert load_arch(tmp_path / "a.toml").loss == "mse"
    assert load_arch(tmp_path / "a.toml", loss="half_sse").loss == "half_sse"


def test_default_activation_is_sigmoid_everywhere():
    assert Architecture([2, 3, 1]).activations == ("sigmoid", "sigmoid")


def test_spec_validation_knows_every_registry_entry():
    for name in ACTIVATIONS:
        if not ACTIVATIONS[name].output_only:
            assert parse_arch(f"2-3:{name}-1").activations[0] == name
    for name, loss in LOSSES.items():
        out = (loss.output_activations or ("identity",))[0]
        assert parse_arch(f"2-3-2:{out}", loss=name).loss == name


@pytest.mark.parametrize("text,loss,message", [
    ("2-3:rleu-1", None, "layer 1: unknown activation 'rleu' (known: "
                         + ", ".join(sorted(ACTIVATIONS))),
    ("2-0-1", None, "layer 1: size must be a positive integer, got '0'"),
    ("2-x-1", None, "layer 1: size must be a positive integer, got 'x'"),
    ("2--1", None, "layer 1: size must be a positive integer, got ''"),
    ("2", None, "at least two layers"),
    ("", None, "empty architecture"),
    ("2:relu-3", None, "layer 0 is the input and takes no activation"),
    ("2-3:-1", None, "layer 1: empty activation"),
    ("2-3:softmax-1", None, "layer 1: softmax is allowed on the output layer only"),
    ("2-3-1", "cross_entropy", "loss cross_entropy needs a softmax output layer, got sigmoid"),
    ("2-3-1:relu", "bce", "loss bce needs a sigmoid output layer, got relu"),
    ("2-3-1", "hinge", "unknown loss 'hinge' (known: " + ", ".join(sorted(LOSSES)) + ")"),
])
def test_bad_specs_name_the_fault_and_the_fix(text, loss, message):
    with pytest.raises(SpecError) as info:
        parse_arch(text, loss)
    assert message in str(info.value)


@pytest.mark.parametrize("sizes,activations,message", [
    ([2, -3, 1], None, "layer 1: size must be a positive integer, got -3"),
    ([2, 3.5, 1], None, "layer 1: size must be a positive integer, got 3.5"),
    ([2, True, 1], None, "layer 1: size must be a positive integer, got True"),
    ([2, 3, 1], ["relu"], "2 layers after the input need 2 activations, got 1"),
    ([4], None, "at least two layers"),
])
def test_bad_api_arguments(sizes, activations, message):
    with pytest.raises(SpecError, match=None) as info:
        Architecture(sizes, activations)
    assert message in str(info.value)


@pytest.mark.parametrize("name,content,message", [
    ("empty.json", "", "is empty"),
    ("blank.toml", "  \n", "is empty"),
    ("bad.json", "{not json", "is not valid JSON"),
    ("bad.toml", "arch = ", "is not valid TOML"),
    ("list.json", "[2, 3, 1]", "expected a table with 'arch' or 'sizes'"),
    ("keys.json", '{"arch": "2-3-1", "layers": 3}', "unknown key 'layers'"),
    ("both.json", '{"arch": "2-3-1", "sizes": [2, 1]}', "either 'arch' or 'sizes'"),
    ("none.json", '{"loss": "mse"}', "missing 'sizes'"),
    ("act.toml", 'sizes = [2, 3, 1]\nactivations = ["relu", "rleu"]', "layer 2: unknown activation"),
])
def test_bad_spec_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SpecError) as info:
        load_arch(path)
    assert message in str(info.value)


def test_unreadable_spec_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_arch(tmp_path / "missing.json")
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(SpecError, match="is a directory; give a regular"):
        load_arch(folder)


def test_a_one_line_spec_longer_than_a_file_name_is_a_spec():
    text = "-".join(["3"] + ["3:relu"] * 129 + ["1:identity"])
    assert len(text) > 255
    assert resolve_arch(text).depth == 130
