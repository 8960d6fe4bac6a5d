"""Layer kinds as entries, and the two generalisations of the engine they stand on: the chain
rule sums over every use of a quantity, and affine Kronecker deltas keep their ranges."""
import itertools
import random

import pytest
import sympy as sp

from symbackprop import derive, parse_arch
from symbackprop import naming as N
from symbackprop.engine import LAYOUTS, _Network, sum_over
from symbackprop.kinds import LAYER_KINDS, SPEC_LAYER


@pytest.mark.parametrize("notation", sorted(LAYOUTS))
@pytest.mark.parametrize("kind", sorted(LAYER_KINDS))
def test_every_kind_defines_its_output_from_its_inputs_and_has_its_gradients(kind, notation):
    entry = LAYER_KINDS[kind]
    d = derive(parse_arch("3-4:tanh-2:identity", loss="mse"), notation)
    for layer in d.layers:
        defined = {eq.lhs.name: eq for eq in layer.forward}
        out = getattr(layer, entry.output)
        assert out.name in defined
        used = {M.name for M in defined[out.name].entry_rhs.atoms(sp.MatrixSymbol)}
        for name in (*entry.inputs, *entry.parameters):
            assert getattr(layer, name).name in used, (kind, name)
        for grad in entry.gradients:
            eq = layer.backward[grad.name]
            assert eq.lhs == getattr(layer, grad.result)
            assert eq.steps[0].rule == "chain" and eq.steps[-1].rule == "vectorise"


def test_the_kinds_of_a_spec_layer_chain_output_to_input():
    for before, after in itertools.pairwise(SPEC_LAYER):
        assert before.output in after.inputs


def test_a_quantity_used_twice_gets_the_sum_over_both_uses():
    """A feeds Z = W A + b 1ᵀ and, as a skip connection, V = A: ∂J/∂A adds both chains."""
    arch = parse_arch("3-4:tanh-2:identity", loss="mse")
    net = _Network(arch, LAYOUTS["ng"])
    sym = net.symbols(2)
    kind = LAYER_KINDS["dense"]
    dense = (sym["Z"], sym["dZ"], sym["units"],
             lambda u, e: kind.forward(net, sym, None, u, e))
    V, dV = sp.MatrixSymbol("V", *sym["A_prev"].shape), sp.MatrixSymbol("dV", *sym["A_prev"].shape)
    skip = (V, dV, sym["prev_units"], lambda u, e: sym["A_prev"][u, e])
    target = sym["A_prev"][N.s, N.k]
    _, both = net.chain(target, [dense, skip])
    _, one = net.chain(target, [dense])
    _, other = net.chain(target, [skip])
    assert sp.simplify(both - one - other) == 0
    assert other == dV[N.s, N.k] / N.m  # the skip's own chain: its error, divided by m
    assert one.has(sym["W"]) and one.has(sym["dZ"])


def _brute(values, size_x, size_u, stride, p):
    return sum(values[(x, u)] for x in range(size_x) for u in range(size_u)
               if stride * x + u == p)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_affine_deltas_are_summed_with_their_range_conditions(stride):
    """Σ_x Σ_u δ(S·x + u, p) F[x, u]: x = (p - u)/S where that is an index of x, else 0."""
    x, u, p = sp.symbols("x u p", integer=True)
    F = sp.IndexedBase("F")
    size_x, size_u = 5, 3
    result = sum_over(sp.KroneckerDelta(stride * x + u, p) * F[x, u], [(x, size_x), (u, size_u)])
    assert not result.has(sp.KroneckerDelta) and result.has(sp.Piecewise)
    rng = random.Random(stride)
    values = {(i, j): sp.Integer(rng.randint(1, 99)) for i in range(size_x) for j in range(size_u)}
    for p_value in range(-2, stride * size_x + size_u + 1):
        got = result.subs(p, p_value).doit().replace(
            lambda e: isinstance(e, sp.Indexed), lambda e: values[tuple(map(int, e.indices))])
        assert got == _brute(values, size_x, size_u, stride, p_value), p_value


def test_a_delta_between_two_indices_of_one_dimension_needs_no_condition():
    j, r = sp.symbols("j r", integer=True)
    F = sp.IndexedBase("F")
    assert sum_over(sp.KroneckerDelta(j, r) * F[j], [(j, 7)]) == F[r]
