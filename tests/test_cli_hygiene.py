"""The command line's rough edges: --version, a bare command, unknown options with the nearest
one, the format from -o's extension, /dev/stdout, file modes, symlinks."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from symbackprop import __version__
from symbackprop.commands.common import FORMAT_OF_SUFFIX


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True,
                          text=True, check=False, cwd=cwd)


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"symbackprop {__version__}"


def test_bare_command_prints_the_usage_and_every_command():
    from symbackprop.cli import COMMANDS

    result = run()
    assert result.returncode == 2 and result.stderr.startswith("usage: symbackprop")
    for name in COMMANDS:
        assert name in result.stderr


@pytest.mark.parametrize("command,typo,nearest", [
    ("derive", "--formt", "--format"), ("verify", "--pionts", "--points"),
    ("generate", "--optimiser", "--optimizer"), ("explain", "--parm", "--param"),
    ("example", "--qqq", None)])
def test_unknown_option_names_the_command_and_the_nearest_option(command, typo, nearest):
    args = {"explain": ["--param", "b1[0]"], "example": ["--init", "0"]}.get(command, [])
    result = run(command, "2-3-1", *args, typo, "x")
    assert result.returncode == 2
    line, = result.stderr.strip().splitlines()
    assert line.startswith(f"symbackprop {command}: error: unrecognized option {typo}")
    if nearest:
        assert line.endswith(f"did you mean {nearest}?")
    else:
        assert line.endswith(f"see symbackprop {command} --help")


@pytest.mark.parametrize("suffix", sorted(FORMAT_OF_SUFFIX))
def test_output_extension_picks_the_format(tmp_path, suffix):
    out = tmp_path / f"d{suffix}"
    assert run("derive", "2-3-1", "-o", str(out)).returncode == 0
    fmt = FORMAT_OF_SUFFIX[suffix]
    explicit = run("derive", "2-3-1", "--format", fmt).stdout
    assert out.read_text(encoding="utf-8") == explicit
    # --format still wins over the extension
    other = tmp_path / f"e{suffix}"
    assert run("derive", "2-3-1", "--format", "text", "-o", str(other)).returncode == 0
    assert other.read_text(encoding="utf-8") == run("derive", "2-3-1").stdout


def test_dev_stdout_and_dev_null_are_written_through():
    result = subprocess.run([sys.executable, "-m", "symbackprop", "derive", "2-3-1", "-o",
                             "/dev/stdout"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout == run("derive", "2-3-1").stdout
    assert run("derive", "2-3-1", "-o", "/dev/null").returncode == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_new_files_follow_the_umask_and_force_keeps_the_mode(tmp_path):
    out = tmp_path / "d.txt"
    old = os.umask(0o022)
    try:
        assert run("derive", "2-3-1", "-o", str(out)).returncode == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        out.chmod(0o600)
        assert run("derive", "2-3-1", "-o", str(out), "--force").returncode == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_symlinks_need_force_and_are_written_through(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("mine", encoding="utf-8")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    refused = run("derive", "2-3-1", "-o", str(link))
    assert refused.returncode == 2 and "symlink" in refused.stderr
    assert real.read_text(encoding="utf-8") == "mine"
    assert run("derive", "2-3-1", "-o", str(link), "--force").returncode == 0
    assert link.is_symlink() and real.read_text(encoding="utf-8").startswith("Backpropagation")
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere.txt")
    result = run("derive", "2-3-1", "-o", str(dangling))
    assert result.returncode == 2 and "dangling symlink" in result.stderr


def test_a_long_output_name_is_written(tmp_path):
    out = tmp_path / ("n" * 250 + ".txt")
    assert run("derive", "2-3-1", "-o", str(out)).returncode == 0 and out.exists()


@pytest.mark.parametrize("spec,loss", [("2-3-1", "cross_entropy"), ("2-3:relu-1", "nll"),
                                        ("1x4x4-conv2k3-flatten-1", "cross_entropy")])
def test_the_suggested_net_for_a_loss_works(spec, loss):
    """The suggestion parses, and derives: no 1-unit softmax whose cost is constant."""
    from symbackprop.errors import SpecError
    from symbackprop.spec import parse_arch

    with pytest.raises(SpecError) as caught:
        parse_arch(spec, loss)
    suggested = str(caught.value).split("write e.g. '")[1].split("'")[0]
    arch = parse_arch(suggested, loss)
    assert arch.sizes[-1] >= 2
    assert run("verify", suggested, "--loss", loss).returncode == 0


@pytest.mark.parametrize("activation", ["softmax", "log_softmax"])
def test_a_one_unit_vector_output_is_refused_with_the_reason(activation):
    from symbackprop.errors import SpecError
    from symbackprop.spec import parse_arch

    with pytest.raises(SpecError, match="over 1 unit is constant"):
        parse_arch(f"2-3-1:{activation}")


@pytest.mark.parametrize("name", ["net.yaml", "net.yml", "spec.txt"])
def test_spec_files_are_toml_or_json(name, tmp_path):
    (tmp_path / name).write_text("arch: 2-3-1\n", encoding="utf-8")
    result = run("derive", name, cwd=tmp_path)
    assert result.returncode == 2 and "spec files are .toml or .json" in result.stderr
