"""The rules a derivation's steps follow, as a document states them: once each, numbered.

Every step of a derivation names its rule (``model.Step.rule``, a key of ``RULES``: the rules
are written down here and nowhere else). A document states each rule it uses once, in
mathematics (``statement``: text and SymPy pieces that each format's printer prints, in the
document's notation), numbered R1, R2, ... in the order of ``ORDER``;
a step's caption then refers to its rule by number (``caption``: "by (R1), the chain rule").
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import naming as N


class Over(sp.Expr):
    """``Σ_v body``: a sum over an index whose range is every value it takes (a rule's
    general statement, where the range is no particular size)."""

    def __new__(cls, body, *indices):
        return sp.Expr.__new__(cls, sp.sympify(body), *map(sp.sympify, indices))

    @property
    def body(self):
        return self.args[0]

    @property
    def indices(self):
        return self.args[1:]

    def _latex(self, printer):
        names = ",".join(printer._print(v) for v in self.indices)
        body = printer._print(self.body)
        if isinstance(self.body, sp.Add):
            body = printer._paren(body) if hasattr(printer, "_paren") else rf"\left({body}\right)"
        return rf"\sum_{{{names}}} {body}"

    def _sympystr(self, printer):
        names = ",".join(printer._print(v) for v in self.indices)
        return f"Σ_{names} {printer._print(self.body)}"

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        names = ",".join(printer._print(v).render(wrap_line=False) for v in self.indices)
        return prettyForm(*prettyForm(f"Σ_{names} ").right(printer._print(self.body)))


class Glyph(sp.Expr):
    """An operator named in a sentence (⊙), as each format writes it."""

    def __new__(cls, tex: str, text: str):
        return sp.Expr.__new__(cls, sp.Symbol(tex), sp.Symbol(text))

    def _latex(self, printer):
        return self.args[0].name

    def _sympystr(self, printer):
        return self.args[1].name

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(self.args[1].name)


HADAMARD = Glyph(r"\odot", "⊙")
_x, _v = sp.Symbol("x"), sp.Symbol("v")
_xs = sp.IndexedBase("x")


def _entry(M, unit, example, notation):
    """Entry (unit, example) of a matrix of the derivation: (unit, example) in Ng's notation,
    (example, unit) in the row one."""
    return M[unit, example] if notation == "ng" else M[example, unit]


def _cost_mean(d, over):
    i = d.example_index
    return sp.Eq(N.J, sp.Sum(N.L[i], (i, 0, d.m - 1)) / d.m, evaluate=False), over


def _error(d, pair: bool):
    g, nt = d.general, d.notation
    Z, dZ = _entry(g.Z, N.j, N.i, nt), _entry(g.dZ, N.j, N.i, nt)
    who = "one (example, step) pair" if pair else "one example"
    return ("the error of a quantity is ", d.m, (" times the derivative of the cost, the "
            f"derivative of the loss of {who}: "), sp.Eq(dZ, d.m * sp.Derivative(N.J, Z),
                                                        evaluate=False),
            ", so ", sp.Eq(sp.Derivative(N.J, Z), dZ / d.m, evaluate=False),
            ", and likewise for every quantity with an error")


def _linearity(d, pair: bool):
    mean, _ = _cost_mean(d, None)
    over = f"the {'(example, step) pairs' if pair else 'examples'}"
    return (f"the cost is the mean of the loss over {over}, ", mean,
            ", and differentiation is linear")


@dataclass(frozen=True)
class Rule:
    """A rule: how a caption names it, and what it says (pieces of text and mathematics,
    made for a derivation in its notation)."""

    name: str
    statement: object  # Derivation -> tuple of pieces


RULES = {
    "chain": Rule("the chain rule", lambda d: (
        "the chain rule: ", sp.Eq(sp.Derivative(N.J, _x), Over(
            sp.Derivative(N.J, _v) * sp.Derivative(_v, _x, evaluate=False), _v),
            evaluate=False),
        ", the sum over every quantity ", _v, " the network computes from ", _x)),
    "adjoint": Rule("the definition of the error", lambda d: _error(d, pair=False)),
    "adjoint_pairs": Rule("the definition of the error", lambda d: _error(d, pair=True)),
    "local": Rule("the local derivative", lambda d: (
        ("the local derivative: differentiate the forward definition of an entry (as written "
        "entry by entry above) with respect to the entry the gradient is of"),)),
    "insert": Rule("inserting the local derivative", lambda d: (
        "put each local derivative into the chain rule's sum",)),
    "kronecker": Rule("summing over the Kronecker deltas", lambda d: (
        "a sum over a Kronecker delta keeps the matching index alone: ",
        sp.Eq(Over(sp.KroneckerDelta(N.j, N.r) * _xs[N.j], N.j), _xs[N.r], evaluate=False))),
    "scale": Rule("the error of an example", lambda d: (
        "multiply by ", d.m, (": the error of one example (the definition of the error, "
        "the other way round)"),)),
    "scale_pairs": Rule("the error of a pair", lambda d: (
        "multiply by ", d.m, (": the error of one (example, step) pair (the definition of "
        "the error, the other way round)"),)),
    "output": Rule("the derivative through the output", lambda d: (
        "write the activation's derivative ", sp.Function("g")(_x).diff(_x),
        " through the layer's output where that is shorter, as the registry derives it",)),
    "penalty": Rule("the penalty's derivative", lambda d: (
        "the L2 penalty ", N.lam / (2 * d.m) * Over(sp.IndexedBase("W")[N.j, N.t] ** 2,
                                                    N.j, N.t),
        " of each weight array depends on its weights directly: its derivative ",
        N.lam / d.m * sp.IndexedBase("W")[N.r, N.s], " adds to the chain rule's part")),
    "vectorise": Rule("writing it as matrices", lambda d: (
        ("collect the entries into matrices: a sum over a shared index of products of "
        "entries is a matrix product, a product of entries at the same place is "), HADAMARD)),
    "linearity": Rule("linearity", lambda d: _linearity(d, pair=False)),
    "linearity_pairs": Rule("linearity", lambda d: _linearity(d, pair=True)),
    "substitute": Rule("substituting the output error", lambda d: (
        "put the output layer's error, derived above, into the equation",)),
    "simplify": Rule("simplifying", lambda d: ("simplify, entry by entry",)),
    "targets": Rule("targets that sum to 1", lambda d: (
        "the targets of each example sum to 1: ",
        sp.Eq(Over(_entry(d.Y, N.c, N.i, d.notation), N.c), 1, evaluate=False))),
}
# The order rules are numbered in (those a document uses): as a derivation meets them.
ORDER = ("chain", "adjoint", "adjoint_pairs", "local", "insert", "kronecker", "scale",
         "scale_pairs", "output", "penalty", "vectorise", "linearity", "linearity_pairs",
         "substitute", "simplify", "targets")


def numbered(used) -> dict:
    """Rule key -> its number in a document that uses the rules ``used``."""
    return {key: n for n, key in enumerate((k for k in ORDER if k in set(used)), start=1)}


@dataclass(frozen=True)
class Ref:
    """A piece of a sentence that refers to one of the document's numbered equations
    (BP1 ... BP4): each format writes the reference its way."""

    name: str


def caption(key: str, number: int, lhs=None, loss=None) -> tuple:
    """A step's caption as pieces: by (R2), the definition of the error; a local derivative
    (left side ``lhs``) names what it differentiates: the entry whose definition it is, or
    the loss ``loss``."""
    rule = RULES[key]
    pieces = [f"by (R{number}), {rule.name}"]
    if key == "local" and isinstance(lhs, sp.Derivative):
        of = lhs.expr
        pieces += [" of ", loss if of == N.J and loss is not None else of]
    return tuple(pieces)
