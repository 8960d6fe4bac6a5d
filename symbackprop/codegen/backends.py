"""Backends: a plan's operations (``ops.py``) printed as the code of one array library.

``NumPyBackend`` prints today's trainer: every op a NumPy call writing in place into a
preallocated buffer (outputs positional, ``where=`` masks, ufunc reductions). Each rule of the
vocabulary is one entry of a table; an elementwise function prints by its ufunc name.
"""
from __future__ import annotations

import re
from typing import ClassVar

from .ops import Op, Penalty, Value
from .printer import GenerationError, number

# Ufuncs whose output NumPy takes by keyword only (np.minimum and np.maximum take out= by
# keyword once where= is given; kept by keyword always, as the printer always wrote them).
_OUT_BY_KEYWORD = ("minimum", "maximum")


def _where(op: Op) -> str:
    return f", where={op.where}" if op.where else ""


class NumPyBackend:
    """In-place NumPy: ``np.fn(args..., out)`` into the buffers ``_buffers`` allocates."""

    name = "numpy"

    #: the vocabulary's operations that are not a ufunc call of their own name
    CALLS: ClassVar[dict] = {
        "copyto": lambda op: f"np.copyto({op.dest}, {', '.join(op.reads)}{_where(op)})",
        "sum_units": lambda op: f"np.add.reduce({op.args[0]}, 1, None, {op.dest}, True)",
        "sum_rows": lambda op: f"np.add.reduce({op.args[0]}, 0, None, {op.dest})",
        "max_units": lambda op: f"np.maximum.reduce({op.args[0]}, 1, None, {op.dest}, True)",
        "dot": lambda op: f"np.dot({', '.join(op.args)})",
        "rows": lambda op: f"{op.dest} = {op.args[0]}.reshape({op.args[0]}.shape[0], -1)",
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


# --- the Python array API ------------------------------------------------------------------------

# NumPy's ufunc names that the array API standard spells otherwise
_XP_NAMES = {"absolute": "abs", "power": "pow", "arctan": "atan", "arcsin": "asin",
             "arccos": "acos", "arctanh": "atanh", "arcsinh": "asinh", "arccosh": "acosh",
             "arctan2": "atan2"}
# arithmetic printed as Python operators (any array, 0-d array or Python number on either side)
_OPERATORS = {"add": "{0} + {1}", "subtract": "{0} - {1}", "multiply": "{0} * {1}",
              "divide": "{0} / {1}", "negative": "-{0}", "reciprocal": "1.0 / {0}"}
# an operand printed without parentheses next to an operator: a name, or a number
_ATOM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.T)?|-?[0-9.]+(e-?[0-9]+)?")
# kernels with an array-API version in xp_kernels (erf, erfc: the standard lacks them)
_XP_KERNELS = ("_erf", "_erfc")
# functions whose result is boolean
_BOOLEAN = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
            "logical_and", "logical_or", "logical_not", "logical_xor"}
_LOGICAL = {"logical_and", "logical_or", "logical_not", "logical_xor"}


def _transposed(name: str) -> str:
    """The operand ``name`` transposed: X <-> X.T."""
    return name.removesuffix(".T") if name.endswith(".T") else f"{name}.T"


class ArrayAPIBackend:
    """Pure functions of arrays of any array-API library (NumPy, PyTorch, CuPy, JAX, Dask
    through array-api-compat): every op a new array bound to the name the NumPy backend writes
    in place, with no ``out=``, no in-place update and no ufunc method, so that JAX can trace
    it. ``buffers``: the plan's buffers by name, for what a name holds — another's memory
    (an alias binds it where it is first read), a constant (a 0-d array of the dtype), a 0/1
    mask in a float buffer (a comparison's result is cast) or a boolean one (kept boolean),
    and the shape a masked write starts from.
    """

    name = "array-api"

    CALLS: ClassVar[dict] = {
        "dot": lambda a: f"{a[0]} @ {a[1]}",
        "sum_rows": lambda a: f"xp.sum({a[0]}, axis=0)",
        "sum_units": lambda a: f"xp.sum({a[0]}, axis=1, keepdims=True)",
        "max_units": lambda a: f"xp.max({a[0]}, axis=1, keepdims=True)",
    }

    def __init__(self, buffers):
        self.buffers = {b.name: b for b in buffers}
        self.kernels: set[str] = set()  # the functions of xp_kernels the ops call

    # a function's body ------------------------------------------------------------------------
    def start(self, bound=()) -> None:
        """Begin a function in which the names ``bound`` (its arguments, and constants) are
        defined: op_lines then prints its ops in order."""
        self._bound = set(bound)
        self._booleans = set()

    def constants(self, used) -> list[str]:
        """The lines defining the plan's constants among the names ``used``, 0-d arrays of the
        parameters' dtype on their device (``dtype`` and ``device`` defined before them)."""
        return [f"{b.name} = xp.asarray({b.value}, dtype=dtype, device=device)"
                for b in self.buffers.values() if b.value is not None and b.name in used]

    def constant_names(self) -> list[str]:
        return [b.name for b in self.buffers.values() if b.value is not None]

    def resolve(self, name: str) -> str:
        """The name holding ``name``'s value where it is read: an alias never written is its
        source's."""
        buffer = self.buffers.get(name)
        while name not in self._bound and buffer is not None and buffer.alias:
            name = buffer.alias
            buffer = self.buffers.get(name)
        return name

    def op_lines(self, op: Op) -> list[str]:
        if op.fn == "function" or (op.fn.startswith("_") and op.fn not in _XP_KERNELS):
            raise GenerationError(f"the array-API backend has no rule for {op.fn} yet (it "
                                  "prints dense networks of functions the standard has); use "
                                  "--backend numpy")
        pre, args = [], list(op.reads)
        for a in args:  # an alias read before it is written: bound to its source here
            base = a.removesuffix(".T")
            source = self.resolve(base)
            if source != base:
                pre.append(f"{base} = {source}")
                self._bound.add(base)
                if source in self._booleans:
                    self._booleans.add(base)
        dest = op.dest
        if dest.endswith(".T") and op.fn == "dot":  # X.T = a b: X = bᵀ aᵀ, in this layout
            dest, args = dest.removesuffix(".T"), [_transposed(a) for a in reversed(args)]
        expr = self._expr(op, args)
        if dest.endswith(".T"):  # X.T written: X is the transpose of the value
            dest, expr = dest.removesuffix(".T"), f"({expr}).T"
        boolean = dest in self._booleans
        if op.where:  # the entries outside the mask keep what dest held (nothing yet: zeros)
            kept = dest if dest in self._bound else self._zeros(dest)
            expr = f"xp.where({op.where}, {expr}, {kept})"
        elif op.fn in _BOOLEAN:
            boolean = self._is_boolean_buffer(dest)
            if not boolean:  # a 0/1 mask in a float buffer, as NumPy casts it there
                expr = f"xp.astype({expr}, dtype)"
        else:
            boolean = op.fn == "copyto" and args[0] in self._booleans
        (self._booleans.add if boolean else self._booleans.discard)(dest)
        self._bound.add(dest)
        return [*pre, f"{dest} = {expr}"]

    def _is_boolean_buffer(self, name) -> bool:
        buffer = self.buffers.get(name)
        return buffer is not None and buffer.boolean

    def _zeros(self, name) -> str:
        return f"xp.zeros({self._shape(name)}, dtype=dtype, device=device)"

    def _operand(self, fn, name) -> str:
        """A logical function reads a float 0/1 mask as booleans; arithmetic reads booleans as
        0/1 numbers."""
        if fn in _LOGICAL and name not in self._booleans and not self._is_boolean_buffer(name):
            return f"{name} != 0"
        if fn not in _BOOLEAN and fn != "copyto" and (name in self._booleans
                                                       or self._is_boolean_buffer(name)):
            return f"xp.astype({name}, dtype)"
        return name

    def _expr(self, op: Op, args) -> str:
        fn = op.fn
        args = [self._operand(fn, a) for a in args]
        if fn == "copyto":
            source = args[0]
            b = self.buffers.get(source)
            if b is not None and b.value is not None and not op.where:  # a constant, filled
                return f"xp.broadcast_to({source}, {self._shape(op.dest)})"
            return source
        if fn in self.CALLS:
            return self.CALLS[fn](args)
        if fn in _XP_KERNELS:  # the NumPy kernel's scratch arguments are not needed here
            self.kernels.add(fn)
            return f"{fn}(xp, {args[0]})"
        if fn in _OPERATORS:
            return _OPERATORS[fn].format(*(a if _ATOM.fullmatch(a) else f"({a})" for a in args))
        return f"xp.{_XP_NAMES.get(fn, fn)}({', '.join(args)})"

    def _shape(self, name) -> str:
        b = self.buffers[name]
        return b.shape if b.shape is not None else f"({b.rows}, {b.cols})"

    # values -----------------------------------------------------------------------------------
    def value(self, value: Value) -> str:
        total = {"vdot": lambda a: f"xp.sum({a[0]} * {a[1]})",
                 "sum": lambda a: f"xp.sum({a[0]})"}[value.fn](
            [self.resolve(a) for a in value.args])
        return {1: f"{total} / m", -1: f"-{total} / m"}.get(
            value.coeff, f"{number(value.coeff)} * {total} / m")

    def penalty(self, penalty: Penalty | None) -> str:
        if penalty is None:
            return ""
        terms = " + ".join(f"xp.sum({w} * {w})" for w in penalty.weights)
        return f"{number(penalty.factor)} * ({terms}) / m"
