"""The expression language of functions users write, parsed without executing anything.

An activation is an expression in ``z``; a loss is a per-output-unit expression in ``a`` (the
prediction) and ``y`` (the target). The text is parsed by Python's ``ast`` module (which only
builds a tree) and every node is checked against the table below before a SymPy expression is
built from it. SymPy's ``sympify``/``parse_expr`` are never called on user text: they ``eval``.

Allowed: numbers, ``pi``, ``e``, ``+ - * / **``, the functions of ``FUNCTIONS``, and
``where(cond, then, else)`` with one comparison ``< <= > >=`` as its condition.
"""
from __future__ import annotations

import ast
from fractions import Fraction

import sympy as sp

from .errors import SpecError

MAX_LENGTH = 2000  # characters of one definition
MAX_EXPONENT = 64  # |n| of a numeric literal's exponent and of an integer power


def _abs(x):
    from .registry import Abs

    return Abs(x)


def _sigmoid(x):
    return 1 / (1 + sp.exp(-x))


def _softplus(x):
    return sp.log(1 + sp.exp(x))


def _min(p, q):  # a comparison, not sp.Min: d/dx Min is a Heaviside with H(0) = 1/2
    return sp.Piecewise((p, p <= q), (q, True))


def _max(p, q):
    return sp.Piecewise((p, p >= q), (q, True))


# name -> (number of arguments, builder). One row a function; the README lists this table.
FUNCTIONS = {
    "exp": (1, sp.exp), "log": (1, sp.log), "sqrt": (1, sp.sqrt), "abs": (1, _abs),
    "sin": (1, sp.sin), "cos": (1, sp.cos), "tanh": (1, sp.tanh), "erf": (1, sp.erf),
    "sigmoid": (1, _sigmoid), "softplus": (1, _softplus),
    "min": (2, _min), "max": (2, _max),
}
CONSTANTS = {"pi": sp.pi, "e": sp.E}
_COMPARISONS = {ast.Lt: sp.StrictLessThan, ast.LtE: sp.LessThan,
                ast.Gt: sp.StrictGreaterThan, ast.GtE: sp.GreaterThan}
_BINARY = {ast.Add: lambda p, q: p + q, ast.Sub: lambda p, q: p - q,
           ast.Mult: lambda p, q: p * q, ast.Div: lambda p, q: p / q}
_NODE_NAMES = {ast.Attribute: "attribute access '.'", ast.Subscript: "a subscript '[...]'",
               ast.Lambda: "'lambda'", ast.Starred: "'*'", ast.List: "a list",
               ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set",
               ast.BoolOp: "'and'/'or'", ast.IfExp: "'... if ... else ...'",
               ast.NamedExpr: "':='", ast.JoinedStr: "an f-string", ast.Await: "'await'",
               ast.Compare: "a comparison outside where(...)"}


def parse(text, variables, what: str = "expression") -> sp.Expr:
    """The SymPy expression of ``text``; ``variables`` maps allowed names to their symbols.

    Raises SpecError naming the offending token and what is allowed.
    """
    if not isinstance(text, str):
        raise SpecError(f"{what}: expected an expression as a string, got {type(text).__name__}")
    if not text.strip():
        raise SpecError(f"{what}: empty expression; write e.g. 'z*sigmoid(z)'")
    if len(text) > MAX_LENGTH:
        raise SpecError(f"{what}: expression of {len(text)} characters; at most {MAX_LENGTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        col = f" at column {exc.offset}" if exc.offset else ""
        raise SpecError(f"{what}: not an expression ({exc.msg}{col}) in {text!r}") from None
    except (RecursionError, MemoryError, ValueError):
        raise SpecError(f"{what}: expression nested too deeply or malformed: {text[:40]!r}...") \
            from None
    builder = _Builder(variables, what, text)
    for node in ast.walk(tree):  # private and dunder names first: name the token itself
        name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
        if isinstance(name, str) and name.startswith("_"):
            builder.fail(f"the name {name!r}", "names starting with '_' are never allowed")
    try:
        return builder.build(tree.body)
    except RecursionError:
        raise SpecError(f"{what}: expression nested too deeply") from None


class _Builder:
    def __init__(self, variables, what, text):
        self.variables, self.what, self.text = variables, what, text

    def fail(self, token: str, hint: str = ""):
        allowed = ("allowed: numbers, pi, e, + - * / **, "
                   f"{', '.join(sorted(FUNCTIONS))}, where(cond, then, else) with < <= > >=, "
                   f"and the variable{'s' if len(self.variables) > 1 else ''} "
                   f"{', '.join(sorted(self.variables))}")
        raise SpecError(f"{self.what}: {token} is not allowed in {self.text!r}"
                        f"{'; ' + hint if hint else ''} ({allowed})")

    def build(self, node, condition=False):
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            self.fail(_NODE_NAMES.get(type(node), f"'{type(node).__name__}'"))
        return method(node)

    def _Constant(self, node):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = ("a string" if isinstance(value, (str, bytes))
                    else f"the complex literal {value!r}" if isinstance(value, complex)
                    else repr(value))
            self.fail(kind)
        source = ast.get_source_segment(self.text.strip(), node) or repr(value)
        return _number(source, self)

    def _Name(self, node):
        name = node.id
        if name.startswith("_"):
            self.fail(f"the name {name!r}", "names starting with '_' are never allowed")
        if name in self.variables:
            return self.variables[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS or name == "where":
            self.fail(f"the function {name!r} without arguments", f"write {name}(...)")
        self.fail(f"the unknown symbol {name!r}")

    def _UnaryOp(self, node):
        if isinstance(node.op, ast.USub):
            return -self.build(node.operand)
        if isinstance(node.op, ast.UAdd):
            return self.build(node.operand)
        self.fail(f"the operator {type(node.op).__name__!r}")

    def _BinOp(self, node):
        if isinstance(node.op, ast.Pow):
            base, power = self.build(node.left), self.build(node.right)
            if power.is_Number and abs(power) > MAX_EXPONENT:
                self.fail(f"the power {power}", f"powers are limited to ±{MAX_EXPONENT}")
            return base ** power
        rule = _BINARY.get(type(node.op))
        if rule is None:
            symbol = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&",
                      ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}
            self.fail(f"the operator {symbol.get(type(node.op), type(node.op).__name__)!r}",
                      "use ** for powers" if isinstance(node.op, ast.BitXor) else "")
        return rule(self.build(node.left), self.build(node.right))

    def _Call(self, node):
        if not isinstance(node.func, ast.Name):
            self.fail("a call of something other than a function name")
        name = node.func.id
        if node.keywords:
            self.fail(f"keyword arguments to {name}()")
        if name == "where":
            if len(node.args) != 3:
                self.fail(f"where() with {len(node.args)} arguments", "write where(cond, then, else)")
            cond = self._condition(node.args[0])
            then, other = self.build(node.args[1]), self.build(node.args[2])
            return sp.Piecewise((then, cond), (other, True))
        if name not in FUNCTIONS:
            self.fail(f"the function {name!r}" if not name.startswith("_")
                      else f"the name {name!r}")
        arity, builder = FUNCTIONS[name]
        if len(node.args) != arity:
            self.fail(f"{name}() with {len(node.args)} argument{'s' * (len(node.args) != 1)}",
                      f"{name} takes {arity}")
        return builder(*[self.build(arg) for arg in node.args])

    def _condition(self, node):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            self.fail("a condition that is not one comparison",
                      "where's first argument is e.g. z > 0")
        rule = _COMPARISONS.get(type(node.ops[0]))
        if rule is None:
            self.fail(f"the comparison {type(node.ops[0]).__name__!r}", "use < <= > >=")
        return rule(self.build(node.left), self.build(node.comparators[0]))


def _number(source: str, builder) -> sp.Rational:
    """A literal as an exact rational (0.1 is 1/10), with a bounded exponent."""
    text = source.replace("_", "").lower()
    if text.startswith(("0x", "0o", "0b")):
        builder.fail(f"the literal {source!r}", "write numbers in decimal")
    if "j" in text:
        builder.fail(f"the complex literal {source!r}")
    mantissa, _, exponent = text.partition("e")
    if exponent and (not exponent.lstrip("+-").isdigit() or len(exponent.lstrip("+-")) > 3
                     or abs(int(exponent)) > MAX_EXPONENT):
        builder.fail(f"the literal {source!r}", f"exponents are limited to ±{MAX_EXPONENT}")
    if len(mantissa) > 60:
        builder.fail(f"the literal {source[:20]!r}...", "at most 60 digits")
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        builder.fail(f"the literal {source!r}")
    return sp.Rational(value.numerator, value.denominator)
