"""Backends: a plan's operations (``ops.py``) printed as the code of one array library.

``NumPyBackend`` prints today's trainer: every op a NumPy call writing in place into a
preallocated buffer (outputs positional, ``where=`` masks, ufunc reductions). Each rule of the
vocabulary is one entry of a table; an elementwise function prints by its ufunc name.
"""
from __future__ import annotations

from .ops import Op, Penalty, Value
from .printer import number

# Ufuncs whose output NumPy takes by keyword only (np.minimum and np.maximum take out= by
# keyword once where= is given; kept by keyword always, as the printer always wrote them).
_OUT_BY_KEYWORD = ("minimum", "maximum")


def _where(op: Op) -> str:
    return f", where={op.where}" if op.where else ""


class NumPyBackend:
    """In-place NumPy: ``np.fn(args..., out)`` into the buffers ``_buffers`` allocates."""

    name = "numpy"

    #: the vocabulary's operations that are not a ufunc call of their own name
    CALLS = {
        "copyto": lambda op: f"np.copyto({op.dest}, {', '.join(op.reads)}{_where(op)})",
        "sum_units": lambda op: f"np.add.reduce({op.args[0]}, 1, None, {op.dest}, True)",
        "sum_rows": lambda op: f"np.add.reduce({op.args[0]}, 0, None, {op.dest})",
        "max_units": lambda op: f"np.maximum.reduce({op.args[0]}, 1, None, {op.dest}, True)",
        "dot": lambda op: f"np.dot({', '.join(op.args)})",
    }

    def lines(self, ops) -> list[str]:
        out = []
        for o in ops:
            out += self.op_lines(o)
        return out

    def op_lines(self, op: Op) -> list[str]:
        if op.fn == "function":
            name, *params = op.args
            return [f"def {name}({', '.join(params)}):",
                    *(f"    {line}" for line in self.lines(op.body))]
        return [self.call(op)]

    def call(self, op: Op) -> str:
        rule = self.CALLS.get(op.fn)
        if rule is not None:
            return rule(op)
        if op.fn.startswith("_"):  # a kernel of the module
            return f"{op.fn}({', '.join(op.args)})"
        if op.fn in _OUT_BY_KEYWORD or op.where:
            return f"np.{op.fn}({', '.join(op.reads)}, out={op.dest}{_where(op)})"
        return f"np.{op.fn}({', '.join(op.args)})"

    def value(self, value: Value) -> str:
        """The cost's total as an expression of the buffers."""
        total = {"vdot": lambda a: f"np.vdot({a[0]}, {a[1]})",
                 "sum": lambda a: f"{a[0]}.sum()"}[value.fn](value.args)
        return {1: f"{total} / m", -1: f"-{total} / m"}.get(
            value.coeff, f"{number(value.coeff)} * {total} / m")

    def penalty(self, penalty: Penalty | None) -> str:
        if penalty is None:
            return ""
        terms = " + ".join(f"np.vdot({w}, {w})" for w in penalty.weights)
        return f"{number(penalty.factor)} * ({terms}) / m"

    @staticmethod
    def buffer_line(buffer) -> str:
        """The line of _buffers() that makes ``buffer``, with its note as a comment."""
        if buffer.alias:
            line = f"{buffer.name} = {buffer.alias}"
        elif buffer.value is not None:
            line = f"{buffer.name} = np.array({buffer.value}, dtype)"
        elif buffer.shape is not None:
            line = f"{buffer.name} = np.empty({buffer.shape}, dtype)"
        else:
            kind = "bool" if buffer.boolean else "dtype"
            line = f"{buffer.name} = np.empty(({buffer.rows}, {buffer.cols}), {kind})"
        return f"{line}  # {buffer.note}" if buffer.note else line


NUMPY = NumPyBackend()
