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
# a buffer's alias: another buffer's memory as it is (a name), reshaped, or one step of it
_ALIAS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALIAS_RESHAPE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.reshape\((.*)\)")
_ALIAS_INDEX = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[([0-9]+)\]")
# functions whose result is boolean
_BOOLEAN = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
            "logical_and", "logical_or", "logical_not", "logical_xor"}
_LOGICAL = {"logical_and", "logical_or", "logical_not", "logical_xor"}


def _transposed(name: str) -> str:
    """The operand ``name`` transposed: X <-> X.T."""
    return name.removesuffix(".T") if name.endswith(".T") else f"{name}.T"


def _numpy_kernel(name):
    """The NumPy kernel ``name`` (of kernels, conv_kernels or rnn_kernels)."""
    from . import conv_kernels, kernels, rnn_kernels

    for module in (kernels, conv_kernels, rnn_kernels):
        if hasattr(module, name):
            return getattr(module, name)
    raise GenerationError(f"no kernel {name}")


class ArrayAPIBackend:
    """Pure functions of arrays of any array-API library (NumPy, PyTorch, CuPy, JAX, Dask
    through array-api-compat): every op a new array bound to the name the NumPy backend writes
    in place, with no ``out=``, no in-place update and no ufunc method, so that JAX can trace
    it; a kernel call is the call of its pure version (``xp_kernels``), which returns what the
    NumPy kernel writes.

    The NumPy module's memory is translated, not copied: the names of one memory (a buffer, the
    aliases that take its memory, its reshaped views) read the value last written to any of
    them, each in its own shape. A name read after another of its memory was written is bound
    there, as ``xp.reshape`` of the name written (or the name itself, or one step ``H[t, ...]``
    of a time-major buffer); a write starts no copy. ``buffers``: the plan's buffers by name,
    for what a name holds (another's memory, a constant (a 0-d array of the dtype), a 0/1 mask
    in a float buffer (a comparison's result is cast) or a boolean one (kept boolean), the shape
    a masked write starts from). ``shapes``: the parameters' shapes (a kernel's result may need
    its gradient's). ``rows``: the number of rows the cost averages over, as code of m.
    """

    name = "array-api"

    CALLS: ClassVar[dict] = {
        "dot": lambda a: f"{a[0]} @ {a[1]}",
        "sum_rows": lambda a: f"xp.sum({a[0]}, axis=0)",
        "sum_units": lambda a: f"xp.sum({a[0]}, axis=1, keepdims=True)",
        "max_units": lambda a: f"xp.max({a[0]}, axis=1, keepdims=True)",
        "rows": lambda a: f"xp.reshape({a[0]}, ({a[0]}.shape[0], -1))",
    }

    def __init__(self, buffers, shapes=None, rows="m"):
        self.buffers = {b.name: b for b in buffers}
        self.shapes = {f"d{name}": shape for name, shape in (shapes or {}).items()}
        self.rows = rows
        self.kernels: set[str] = set()  # the functions of xp_kernels the ops call
        self.start()

    # a function's body ------------------------------------------------------------------------
    def start(self, bound=()) -> None:
        """Begin a function in which the names ``bound`` (its arguments, and constants) are
        defined: op_lines then prints its ops in order."""
        self._bound = set()  # names bound in the function
        self._stamp = {}  # name -> the version of its memory it holds
        self._version = {}  # memory (its root buffer) -> how many writes it has had
        self._holder = {}  # memory -> the name last written
        self._booleans = set()
        for name in bound:
            self._wrote(name)

    def constants(self, used) -> list[str]:
        """The lines defining the plan's constants among the names ``used``, 0-d arrays of the
        parameters' dtype on their device (``dtype`` and ``device`` defined before them)."""
        return [f"{b.name} = xp.asarray({b.value}, dtype=dtype, device=device)"
                for b in self.buffers.values() if b.value is not None and b.name in used]

    def constant_names(self) -> list[str]:
        return [b.name for b in self.buffers.values() if b.value is not None]

    # memory -----------------------------------------------------------------------------------
    def _alias(self, name):
        """(kind, source, detail) of ``name``'s alias: ("name", X, None), ("reshape", X,
        dims) or ("index", X, step); None for a name that is its own memory."""
        buffer = self.buffers.get(name)
        if buffer is None or not buffer.alias:
            return None
        text = buffer.alias
        if _ALIAS_NAME.fullmatch(text):
            return "name", text, None
        for kind, pattern in (("reshape", _ALIAS_RESHAPE), ("index", _ALIAS_INDEX)):
            match = pattern.fullmatch(text)
            if match:
                return kind, match.group(1), match.group(2)
        raise GenerationError(f"the array-API backend cannot read the alias {name} = {text}")

    def _root(self, name) -> str:
        """The memory ``name`` is a name of: the buffer at the end of its aliases (one step of
        a buffer is a memory of its own, read from the buffer's)."""
        alias = self._alias(name)
        while alias is not None and alias[0] != "index":
            name = alias[1]
            alias = self._alias(name)
        return name

    def _shape(self, name) -> str:
        alias = self._alias(name)
        if alias is not None and alias[0] == "name":
            return self._shape(alias[1])
        if alias is not None and alias[0] == "reshape":
            return f"({alias[2]})"
        b = self.buffers[name]
        if b.shape is not None:
            return "(" + ", ".join(str(d) for d in b.shape) + ("," if len(b.shape) == 1 else "") + ")"
        return f"({b.rows}, {b.cols})"

    def _current(self, name) -> bool:
        root = self._root(name)
        return name in self._stamp and self._stamp[name] == self._version.get(root)

    def _wrote(self, name) -> None:
        """``name`` now holds its memory's new value."""
        alias = self._alias(name)
        if alias is not None and alias[0] == "index":
            raise GenerationError(f"the array-API backend cannot write {name}, a step of "
                                  f"{alias[1]}")
        root = self._root(name)
        self._version[root] = self._version.get(root, 0) + 1
        self._stamp[name] = self._version[root]
        self._holder[root] = name
        self._bound.add(name)

    def _value_of(self, name):
        """(lines, expression): ``name``'s current value where it is not bound to it yet —
        (``[]``, name) where it is, or where it is no name of a buffer (an argument, a number,
        a function)."""
        if self._current(name) or (name not in self.buffers and name not in self._stamp):
            return [], name
        alias = self._alias(name)
        if alias is not None and alias[0] == "index":
            lines, source = self._read(alias[1])
            return lines, f"{source}[{alias[2]}, ...]"
        root = self._root(name)
        holder = self._holder.get(root)
        if holder is None:
            raise GenerationError(f"the array-API backend reads {name} before anything "
                                  "writes it")
        same = self._shape(holder) == self._shape(name) if holder in self.buffers \
            and name in self.buffers else True
        return [], holder if same else f"xp.reshape({holder}, {self._shape(name)})"

    def _read(self, name):
        """(lines, name): the lines binding ``name`` to its memory's current value (none where
        it holds it), and the name to read."""
        lines, expr = self._value_of(name)
        if expr == name:
            return lines, name
        boolean = self._source_boolean(expr)
        lines.append(f"{name} = {expr}")
        root = self._root(name)
        self._stamp[name] = self._version.get(root)
        self._bound.add(name)
        if boolean:
            self._booleans.add(name)
        return lines, name

    def _source_boolean(self, expr) -> bool:
        match = _ALIAS_NAME.match(expr.removeprefix("xp.reshape("))
        return match is not None and match.group(0) in self._booleans

    def resolve(self, name: str) -> str:
        """An expression of ``name``'s current value, to return or to sum (one that needs no
        line before it)."""
        lines, expr = self._value_of(name)
        if lines:
            raise GenerationError(f"the array-API backend cannot return {name} in one "
                                  "expression")
        return expr

    # what a function needs ----------------------------------------------------------------------
    def _key(self, name) -> str:
        return self._root(name.removesuffix(".T"))

    def _outputs(self, op: Op) -> list[str]:
        if op.fn == "function":
            return [op.args[0]]
        if op.fn.startswith("_"):
            from . import xp_kernels

            given = self._given(op)
            return [given[param] for param in xp_kernels.RETURNS.get(op.fn, ())]
        return [op.dest.removesuffix(".T")]

    def _inputs(self, op: Op) -> list[str]:
        """The memories ``op`` reads (a step of a buffer reads the buffer's)."""
        if op.fn == "function":
            return []
        if op.fn.startswith("_"):
            from . import xp_kernels

            given, outs = self._given(op), set(xp_kernels.RETURNS.get(op.fn, ()))
            names = [given[p] for p in xp_kernels.signature(op.fn)
                     if not p.endswith("_shape") and p not in outs and p in given]
        else:
            names = [a.removesuffix(".T") for a in op.reads]
            names += [op.where, op.dest.removesuffix(".T")] if op.where else []
        return [key for name in names for key in self._memories(name)]

    def _memories(self, name) -> list[str]:
        """The memories reading ``name`` reads: its own, and a buffer's for one step of it."""
        alias = self._alias(name)
        own = [self._key(name)]
        return own + [self._key(alias[1])] if alias is not None and alias[0] == "index" else own

    def needed(self, ops, results) -> list[tuple[Op, frozenset]]:
        """The ops that compute ``results`` (names), in order, each with the outputs of a
        kernel call that nothing after it reads (printed as ``_``): an op no later op or result
        reads is left out (the cost function's forward pass need not compute an output that
        the cost reads through Z). Liveness by memory, last op first."""
        live = {key for name in results for key in self._memories(name)}
        kept = []
        for o in reversed(ops):
            outs = self._outputs(o)
            used = [w for w in outs if self._key(w) in live]
            if not used:
                continue
            if not o.where:
                live.difference_update(self._key(w) for w in outs)
            live.update(self._inputs(o))
            kept.append((o, frozenset(w for w in outs if w not in used)))
        return kept[::-1]

    def _given(self, op: Op) -> dict:
        """A kernel call's arguments by the NumPy kernel's parameter names."""
        import inspect

        return dict(zip(inspect.signature(_numpy_kernel(op.fn)).parameters, op.args))

    # ops --------------------------------------------------------------------------------------
    def op_lines(self, op: Op, unused=frozenset()) -> list[str]:
        """The lines of ``op``; ``unused``: a kernel's results to discard (``_``)."""
        if op.fn == "function":
            return self._function(op)
        if op.fn.startswith("_"):
            return self._kernel(op, unused)
        pre, args = [], []
        for a in op.reads:
            lines, name = self._read(a.removesuffix(".T"))
            pre += lines
            args.append(name + (".T" if a.endswith(".T") else ""))
        dest = op.dest
        if dest.endswith(".T") and op.fn == "dot":  # X.T = a b: X = bᵀ aᵀ, in this layout
            dest, args = dest.removesuffix(".T"), [_transposed(a) for a in reversed(args)]
        expr = self._expr(op, args)
        if dest.endswith(".T"):  # X.T written: X is the transpose of the value
            dest, expr = dest.removesuffix(".T"), f"({expr}).T"
        boolean = dest in self._booleans
        if op.where:  # the entries outside the mask keep what dest holds (zeros if nothing)
            lines, mask = self._read(op.where)
            pre += lines
            if dest in self._stamp or self._holder.get(self._root(dest)) is not None:
                lines, kept = self._read(dest)
                pre += lines
            else:
                kept = self._zeros(dest)
            expr = f"xp.where({mask}, {expr}, {kept})"
        elif op.fn in _BOOLEAN:
            boolean = self._is_boolean_buffer(dest)
            if not boolean:  # a 0/1 mask in a float buffer, as NumPy casts it there
                expr = f"xp.astype({expr}, dtype)"
        else:
            boolean = op.fn == "copyto" and args[0] in self._booleans
        self._wrote(dest)
        (self._booleans.add if boolean else self._booleans.discard)(dest)
        return [*pre, f"{dest} = {expr}"]

    def _kernel(self, op: Op, unused=frozenset()) -> list[str]:
        """A kernel call: its pure version's, with the NumPy kernel's arguments by name."""
        from . import xp_kernels

        name = op.fn
        if name not in xp_kernels.RETURNS:
            raise GenerationError(f"the array-API backend has no kernel {name} yet; use "
                                  "--backend numpy")
        given = self._given(op)
        pre, args = [], []
        for param in xp_kernels.signature(name):
            if param.endswith("_shape"):
                target = given[param.removesuffix("_shape")]
                args.append(str(self.shapes[target]) if target in self.shapes
                            else self._shape(target))
                continue
            lines, value = self._read(given[param])
            pre += lines
            args.append(value)
        outs = self._outputs(op)
        for out in outs:
            self._wrote(out)
            self._booleans.discard(out)
        self.kernels.add(name)
        targets = ", ".join("_" if out in unused else out for out in outs)
        return [*pre, f"{targets} = {name}(xp, {', '.join(args)})"]

    def _function(self, op: Op) -> list[str]:
        """A function of one step (``function`` op): its last parameter is what it writes;
        here it returns it, its body printed in a scope of its own."""
        name, *params = op.args
        saved = (self._bound, self._stamp, self._version, self._holder, self._booleans)
        self.start([*self.constant_names(), *params[:-1]])  # what its body may read
        body = []
        for o in op.body:
            body += self.op_lines(o)
        lines, result = self._read(params[-1])
        body += lines
        self._bound, self._stamp, self._version, self._holder, self._booleans = saved
        return [f"def {name}({', '.join(params[:-1])}):", *(f"    {line}" for line in body),
                f"    return {result}"]

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
        if fn in _OPERATORS:
            return _OPERATORS[fn].format(*(a if _ATOM.fullmatch(a) else f"({a})" for a in args))
        return f"xp.{_XP_NAMES.get(fn, fn)}({', '.join(args)})"

    # values -----------------------------------------------------------------------------------
    def value(self, value: Value) -> str:
        total = {"vdot": lambda a: f"xp.sum({a[0]} * {a[1]})",
                 "sum": lambda a: f"xp.sum({a[0]})"}[value.fn](
            [self.resolve(a) for a in value.args])
        rows = self.rows
        return {1: f"{total} / {rows}", -1: f"-{total} / {rows}"}.get(
            value.coeff, f"{number(value.coeff)} * {total} / {rows}")

    def penalty(self, penalty: Penalty | None) -> str:
        if penalty is None:
            return ""
        terms = " + ".join(f"xp.sum({w} * {w})" for w in penalty.weights)
        return f"{number(penalty.factor)} * ({terms}) / {self.rows}"
