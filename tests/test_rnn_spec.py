"""Recurrent-network specs: the one-line form, spec files and the Python API give one
architecture; every bad spec is one line naming the fault and the fix (exit 2 on the command
line)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from symbackprop.errors import SpecError
from symbackprop.kinds import SEQUENCE_KINDS
from symbackprop.spec import Architecture, Feature, load_arch, parse_arch

GOOD = [  # spec, (T, n), H, every step, dense sizes after the rnn layer, shortest form
    ("seq8x8-rnn64:tanh-10:softmax", (8, 8), 64, False, (10,), "seq8x8-rnn64:tanh-10:softmax"),
    ("seq8x8-rnn64-10:softmax", (8, 8), 64, False, (10,), "seq8x8-rnn64:tanh-10:softmax"),
    ("seq50x16-rnn128:relu:all-32:relu-10:softmax", (50, 16), 128, True, (32, 10),
     "seq50x16-rnn128:relu:all-32:relu-10:softmax"),
    ("seq3x2-rnn2:all-1", (3, 2), 2, True, (1,), "seq3x2-rnn2:tanh:all-1"),
    ("seq1x1-rnn1:sigmoid-1", (1, 1), 1, False, (1,), "seq1x1-rnn1:sigmoid-1"),
]


@pytest.mark.parametrize("text,seq,units,every,dense,shortest", GOOD)
def test_one_line_specs(text, seq, units, every, dense, shortest):
    arch = parse_arch(text, "cross_entropy" if "softmax" in text else None)
    assert arch.sequence == seq and arch.image is None
    rnn = arch.recurrent
    assert rnn.kind == "rnn" and rnn.units == units and rnn.every_step is every
    assert arch.every_step is every
    assert arch.sizes == (units, *dense)
    assert arch.offset == 1 and arch.depth == 1 + len(dense)
    assert list(arch.dense_labels) == list(range(2, 2 + len(dense)))
    assert arch.shapes() == (seq, (units,), *((n,) for n in dense))
    assert arch.spec() == shortest
    assert parse_arch(arch.spec(), arch.loss) == arch


def test_spec_file_and_python_api_give_the_same_architecture(tmp_path):
    text = "seq8x8-rnn64:tanh:all-10:softmax"
    one_line = parse_arch(text, "cross_entropy")
    path = tmp_path / "rnn.json"
    path.write_text(json.dumps({"arch": text, "loss": "cross_entropy"}))
    toml = tmp_path / "rnn.toml"
    toml.write_text(f'arch = "{text}"\nloss = "cross_entropy"\n')
    api = Architecture([10], ["softmax"], "cross_entropy", sequence=(8, 8), features=[
        Feature("rnn", units=64, activation="tanh", every_step=True)])
    assert load_arch(path) == one_line == load_arch(toml) == api
    assert repr(api) == "Architecture('seq8x8-rnn64:tanh:all-10:softmax', loss='cross_entropy')"


BAD = [
    ("8-rnn3-2", "needs a sequence input seq{T}x{n}"),
    ("rnn3-2", "needs a sequence input seq{T}x{n}"),
    ("1x4x4-rnn3-flatten-2", "needs a sequence input"),
    ("seq8x8-rnn64:all", "must be followed by dense layers"),
    ("seq8x8-rnn64:tanh:all", "must be followed by dense layers"),
    ("seq8x8-rnn64", "must be followed by dense layers"),
    ("seq8x8", "is read by an rnn layer"),
    ("seq0x8-rnn3-1", "at least one step and one feature"),
    ("seq8x0-rnn3-1", "at least one step and one feature"),
    ("seq8x8-rnn0-1", "hidden units must be a positive integer"),
    ("seq8x8-rnn3-0", "size must be a positive integer"),
    ("seq8x8-rnn3:softmax-2", "cannot be the recurrent activation"),
    ("seq8x8-rnn3:log_softmax-2", "cannot be the recurrent activation"),
    ("seq8x8-rnn3:nope-2", "unknown activation 'nope'"),
    ("seq8x8-lstm3-2", "unknown layer 'lstm3' after a sequence input"),
    ("seq8x8-conv3k3-flatten-2", "needs an image input"),
    ("seq8x8-rnn3-rnn3-2", "one rnn layer"),
    ("seq8x8-rnn3:tanh:all:tanh-2", "write rnn{H}[:act][:all]"),
    ("seq8x8-rnn3:all:tanh-2", "write rnn{H}[:act][:all]"),
    ("seq8x8-rnn3:-2", "empty activation"),
    ("seqAx8-rnn3-2", "size must be a positive integer"),
]


def test_every_sequence_kind_has_a_bad_case():
    tokens = " ".join(text for text, _ in BAD)
    for name in SEQUENCE_KINDS:
        assert name in tokens


@pytest.mark.parametrize("text,message", BAD)
def test_bad_specs_name_the_fault(text, message):
    with pytest.raises(SpecError) as err:
        parse_arch(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text,message", BAD[::4])
def test_bad_specs_exit_2_with_one_line(text, message):
    result = subprocess.run([sys.executable, "-m", "symbackprop", "derive", text],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_api_refuses_what_the_one_line_form_refuses():
    rnn = Feature("rnn", units=4, activation="tanh")
    with pytest.raises(SpecError, match="needs a sequence input"):
        Architecture([2], features=[rnn])
    with pytest.raises(SpecError, match="one rnn layer"):
        Architecture([2], sequence=(3, 2), features=[rnn, rnn])
    with pytest.raises(SpecError, match="one rnn layer"):
        Architecture([2], sequence=(3, 2), features=[Feature("flatten")])
    with pytest.raises(SpecError, match="time steps, features"):
        Architecture([2], sequence=(3, 2, 1), features=[rnn])
    with pytest.raises(SpecError, match="positive integer"):
        Architecture([2], sequence=(0, 2), features=[rnn])
    with pytest.raises(SpecError, match="hidden units"):
        Architecture([2], sequence=(3, 2), features=[Feature("rnn", units=0)])
    with pytest.raises(SpecError, match="dense layers"):
        Architecture(None, sequence=(3, 2), features=[rnn])
    with pytest.raises(SpecError, match="not both"):
        Architecture([2], image=(1, 2, 2), sequence=(3, 2), features=[rnn])
    with pytest.raises(SpecError, match="cannot be the recurrent activation"):
        Architecture([2], ["softmax"], "cross_entropy", sequence=(3, 2),
                     features=[Feature("rnn", units=2, activation="softmax")])
