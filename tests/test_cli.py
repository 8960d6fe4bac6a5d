"""The command line: answers, files it writes, and one-line errors with exit code 2."""
import subprocess
import sys

import pytest
from conftest import ROOT

from symbackprop.registry import ACTIVATIONS


def test_help_does_not_load_sympy():
    code = ("import sys; from symbackprop.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('sympy', 'numpy', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_help_lists_the_commands(cli):
    result = cli("--help")
    assert result.returncode == 0
    for command in ("derive", "verify"):
        assert command in result.stdout


def test_derive_text_prints_the_four_equations(cli):
    result = cli("derive", "2-3-1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = [line.strip() for line in out.splitlines()]
    assert "dZ[2] = (A[2] - Y) ⊙ A[2] ⊙ (1 - A[2])" in lines
    assert "dZ[1] = (W[2]ᵀ dZ[2]) ⊙ A[1] ⊙ (1 - A[1])" in lines  # BP3 put into BP4
    assert "dW[2] = ─ dZ[2] A[1]ᵀ" in lines and "db[1] = ─ dZ[1] 1" in lines  # (1/m) above
    assert "dA[l-1] = W[l]ᵀ dZ[l]" in lines and "dZ[l] = dA[l] ⊙ g'(Z[l])" in lines


def test_derive_reads_a_spec_file(cli, tmp_path):
    (tmp_path / "net.toml").write_text('arch = "4-3:relu-2:softmax"\nloss = "cross_entropy"\n')
    result = cli("derive", tmp_path / "net.toml")
    assert result.returncode == 0, result.stderr
    assert "dZ[2] = A[2] - Y" in [line.strip() for line in result.stdout.splitlines()]


def test_verify_command_proves_and_exits_zero(cli):
    result = cli("verify", "3-1:relu-2:relu", "--loss", "mse")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("PROVEN: 3-1:relu-2:relu loss mse")


@pytest.mark.parametrize("args,message", [
    (["derive", "2-3:rleu-1"], "layer 1: unknown activation 'rleu' (known: " + ", ".join(sorted(ACTIVATIONS))),
    (["derive", "2-0-1"], "layer 1: size must be a positive integer"),
    (["derive", "5"], "at least two layers"),
    (["derive", "2-3:softmax-1"], "softmax is allowed on the output layer only"),
    (["derive", "2-3-1", "--loss", "cross_entropy"], "needs a softmax output layer"),
    (["derive", "2-3-1:relu", "--loss", "bce"], "needs a sigmoid output layer"),
    (["derive", "2-3-1", "--loss", "l1"], "unknown loss 'l1'"),
    (["derive", "missing.json"], "cannot read spec file 'missing.json'"),
    (["derive", "2-3-1", "--format", "pdf"], "invalid choice: 'pdf'"),
    (["verify", "2-3-1", "--notation", "colvec"], "invalid choice: 'colvec'"),
    (["verify", "2-3-1", "-m", "0"], "-m must be a positive number of examples"),
    (["explode"], "invalid choice: 'explode'"),
    (["derive", "2-3-1", "--format", "markdown", "--standalone"],
     "--standalone applies to --format latex only"),
])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, message):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_empty_spec_file(cli, tmp_path):
    (tmp_path / "empty.json").write_text("")
    result = cli("derive", "empty.json", cwd=tmp_path)
    assert result.returncode == 2 and "is empty" in result.stderr


def test_output_file_is_never_overwritten_without_force(cli, tmp_path):
    target = tmp_path / "bp.txt"
    assert cli("derive", "2-3-1", "-o", target).returncode == 0
    first = target.read_text()
    assert "dW[2]" in first
    target.write_text("my notes")
    refused = cli("derive", "2-3:tanh-1", "-o", target)
    assert refused.returncode == 2 and "exists; pass --force" in refused.stderr
    assert target.read_text() == "my notes"
    forced = cli("derive", "2-3:tanh-1", "-o", target, "--force")
    assert forced.returncode == 0 and "tanh" in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bp.txt"]  # no temporary left


def test_unwritable_output_path_is_named(cli, tmp_path):
    result = cli("derive", "2-3-1", "-o", tmp_path / "no" / "such" / "bp.txt")
    assert result.returncode == 2
    assert "no/such/bp.txt" in result.stderr and "does not exist" in result.stderr


def test_python_dash_m_and_cli_main_agree(cli):
    from symbackprop.cli import main

    assert main(["derive", "2-3-1", "-o", "-"]) == 0
    assert cli("derive", "2-3-1").returncode == 0


def test_public_api_names_resolve():
    import symbackprop

    assert sorted(symbackprop.__all__) == sorted(symbackprop._API)
    for name in symbackprop.__all__:
        assert getattr(symbackprop, name) is not None
