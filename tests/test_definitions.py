"""Functions users write and the L2 penalty, through every way in: the Python API, spec files
(TOML and JSON), and the command line; and every bad definition's one-line error."""
import json
import math

import pytest
import sympy as sp

from symbackprop import Architecture, SpecError, derive, load_arch, parse_arch
from symbackprop.registry import ACTIVATIONS, LOSSES, a, y, z
from symbackprop.spec import Definition

DEFINE = {"activations": {"swish": "z*sigmoid(z)"},
          "losses": {"pseudo_huber": "sqrt(1 + (a - y)**2) - 1"}}
TOML = '''arch = "4-8:swish-3:softmax"
loss = "pseudo_huber"
l2 = 0.01
[define.activations]
swish = "z*sigmoid(z)"
[define.losses]
pseudo_huber = "sqrt(1 + (a - y)**2) - 1"
'''


def expected():
    return parse_arch("4-8:swish-3:softmax", loss="pseudo_huber", definitions=DEFINE, l2="0.01")


def test_api_toml_json_and_cli_give_the_same_architecture(tmp_path, cli):
    (tmp_path / "a.toml").write_text(TOML)
    (tmp_path / "a.json").write_text(json.dumps(
        {"arch": "4-8:swish-3:softmax", "loss": "pseudo_huber", "l2": 0.01, "define": DEFINE}))
    assert load_arch(tmp_path / "a.toml") == expected()
    assert load_arch(tmp_path / "a.json") == expected()
    api = Architecture([4, 8, 3], ["swish", "softmax"], "pseudo_huber", definitions=(
        Definition("activation", "swish", "z*sigmoid(z)"),
        Definition("loss", "pseudo_huber", "sqrt(1 + (a - y)**2) - 1")), l2=0.01)
    assert api == expected()
    from_file = cli("derive", tmp_path / "a.toml")
    from_flags = cli("derive", "4-8:swish-3:softmax", "--activation", "swish=z*sigmoid(z)",
                     "--loss", "pseudo_huber=sqrt(1 + (a - y)**2) - 1", "--l2", "0.01")
    assert from_file.returncode == 0 and from_flags.returncode == 0, from_flags.stderr
    assert from_file.stdout == from_flags.stdout


def test_user_entries_are_entries_like_the_built_ins():
    arch = expected()
    swish, loss = arch.activation_entries[0], arch.loss_entry
    assert sp.simplify(swish.expr - z / (1 + sp.exp(-z))) == 0
    assert sp.simplify(loss.term - (sp.sqrt(1 + (a - y) ** 2) - 1)) == 0
    g, gp = sp.lambdify(z, swish.expr), sp.lambdify(z, swish.derivative)
    for x in (-3.0, -0.5, 0.7, 2.0):
        h = 1e-6
        assert gp(x) == pytest.approx((g(x + h) - g(x - h)) / (2 * h), rel=1e-7)
    d = derive(arch)
    assert d.layer(1).activation is swish
    assert d.l2 == sp.Rational(1, 100)


def test_a_loss_of_probabilities_gets_a_probability_domain():
    arch = parse_arch("2-2:sigmoid", loss="my_bce",
                      definitions={"losses": {"my_bce": "-(y*log(a) + (1 - y)*log(1 - a))"}})
    lo, hi = arch.loss_entry.a_domain
    assert 0 < lo < hi < 1


def test_cli_loss_name_alone_selects_a_built_in_and_name_expr_defines(cli):
    for loss in sorted(LOSSES):
        needed = LOSSES[loss].output_activations
        out = needed[0] if needed else "identity"
        result = cli("derive", f"2-2:{out}", "--loss", loss, "--no-steps")
        assert result.returncode == 0, (loss, result.stderr)
    result = cli("derive", "2-1:identity", "--loss", "l1=abs(a - y)", "--no-steps")
    assert result.returncode == 0 and "l1" in result.stdout


# CLI arguments -> a fragment of the one-line error (exit 2).
BAD = [
    (["--activation", "swish"], "write NAME=EXPR"),
    (["--activation", "swish="], "empty expression"),
    (["--activation", "=z"], "name '' is not allowed"),
    (["--activation", "Swish=z"], "name 'Swish' is not allowed"),
    (["--activation", "relu=z"], "'relu' is a built-in"),
    (["--activation", "exp=z"], "function of the expression language"),
    (["--activation", "q=w*z"], "unknown symbol 'w'"),
    (["--activation", "q=1"], "does not depend on z"),
    (["--activation", "q=log(z)"], "not a finite real number at z = -1000"),
    (["--activation", "q=sqrt(z)"], "must be real-valued on all the reals"),
    (["--activation", "q=__import__('os').system('echo hi')"], "'__import__'"),
    (["--activation", "q=z", "--activation", "q=2*z"], "defined twice"),
    (["--loss", "q=y**2"], "does not depend on a"),
    (["--loss", "q=a*b"], "unknown symbol 'b'"),
    (["--loss", "q=log(a - y - 5)"], "not a finite real number"),
    (["--loss", "mse=a"], "'mse' is a built-in"),
    (["--loss", "nope"], "unknown loss 'nope'"),
    (["--l2", "-1"], "l2 must be >= 0"),
    (["--l2", "abc"], "l2 must be a decimal number"),
    (["--l2", "1e999999999"], "l2 must be a decimal number"),
    (["--l2", "nan"], "l2 must be a decimal number"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_definitions_are_one_line_and_exit_2(cli, args, message):
    result = cli("derive", "2-1:identity", *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("content,message", [
    ('arch = "2-1"\n[define]\nactivation = {q = "z"}\n', "unknown key 'activation' in 'define'"),
    ('arch = "2-1"\ndefine = 3\n', "'define' must be a table"),
    ('arch = "2-1"\n[define.activations]\nq = 3\n', "must be an expression in a string"),
    ('arch = "2-1"\n[define.activations]\nq = ["z"]\n', "must be an expression in a string"),
    ('arch = "2-1"\n[define]\nactivations = ["z"]\n', "must be a table of name"),
    ('arch = "2-1"\nl2 = "x"\n', "l2 must be a decimal number"),
    ('arch = "2-1"\nl2 = -0.5\n', "l2 must be >= 0"),
    ('arch = ["2-1"]\n', "'arch' must be a string"),
])
def test_bad_spec_file_definitions(tmp_path, content, message):
    path = tmp_path / "s.toml"
    path.write_text(content)
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        load_arch(path)


def test_l2_is_exact_and_shown_in_the_repr():
    arch = parse_arch("2-3-1", l2="1e-3")
    assert arch.l2 == sp.Rational(1, 1000)
    assert "l2='1/1000'" in repr(arch)
    assert parse_arch("2-3-1", l2=0.25).l2 == parse_arch("2-3-1", l2="0.25").l2
    assert parse_arch("2-3-1").l2 == 0


def test_every_builtin_can_be_rewritten_by_a_user_under_another_name():
    """A user's copy of a built-in (its SymPy text) derives what the built-in derives."""
    for name, act in ACTIVATIONS.items():
        if not act.elementwise or act.expr.has(sp.Piecewise):
            continue
        text = str(act.expr).replace("Abs", "abs")
        mine = parse_arch("2-2:mine-1:identity", loss="mse",
                          definitions={"activations": {"mine": text}})
        entry = mine.activation_entries[0]
        for x in (-1.5, 0.5, 2.0):
            assert float(entry.expr.subs(z, x)) == pytest.approx(
                float(act.expr.subs(z, x)), rel=1e-12), name
            assert math.isfinite(float(entry.derivative.subs(z, x)))


def test_a_definition_the_code_generator_cannot_print_is_refused_when_made(monkeypatch):
    from symbackprop.codegen import printer
    from symbackprop.registry import user_activation

    def refuse(expr, variables=()):
        raise printer.GenerationError("no NumPy rule for FancyFunction")
    monkeypatch.setattr(printer, "check_printable", refuse)
    user_activation.cache_clear()
    try:
        with pytest.raises(SpecError, match="no NumPy form for a generated trainer: no NumPy "
                                            "rule for FancyFunction"):
            parse_arch("2-2:q-1:identity", definitions={"activations": {"q": "z**3 + z"}})
    finally:
        user_activation.cache_clear()
