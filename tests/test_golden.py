"""generated/ is the golden record: every file there is what its command prints today."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("regenerate", ROOT / "scripts" / "regenerate.py")
regenerate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regenerate)

ENTRIES = list(regenerate.golden_entries())


def test_there_are_golden_files():
    assert ENTRIES, "generated/*/COMMANDS lists no golden file"


@pytest.mark.parametrize("folder,name,argv", ENTRIES,
                         ids=[f"{f.name}/{n}" for f, n, _ in ENTRIES])
def test_golden_file_has_not_drifted(folder, name, argv):
    expected = (folder / name).read_bytes()
    produced = regenerate.produce(folder, argv)
    assert produced == expected, (
        f"generated/{folder.name}/{name} drifted from 'symbackprop {' '.join(argv)}'; "
        "if the change is intended, run: python scripts/regenerate.py")


@pytest.mark.parametrize("folder,name,argv", ENTRIES,
                         ids=[f"{f.name}/{n}" for f, n, _ in ENTRIES])
def test_golden_output_is_deterministic_and_relocatable(folder, name, argv):
    text = (folder / name).read_text(encoding="utf-8")
    assert str(ROOT) not in text, "absolute path in a generated file"
    assert "/tmp/" not in text and "/home/" not in text and "/root/" not in text
