"""Exceptions raised by symbackprop. Each names what is wrong and what would be right."""


class SymbackpropError(Exception):
    """Base class: every error symbackprop raises on bad input derives from it."""


class SpecError(SymbackpropError, ValueError):
    """An architecture or loss specification is invalid."""


class DerivationError(SymbackpropError):
    """The engine met an expression it has no rule for."""


class VerificationError(SymbackpropError):
    """A derived gradient disagrees with direct differentiation."""


class GenerationError(SymbackpropError, ValueError):
    """The code generator cannot print this trainer: an option it does not know, or an
    expression of the derivation it has no rule for."""
