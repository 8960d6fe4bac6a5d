"""Long displayed equations broken across lines, at breaks the printer chooses.

A LaTeX document can land in a narrow column (a two-column paper) where TeX does not break
displayed mathematics by itself. ``width`` estimates how wide TeX sets a piece of math, from
Computer Modern's character widths and TeX's spacing between atoms (ordinary, operator,
binary, relation, opening, closing, punctuation, inner) in display, text, script and
scriptscript styles; ``break_display`` splits the right side of an aligned row into lines
that fit a width: before a binary operator (+, −, ⊙, ⊘) or a relation at the outer level,
else between the factors of a product (where the printer puts a thin space), outer
parentheses first. The breaks are legal wherever they fall: only plain parentheses, never
\\left ... \\right, are crossed. The estimate errs wide, so that lines fit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# How a continuation line starts in an aligned display: under the first line's right side,
# indented by a quad (its operator then reads as binary). A relation starts its line under
# the first relation instead.
CONTINUATION = r" \\ &\quad "
RELATION_CONTINUATION = r" \\ &"

# --- Computer Modern at 10pt: widths in points -----------------------------------------------
_ITALIC = dict(zip("abcdefghijklmnopqrstuvwxyz",
                   (5.29, 4.29, 4.33, 5.2, 4.66, 4.9, 4.77, 5.76, 3.45, 4.12, 5.21, 2.98, 8.78,
                    6.0, 4.85, 5.03, 4.46, 4.51, 4.69, 3.61, 5.72, 4.85, 7.16, 5.72, 4.9, 4.65)))
_ITALIC.update(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   (7.5, 7.59, 7.15, 8.28, 7.38, 6.43, 7.86, 8.31, 4.4, 5.55, 8.49, 6.81, 9.7,
                    8.03, 7.63, 6.42, 7.9, 7.59, 6.13, 5.84, 6.83, 5.83, 9.44, 8.28, 5.81, 6.83)))
_CAPITAL_CORRECTION = {"A": 0.0, "G": 0.0, "L": 0.0, "Q": 0.0, "R": 0.1, "D": 0.3, "O": 0.3,
                       "F": 1.4, "P": 1.4, "T": 1.4, "W": 1.4, "V": 2.2, "Y": 2.2}
_ROMAN = dict(zip("abcdefghijklmnopqrstuvwxyz",
                  (5.0, 5.56, 4.44, 5.56, 4.44, 3.06, 5.0, 5.56, 2.78, 3.06, 5.28, 2.78, 8.33,
                   5.56, 5.0, 5.56, 5.28, 3.92, 3.94, 3.89, 5.56, 5.28, 7.22, 5.28, 5.28, 4.44)))
_ROMAN.update(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                  (7.5, 7.08, 7.22, 7.64, 6.81, 6.53, 7.85, 7.5, 3.61, 5.14, 7.78, 6.25, 9.17,
                   7.5, 7.78, 6.81, 7.78, 7.36, 5.56, 7.22, 7.5, 7.5, 10.28, 7.5, 7.5, 6.11)))
_ROMAN.update({d: 5.0 for d in "0123456789"})
_ROMAN.update({" ": 3.33, "-": 3.33, ",": 2.78, ".": 2.78, "(": 3.89, ")": 3.89, ":": 2.78,
               "'": 2.78, "/": 5.0, "=": 7.78, "+": 7.78, "[": 2.78, "]": 2.78})
_TT = 5.25  # every character of typewriter type

ORD, OP, BIN, REL, OPEN, CLOSE, PUNCT, INNER = range(8)
# Characters: (class, width).
_CHARS = {**{d: (ORD, 5.0) for d in "0123456789"},
          "+": (BIN, 7.78), "-": (BIN, 7.78), "*": (BIN, 5.0), "=": (REL, 7.78),
          "<": (REL, 7.78), ">": (REL, 7.78), ":": (REL, 2.78), "(": (OPEN, 3.89),
          ")": (CLOSE, 3.89), "[": (OPEN, 2.78), "]": (CLOSE, 2.78), ",": (PUNCT, 2.78),
          ";": (PUNCT, 2.78), ".": (ORD, 2.78), "/": (ORD, 5.0), "|": (ORD, 2.78),
          "!": (CLOSE, 2.78), "'": (ORD, 2.75)}
# Commands that are one symbol: (class, width).
_SYMBOLS = {
    "alpha": (ORD, 6.4), "beta": (ORD, 5.66), "gamma": (ORD, 5.17), "delta": (ORD, 4.44),
    "epsilon": (ORD, 4.05), "varepsilon": (ORD, 4.66), "zeta": (ORD, 4.37), "eta": (ORD, 4.97),
    "theta": (ORD, 4.69), "kappa": (ORD, 5.76), "lambda": (ORD, 5.83), "mu": (ORD, 6.02),
    "nu": (ORD, 4.96), "xi": (ORD, 4.38), "pi": (ORD, 5.7), "rho": (ORD, 5.17),
    "sigma": (ORD, 5.71), "tau": (ORD, 4.37), "phi": (ORD, 5.96), "chi": (ORD, 6.26),
    "psi": (ORD, 6.51), "omega": (ORD, 6.22), "Sigma": (ORD, 7.22), "Delta": (ORD, 8.33),
    "partial": (ORD, 5.56), "ell": (ORD, 4.17), "infty": (ORD, 10.0), "top": (ORD, 7.78),
    "prime": (ORD, 2.75), "nabla": (ORD, 8.33), "emptyset": (ORD, 5.0),
    "odot": (BIN, 7.78), "oslash": (BIN, 7.78), "otimes": (BIN, 7.78), "times": (BIN, 7.78),
    "cdot": (BIN, 2.78), "star": (BIN, 5.0), "circ": (BIN, 5.0), "pm": (BIN, 7.78),
    "mp": (BIN, 7.78), "ast": (BIN, 5.0), "setminus": (BIN, 5.0),
    "leq": (REL, 7.78), "le": (REL, 7.78), "geq": (REL, 7.78), "ge": (REL, 7.78),
    "neq": (REL, 7.78), "ne": (REL, 7.78), "approx": (REL, 7.78), "equiv": (REL, 7.78),
    "leftarrow": (REL, 10.0), "rightarrow": (REL, 10.0), "to": (REL, 10.0),
    "mapsto": (REL, 10.0), "in": (REL, 6.67), "sim": (REL, 7.78), "mid": (REL, 2.78),
    "langle": (OPEN, 3.89), "rangle": (CLOSE, 3.89), "lfloor": (OPEN, 4.44),
    "rfloor": (CLOSE, 4.44), "lceil": (OPEN, 4.44), "rceil": (CLOSE, 4.44),
    "lvert": (OPEN, 2.78), "rvert": (CLOSE, 2.78), "lVert": (OPEN, 5.0),
    "rVert": (CLOSE, 5.0), "vert": (ORD, 2.78), "Vert": (ORD, 5.0), "|": (ORD, 5.0),
    "{": (OPEN, 5.0), "}": (CLOSE, 5.0), "_": (ORD, 5.0), "%": (ORD, 8.33), "&": (ORD, 7.78),
    "#": (ORD, 8.33), "$": (ORD, 5.0),
    "dots": (INNER, 13.4), "ldots": (INNER, 13.4), "cdots": (INNER, 13.4),
    "vdots": (ORD, 2.78), "ddots": (INNER, 13.4),
}
# Spacing commands: their width.
_GLUE = {",": 1.67, ":": 2.22, ">": 2.22, ";": 2.78, "!": -1.67, " ": 3.33, "quad": 10.0,
         "qquad": 20.0, "enspace": 5.0, "thinspace": 1.67}
# Commands with no width of their own (a label, a tag, a style switch, a break hint).
_NOTHING = {"label": 1, "tag": 1, "vphantom": 1, "allowbreak": 0, "displaystyle": 0, "textstyle": 0,
            "limits": 0, "nolimits": 0, "relax": 0, "nonumber": 0, "notag": 0}
# Operators set in roman, as \operatorname: their names.
_NAMED_OPERATORS = {"log", "ln", "exp", "sin", "cos", "tan", "sinh", "cosh", "tanh", "det",
                    "max", "min", "lim", "arg", "sup", "inf", "sgn"}
_BIG_OPERATORS = {"sum": (14.44, 10.56), "prod": (12.78, 9.44), "int": (11.11, 8.34)}
_FONTS = {"mathbf": "bold", "mathrm": "roman", "operatorname": "roman", "text": "roman",
          "textrm": "roman", "mathcal": "cal", "texttt": "tt", "mathtt": "tt",
          "mathit": "italic", "mathsf": "roman", "mathbb": "bold", "textit": "roman",
          "textbf": "bold", "boldsymbol": "bold"}

D, T, S, SS = range(4)  # display, text, script, scriptscript
_SIZE = {D: 1.0, T: 1.0, S: 0.81, SS: 0.68}  # cmmi7 and cmmi5 are wider than scaled cmmi10
_SCRIPT = {D: S, T: S, S: SS, SS: SS}
_FRACTION = {D: T, T: S, S: SS, SS: SS}
# TeX's spacing between atoms (The TeXbook, chapter 18): 1 thin, 2 medium, 3 thick; negative:
# only in display and text styles. Rows: the left atom's class, columns: the right one's.
_SPACING = (
    (0, 1, -2, -3, 0, 0, 0, -1),
    (1, 1, 0, -3, 0, 0, 0, -1),
    (-2, -2, 0, 0, -2, 0, 0, -2),
    (-3, -3, 0, 0, -3, 0, 0, -3),
    (0, 0, 0, 0, 0, 0, 0, 0),
    (0, 1, -2, -3, 0, 0, 0, -1),
    (-1, -1, 0, -1, -1, -1, -1, -1),
    (-1, 1, -2, -3, -1, 0, -1, -1),
)
_MU = {1: 3, 2: 4, 3: 5}  # thin, medium, thick space in mu (1/18 em)
SAFETY = 1.05  # the estimate is made this much wider, for what the model leaves out


@dataclass
class Atom:
    """One item of a math list: its class, the source text it came from (``start``..``end``
    in the list's string) and how wide it sets in a style."""

    cls: int | None  # None: glue, no class (spacing is computed across it)
    start: int
    end: int
    measure: object  # style -> width in points
    tall: bool = False  # a fraction, a big operator or an environment: taller than a line
    mate: int | None = None  # a \\left or \\right delimiter of the outer list: the other's index


_TOKEN = re.compile(r"\\([A-Za-z]+)\*?|\\(.)|([{}^_&])|(\s+)|(.)", re.DOTALL)


def _tokens(tex: str) -> list[tuple[str, str, int, int]]:
    out = []
    for m in _TOKEN.finditer(tex):
        name, sym, special, space, char = m.groups()
        kind = "cmd" if name else "sym" if sym is not None else special if special \
            else "space" if space else "char"
        out.append((kind, name or sym or special or char or "", m.start(), m.end()))
    return out


class _Parser:
    def __init__(self, tex: str):
        self.tex, self.toks, self.i = tex, _tokens(tex), 0

    def peek(self):
        while self.i < len(self.toks) and self.toks[self.i][0] == "space":
            self.i += 1
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self):
        tok = self.peek()
        self.i += 1
        return tok

    def group_text(self) -> str:
        """The raw text of the next argument (a {group} or one token)."""
        tok = self.peek()
        if tok is None:
            return ""
        if tok[0] != "{":
            self.next()
            return tok[1]
        depth, start = 0, tok[3]
        while True:
            tok = self.toks[self.i]
            self.i += 1
            if tok[0] == "{":
                depth += 1
            elif tok[0] == "}":
                depth -= 1
                if depth == 0:
                    return self.tex[start:tok[2]]

    def argument(self) -> list[Atom]:
        """The next argument as a math list."""
        tok = self.peek()
        if tok is None:
            return []
        if tok[0] == "{":
            self.next()
            return self.items(stop="}")
        atom = self.atom()
        return [atom] if atom is not None else []

    def items(self, stop=None, flat=False) -> list[Atom]:
        """A math list, up to ``stop`` (}, \\right, \\end, \\\\ or &). ``flat``: the outer
        list, its \\left and \\right delimiters atoms of their own, what they enclose in
        the list (so that a line may break inside them)."""
        out: list[Atom] = []
        lefts: list[int] = []
        while True:
            tok = self.peek()
            if tok is None:
                return out
            kind, value = tok[0], tok[1]
            if flat and kind == "cmd" and value in ("left", "right"):
                self.next()
                delim = self.next()
                if value == "left":
                    lefts.append(len(out))
                    out.append(Atom(OPEN, tok[2], delim[3], None))
                    continue
                if not lefts:
                    continue
                opening = lefts.pop()
                tall = any(a.tall for a in out[opening + 1:])
                for n, text in ((opening, self.tex[out[opening].start:out[opening].end]),
                                (len(out), value + delim[1])):
                    pass
                out.append(Atom(CLOSE, tok[2], delim[3], None, tall, mate=opening))
                out[opening].mate, out[opening].tall = len(out) - 1, tall
                for n in (opening, len(out) - 1):
                    blank = self.tex[out[n].start:out[n].end].rstrip().endswith(".")
                    w = 1.2 if blank else 7.4 if tall else 3.89
                    out[n].measure = lambda st, w=w: w * _SIZE[st]
                continue
            if stop == "}" and kind == "}":
                self.next()
                return out
            if stop == "row" and (kind == "&" or (kind == "sym" and value == "\\")
                                  or (kind == "cmd" and value == "end")):
                return out
            if stop == "right" and kind == "cmd" and value == "right":
                return out
            if kind in ("^", "_") and out:
                out[-1] = self.scripts(out[-1])
                continue
            atom = self.atom()
            if atom is not None:
                out.append(atom)

    def scripts(self, base: Atom) -> Atom:
        sub = sup = None
        while (tok := self.peek()) is not None and tok[0] in ("^", "_"):
            self.next()
            arg = self.argument()
            if tok[0] == "^":
                sup = arg
            else:
                sub = arg
        end = self.toks[self.i - 1][3]
        limits = getattr(base.measure, "limits", False)

        def measure(style, base=base, sub=sub, sup=sup):
            inner = _SCRIPT[style]
            w = max(list_width(x, inner) for x in (sub, sup) if x is not None)
            if limits and style == D:  # a big operator's limits, above and below it
                return max(base.measure(style), w)
            return base.measure(style) + w + 0.5 * _SIZE[inner]
        return Atom(base.cls, base.start, end, measure, base.tall or limits)

    def atom(self) -> Atom | None:
        kind, value, start, end = self.next()
        if kind == "char":
            if value.isalpha():  # with its italic correction, larger for capitals
                w = _ITALIC.get(value, 6.0) + (_CAPITAL_CORRECTION.get(value, 0.9)
                                               if value.isupper() else 0.3)
                return Atom(ORD, start, end, lambda st, w=w: w * _SIZE[st])
            cls, w = _CHARS.get(value, (ORD, 6.0))
            return Atom(cls, start, end, lambda st, w=w: w * _SIZE[st])
        if kind == "{":
            inner = self.items(stop="}")
            return Atom(ORD, start, self.toks[self.i - 1][3],
                        lambda st, inner=inner: list_width(inner, st),
                        any(a.tall for a in inner))
        if kind in ("}", "&", "^", "_"):
            return None
        if kind == "sym":
            if value in _GLUE:
                return Atom(None, start, end, lambda st, w=_GLUE[value]: w * _SIZE[st])
            if value == "\\":
                return None
            cls, w = _SYMBOLS.get(value, (ORD, 5.0))
            return Atom(cls, start, end, lambda st, w=w: w * _SIZE[st])
        return self.command(value, start, end)

    def command(self, name, start, end) -> Atom | None:
        def done(cls, measure, tall=False):
            return Atom(cls, start, self.toks[self.i - 1][3] if self.i else end, measure, tall)
        if name in _GLUE:
            return done(None, lambda st, w=_GLUE[name]: w * _SIZE[st])
        if name in _NOTHING:
            for _ in range(_NOTHING[name]):
                self.group_text()
            return done(None, lambda st: 0.0)
        if name in ("frac", "dfrac", "tfrac", "binom"):
            num, den = self.argument(), self.argument()
            fixed = {"dfrac": D, "tfrac": T}.get(name)

            def measure(st, num=num, den=den, fixed=fixed):
                inner = _FRACTION[fixed if fixed is not None else st]
                return max(list_width(num, inner), list_width(den, inner)) + 2.4 * _SIZE[st]
            return done(INNER, measure, tall=name != "tfrac")
        if name == "sqrt":
            arg = self.argument()
            return done(ORD, lambda st, arg=arg: list_width(arg, st) + 8.33 * _SIZE[st], True)
        if name in ("left", "bigl", "Bigl", "biggl", "Biggl"):
            self.next()  # the delimiter
            inner = self.items(stop="right")
            if self.peek() is not None:
                self.next()  # \right
                self.next()  # its delimiter
            tall = any(a.tall for a in inner)
            delim = 7.4 if tall else 3.89
            return done(INNER, lambda st, inner=inner, delim=delim:
                        list_width(inner, st) + 2 * delim * _SIZE[st], tall)
        if name in _FONTS:
            text = self.group_text()
            font = _FONTS[name]
            cls = OP if name == "operatorname" else ORD
            return done(cls, lambda st, text=text, font=font: _text_width(text, font)
                        * _SIZE[st])
        if name in _NAMED_OPERATORS:
            return done(OP, lambda st, name=name: sum(_ROMAN[c] for c in name) * _SIZE[st])
        if name in _BIG_OPERATORS:
            big, small = _BIG_OPERATORS[name]

            def measure(st, big=big, small=small):
                return big if st == D else small * _SIZE[st]
            measure.limits = True
            return done(OP, measure, tall=True)
        if name == "substack":
            rows = self.environment_rows(closing="}")
            return done(ORD, lambda st, rows=rows: max((list_width(r[0], st) for r in rows),
                                                       default=0.0), True)
        if name == "begin":
            env = self.group_text()
            rows = self.environment_rows(closing="end")
            brace = 8.89 if env == "cases" else 0.0

            def measure(st, rows=rows, brace=brace):
                cols = max(len(r) for r in rows) if rows else 0
                widths = [max((list_width(r[c], T) for r in rows if c < len(r)),
                              default=0.0) for c in range(cols)]
                return (brace + 1.2 + sum(widths) + 10.0 * max(cols - 1, 0)) * _SIZE[st]
            return done(INNER, measure, True)
        if name in _SYMBOLS:
            cls, w = _SYMBOLS[name]
            return done(cls, lambda st, w=w: w * _SIZE[st])
        return done(ORD, lambda st: 7.0 * _SIZE[st])  # unknown: a wide symbol

    def environment_rows(self, closing) -> list[list[list[Atom]]]:
        """Rows of cells up to \\end{...} (or the } of \\substack)."""
        if closing == "}":
            self.next()  # the {
        rows, row = [], []
        while True:
            cell = self.items(stop="row") if closing == "end" else self._substack_cell()
            row.append(cell)
            tok = self.peek()
            if tok is None:
                rows.append(row)
                return rows
            if tok[0] == "&":
                self.next()
                continue
            if tok[0] == "sym" and tok[1] == "\\":
                self.next()
                rows.append(row)
                row = []
                continue
            if closing == "end" and tok[0] == "cmd" and tok[1] == "end":
                self.next()
                self.group_text()
            elif closing == "}" and tok[0] == "}":
                self.next()
            rows.append(row)
            return rows

    def _substack_cell(self) -> list[Atom]:
        out = []
        while (tok := self.peek()) is not None and not (tok[0] == "}" or (
                tok[0] == "sym" and tok[1] == "\\")):
            if tok[0] in ("^", "_") and out:
                out[-1] = self.scripts(out[-1])
                continue
            atom = self.atom()
            if atom is not None:
                out.append(atom)
        return out


def _text_width(text: str, font: str) -> float:
    text = re.sub(r"\\[A-Za-z]+\s*|[{}\\]", "", text)
    if font == "tt":
        return _TT * len(text)
    if font == "cal":
        return 7.0 * len(text)
    if font == "bold":
        return sum(_ROMAN.get(c, 6.0) * 1.1 for c in text)
    if font == "italic":
        return sum(_ITALIC.get(c, 5.0) for c in text)
    return sum(_ROMAN.get(c, 6.0) for c in text)


def _classes(atoms) -> list[int | None]:
    """The atoms' classes after TeX's rule 5: a binary operator after nothing, an operator,
    a binary operator, a relation, an opening or punctuation is ordinary (a unary minus)."""
    out, last = [], None
    for atom in atoms:
        cls = atom.cls
        if cls == BIN and last in (None, OP, BIN, REL, OPEN, PUNCT):
            cls = ORD
        if cls is not None:
            if last == BIN and cls in (REL, CLOSE, PUNCT):
                out[_last_index(out)] = ORD
            last = cls
        out.append(cls)
    if last == BIN:
        out[_last_index(out)] = ORD
    return out


def _last_index(classes) -> int:
    return max(n for n, c in enumerate(classes) if c is not None)


def _gaps(classes, style) -> list[float]:
    """The space TeX puts before each atom (0 before the first and before glue)."""
    out, last = [], None
    mu = 10.0 / 18 * _SIZE[style]
    for cls in classes:
        space = 0.0
        if cls is not None and last is not None:
            code = _SPACING[last][cls]
            if code > 0 or (code < 0 and style in (D, T)):
                space = _MU[abs(code)] * mu
        out.append(space)
        if cls is not None:
            last = cls
    return out


def list_width(atoms, style=D) -> float:
    if not atoms:
        return 0.0
    gaps = _gaps(_classes(atoms), style)
    return sum(a.measure(style) for a in atoms) + sum(gaps)


def parse(tex: str, flat: bool = False) -> list[Atom]:
    return _Parser(tex).items(flat=flat)


def width(tex: str, style=D) -> float:
    """How wide TeX sets ``tex`` (math, display style, 10pt), a little over."""
    return list_width(parse(tex), style) * SAFETY


# --- where to break --------------------------------------------------------------------------

def _candidates(tex: str, atoms) -> list[tuple[int, int, int]]:
    """Where a line may break: (atom index, parenthesis depth, preference) before an atom; a
    relation first, then a binary operator, then a product's next factor (after a thin space
    the printer put between factors, or a big operator: the next Σ). Only parentheses are
    broken inside, never brackets (an Iverson bracket [0 ≤ h ≤ f - 1]) or floors."""
    classes = _classes(atoms)
    out, opened = [], []  # the delimiters open before an atom: True where a break may go
    for n, (atom, cls) in enumerate(zip(atoms, classes)):
        text = tex[atom.start:atom.end]
        if n and all(opened):
            depth = len(opened)
            if cls == REL:
                out.append((n, depth, 0))
            elif cls == BIN:
                out.append((n, depth, 1))
            elif (cls is None and text.strip() == r"\," and n + 1 < len(atoms)) \
                    or (cls == OP and classes[n - 1] == OP):
                out.append((n, depth, 2))
            elif cls in (ORD, INNER, OP) and classes[n - 1] in (ORD, INNER, OP) \
                    and INNER in (cls, classes[n - 1]) and atom.mate is None:
                out.append((n, depth, 3))  # next to a fraction or cases: the next factor
        if cls == OPEN:
            opened.append(text == "(" or (atom.mate is not None and "(" in text))
        elif cls == CLOSE and opened:
            opened.pop()
    return out


def _line(tex, atoms, a, b) -> str:
    """The source of atoms a..b-1 (a thin space between factors starts the next line); a
    \\left ... \\right pair the line cuts closed with \\right. and reopened with \\left.,
    each half with a phantom of the whole so that its delimiters keep their size."""
    if b <= a:
        return ""
    body = tex[atoms[a].start:atoms[b - 1].end].strip()
    opened, closed = [], []
    for n, atom in enumerate(atoms):
        if atom.mate is None or atom.mate < n:
            continue  # a \right, or an atom of no pair
        left, right = n, atom.mate
        phantom = rf"\vphantom{{{tex[atoms[left].end:atoms[right].start].strip()}}}"
        if left < a <= right:
            opened.append(rf"\left.{phantom} ")
        if left < b <= right:
            closed.insert(0, rf" {phantom}\right.")
    return "".join(opened) + body + "".join(closed)


def break_display(tex: str, budget: float, lead: str = "{}= ") -> str:
    """The right side ``tex`` of an aligned row with line breaks where it is wider than
    ``budget`` (points): each line after the first continues the row (CONTINUATION, or
    RELATION_CONTINUATION before a relation). ``lead`` is what the row puts before its
    right side (its relation). Existing breaks (CONTINUATION) are kept, each line broken
    further if it must be."""
    lines = tex.split(CONTINUATION)
    out = []
    for n, line in enumerate(lines):
        out.append(_break_line(line, budget, lead if n == 0 else r"{}\quad "))
    return CONTINUATION.join(out)


def _break_line(tex: str, budget: float, lead: str) -> str:
    if width(lead + tex) <= budget:
        return tex
    atoms = parse(tex, flat=True)
    if not atoms:
        return tex
    classes = _classes(atoms)
    candidates = _candidates(tex, atoms)
    pieces, start, first = [], 0, True
    while True:
        prefix = lead if first else r"{}\quad "
        rest = _line(tex, atoms, start, len(atoms))
        if width(prefix + rest) <= budget:
            pieces.append((rest, None))
            break
        sized = {c[0]: width(prefix + _line(tex, atoms, start, c[0]))
                 for c in candidates if c[0] > start}
        fits = [c for c in candidates if c[0] > start and sized[c[0]] <= budget]
        if not fits:  # nothing fits: break at the first place there is, or give up
            later = [c for c in candidates if c[0] > start]
            if not later:
                pieces.append((rest, None))
                break
            fits = [later[0]]
        # Among the places that fill at least half the line, the shallowest and most
        # preferred; the latest of those.
        full = [c for c in fits if sized[c[0]] >= budget / 2] or fits
        best = min((depth, pref) for _, depth, pref in full)
        n = max(c[0] for c in full if (c[1], c[2]) == best)
        pieces.append((_line(tex, atoms, start, n), "rel" if classes[n] == REL else "other"))
        start = n
        first = False
    out = pieces[0][0]
    for (text, _), (_, kind) in zip(pieces[1:], pieces[:-1]):
        out += (RELATION_CONTINUATION if kind == "rel" else CONTINUATION) + text
    return out


def joined(tex: str) -> str:
    """``tex`` with the breaks ``break_display`` made undone: each display row on one line
    again (what a reader of the source, or a test, compares)."""
    out, i = [], 0
    while i < len(tex):
        if tex.startswith(r"\vphantom{", i):  # a phantom: skip it, braces balanced
            depth, i = 0, i + len(r"\vphantom")
            while True:
                depth += {"{": 1, "}": -1}.get(tex[i], 0)
                i += 1
                if depth == 0:
                    break
            continue
        out.append(tex[i])
        i += 1
    text = "".join(out)
    return re.sub(r"\s*(?:\\right\.\s*)*(?: \\\\ &\\quad | \\\\ &)(?:\s*\\left\.)*\s*", " ",
                  text)
