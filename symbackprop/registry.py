"""Activations and losses: one entry each, holding its SymPy expression and valid domain.

Everything else symbackprop knows about an activation or a loss -- its derivative, the derivative
in terms of the layer's output, its LaTeX, its NumPy code -- is derived or printed from the entry.
Adding an activation is adding one entry here. Users add their own from an expression
(``user_activation``, ``user_loss``): the same entries, built from text by ``expressions``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

import sympy as sp

# The scalar variables every entry is written in.
z = sp.Symbol("z", real=True)  # pre-activation
a = sp.Symbol("a", real=True)  # activation output / prediction
y = sp.Symbol("y", real=True)  # target
n = sp.Symbol("n", integer=True, positive=True)  # size of the layer (number of classes)

# Vector activations (softmax) are written over a column z_0 .. z_{n-1}.
zvec = sp.IndexedBase("z")
c_idx, j_idx = sp.symbols("c j", integer=True)


class Abs(sp.Abs):
    """|x| of a real x. SymPy's Abs differentiates entries of matrices (not known to be real)
    through re and im; here d|u|/dx = sign(u) du/dx, with sign(0) = 0 as PyTorch has it. The
    class keeps SymPy's name, so every printer prints it as it prints Abs."""

    def _eval_derivative(self, x):
        return sp.Derivative(self.args[0], x, evaluate=True) * sp.sign(self.args[0])


@dataclass(frozen=True)
class Activation:
    """g: R -> R applied entry by entry, or (softmax) a map of a whole column."""

    name: str
    expr: sp.Expr  # in z; for a vector activation, entry c of the output in zvec[.]
    latex: str  # the name as a LaTeX operator, e.g. r"\sigma"
    domain: tuple[float, float] = (-4.0, 4.0)  # where tests sample z
    elementwise: bool = True
    output_only: bool = False  # softmax couples the units: allowed on the output layer only
    user_text: str | None = None  # the definition a user wrote, for a function not built in
    human_name: str = ""  # how prose names it (ReLU, leaky ReLU); default: its name

    def __post_init__(self):
        if not self.human_name:
            object.__setattr__(self, "human_name", prose_name(self.name))

    def __repr__(self) -> str:
        return f"Activation({self.name}: {self.expr})"

    @cached_property
    def derivative(self) -> sp.Expr:
        """g'(z), by differentiating the entry (elementwise activations only)."""
        return sp.diff(self.expr, z)

    @cached_property
    def derivative_of_output(self) -> sp.Expr | None:
        """g'(z) written in a = g(z) where that is no longer than in z (sigma' = a(1 - a)).

        Found by algebra: first replace g(z) by a inside g'(z) (tanh' = 1 - tanh^2 -> 1 - a^2);
        else, where g is a rational function of one generator (z or e^z, so that SymPy's
        ``solve`` is quick and complete), solve a = g(z) for z and substitute. None when neither
        gives an expression free of z that is at most as long as g'(z) in z.
        """
        if not self.elementwise or self.expr.has(sp.Piecewise) or self.expr == z:
            return None
        gp = self.derivative
        candidates = [gp.subs(self.expr, a)]
        if _one_generator(self.expr):
            try:
                for root in sp.solve(sp.Eq(a, self.expr), z):
                    candidates.append(sp.simplify(gp.subs(z, root)))
            except NotImplementedError:  # pragma: no cover - solve gives up on some entries
                pass
        good = [h for h in candidates if not h.has(z) and not h.has(sp.LambertW)]
        if not good:
            return None
        best = min(good, key=sp.count_ops)
        return best if sp.count_ops(best) <= sp.count_ops(gp) else None


def _one_generator(expr) -> bool:
    """Is expr (or its log) a rational function of z alone, or of e^z alone? Then SymPy solves
    a = g(z) quickly; in general ``solve`` can run for minutes (GELU's tanh form)."""
    w = sp.Dummy("w")
    candidates = (
        expr.xreplace({z: w}),  # a function of z
        expr.replace(lambda e: isinstance(e, sp.exp) and (e.args[0] / z).is_Integer,
                     lambda e: w ** int(e.args[0] / z)),  # a function of e^z
    )
    for rest in candidates:
        if isinstance(rest, sp.log):  # log of a rational function: exp of both sides
            rest = rest.args[0]
        if not rest.has(z) and rest.is_rational_function(w):
            return True
    return False


@dataclass(frozen=True)
class Loss:
    """Per-example loss L = sum over output units c of term(a_c, y_c)."""

    name: str
    term: sp.Expr  # in a, y and n (the number of output units)
    latex: str  # how the loss is named in documents
    description: str
    output_activations: tuple[str, ...] | None = None  # allowed output activations; None: any
    targets_sum_to_one: bool = False  # Y columns are probability distributions
    a_domain: tuple[float, float] = (-2.0, 2.0)  # where tests sample predictions
    y_domain: tuple[float, float] = (-2.0, 2.0)  # where tests sample targets
    user_text: str | None = None  # the definition a user wrote, for a loss not built in
    human_name: str = ""  # how prose names it (cross-entropy); default: its name

    def __post_init__(self):
        if not self.human_name:
            object.__setattr__(self, "human_name", prose_name(self.name))

    def __repr__(self) -> str:
        return f"Loss({self.name}: sum_c {self.term})"


def prose_name(name: str) -> str:
    """A function's name as prose says it when its entry gives none: words, not an
    identifier (pseudo_huber -> pseudo huber)."""
    return name.replace("_", " ")


def _softmax() -> sp.Expr:
    return sp.exp(zvec[c_idx]) / sp.Sum(sp.exp(zvec[j_idx]), (j_idx, 0, n - 1))


# Constants exactly as PyTorch defines them (torch.nn.GELU(approximate="tanh"), torch.nn.SELU).
_GELU_C = sp.Rational("0.044715")
_SELU_ALPHA = sp.Rational("1.6732632423543772848170429916717")
_SELU_SCALE = sp.Rational("1.0507009873554804934193349852946")

ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in [
        Activation("identity", z, r"\operatorname{id}", human_name="identity"),
        Activation("sigmoid", 1 / (1 + sp.exp(-z)), r"\sigma", human_name="sigmoid"),
        Activation("tanh", sp.tanh(z), r"\tanh", human_name="tanh"),
        # Piecewise, not Max(0, z): d/dz Max(0, z) is Heaviside(z) and Heaviside(0) = 1/2;
        # relu'(0) = 0 and leaky_relu'(0) = 0.01, as PyTorch and scikit-learn have them.
        Activation("relu", sp.Piecewise((z, z > 0), (0, True)), r"\operatorname{ReLU}",
                   human_name="ReLU"),
        Activation(
            "leaky_relu",
            sp.Piecewise((z, z > 0), (sp.Rational(1, 100) * z, True)),
            r"\operatorname{LReLU}", human_name="leaky ReLU",
        ),
        Activation("softplus", sp.log(1 + sp.exp(z)), r"\operatorname{softplus}",
                   human_name="softplus"),
        # GELU, exact erf form (torch.nn.GELU()) and torch's approximate="tanh" form.
        Activation("gelu", z / 2 * (1 + sp.erf(z / sp.sqrt(2))), r"\operatorname{GELU}",
                   human_name="GELU"),
        Activation("gelu_tanh",
                   z / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (z + _GELU_C * z**3))),
                   r"\operatorname{GELU}_{\tanh}", human_name="GELU (tanh approximation)"),
        Activation("silu", z / (1 + sp.exp(-z)), r"\operatorname{SiLU}", human_name="SiLU"),
        Activation("elu", sp.Piecewise((z, z > 0), (sp.exp(z) - 1, True)),
                   r"\operatorname{ELU}", human_name="ELU"),
        Activation("selu", _SELU_SCALE * sp.Piecewise((z, z > 0),
                                                      (_SELU_ALPHA * (sp.exp(z) - 1), True)),
                   r"\operatorname{SELU}", human_name="SELU"),
        Activation("mish", z * sp.tanh(sp.log(1 + sp.exp(z))), r"\operatorname{mish}",
                   human_name="Mish"),
        Activation("softsign", z / (1 + Abs(z)), r"\operatorname{softsign}",
                   human_name="softsign"),
        Activation("softmax", _softmax(), r"\operatorname{softmax}", elementwise=False,
                   output_only=True, human_name="softmax"),
        # log-probabilities, for the negative log-likelihood loss (torch.nn.LogSoftmax).
        Activation("log_softmax", zvec[c_idx] - sp.log(sp.Sum(sp.exp(zvec[j_idx]),
                                                              (j_idx, 0, n - 1))),
                   r"\operatorname{log\,softmax}", elementwise=False, output_only=True,
                   human_name="log-softmax"),
    ]
}

LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in [
        Loss("half_sse", (a - y) ** 2 / 2, r"\tfrac{1}{2}\lVert a - y\rVert^2",
             "half the sum of squared errors", human_name="half sum-of-squares"),
        Loss("mse", (a - y) ** 2 / n, r"\tfrac{1}{n}\lVert a - y\rVert^2",
             "mean squared error over the output units", human_name="mean squared error"),
        Loss("bce", -(y * sp.log(a) + (1 - y) * sp.log(1 - a)), r"\mathrm{BCE}",
             "binary cross-entropy, summed over the output units",
             output_activations=("sigmoid",), a_domain=(0.05, 0.95), y_domain=(0.0, 1.0),
             human_name="binary cross-entropy"),
        Loss("cross_entropy", -y * sp.log(a), r"\mathrm{CE}",
             "categorical cross-entropy (targets one-hot or probabilities)",
             output_activations=("softmax",), targets_sum_to_one=True,
             a_domain=(0.05, 0.95), y_domain=(0.0, 1.0), human_name="cross-entropy"),
        # delta = 1, per unit as torch.nn.HuberLoss(reduction="none"), summed over the units.
        Loss("huber", sp.Piecewise(((a - y) ** 2 / 2, Abs(a - y) < 1),
                                   (Abs(a - y) - sp.Rational(1, 2), True)),
             r"\mathrm{Huber}", "Huber loss (delta = 1), summed over the output units",
             human_name="Huber"),
        Loss("nll", -y * a, r"\mathrm{NLL}",
             "negative log-likelihood of log-probabilities (targets one-hot or probabilities)",
             output_activations=("log_softmax",), targets_sum_to_one=True,
             a_domain=(-3.0, -0.05), y_domain=(0.0, 1.0), human_name="negative log-likelihood"),
        Loss("log_cosh", sp.log(sp.cosh(a - y)), r"\log\cosh",
             "log-cosh of the error, summed over the output units", human_name="log-cosh"),
    ]
}



# --- functions users write ------------------------------------------------------------------

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")
# Where a definition must be real-valued: a grid over the reals (|x| up to 1000, zero included).
_GRID = [sp.Integer(v) for v in (-1000, -20, -3, -1, 0, 1, 3, 20, 1000)] + \
    [sp.Rational(v, 4) for v in (-3, -1, 1, 3)]
_PROBABILITIES = [sp.Rational(v, 8) for v in (1, 2, 4, 6, 7)]
_TARGETS01 = [sp.Integer(0), sp.Rational(1, 4), sp.Rational(1, 2), sp.Integer(1)]


def check_name(name, kind: str) -> str:
    """A user's function name: lower-case identifier, not a built-in's, not a language word."""
    from .errors import SpecError
    from .expressions import CONSTANTS, FUNCTIONS

    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise SpecError(
            f"{kind} name {name!r} is not allowed: use lower-case letters, digits and '_', "
            "starting with a letter (at most 40 characters), e.g. 'swish'")
    builtin = ACTIVATIONS if kind == "activation" else LOSSES
    if name in builtin:
        raise SpecError(f"{kind} {name!r} is a built-in; choose another name, "
                        f"e.g. 'my_{name}'")
    if name in FUNCTIONS or name in CONSTANTS or name == "where":
        raise SpecError(f"{kind} name {name!r} is a function of the expression language; "
                        "choose another name")
    return name


def _real_everywhere(expr, points) -> tuple | None:
    """The first point (a tuple of (symbol, value)) where expr is not a finite real, else None."""
    for point in points:
        try:
            value = sp.N(expr.xreplace(dict(point)), 20)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):  # pragma: no cover
            return point
        if not (value.is_real and value.is_finite) or value.has(sp.nan, sp.zoo):
            return point
    return None


def _show(point) -> str:
    return ", ".join(f"{sym} = {value}" for sym, value in point)


def _check_derivative(expr, var, kind, name):
    """Refuse, when it is defined, a function whose derivative is no ordinary function or
    which (or whose derivative) a generated NumPy trainer cannot compute."""
    from .codegen.printer import GenerationError, check_printable
    from .errors import SpecError

    bad = (sp.DiracDelta, sp.Heaviside, sp.Derivative, sp.Subs)
    if sp.diff(expr, var).has(*bad):
        raise SpecError(f"{kind} {name!r}: its derivative is not an ordinary function "
                        "(SymPy gives a delta or an unevaluated derivative); rewrite it with "
                        "where(...), abs, min or max")
    try:
        check_printable(expr, [var])
    except GenerationError as exc:
        raise SpecError(f"{kind} {name!r}: no NumPy form for a generated trainer: {exc}") \
            from None


@lru_cache(maxsize=256)
def user_activation(name: str, text: str) -> Activation:
    """An activation defined by an expression in z (the expression language of ``expressions``)."""
    from .errors import SpecError
    from .expressions import parse

    what = f"activation {name!r}"
    expr = parse(text, {"z": z}, what)
    if not expr.has(z):
        raise SpecError(f"{what}: {text!r} does not depend on z; an activation is a function "
                        "of z, e.g. 'z*sigmoid(z)'")
    bad = _real_everywhere(expr, [((z, v),) for v in _GRID])
    if bad is not None:
        raise SpecError(f"{what}: {text!r} is not a finite real number at {_show(bad)}; an "
                        "activation must be real-valued on all the reals")
    _check_derivative(expr, z, "activation", name)
    return Activation(name, expr, rf"\operatorname{{{_latex_name(name)}}}", user_text=text)


@lru_cache(maxsize=256)
def user_loss(name: str, text: str) -> Loss:
    """A loss defined per output unit by an expression in a (prediction) and y (target).

    It must be real-valued for all real a and y, or else for a in (0, 1) and y in [0, 1] (a
    loss of probabilities, such as a cross-entropy); its test domain follows.
    """
    from .errors import SpecError
    from .expressions import parse

    what = f"loss {name!r}"
    term = parse(text, {"a": a, "y": y}, what)
    if not term.has(a):
        raise SpecError(f"{what}: {text!r} does not depend on a, the prediction; a loss is "
                        "an expression in a and y, e.g. '(a - y)**2'")
    reals = [((a, p), (y, q)) for p in _GRID for q in _GRID[1::2]]
    domain = {}
    if _real_everywhere(term, reals) is not None:
        probs = [((a, p), (y, q)) for p in _PROBABILITIES for q in _TARGETS01]
        bad = _real_everywhere(term, probs)
        if bad is not None:
            raise SpecError(f"{what}: {text!r} is not a finite real number at {_show(bad)}; a "
                            "loss must be real-valued for all real a and y, or for a in (0, 1) "
                            "and y in [0, 1]")
        domain = {"a_domain": (0.05, 0.95), "y_domain": (0.0, 1.0)}
    _check_derivative(term, a, "loss", name)
    return Loss(name, term, rf"\mathrm{{{_latex_name(name)}}}",
                "defined by the user, summed over the output units",
                user_text=text, **domain)


def _latex_name(name: str) -> str:
    return name.replace("_", r"\_")


def activation(name: str, definitions=()) -> Activation:
    """The entry called ``name``: a built-in, or one of ``definitions`` (see spec.Definition)."""
    for d in definitions:
        if d.kind == "activation" and d.name == name:
            return user_activation(d.name, d.text)
    return ACTIVATIONS[name]


def loss(name: str, definitions=()) -> Loss:
    for d in definitions:
        if d.kind == "loss" and d.name == name:
            return user_loss(d.name, d.text)
    return LOSSES[name]


def latex_names(arch=None) -> dict:
    """Activation name -> its LaTeX operator, the built-ins and the user's functions."""
    names = {name: act.latex for name, act in ACTIVATIONS.items()}
    for d in getattr(arch, "definitions", ()):
        if d.kind == "activation":
            names[d.name] = user_activation(d.name, d.text).latex
    return names
