"""Standalone NumPy trainers generated from a derivation: ``generate(arch) -> str``.

``generator.plan`` turns the derivation into blocks of NumPy calls, ``printer`` prints the
expressions in them, and ``templates/trainer.py.j2`` lays the module out.
"""
from __future__ import annotations

from .module import INITS, OPTIMIZERS, generate

__all__ = ["INITS", "OPTIMIZERS", "generate"]
