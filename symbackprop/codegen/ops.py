"""The plan's operations: what a generated step computes, as data a backend prints.

The generator (``generator.py`` and the planners of feature and recurrent layers) turns a
derivation into blocks of ``Op``s; a backend (``backends.py``) prints them: the NumPy backend
as in-place calls into preallocated buffers, the array-API backend as pure functions of
arrays of any array-API library. Nothing here knows either library.

An ``Op`` is ``fn`` applied to ``args``, names of arrays (or of 0-d constants, or a number's
literal), the last one the array it writes; ``where`` restricts the write to the entries
where a boolean mask holds. The vocabulary:

- an elementwise function by its NumPy ufunc name (``add``, ``exp``, ``greater``, ...), and
  ``copyto`` (args: source, dest);
- ``dot`` (a, b, dest): the matrix product; an operand named ``X.T`` is X transposed, and a
  dest named ``X.T`` means X is the transpose of the product (NumPy writes it through the
  transposed view: a weight the flat vector stores as its transpose);
- ``sum_rows`` (x, dest): the sum over the examples (axis 0), ``sum_units`` and ``max_units``
  (x, dest): the sum or maximum over the units of each example, kept as a column;
- ``rows`` (x, dest): x seen as one row an example (an image's (m, C, H, W) as (m, C·H·W));
- a kernel, by a name beginning with ``_`` (``_erf``, ``_conv2d_forward``): a function of the
  module called with ``args`` as they are;
- ``function`` (name, *params) with ``body``: a function of one step defined in place (a
  recurrent layer's map of one time step).

A ``Value`` is a scalar the cost is made of: ``coeff * fn(args) / m``, ``fn`` ``vdot`` (the
sum of the entrywise product of two arrays) or ``sum`` (of one array's entries), plus the L2
penalty ``Penalty``: ``factor * (sum of the weights' squares) / m``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    """One operation: ``fn(*args)`` writing its last argument (see the module's vocabulary)."""

    fn: str
    args: tuple[str, ...] = ()
    where: str | None = None
    body: tuple[Op, ...] = ()

    @property
    def dest(self) -> str | None:
        """The array the operation writes (kernels may write others among their args)."""
        return self.args[-1] if self.args and self.fn != "function" else None

    @property
    def reads(self) -> tuple[str, ...]:
        return self.args[:-1] if self.fn != "function" else ()


def op(fn: str, *args, where: str | None = None) -> Op:
    """An Op with its arguments as text (numbers as Python writes them)."""
    return Op(fn, tuple(str(a) for a in args), where)


@dataclass(frozen=True)
class Value:
    """``coeff * fn(*args) / m``: the cost's total over examples and units."""

    fn: str  # "vdot" or "sum"
    args: tuple[str, ...]
    coeff: float = 1.0


@dataclass(frozen=True)
class Penalty:
    """``factor * (sum over ``weights`` of the sum of their squared entries) / m``."""

    factor: float
    weights: tuple[str, ...]
