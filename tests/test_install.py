"""``pip install .`` (not editable) in a fresh venv: the package, its templates, its CLI."""
import os
import subprocess
import sys
import venv

import pytest
from conftest import ROOT

CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    wheels = base / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, env=CLEAN_ENV)
    wheel = next(wheels.glob("symbackprop-*.whl"))
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheel)], check=True, capture_output=True,
                   cwd=base, env=CLEAN_ENV)
    return base, bin_dir


def run(bin_dir, cwd, *args):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          check=False, env=CLEAN_ENV)


def test_console_script_runs_from_the_installed_wheel(installed):
    base, bin_dir = installed
    result = run(bin_dir, base, bin_dir / "symbackprop", "derive", "784-128:relu-10:softmax",
                 "--loss", "cross_entropy")
    assert result.returncode == 0, result.stderr
    assert "dZ[2] = A[2] - Y" in result.stdout


def test_python_dash_m_runs_from_the_installed_wheel(installed):
    base, bin_dir = installed
    result = run(bin_dir, base, bin_dir / "python", "-m", "symbackprop", "verify", "2-3-1")
    assert result.returncode == 0 and result.stdout.startswith("PROVEN")


def test_templates_are_installed_as_package_data(installed):
    base, bin_dir = installed
    code = ("import symbackprop, symbackprop.templating as t; "
            "print(t.templates_dir()); print(symbackprop.__file__)")
    result = run(bin_dir, base, bin_dir / "python", "-c", code)
    assert result.returncode == 0, result.stderr
    templates, package = result.stdout.split()
    assert str(ROOT) not in package  # the installed copy, not the source tree
    assert templates.startswith(str(base)) and templates.endswith("symbackprop/templates")
    shipped = sorted(p.name for p in (ROOT / "templates").glob("*.j2"))
    installed_files = sorted(p.name for p in __import__("pathlib").Path(templates).glob("*.j2"))
    assert installed_files == shipped


def test_every_subpackage_is_packaged():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "symbackprop").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"


def test_teaching_commands_run_from_the_installed_wheel(installed):
    base, bin_dir = installed
    result = run(bin_dir, base, bin_dir / "symbackprop", "explain", "2-3-1", "--param", "b1[0]")
    assert result.returncode == 0, result.stderr
    assert "b[1][0]" in result.stdout


def test_license_file_matches_the_metadata(installed):
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "MIT" and meta["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    base, bin_dir = installed
    code = ("import importlib.metadata as m; d = m.distribution('symbackprop'); "
            "print(d.metadata['License-Expression']); "
            "print(any(str(f).endswith('LICENSE') for f in d.files))")
    result = run(bin_dir, base, bin_dir / "python", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["MIT", "True"]
