"""The derivation: BP1-BP4 and the output-layer simplifications come out of the algebra."""
import pytest
import sympy as sp

from symbackprop import DerivationError, derive, parse_arch
from symbackprop.engine import Layout, _Network
from symbackprop.matrices import Elementwise

m = sp.Symbol("m", integer=True, positive=True)


def body(expr):
    """The scalar body of an Elementwise map, with placeholders renamed to plain symbols."""
    assert isinstance(expr, Elementwise), expr
    return expr.scalar()


def S(name):
    return sp.Symbol(name)


def test_bp1_to_bp4_in_ng_notation():
    d = derive(parse_arch("2-3-1"))
    hidden, out = d.layer(1), d.layer(2)
    assert hidden.backward["BP1"].rhs.doit() == (hidden.dZ * hidden.A_prev.T / m).doit()
    assert hidden.backward["BP2"].rhs.doit() == (hidden.dZ * sp.OneMatrix(m, 1) / m).doit()
    assert out.backward["BP3"].rhs == out.W.T * out.dZ
    # BP4 with sigma' written in the layer's output: dZ = dA ⊙ A ⊙ (1 - A)
    bp4 = body(hidden.backward["BP4"].rhs)
    assert sp.expand(bp4 - S("dA[1]") * S("A[1]") * (1 - S("A[1]"))) == 0


def test_bp_equations_in_rowvec_notation_are_the_transposed_forms():
    d = derive(parse_arch("2-3:tanh-1"), notation="rowvec")
    hidden, out = d.layer(1), d.layer(2)
    assert hidden.W.shape == (sp.Symbol("n_0", integer=True, positive=True),
                              sp.Symbol("n_1", integer=True, positive=True))
    assert hidden.backward["BP1"].rhs.doit() == (hidden.A_prev.T * hidden.dZ / m).doit()
    assert hidden.backward["BP2"].rhs.doit() == (sp.OneMatrix(1, m) * hidden.dZ / m).doit()
    assert out.backward["BP3"].rhs == out.dZ * out.W.T
    assert sp.expand(body(hidden.backward["BP4"].rhs) - S("dA[1]") * (1 - S("A[1]") ** 2)) == 0


@pytest.mark.parametrize("spec,loss", [("4-3:relu-2:softmax", "cross_entropy"),
                                       ("4-3:tanh-2:sigmoid", "bce")])
def test_output_error_simplifies_to_a_minus_y(spec, loss):
    for notation in ("ng", "rowvec"):
        out = derive(parse_arch(spec, loss), notation).output
        assert body(out.backward["output"].rhs) == S("A[2]") - S("Y")
        rules = [step.rule for step in out.backward["output"].steps]
        assert rules[0] == "chain" and "substitute" in rules
        # bce needs the algebra's simplification; cross-entropy the targets' sum, Σ_j Y_jk = 1
        assert ("targets" if loss == "cross_entropy" else "simplify") in rules


@pytest.mark.parametrize("loss", ["mse", "half_sse"])
def test_softmax_with_squared_error_keeps_the_jacobian_vector_product(loss):
    out = derive(parse_arch("4-3:relu-3:softmax", loss)).output
    rhs = out.backward["output"].rhs
    assert rhs.has(sp.OneMatrix), "the column sum over units (1 1ᵀ ...) must stay"
    assert body(rhs) != S("A[2]") - S("Y")
    # entry form: A_rk (dA_rk - Σ_j A_jk dA_jk) with dA from the loss
    assert out.backward["BP4"].entry_rhs.has(sp.Sum)


def test_half_sse_with_sigmoid_output_is_the_textbook_product():
    out = derive(parse_arch("2-3-1")).output
    a_, y_ = S("A[2]"), S("Y")
    assert sp.expand(body(out.backward["output"].rhs) - (a_ - y_) * a_ * (1 - a_)) == 0
    assert body(out.backward["loss"].rhs) == a_ - y_


def test_relu_derivative_is_zero_at_zero_in_the_derivation():
    bp4 = derive(parse_arch("2-3:relu-1")).layer(1).backward["BP4"].rhs
    at_zero = body(bp4).subs({S("Z[1]"): 0, S("dA[1]"): 1})
    assert at_zero == 0
    assert not bp4.has(sp.Heaviside)


def test_layer_width_never_enters_the_algebra():
    wide = derive(parse_arch("784-128:relu-10:softmax", "cross_entropy"))
    small = derive(parse_arch("4-3:relu-2:softmax", "cross_entropy"))
    for big_layer, small_layer in zip(wide.layers, small.layers):
        for name, eq in big_layer.backward.items():
            assert eq.rhs == small_layer.backward[name].rhs
            assert eq.steps == small_layer.backward[name].steps


def test_a_wrong_forward_definition_changes_the_equations():
    """Z = Wᵀ A + b (W stored n_{l-1} × n_l): the same algebra then gives dW = (1/m) A dZᵀ."""

    class TransposedWeights(Layout):
        def weight_shape(self, n_out, n_in):
            return (n_in, n_out)

        def weight_pos(self, out, inp):
            return (inp, out)

    arch = parse_arch("2-3-1")
    d = _Network(arch, TransposedWeights()).derive()
    layer = d.layer(2)
    assert layer.backward["BP1"].rhs.doit() == (layer.A_prev * layer.dZ.T / m).doit()
    assert layer.backward["BP3"].rhs == layer.W * layer.dZ
    assert layer.backward["BP1"].rhs != derive(arch).layer(2).backward["BP1"].rhs


def test_every_equation_keeps_its_chain_rule_steps():
    d = derive(parse_arch("3-4:tanh-2:softmax", "cross_entropy"))
    for layer in d.layers:
        for name, eq in layer.backward.items():
            rules = [step.rule for step in eq.steps]
            assert rules[0] in ("chain", "linearity"), (name, rules)
            assert rules[-1] == "vectorise" and eq.steps[-1].rhs == eq.rhs
            assert "kronecker" in rules or name == "output"
    # ∂Z_ji/∂W_rs = δ_jr A_si is a kept step of BP1
    local = next(s for s in d.layer(1).backward["BP1"].steps if s.rule == "local")
    assert local.rhs.has(sp.KroneckerDelta) and str(local.rhs.args[-1]) == "A[0][s, i]"


def test_general_layer_has_an_unspecified_activation():
    general = derive(parse_arch("2-3-1")).general
    bp4 = general.backward["BP4"].rhs
    assert bp4.has(sp.Function("g")) and bp4.has(sp.Derivative)
    assert general.backward["BP3"].rhs == general.W.T * general.dZ


def test_unknown_notation_is_refused():
    with pytest.raises(DerivationError, match="unknown notation 'colvec' .known: ng, rowvec"):
        derive(parse_arch("2-3-1"), notation="colvec")


def test_equations_and_steps_print_like_the_math():
    d = derive(parse_arch("4-3:relu-2:softmax", "cross_entropy"))
    assert repr(d.output.backward["output"]) == "output: dZ[2] = A[2] - Y"
    assert repr(d.layer(1).backward["BP4"]) == "BP4: dZ[1] = dA[1] ⊙ [Z[1] > 0]"
    assert repr(d.output.backward["loss"]) == "loss: dA[2] = -Y ⊘ A[2]"  # Hadamard division
    local = next(s for s in d.layer(1).backward["BP1"].steps if s.rule == "local")
    assert repr(local) == "∂Z[1][j, i]/∂W[1][r, s] = δ(j,r) A[0][s, i]    [local]"
