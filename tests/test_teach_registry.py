"""Every activation and loss in every teaching command and format, the user's functions too.

The cases are drawn from the registry itself (``ACTIVATIONS``, ``LOSSES``), so an entry added
there is taught and checked here without a line changed: each activation on the layers it is
allowed on, with a loss that accepts it as output; each loss with an output activation it allows
and whose values lie in the loss's domain; depths 1 to 4 in turn, every other case with an L2
penalty. Each case is checked three ways:

- ``example``: the worked step's exact gradients equal central differences of the cost computed
  from the entries' definitions alone (``teach_helpers.Network``: mpmath, 50 digits);
- ``explain``: the path sum agrees with backpropagation symbolically, and its value (plus the
  penalty's direct edge) equals central differences of one sample's cost;
- all three formats render without an error; the CLI runs; the LaTeX compiles.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import pytest
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement
from teach_helpers import Network, activation_function, every_parameter, mp, parameters_of

from symbackprop import naming as N
from symbackprop import registry
from symbackprop.cli import main
from symbackprop.commands.common import arch_from_args
from symbackprop.engine import derive
from symbackprop.teach.inputs import load_parameters, parse_samples
from symbackprop.teach.paths import explain, parse_parameter
from symbackprop.teach.present import FORMATS, explain_document
from symbackprop.teach.worked import work_example

PDFLATEX = shutil.which("pdflatex")
LR = sp.Rational(1, 10)
#: Agreement asked of exact gradients and 50-digit central differences.
TOLERANCE = mpmath.mpf("1e-25")
#: Weights and inputs: short decimals, none 0, so that no pre-activation sits at a kink.
WEIGHTS = ("-0.83", "-0.61", "-0.37", "-0.19", "0.23", "0.41", "0.59", "0.77")
BIASES = ("-0.07", "0.03", "0.11", "-0.13")
INPUTS = ("0.3, -0.7", "1.1, 0.45")


@dataclass(frozen=True)
class Case:
    """One network to teach: the command-line arguments that define it, and its targets."""

    name: str
    arch: str
    loss: str | None = None
    activations: tuple[str, ...] = ()  # --activation NAME=EXPR
    l2: str | None = None
    files: dict = field(default_factory=dict, compare=False, hash=False)  # name -> text

    def args(self, folder) -> list[str]:
        for file_name, text in self.files.items():
            (folder / file_name).write_text(text, encoding="utf-8")
        argv = [str(folder / self.arch) if self.files else self.arch]
        if self.loss is not None:
            argv += ["--loss", self.loss]
        for definition in self.activations:
            argv += ["--activation", definition]
        if self.l2 is not None:
            argv += ["--l2", self.l2]
        return argv

    def architecture(self, folder):
        for file_name, text in self.files.items():
            (folder / file_name).write_text(text, encoding="utf-8")
        arch = str(folder / self.arch) if self.files else self.arch
        return arch_from_args(argparse.Namespace(arch=arch, loss=self.loss,
                                                 activation=list(self.activations), l2=self.l2))


# --- the cases, from the registry ----------------------------------------------------------

def _hidden_activations() -> list[str]:
    return [name for name, act in registry.ACTIVATIONS.items() if not act.output_only]


def _values(act, size=2):
    """The activation where the networks here put its inputs (|z| up to about 1, inside its
    domain), for checking that a loss's domain holds its outputs."""
    lo, hi = (max(act.domain[0], -1.0), min(act.domain[1], 1.0))
    g = activation_function(act, size)
    with mpmath.workdps(30):
        points = [mpmath.mpf(lo) + (mpmath.mpf(hi) - lo) * k / 4 for k in range(5)]
        return [v for k in range(len(points) - size + 1) for v in g(points[k:k + size])]


def _fits(act, loss) -> bool:
    """Whether ``act`` is allowed as ``loss``'s output and its values lie in the loss's domain."""
    if loss.output_activations is not None and act.name not in loss.output_activations:
        return False
    lo, hi = loss.a_domain
    return all(lo < v < hi for v in _values(act))


def _sizes(depth: int) -> str:
    return "-".join(["2"] * (depth + 1))


def _spec(depth, hidden, output) -> str:
    sizes = _sizes(depth).split("-")
    return "-".join([sizes[0]] + [f"{n}:{hidden}" for n in sizes[1:-1]] + [f"{sizes[-1]}:{output}"])


def registry_cases() -> list[Case]:
    hidden = _hidden_activations()
    cases = []
    for k, (name, act) in enumerate(registry.ACTIVATIONS.items()):
        depth = 1 + k % 4
        inner = name if not act.output_only else hidden[k % len(hidden)]
        losses = [loss for loss in registry.LOSSES.values() if _fits(act, loss)]
        if losses:  # on the output layer, and on the hidden ones where allowed
            cases.append(Case(f"activation {name}", _spec(depth, inner, name), losses[0].name,
                              l2="0.1" if k % 2 else None))
        if not act.output_only and depth == 1:  # a hidden layer too, under an output it allows
            output = next(o for o in registry.ACTIVATIONS.values()
                          if _fits(o, registry.LOSSES[next(iter(registry.LOSSES))]))
            cases.append(Case(f"activation {name} hidden", _spec(2, name, output.name),
                              next(iter(registry.LOSSES)), l2=None if k % 2 else "0.1"))
    for k, (name, loss) in enumerate(registry.LOSSES.items()):
        depth = 1 + (k + 1) % 4
        output = next(act for act in registry.ACTIVATIONS.values() if _fits(act, loss))
        cases.append(Case(f"loss {name}", _spec(depth, hidden[(k + 1) % len(hidden)],
                                                output.name), name,
                          l2="0.05" if k % 2 == 0 else None))
    return cases


SPEC_TOML = '''arch = "2-2:swish-2:clip_abs"
loss = "pseudo_huber"
l2 = 0.2

[define.activations]
swish = "z*sigmoid(z)"
clip_abs = "min(max(z, -1), 1) + abs(z)/4"

[define.losses]
pseudo_huber = "sqrt(1 + (a - y)**2) - 1"
'''
SPEC_JSON = json.dumps({"sizes": [2, 2, 2, 2], "activations": ["bent", "bent", "sigmoid"],
                        "loss": "my_bce",
                        "define": {"activations": {"bent": "where(z > 0, z, z/10)"},
                                   "losses": {"my_bce": "-(y*log(a) + (1 - y)*log(1 - a))"}}})

USER_CASES = [
    Case("user swish, pseudo_huber (flags)", "2-2:swish-2:identity",
         "pseudo_huber=sqrt(1 + (a - y)**2) - 1", ("swish=z*sigmoid(z)",), l2="0.1"),
    Case("user where() (flags)", "2-2:bent-2:bent-2:identity", "half_sse",
         ("bent=where(z > 0, z, z/10)",)),
    Case("user abs/min/max (flags)", "2-2:clip_abs-2:tanh", "mse",
         ("clip_abs=min(max(z, -1), 1) + abs(z)/4",), l2="0.3"),
    Case("user smooth_l1 loss with where() (flags)", "2-2:tanh-2:identity",
         "smooth_l1=where(abs(a - y) < 1, (a - y)**2/2, abs(a - y) - 1/2)"),
    Case("spec.toml with define tables", "spec.toml", files={"spec.toml": SPEC_TOML}),
    Case("spec.json with define tables", "spec.json", files={"spec.json": SPEC_JSON},
         l2="0.01"),
]

CASES = registry_cases() + USER_CASES


# --- inputs ----------------------------------------------------------------------------------

def _weights(sizes, seed) -> dict:
    rng = random.Random(seed)
    data = {}
    for l in range(1, len(sizes)):
        data[f"W{l}"] = [[rng.choice(WEIGHTS) for _ in range(sizes[l - 1])]
                         for _ in range(sizes[l])]
        data[f"b{l}"] = [rng.choice(BIASES) for _ in range(sizes[l])]
    return data


def _targets(loss, size) -> str:
    """Two samples' targets in the loss's domain (summing to 1 where the loss needs that)."""
    lo, hi = (Fraction(str(v)) for v in loss.y_domain)
    rows = []
    for shares in ((Fraction(3, 10), Fraction(4, 5)), (Fraction(9, 10), Fraction(1, 5))):
        row = [lo + (hi - lo) * shares[c % 2] for c in range(size)]
        if loss.targets_sum_to_one:
            row = [v / sum(row) for v in row]
        rows.append(", ".join(str(v) for v in row))
    return "; ".join(rows)


@dataclass
class Prepared:
    case: Case
    arch: object
    argv: list
    weights: str  # path of the weights file
    x: str
    y: str


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def prepared(request, tmp_path) -> Prepared:
    case = request.param
    arch = case.architecture(tmp_path)
    weights = tmp_path / "weights.json"
    # numbers in the file, not strings: the decimals are read exactly
    text = re.sub(r'"(-?[0-9.]+)"', r"\1", json.dumps(_weights(arch.sizes, len(case.name))))
    weights.write_text(text, encoding="utf-8")
    x = "; ".join(INPUTS)
    y = _targets(arch.loss_entry, arch.sizes[-1])
    return Prepared(case, arch, case.args(tmp_path), str(weights), x, y)


def _close(exact, numeric, what):
    with mpmath.workdps(60):
        difference = abs(mp(exact) - numeric)
        close = difference <= TOLERANCE * max(1, abs(numeric))
    assert close, \
        f"{what}: derived {sp.N(exact, 30)}, central differences {mpmath.nstr(numeric, 30)}"


# --- the checks ------------------------------------------------------------------------------

def test_worked_step_equals_central_differences_of_the_definitions(prepared):
    p = prepared
    arch = p.arch
    params = load_parameters(p.weights, arch.sizes)
    samples = parse_samples(p.x, p.y, arch.sizes[0], arch.sizes[-1])
    worked = work_example(derive(arch), params, samples, LR)
    net = Network(arch)
    W, b = parameters_of(params)
    X = [[mp(v) for v in samples.X[:, k]] for k in range(samples.m)]
    Y = [[mp(v) for v in samples.Y[:, k]] for k in range(samples.m)]
    _close(worked.cost, net.cost(W, b, X, Y), "J")
    assert (worked.penalty != 0) == bool(arch.l2)
    for kind, l, r, c in every_parameter(arch.sizes):
        grad = worked.value_of(f"d{kind}[{l}]")[r, c if c is not None else 0]
        _close(grad, net.gradient(W, b, X, Y, kind, l, r, c), f"d{kind}[{l}][{r},{c}]")


def _forward_values(e, net, W, b, x, y):
    """Numbers for the entries of one sample's path products (m = 1)."""
    Zs, As = net.forward(W, b, x)
    tables = {"W": lambda l, r, c: W[l - 1][r][c], "b": lambda l, r, c: b[l - 1][r],
              "Z": lambda l, r, c: Zs[l - 1][r], "A": lambda l, r, c: As[l][r]}
    values = {N.lam: sp.Rational(e.derivation.l2)}
    exprs = [e.path_sum.doit(), e.gradient.doit()] + \
        ([e.penalty_edge.derivative] if e.penalty_edge else [])
    for expr in exprs:
        for elem in expr.atoms(MatrixElement):
            kind, label = N.split(elem.parent.name)
            r, c = (int(i) for i in elem.indices)
            number = y[r] if kind == "Y" else tables[kind](int(label), r, c)
            values[elem] = sp.Float(mpmath.nstr(number, 60), 60)
    return values


def test_explain_sums_the_paths_to_the_gradient_of_the_definitions(prepared):
    p = prepared
    arch = p.arch
    d = derive(arch)
    params = load_parameters(p.weights, arch.sizes)
    samples = parse_samples(p.x, p.y, arch.sizes[0], arch.sizes[-1])
    net = Network(arch)
    W, b = parameters_of(params)
    x = [mp(v) for v in samples.X[:, 0]]
    y = [mp(v) for v in samples.Y[:, 0]]
    L = arch.depth
    for text in ("W1[0,1]", f"b{L}[1]"):
        e = explain(d, parse_parameter(text, arch.sizes))
        assert e.all_shown and e.agrees is True, text
        assert e.penalised == bool(arch.l2) and (e.penalty_edge is not None) == \
            (bool(arch.l2) and text.startswith("W")), text
        values = _forward_values(e, net, W, b, x, y)
        # A vector activation's edges hold sums over its units (log-softmax): in full first.
        total = e.path_sum.doit() + (e.penalty_edge.derivative if e.penalty_edge else 0)
        derived = sp.N(total.xreplace(values), 50)
        kind, layer, row = text[0], int(text[1]), int(text[3])
        col = int(text[5]) if kind == "W" else None
        _close(derived, net.gradient(W, b, [x], [y], kind, layer, row, col),
               f"∂J/∂{text} by paths")
        for fmt in FORMATS:
            document = explain_document(e, fmt)
            assert "Traceback" not in document and document.strip()


def _cli(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    assert "Traceback" not in out and "internal error" not in out
    return out


def test_every_format_renders_and_the_latex_compiles(prepared, capsys, tmp_path):
    p = prepared
    L = p.arch.depth
    commands = {
        "explain": ["explain", *p.argv, "--param", f"W{L}[1,0]"],
        "example": ["example", *p.argv, "--weights", p.weights, "--x", p.x, "--y", p.y],
    }
    for command, argv in commands.items():
        outputs = {fmt: _cli(capsys, [*argv, "--format", fmt,
                                      *(["--standalone"] if fmt == "latex" else [])])
                   for fmt in FORMATS}
        for name in p.arch.activations:  # every activation is named, the user's included
            assert name in outputs["text"], name
            if command == "example":  # A = g(Z) by the activation's operator
                operator = registry.latex_names(p.arch)[name]
                assert operator in outputs["latex"] and operator in outputs["markdown"], name
        if PDFLATEX is not None:
            _compile(tmp_path / command, outputs["latex"])


def _compile(folder, tex):
    folder.mkdir()
    (folder / "doc.tex").write_text(tex, encoding="utf-8")
    result = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                            cwd=folder, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    log = (folder / "doc.log").read_text(errors="replace")
    assert "Undefined control sequence" not in log and "Missing $" not in log


def test_the_cases_cover_the_registry():
    names = {case.arch for case in CASES}
    for name in registry.ACTIVATIONS:
        assert any(f":{name}" in spec for spec in names), name
    for name in registry.LOSSES:
        assert any(case.loss == name for case in CASES), name
    depths = {len(case.arch.split("-")) - 1 for case in registry_cases()}
    assert depths == {1, 2, 3, 4}
