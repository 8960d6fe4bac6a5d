"""The printers of ``explain`` and ``example`` node by node (exact strings, as SymPy's tests do).

The teaching LaTeX printer is the derivation's printer plus concrete entries, summation ranges
and numbers; the one-line text printer writes products and powers as a textbook does.
"""
from __future__ import annotations

import sympy as sp

from symbackprop import naming as N
from symbackprop.matrices import Elementwise
from symbackprop.printing.latex import DerivationLatexPrinter, latex
from symbackprop.printing.linear import text
from symbackprop.teach.printers import TeachLatexPrinter, TeachTextPrinter

W2 = N.matrix("W", 2, 2, 3)
A1 = N.matrix("A", 1, 3, 1)
A2 = N.matrix("A", 2, 2, 1)
dA1 = N.matrix("dA", 1, 3, 1)
dZ1 = N.matrix("dZ", 1, 3, 1)
Z1 = N.matrix("Z", 1, 3, 1)
Y = sp.MatrixSymbol("Y", 2, 1)
m, n2, i, j, u2 = N.m, N.units(2), N.i, N.j, sp.Symbol("u_2", integer=True)


def teach_latex(expr) -> str:
    return TeachLatexPrinter().doprint(expr)


def teach_text(expr) -> str:
    return TeachTextPrinter().doprint(expr)


# --- shared LaTeX printer: the hooks the teaching printer uses ------------------------------

def test_power_of_an_entry_keeps_one_superscript():
    assert latex(A1[2, 0] ** 2) == r"(A_{2}^{[1]})^{2}"
    assert latex(1 - A1[2, 0] ** 2) == r"1 - (A_{2}^{[1]})^{2}"
    assert latex(A1[2, 0] ** -2) == r"\frac{1}{(A_{2}^{[1]})^{2}}"


def test_sum_sign_names_the_indices():
    assert latex(sp.Sum(W2[j, 0] * dZ1[j, 0], (j, 0, 1))) == r"\sum_{j} dZ_{j}^{[1]} \, W_{j0}^{[2]}"
    assert DerivationLatexPrinter()._sum_sign([(i, 0, m - 1)]) == r"\sum_{i}"


# --- teaching LaTeX ------------------------------------------------------------------------

def test_entries_of_concrete_matrices_keep_their_indices_apart():
    assert teach_latex(W2[0, 1]) == r"W_{0,1}^{[2]}"
    assert teach_latex(W2[u2, 0]) == r"W_{u_{2},0}^{[2]}"
    assert teach_latex(A1[2, 0]) == r"A_{2}^{[1]}"  # a column: one index
    assert teach_latex(Y[1, 0]) == r"Y_{1}"


def test_sums_show_their_ranges():
    assert teach_latex(sp.Sum(W2[j, 0] * dZ1[j, 0], (j, 0, 1))) == \
        r"\sum_{j=0}^{1} dZ_{j}^{[1]} \, W_{j,0}^{[2]}"
    body = W2[u2, 0] * A2[u2, 0]
    assert teach_latex(sp.Sum(body, (u2, 0, 1), (j, 0, 0))) == \
        r"\sum_{j=0}^{0} \sum_{u_{2}=0}^{1} A_{u_{2}}^{[2]} \, W_{u_{2},0}^{[2]}"


def test_teaching_latex_is_the_derivation_latex():
    # products, ⊙, ones, activation names and Iverson brackets come from the shared printer
    d, w = sp.symbols("d w")
    relu_step = Elementwise(sp.Lambda((d, w), d * sp.Piecewise((1, w > 0), (0, True))), dA1, Z1)
    assert teach_latex(relu_step) == r"dA^{[1]} \odot [Z^{[1]} > 0]"
    assert teach_latex(sp.MatMul(1 / m, dZ1, A1.T)) == r"\frac{1}{m} \, dZ^{[1]} \, A^{[1]\top}"
    assert teach_latex(sp.Function("sigmoid")(Z1)) == r"\sigma(Z^{[1]})"
    assert teach_latex(A1[0, 0] * (1 - A1[0, 0]) * dA1[0, 0]) == \
        r"dA_{0}^{[1]} \, A_{0}^{[1]} \, \left(1 - A_{0}^{[1]}\right)"


def test_a_samples_part_and_numbers():
    p = TeachLatexPrinter({"digits": 4})
    assert p.of_sample(N.matrix("dW", 2, 2, 3), 1) == r"dW^{[2](1)}"
    assert p.number(sp.Rational(11, 20)) == "0.55"
    assert p.number(sp.Rational(-1, 3)) == r"-\tfrac{1}{3}"
    assert p.number(sp.Float("0.62245933120185456", 50)) == "0.6225"
    assert p.number_matrix(sp.ImmutableMatrix([[1, sp.Rational(1, 4)]])) == \
        r"\left[\begin{array}{rr} 1 & 0.25 \end{array}\right]"
    # one representation a matrix: fractions when one entry needs one, all exact
    assert p.number_matrix(sp.ImmutableMatrix([[sp.Rational(1, 3), sp.Rational(1, 4)]])) == \
        r"\left[\begin{array}{rr} \tfrac{1}{3} & \tfrac{1}{4} \end{array}\right]"
    # else decimals, a rational that does not terminate rounded
    assert p.number_matrix(sp.ImmutableMatrix([[sp.Rational(1, 3), sp.Float(0.5, 50)]])) == \
        r"\left[\begin{array}{rr} 0.3333 & 0.5 \end{array}\right]"


# --- one-line text -------------------------------------------------------------------------

def test_products_are_juxtaposed_errors_first():
    a = A1[0, 0]
    assert text(a * (1 - a)) == "A[1][0, 0] (1 - A[1][0, 0])"
    assert teach_text(a * (1 - a)) == "A[1][0] (1 - A[1][0])"
    assert teach_text(a * (1 - a) * dA1[0, 0]) == "dA[1][0] A[1][0] (1 - A[1][0])"
    assert teach_text(-A2[0, 0] * A2[1, 0]) == "-A[2][0] A[2][1]"
    assert teach_text(2 * a * Y[0, 0]) == "2 A[1][0] Y[0]"


def test_powers_are_superscripts():
    a = A1[0, 0]
    assert teach_text(a ** 2) == "A[1][0]²"
    assert teach_text(1 - a ** 2) == "1 - A[1][0]²"
    assert teach_text((a - Y[0, 0]) ** 12) == "(A[1][0] - Y[0])¹²"
    assert teach_text(a ** sp.Symbol("k")) == "A[1][0]^k"
    assert teach_text(a ** (sp.Symbol("k") - 1)) == "A[1][0]^(k - 1)"


def test_fractions_stay_readable():
    a, y = A1[0, 0], Y[0, 0]
    assert teach_text((a - y) ** 2 / 2) == "(1/2) (A[1][0] - Y[0])²"
    assert teach_text((a - y) ** 2 / n2) == "(1/n_2) (A[1][0] - Y[0])²"
    assert teach_text(2 / n2) == "2/n_2"
    assert teach_text(-y / a) == "-Y[0]/A[1][0]"
    assert teach_text(1 / (1 + sp.exp(-Z1[0, 0]))) == "1/(1 + exp(-Z[1][0]))"
    assert teach_text(dA1[0, 0] * sp.exp(-Z1[0, 0]) / (1 + sp.exp(-Z1[0, 0])) ** 2) == \
        "dA[1][0] exp(-Z[1][0])/(1 + exp(-Z[1][0]))²"
    assert teach_text((a - y) / (a * (1 - a))) == "(A[1][0] - Y[0])/(A[1][0] (1 - A[1][0]))"


def test_sums_run_to_the_end_of_a_product():
    dZ = N.matrix("dZ", 1, 3, m)
    A0 = N.matrix("A", 0, 2, m)
    assert teach_text(sp.Sum(A0[1, i] * dZ[0, i], (i, 0, m - 1)) / m) == \
        "(1/m) Σ[i=0..m - 1] dZ[1][0,i] A[0][1,i]"
    assert teach_text(sp.Sum(N.L[i], (i, 0, m - 1)) / m) == "(1/m) Σ[i=0..m - 1] L[i]"
    assert teach_text(sp.Sum(W2[j, 0] + A2[j, 0], (j, 0, 1))) == \
        "Σ[j=0..1] (A[2][j] + W[2][j,0])"


def test_entrywise_powers_and_products():
    d, a = sp.symbols("d a")
    tanh_step = Elementwise(sp.Lambda((d, a), d * (1 - a ** 2)), dA1, A1)
    assert teach_text(tanh_step) == "dA[1] ⊙ (1 - A[1]^⊙2)"
    assert teach_text(sp.MatAdd(W2, sp.MatMul(-sp.Symbol("alpha"), W2))) == "W[2] - α W[2]"


def test_a_path_prints_its_local_derivatives_in_order():
    a = A1[0, 0]
    factors = [sp.Integer(1), a * (1 - a), W2[u2, 0], -A2[0, 0] * A2[1, 0], A2[0, 0] - Y[0, 0]]
    assert TeachTextPrinter().chain(factors) == \
        "1 · A[1][0] (1 - A[1][0]) · W[2][u_2,0] · (-A[2][0] A[2][1]) · (A[2][0] - Y[0])"
    assert TeachLatexPrinter().chain(factors) == (
        r"1 \cdot A_{0}^{[1]} \, \left(1 - A_{0}^{[1]}\right) \cdot W_{u_{2},0}^{[2]} \cdot "
        r"\left(-A_{0}^{[2]} \, A_{1}^{[2]}\right) \cdot \left(A_{0}^{[2]} - Y_{0}\right)")


def test_the_closed_form_sums_the_chain_over_the_path_indices():
    factors = [W2[u2, 0], A2[u2, 0] - Y[u2, 0]]
    limits = [(u2, 0, 1)]
    assert TeachTextPrinter().chain(factors, limits) == "Σ[u_2=0..1] W[2][u_2,0] · (A[2][u_2] - Y[u_2])"
    assert TeachLatexPrinter().chain(factors, limits) == \
        r"\sum_{u_{2}=0}^{1} W_{u_{2},0}^{[2]} \cdot \left(A_{u_{2}}^{[2]} - Y_{u_{2}}\right)"


# --- what the new entries and the user's functions need ---------------------------------------

def test_abs_prints_as_bars_in_text():
    from symbackprop.registry import Abs

    assert teach_text(Abs(A2[0, 0] - Y[0, 0])) == "|A[2][0] - Y[0]|"
    assert teach_latex(Abs(A2[0, 0] - Y[0, 0])) == r"\left|{A_{0}^{[2]} - Y_{0}}\right|"


def test_constants_with_many_decimals_print_as_decimals():
    scale = sp.Rational("1.0507009873554804934193349852946")
    assert teach_text(scale * Z1[0, 0]) == "1.0507009873554804934193349852946 Z[1][0]"
    assert teach_latex(scale * Z1[0, 0]) == r"1.0507009873554804934193349852946 Z_{0}^{[1]}"
    assert teach_text(sp.Rational("0.044715")) == "0.044715"
    # short fractions stay fractions
    assert teach_text(sp.Rational(1, 100) * Z1[0, 0]) == "(1/100) Z[1][0]"
    assert teach_latex(sp.Rational(1, 3) * Z1[0, 0]) == r"\frac{1}{3} Z_{0}^{[1]}"


def test_scalar_products_sit_side_by_side():
    lam, alpha = N.lam, sp.Symbol("alpha")
    assert teach_text(lam / (2 * m)) == "λ/(2 m)"
    assert teach_text(alpha * lam / m) == "α λ/m"
    assert teach_text(2 / n2) == "2/n_2" and teach_text(-lam / m) == "-λ/m"


def test_a_root_inside_an_entrywise_map():
    a, y = sp.symbols("a y")
    root = Elementwise(sp.Lambda((a, y), (a - y) / sp.sqrt(1 + (a - y) ** 2)), A2, Y)
    assert teach_latex(root) == \
        r"\frac{A^{[2]} - Y}{\sqrt{1 + \left(A^{[2]} - Y\right)^{\odot 2}}}"
    assert teach_text(root) == "(A[2] - Y) ⊘ sqrt((A[2] - Y)^⊙2 + 1)"


def test_the_users_activations_print_by_their_names():
    from symbackprop.spec import parse_arch

    arch = parse_arch("2-2:swish-1:identity",
                      definitions=({"activations": {"swish": "z*sigmoid(z)"}}))
    printer = TeachLatexPrinter.for_arch(arch, {"digits": 4})
    assert printer.doprint(sp.Function("swish")(Z1)) == r"\operatorname{swish}(Z^{[1]})"
    assert printer.doprint(sp.Function("sigmoid")(Z1)) == r"\sigma(Z^{[1]})"
    assert printer._settings["digits"] == 4
