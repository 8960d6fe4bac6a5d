import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, cwd=None, input=None):
    """Run ``python -m symbackprop ARGS`` from the source tree; returns CompletedProcess."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "symbackprop", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, input=input, check=False)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def fresh_engine():
    """Derivations are cached per architecture; tests that patch the registry start clean."""
    from symbackprop import engine

    engine._derive_cached.cache_clear()
    yield engine
    engine._derive_cached.cache_clear()
