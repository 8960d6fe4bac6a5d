"""symbackprop: backpropagation derived symbolically, written up, and compiled to NumPy.

Public API (imported lazily, so that ``symbackprop --help`` does not load SymPy)::

    arch = symbackprop.parse_arch("784-128:relu-10:softmax", loss="cross_entropy")
    d = symbackprop.derive(arch)           # Derivation: BP1-BP4 per layer, with their steps
    report = symbackprop.verify(arch)      # the proof against direct differentiation
    source = symbackprop.generate(arch)    # a standalone NumPy trainer module, as text
    symbackprop.explain(arch, "W1[0,0]").to_text()       # one gradient, path by path
    symbackprop.example(arch, x="...", y="...").to_latex()  # one SGD step, exact numbers
    d.to_latex(), d.to_markdown(), d.to_text()            # the documents derive writes
"""
from __future__ import annotations

__version__ = "0.1.0"

_API = {
    "Architecture": "spec",
    "parse_arch": "spec",
    "load_arch": "spec",
    "resolve_arch": "spec",
    "derive": "engine",
    "verify": "verify",
    "generate": "codegen.module",
    "explain": "teach.api",
    "example": "teach.api",
    "VerifyReport": "verify",
    "Derivation": "model",
    "SymbackpropError": "errors",
    "SpecError": "errors",
    "DerivationError": "errors",
    "VerificationError": "errors",
    "GenerationError": "errors",
    "OutputError": "io",
    "ACTIVATIONS": "registry",
    "LOSSES": "registry",
}

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "Architecture",
    "Derivation",
    "DerivationError",
    "GenerationError",
    "OutputError",
    "SpecError",
    "SymbackpropError",
    "VerificationError",
    "VerifyReport",
    "derive",
    "example",
    "explain",
    "generate",
    "load_arch",
    "parse_arch",
    "resolve_arch",
    "verify",
]


def __getattr__(name):
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symbackprop' has no attribute {name!r}")
