"""Standalone NumPy trainers generated from a derivation: ``generate(arch) -> str``.

``generator`` plans the blocks of NumPy calls from the derivation, ``printer`` prints the
expressions in them, ``module`` renders ``templates/trainer.py.j2``. ``options`` holds the
command's choices and imports nothing heavy; ``generate`` is imported on first use (SymPy).
"""
from __future__ import annotations

from .options import DTYPES, INITS, OPTIMIZERS

__all__ = ["DTYPES", "INITS", "OPTIMIZERS", "generate"]


def __getattr__(name):
    if name == "generate":
        from .module import generate

        return generate
    raise AttributeError(f"module 'symbackprop.codegen' has no attribute {name!r}")
