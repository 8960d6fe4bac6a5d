"""Printers for teaching documents: the project's printers, plus what a worked example needs.

``TeachLatexPrinter`` is the derivation's ``DerivationLatexPrinter`` (W^{[2]}, ⊙, ᵀ, 1_m, sums,
Iverson brackets, activation names from the registry); ``TeachTextPrinter`` is the one-line
``TextPrinter`` (products side by side, powers as superscripts). Each adds only what teaching
needs: entries of concrete matrices (W[2][0,1], W^{[2]}_{0,1}), summation ranges, a path as the
chain of its local derivatives in order, and numbers printed exactly (0.55, 1/3) or, where a
value is not rational, rounded to a stated number of significant digits. A constant of an
activation given with many decimal places (SELU's 1.0507009873...) prints as that decimal, not
as a fraction of two long integers. The LaTeX printer names activations by the operators of
``registry.latex_names(arch)``, the user's functions included.
"""
from __future__ import annotations

from typing import ClassVar

import sympy as sp

from .. import naming as N
from ..printing.entrywise import decimal_text as long_decimal
from ..printing.entrywise import entry_atoms
from ..printing.latex import DerivationLatexPrinter
from ..printing.linear import TextPrinter
from ..registry import latex_names
from .numbers import PRINTED_DIGITS, decimal_text, matrix_texts

#: Symbols printed as their Greek letter in text: the learning rate, a kernel window's offsets,
#: a time step.
_GREEK = {"alpha": "α", "mu": "μ", "nu": "ν", "tau": "τ"}

#: A matrix of numbers wider than this many characters is set in script size (LaTeX).
WIDE_MATRIX = 60
_TEXT_RELATION = {"<=": "≤", ">=": "≥"}
_TEX_RELATION = {"<=": r"\leq", ">=": r"\geq"}

#: Arrays whose first index is the example: with one example (``one_example``) it is left out.
_PER_EXAMPLE = ("A", "Z", "dA", "dZ", "M", "H", "dH")


def _array_kind(base) -> str | None:
    """``"W"`` for the array ``W[1]`` (an IndexedBase named KIND[LABEL]), else None."""
    kind, label = N.split(str(base.label))
    return kind if label is not None else None


def _one_example(expr, settings):
    """An entry of a feature map of one example without its example index 0, or None."""
    if not settings.get("one_example"):
        return None
    shape = expr.base.shape
    if _array_kind(expr.base) in _PER_EXAMPLE and shape and shape[0] == 1 \
            and expr.indices[0] == 0:
        return sp.IndexedBase(expr.base.label)[expr.indices[1:]]
    return None


def solved_ranges(cond) -> list | None:
    """A range condition whose sizes are all filled in, each part solved for its one index:
    1 - τ >= 0 (τ + 1 <= T - 1 with T = 3) as [(τ, "<=", 1)]; None when a part holds a size
    or more than one index (then the derivation's printers show it)."""
    from ..printing.entrywise import INDEX_SYMBOLS

    out = []
    for part in (cond.args if isinstance(cond, sp.And) else (cond,)):
        if not isinstance(part, sp.core.relational.Relational):
            return None
        if isinstance(part, (sp.GreaterThan, sp.StrictGreaterThan)):
            d = part.lhs - part.rhs
        elif isinstance(part, (sp.LessThan, sp.StrictLessThan)):
            d = part.rhs - part.lhs
        else:
            return None
        d = sp.expand(d - 1 if isinstance(part, (sp.StrictGreaterThan, sp.StrictLessThan))
                      else d)  # d >= 0, the indices being integers
        symbols = d.free_symbols
        if len(symbols) != 1 or not symbols <= set(INDEX_SYMBOLS):
            return None
        index = next(iter(symbols))
        slope, rest = d.coeff(index), d.subs(index, 0)
        if slope not in (1, -1) or sp.expand(d - slope * index - rest) != 0:
            return None
        out.append((index, "<=", rest) if slope == -1 else (index, ">=", -rest))
    return out


def _scalars_and_matrices(expr):
    scalars = [f for f in expr.args if not getattr(f, "is_Matrix", False)]
    mats = [f for f in expr.args if getattr(f, "is_Matrix", False)]
    return sp.Mul(*scalars), mats


def _needs_link_brackets(factor) -> bool:
    """A factor of a chain that a · next to it would split: a sum or a negative."""
    return isinstance(factor, sp.Add) or factor.could_extract_minus_sign()


class TeachTextPrinter(TextPrinter):
    """Plain text of concrete entries: ``W[2][0,1]``, ``b[1][2]``, ``α``."""

    _default_settings: ClassVar[dict] = {**TextPrinter._default_settings, "digits": PRINTED_DIGITS,
                                         "one_example": False}

    def _print_Indexed(self, expr):
        # An entry of a feature map or kernel: W[1][0,0,1,1], as a matrix entry W[2][0,1] prints.
        single = _one_example(expr, self._settings)
        if single is not None:
            return self._print_Indexed(single)
        if _array_kind(expr.base) is not None and all(i.is_Symbol or i.is_Integer
                                                      for i in expr.indices):
            inside = ",".join(self._print(i) for i in expr.indices)
            return f"{expr.base.label}[{inside}]"
        return super()._print_Indexed(expr)

    def map_slice(self, array, *fixed) -> str:
        """One map of a 4-D array, rows by columns: ``Z[1][0,1,:,:]``."""
        return f"{array}[{','.join(str(i) for i in fixed)},:,:]"

    def step_slice(self, array, tau) -> str:
        """One time step of a sequence array, a column per sample: ``H[1]<2>``."""
        return f"{array}<{self._print(tau)}>"

    def norm(self, text) -> str:
        """The spectral norm of what ``text`` prints: ``‖J<2>‖₂``."""
        return f"‖{text}‖₂"

    def _print_MatrixElement(self, expr):
        _rows, cols = expr.parent.shape
        indices = [expr.indices[0]] if cols == 1 else list(expr.indices)
        # An index that is an expression (flatten's unit 4 c + 2 h + w) keeps its commas apart.
        sep = "," if all(i.is_Symbol or i.is_Integer for i in indices) else ", "
        inside = sep.join(self._print(i) for i in indices)
        return f"{self._print(expr.parent)}[{inside}]"

    def _print_Piecewise(self, expr):
        # A derived range with every size filled in, solved for its index: [τ ≤ 1].
        from ..printing.entrywise import range_piecewise

        ranged = range_piecewise(expr)
        solved = solved_ranges(ranged[1]) if ranged is not None else None
        if solved:
            parts = [f"[{self._print(index)} {_TEXT_RELATION[op]} {self._print(bound)}]"
                     for index, op, bound in solved]
            body = ranged[0]
            return " ".join([*parts, self._factor(body)] if body != 1 else parts)
        return super()._print_Piecewise(expr)

    def _print_Symbol(self, expr):
        if expr.name in _GREEK and expr not in self._bindings:
            return _GREEK[expr.name]
        return super()._print_Symbol(expr)

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Mul(self, expr):
        # A product of numbers and symbols alone: side by side over one slash, λ/(2 m), α λ/m.
        if (self._bindings and expr.free_symbols & set(self._bindings)) or entry_atoms(expr) \
                or not expr.free_symbols:
            return super()._print_Mul(expr)
        if expr.could_extract_minus_sign():
            return "-" + self._print(-expr)
        num, den = expr.as_numer_denom()
        text = self._side(num)
        if den == 1:
            return text
        den_text = self._side(den)
        return f"{text}/({den_text})" if isinstance(den, sp.Mul) else f"{text}/{den_text}"

    def _side(self, expr) -> str:
        factors = sorted(sp.Mul.make_args(expr), key=lambda f: (not f.is_Number,
                                                                sp.default_sort_key(f)))
        return " ".join(f"({self._print(f)})" if isinstance(f, sp.Add) else self._print(f)
                        for f in factors)

    def _print_MatAdd(self, expr):
        parts = []
        for term in expr.args:
            coeff, mats = _scalars_and_matrices(term) if isinstance(term, sp.MatMul) \
                else (sp.Integer(1), [term])
            if coeff.could_extract_minus_sign():
                parts.append(("-", self._print(sp.MatMul(-coeff, *mats))))
            else:
                parts.append(("+", self._print(term)))
        text = parts[0][1] if parts[0][0] == "+" else f"-{parts[0][1]}"
        return text + "".join(f" {sign} {body}" for sign, body in parts[1:])

    def _print_MatMul(self, expr):
        coeff, mats = _scalars_and_matrices(expr)
        if coeff.is_Symbol:
            return " ".join([self._print(coeff)] + [self._print(M) for M in mats])
        return super()._print_MatMul(expr)

    def chain(self, factors, limits=()) -> str:
        """The local derivatives along a path, in its order: ``A[0][1] · A[1][0] (1 - A[1][0])``;
        with ``limits``, summed over every path: ``Σ[u_2=0..1] A[0][1] · ...``."""
        text = " · ".join(f"({self._print(f)})" if _needs_link_brackets(f) else self._print(f)
                          for f in factors)
        return f"{self._sum_sign(limits)} {text}" if limits else text

    # numbers -----------------------------------------------------------------------------
    def number(self, value) -> str:
        return decimal_text(value, self._settings["digits"])[0]

    def matrix_rows(self, M) -> list[str]:
        """A matrix of numbers as aligned rows ``[ 0.55  -1.2 ]``, every entry in one
        representation (decimals, or fractions when all are exact and one needs it)."""
        texts, _ = matrix_texts(list(M), self._settings["digits"])
        cols = M.shape[1]
        cells = [texts[i * cols:(i + 1) * cols] for i in range(M.shape[0])]
        widths = [max(len(row[j]) for row in cells) for j in range(M.shape[1])]
        return ["[ " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths)) + " ]"
                for row in cells]


class TeachLatexPrinter(DerivationLatexPrinter):
    """The derivation's LaTeX (``W^{[2]}``, ``\\odot``, ``\\mathbf{1}_{m}``, ``[Z > 0]``), plus what
    a worked example needs: entries of concrete matrices (``W^{[2]}_{0,1}``), summation ranges
    (``\\sum_{j=0}^{1}``), a sample's part of a gradient, and numbers exact or rounded."""

    _default_settings: ClassVar[dict] = {
        **DerivationLatexPrinter._default_settings, "digits": PRINTED_DIGITS,
        "function_names": latex_names(), "one_example": False,
        "tex_lengths": True}  # TeX length assignments (\arraycolsep=2pt); not for KaTeX

    def _print_Indexed(self, expr):
        single = _one_example(expr, self._settings)
        if single is not None:
            return self._print_Indexed(single)
        if _array_kind(expr.base) is not None and all(i.is_Symbol or i.is_Integer
                                                      for i in expr.indices):
            # Concrete or single indices with commas, as a matrix entry's: W^{[1]}_{0,0,1,1}.
            inside = ",".join(self._print(i) for i in expr.indices)
            return self._name(str(expr.base.label), sub=inside)
        return super()._print_Indexed(expr)

    def _ranges(self, cond) -> list[str]:
        # A derived range with every size filled in, solved for its index: τ \\leq 1.
        solved = solved_ranges(cond)
        if solved:
            return [rf"{self._print(index)} {_TEX_RELATION[op]} {self._print(bound)}"
                    for index, op, bound in solved]
        return super()._ranges(cond)

    def map_slice(self, array, *fixed) -> str:
        """One map of a 4-D array, rows by columns: ``Z^{[1]}_{0,1,:,:}``."""
        return self._name(str(array), sub=",".join(str(i) for i in fixed) + ",:,:")

    def step_slice(self, array, tau) -> str:
        r"""One time step of a sequence array, a column per sample: ``H^{[1]\langle 2\rangle}``
        (Ng's ⟨t⟩ for a time step)."""
        return self._name(str(array), sup=rf"\langle {self._print(tau)}\rangle")

    def norm(self, text) -> str:
        return rf"\left\lVert {text} \right\rVert_{{2}}"

    @classmethod
    def for_arch(cls, arch, settings=None) -> TeachLatexPrinter:
        """A printer that names every activation of ``arch``, the user's included."""
        return cls({**(settings or {}), "function_names": latex_names(arch)})

    def _with_coefficient(self, coeff, text) -> str:
        decimal = long_decimal(coeff)
        if decimal is not None:
            return f"{decimal} {text}" if text else decimal
        return super()._with_coefficient(coeff, text)

    def _scalar_factor(self, c) -> str:
        decimal = long_decimal(c)
        return decimal if decimal is not None else super()._scalar_factor(c)

    def _indices(self, expr) -> str:
        # Concrete indices run together (W_{01}); a comma keeps them apart: W^{[2]}_{0,1}.
        _rows, cols = expr.parent.shape
        indices = [expr.indices[0]] if cols == 1 else list(expr.indices)
        return ",".join(self._print(i) for i in indices)

    def _sum_sign(self, limits) -> str:
        # With concrete sizes the range says how many terms a sum has: \sum_{j=0}^{1}.
        return r" ".join(rf"\sum_{{{self._print(v)}={self._print(lo)}}}^{{{self._print(hi)}}}"
                         for v, lo, hi in reversed(limits))

    def chain(self, factors, limits=()) -> str:
        """The local derivatives along a path, in its order, joined by ``\\cdot``; with
        ``limits``, summed over every path."""
        text = r" \cdot ".join(rf"\left({self._print(f)}\right)" if _needs_link_brackets(f)
                               else self._print(f) for f in factors)
        return f"{self._sum_sign(limits)} {text}" if limits else text

    def of_sample(self, matrix, i) -> str:
        """``dW^{[2](i)}``: the part of a gradient that sample i contributes."""
        return self._name(matrix.name, sup=f"({i})")

    # numbers -----------------------------------------------------------------------------
    def number(self, value) -> str:
        return self._tex_number(decimal_text(value, self._settings["digits"])[0])

    @staticmethod
    def _tex_number(text: str) -> str:
        """0.55, \\tfrac{1}{3}, 1.5 \\cdot 10^{-30}."""
        if "/" in text:
            p, q = text.lstrip("-").split("/")
            return ("-" if text.startswith("-") else "") + rf"\tfrac{{{p}}}{{{q}}}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
        return text

    def number_matrix(self, M) -> str:
        """A matrix of numbers, every entry in one representation."""
        texts, _ = matrix_texts(list(M), self._settings["digits"])
        cols = M.shape[1]
        cells = [self._tex_number(t) for t in texts]
        # a matrix wider than a line of the page (many samples) is set in a smaller size
        width = sum(max(len(cells[i * cols + j]) for i in range(M.shape[0]))
                    for j in range(cols)) + 1.5 * cols
        if width > WIDE_MATRIX:
            cells = [rf"\scriptstyle {cell}" for cell in cells]
        rows = [" & ".join(cells[i * cols:(i + 1) * cols]) for i in range(M.shape[0])]
        # an array, not bmatrix: any number of columns (amsmath's matrices stop at 10 unless
        # the preamble says otherwise, which a fragment cannot), numbers aligned right; a wide
        # one's columns closer together too
        tighter = r"\arraycolsep=2pt" if width > WIDE_MATRIX and self._settings["tex_lengths"] \
            else ""
        return (r"\left[" + tighter + r"\begin{array}{" + "r" * cols + "} "
                + r" \\ ".join(rows) + r" \end{array}\right]")
