"""The derivation engine: backpropagation by the chain rule in index notation.

The network is written entry by entry with symbolic sizes (a layout decides where units and
examples sit):

    Z_ji = Σ_t W_jt A^[l-1]_ti + b_j,    A_ji = g(Z_ji),    J = (1/m) Σ_i Σ_c ℓ(A^[L]_ci, Y_ci)

and every gradient is obtained the same way: the chain rule through the one quantity that
depends on the target, SymPy's ``diff`` of the forward definition (Kronecker deltas), the sums
over the deltas, and the recognition of the result as a matrix expression. The four
backpropagation equations and every output-layer simplification come out of this algebra;
none is written here. The size of a layer never enters it, so a 1024-wide layer costs what a
3-wide one does.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from . import naming as N
from .errors import DerivationError
from .kinds import FEATURE_KINDS, SPEC_LAYER
from .matrices import elements, vectorise
from .model import Derivation, Equation, FeatureLayer, Layer, Step
from .registry import a as a_var
from .registry import c_idx, j_idx, zvec
from .registry import n as n_var
from .registry import y as y_var
from .registry import z as z_var
from .spec import Architecture
from .tensors import Map, Plus, Scaled, recognise_map

GENERIC_G = sp.Function("g")


# --- layouts: where units and examples sit -------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Columns are examples (Ng's notation): Z^[l] is n_l × m, W^[l] is n_l × n_{l-1}."""

    name: str = "ng"

    def shape(self, units, m):
        return (units, m)

    def pos(self, unit, example):
        return (unit, example)

    def unit_example(self, entry):
        """(unit, example) of a matrix entry: the inverse of ``pos``."""
        return tuple(entry.indices)

    def weight_shape(self, n_out, n_in):
        return (n_out, n_in)

    def weight_pos(self, out, inp):
        return (out, inp)

    def bias_shape(self, n_out):
        return (n_out, 1)

    def bias_pos(self, out):
        return (out, sp.Integer(0))

    def forward_z(self, W, A_prev, b, n_prev, unit, example):
        """Z_{unit,example} = Σ_t W_{unit,t} A_{t,example} + b_unit."""
        t = N.t
        return sp.Sum(W[self.weight_pos(unit, t)] * A_prev[self.pos(t, example)],
                      (t, 0, n_prev - 1)) + b[self.bias_pos(unit)]


@dataclass(frozen=True)
class RowLayout(Layout):
    """Rows are examples: Z_l = A_{l-1} W_l + b_l, W_l is n_{l-1} × n_l."""

    name: str = "rowvec"

    def shape(self, units, m):
        return (m, units)

    def pos(self, unit, example):
        return (example, unit)

    def unit_example(self, entry):
        return tuple(reversed(entry.indices))

    def weight_shape(self, n_out, n_in):
        return (n_in, n_out)

    def weight_pos(self, out, inp):
        return (inp, out)

    def bias_shape(self, n_out):
        return (1, n_out)

    def bias_pos(self, out):
        return (sp.Integer(0), out)


LAYOUTS = {"ng": Layout(), "rowvec": RowLayout()}


# --- sums over Kronecker deltas ------------------------------------------------------------

def _first_branch(expr):
    """With symbolic bounds, SymPy guards delta sums by ``Piecewise((e, q <= n-1), (0, True))``;
    the indices are in range by construction, so the first branch is the value."""
    return expr.replace(lambda e: isinstance(e, sp.Piecewise) and e.args[-1].expr == 0
                        and e.args[-1].cond == sp.true and _is_range_guard(e.args[0].cond),
                        lambda e: e.args[0].expr)


def _is_range_guard(cond) -> bool:
    """A bound on integer indices (q <= n - 1), not a condition on values (Z_ri > 0)."""
    parts = cond.args if isinstance(cond, sp.And) else (cond,)
    return all(isinstance(part, sp.core.relational.Relational)
               and not elements(part) and all(x.is_integer for x in part.free_symbols)
               for part in parts)


def deltas_out_of_piecewise(expr):
    """Piecewise((δ·x, c), (0, True)) -> δ·Piecewise((x, c), (0, True)), so deltas can be summed."""
    def pull(pw):
        # A branch such as (2 δ Z + δ) dA: its common factors first, so its deltas are factors.
        pw = sp.Piecewise(*[(sp.factor_terms(b.expr), b.cond) for b in pw.args])
        shared = None
        for branch in pw.args:
            if branch.expr == 0:
                continue
            ds = {f for f in sp.Mul.make_args(branch.expr) if isinstance(f, sp.KroneckerDelta)}
            shared = ds if shared is None else shared & ds
        if not shared:
            return pw
        factor = sp.Mul(*sorted(shared, key=sp.default_sort_key))
        return factor * sp.Piecewise(*[(b.expr / factor if b.expr != 0 else b.expr, b.cond)
                                       for b in pw.args])
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), pull)


def _pull_sum_constants(expr):
    """Σ c·f -> c·Σ f for every sum in expr (c free of the summed indices)."""
    return expr.replace(lambda e: isinstance(e, sp.Sum),
                        lambda e: _make_sum(e.function, list(e.limits)))


def _make_sum(term, limits):
    """Σ over ``limits`` of ``term``, with the factors free of the summed indices in front."""
    if not limits:
        return term
    outside, inside = term.as_independent(*[v for v, _, _ in limits], as_Add=False)
    return outside * sp.Sum(inside, *limits)


def sum_over(expr, limits):
    """Σ over ``limits`` ([(index, size), ...]) of ``expr``, summing out Kronecker deltas.

    Terms are summed one at a time. An index that a delta factor pins is substituted (the delta
    picks one value; an affine one, δ(x + u, p), picks x = p - u and keeps its range condition
    0 <= p - u <= size - 1); a delta nested deeper is left to SymPy's ``Sum.doit``; an index
    without a delta stays a symbolic sum.
    """
    total = sp.Integer(0)
    for term in _delta_terms(expr):
        remaining = []
        for var, size in limits:
            if term.has(sp.Piecewise) and term.has(sp.KroneckerDelta):
                term = deltas_out_of_piecewise(term)
            if not term.has(var):
                term = term * size
            elif (picked := _pick_delta(term, var, size)) is not None:
                term = picked
            elif any(var in d.free_symbols for d in term.atoms(sp.KroneckerDelta)):
                term = _first_branch(sp.Sum(term, (var, 0, size - 1)).doit())
            else:
                remaining.append((var, 0, size - 1))
        total += _make_sum(term, remaining)
    return total


def _pick_delta(term, var, size=None):
    """Σ_var δ(c·var + u, p) f(var) for a delta that is a factor of the term (else None).

    δ(var, x) with x a single index: f(x), x being in the range of var by construction (both
    index the same dimension). Otherwise the delta's equation is solved for var, an affine
    value v = (p - u)/c; the sum is f(v) where v is an index of var's range, 0 otherwise: the
    range condition 0 <= v <= size - 1 (and c | p - u for a stride c) is kept as a Piecewise.
    """
    for factor in sp.Mul.make_args(term):
        if not isinstance(factor, sp.KroneckerDelta) or var not in factor.free_symbols:
            continue
        left, right = factor.args[:2]
        rest = sp.Mul(*[f for f in sp.Mul.make_args(term) if f is not factor])
        if var in (left, right):
            other = right if left == var else left
            if other == var:
                continue
            if isinstance(other, sp.Symbol) or size is None:
                return rest.xreplace({var: other})
        equation = sp.expand(left - right)  # c·var + rest == 0
        coeff = equation.coeff(var)
        if not (coeff.is_Integer and coeff != 0 and not (equation - coeff * var).has(var)):
            continue
        shift = equation - coeff * var
        value = sp.expand(-shift / coeff)
        conditions = [sp.Le(0, value), sp.Le(value, size - 1)]
        if abs(coeff) != 1:
            conditions.append(sp.Eq(sp.Mod(shift, abs(coeff)), 0))
        picked = rest.xreplace({var: value})
        # A range condition already on the picked term (a delta summed before) joins this one.
        for inner in sp.Mul.make_args(picked):
            if (isinstance(inner, sp.Piecewise) and len(inner.args) == 2
                    and inner.args[1] == (0, True)):
                picked = picked.xreplace({inner: inner.args[0].expr})
                conditions = [*_conjuncts(inner.args[0].cond), *conditions]
        return sp.Piecewise((picked, sp.And(*conditions)), (0, True))
    return None


def _constants_out_of_piecewise(expr, count):
    """Σ Piecewise((c·x, q), (0, True)) -> c·Σ Piecewise((x, q), (0, True)) for a factor c of
    the symbols of ``count`` alone (the 1/m of an error inside a range condition, so that the
    m of the per-example error cancels it; a Sum folds a factor into its Piecewise, so it goes
    in front of the Sum)."""
    def pull(total):
        pw = total.function
        if not isinstance(pw, sp.Piecewise) or len(pw.args) != 2 \
                or pw.args[1].expr != 0 or pw.args[1].cond != sp.true:
            return total
        value, cond = pw.args[0]
        const = [f for f in sp.Mul.make_args(value)
                 if f.free_symbols and f.free_symbols <= count.free_symbols]
        if not const:
            return total
        c = sp.Mul(*const)
        return c * sp.Sum(sp.Piecewise((value / c, cond), (0, True)), *total.limits)
    return expr.replace(lambda e: isinstance(e, sp.Sum), pull)


def _conjuncts(cond) -> list:
    return list(cond.args) if isinstance(cond, sp.And) else [cond]


def _drop_zero_sums(expr):
    """Σ 0 -> 0 (what ``diff`` leaves of a sum free of the target)."""
    return expr.replace(lambda e: isinstance(e, sp.Sum) and e.function == 0,
                        lambda e: sp.Integer(0))


def _delta_terms(expr) -> list:
    """The terms of expr, distributing products only over the sums that hold a delta."""
    if expr.is_Add:
        return [t for arg in expr.args for t in _delta_terms(arg)]
    if expr.is_Mul:
        for pos, factor in enumerate(expr.args):
            if factor.is_Add and factor.has(sp.KroneckerDelta):
                rest = sp.Mul(*expr.args[:pos], *expr.args[pos + 1:])
                return [t for arg in factor.args for t in _delta_terms(rest * arg)]
    return [expr]


def _sum_inner(expr):
    """Sum out the deltas of the inner sums that ``diff`` leaves (∂/∂W of Σ_t W_jt A_ti)."""
    return expr.replace(
        lambda e: isinstance(e, sp.Sum) and e.has(sp.KroneckerDelta),
        lambda e: sum_over(deltas_out_of_piecewise(e.function),
                           [(v, hi - lo + 1) for v, lo, hi in e.limits]))


# --- the engine ----------------------------------------------------------------------------

class _Network:
    """Symbols of one network in one layout; derives each layer's equations."""

    def __init__(self, arch: Architecture, layout: Layout):
        self.arch, self.layout = arch, layout
        self.m = N.m
        self.loss = arch.loss_entry
        self.l2 = sp.Rational(arch.l2.numerator, arch.l2.denominator)

    # symbols -------------------------------------------------------------------------------
    def symbols(self, label):
        lay, m = self.layout, self.m
        prev = N.previous(label)
        n_l, n_prev = N.units(label), N.units(prev)
        act_shape = lay.shape(n_l, m)
        return {
            "units": n_l, "prev_units": n_prev,
            "W": N.matrix("W", label, *lay.weight_shape(n_l, n_prev)),
            "b": N.matrix("b", label, *lay.bias_shape(n_l)),
            "Z": N.matrix("Z", label, *act_shape), "A": N.matrix("A", label, *act_shape),
            "A_prev": N.matrix("A", prev, *lay.shape(n_prev, m)),
            "dZ": N.matrix("dZ", label, *act_shape), "dA": N.matrix("dA", label, *act_shape),
            "dW": N.matrix("dW", label, *lay.weight_shape(n_l, n_prev)),
            "db": N.matrix("db", label, *lay.bias_shape(n_l)),
            "dA_prev": N.matrix("dA", prev, *lay.shape(n_prev, m)),
        }

    def at(self, M, unit, example):
        return M[self.layout.pos(unit, example)]

    # forward definitions -------------------------------------------------------------------
    def a_entry(self, sym, activation, unit, example):
        Z = sym["Z"]
        if activation is None:
            return GENERIC_G(self.at(Z, unit, example))
        if activation.elementwise:
            return activation.expr.xreplace({z_var: self.at(Z, unit, example)})
        # A vector activation is written over a column z_0 .. z_{n-1} of Z; its own summation
        # index j becomes t, as j is the chain rule's index over the units of layer l.
        return activation.expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == zvec,
                            lambda e: self.at(Z, e.indices[0], example)) \
            .xreplace({c_idx: unit, n_var: sym["units"], j_idx: N.t})

    def loss_entry(self, A_out, Y, n_out, example):
        term = self.loss.term.xreplace({a_var: self.at(A_out, N.c, example),
                                        y_var: self.at(Y, N.c, example), n_var: n_out})
        return sp.Sum(term, (N.c, 0, n_out - 1))

    # the chain rule --------------------------------------------------------------------------
    def chain(self, target, uses, rewrite=None):
        """∂J/∂target through every quantity that uses it: ``uses`` lists (V, dV, units of V,
        definition) with V's entries ``definition(j, i)``; the chain rule sums over all of them.

        Returns (steps, ∂J/∂target as an index expression). ``rewrite`` may restate the local
        derivative (g' in terms of the output); it returns (new expression, rule) or None.
        """
        j, i, m = N.j, N.i, self.m
        entries = [(self.at(V, j, i), self.at(dV, j, i), [(j, units_V), (i, m)],
                    definition(j, i)) for V, dV, units_V, definition in uses]
        restate = None if rewrite is None else (lambda local: rewrite(local, j, i))
        return self.chain_entries(target, entries, restate)

    def chain_entries(self, target, uses, rewrite=None):
        """The chain rule over ``uses``: (entry of V, entry of dV, [(index, size), ...] that
        the entries run over, V's forward definition at that entry)."""
        m = self.m
        lhs = sp.Derivative(N.J, target)
        rows = {rule: [] for rule in ("chain", "adjoint", "insert", "kronecker")}
        local_steps, result = [], sp.Integer(0)
        for V_e, dV_e, index_sizes, definition in uses:
            limits = tuple((x, 0, size - 1) for x, size in index_sizes)
            local_lhs = sp.Derivative(V_e, target, evaluate=False)
            rows["chain"].append(sp.Sum(sp.Derivative(N.J, V_e) * local_lhs, *limits))
            rows["adjoint"].append(sp.Sum(dV_e / m * local_lhs, *limits))
            local = deltas_out_of_piecewise(_sum_inner(_drop_zero_sums(
                sp.diff(definition, target))))
            local_steps.append(Step(local_lhs, local, "local"))
            if rewrite is not None:
                restated = rewrite(local)
                if restated is not None:
                    local, rule = restated
                    local_steps.append(Step(local_lhs, local, rule))
            rows["insert"].append(sp.Sum(dV_e / m * local, *limits))
            result += sum_over(dV_e / m * local, list(index_sizes))
        steps = [Step(lhs, sp.Add(*rows["chain"]), "chain"),
                 Step(lhs, sp.Add(*rows["adjoint"]), self.rule("adjoint")),
                 *local_steps,
                 Step(lhs, sp.Add(*rows["insert"]), "insert"),
                 Step(lhs, result, "kronecker")]
        return steps, result

    def rule(self, name: str) -> str:
        """The key of a rule that names what J averages over: examples, or (example, step)
        pairs when the head of a recurrent network applies at every step."""
        return name if self.m == N.m else f"{name}_pairs"

    def per_example(self, lhs, steps, grad):
        """dX = m ∂J/∂X, entry ``lhs``: the error of one example."""
        entry = sp.Add(*[_constants_out_of_piecewise(self.m * t, self.m)
                         for t in sp.Add.make_args(grad)])
        steps = [*steps, Step(lhs, entry, self.rule("scale"))]
        return steps, entry

    def finish(self, name, label, lhs_matrix, rows, cols, entry, steps):
        rhs = vectorise(entry, rows, cols, lhs_matrix.shape)
        steps = [*steps, Step(lhs_matrix, rhs, "vectorise")]
        return Equation(name, label, lhs_matrix, rhs, lhs_matrix[rows, cols], entry, tuple(steps))

    # local derivative of the activation in terms of its output ------------------------------
    def output_rewrite(self, sym, activation):
        if activation is None:
            return None
        A, Z = sym["A"], sym["Z"]
        if activation.elementwise:
            h = activation.derivative_of_output
            if h is None:
                return None
            gp = activation.derivative

            def rewrite(local, j, i):
                Z_ji, A_ji = self.at(Z, j, i), self.at(A, j, i)
                factors = sp.Mul.make_args(local)
                deltas = [f for f in factors if isinstance(f, sp.KroneckerDelta)]
                coeff = sp.Mul(*[f for f in factors if not isinstance(f, sp.KroneckerDelta)])
                if coeff.xreplace({Z_ji: z_var}) != gp:
                    return None
                return h.xreplace({a_var: A_ji}) * sp.Mul(*deltas), "output"
            return rewrite

        # A ratio activation (softmax): num(z_c) / den. Where num(Z_xi) stands, A_xi · den does.
        num = activation.expr.as_numer_denom()[0]

        def rewrite(local, j, i):
            den_i = self.a_entry(sym, activation, j, i).as_numer_denom()[1]
            S = sp.Dummy("S")
            num_func = num.func
            out = local.xreplace({den_i: S}).replace(
                lambda e: e.func == num_func and isinstance(e.args[0], MatrixElement)
                and e.args[0].parent == Z,
                lambda e: self.at(A, *self.layout.unit_example(e.args[0])) * S)
            out = sp.expand(sp.cancel(out))
            if out.has(S) or out.has(Z):
                return None
            return out, "output"
        return rewrite

    # one layer -------------------------------------------------------------------------------
    def layer(self, label, activation, is_output) -> Layer:
        """Layer ``label``: the kinds of a spec layer in a row (dense, then the activation),
        each kind's forward definition, and each kind's gradients by the chain rule through
        its output, last kind first, as backpropagation runs."""
        sym = self.symbols(label)
        lay = self.layout
        r, s, k = N.r, N.s, N.k
        rows_rk = lay.pos(r, k)

        def definition(kind):
            return lambda unit, example: kind.forward(self, sym, activation, unit, example)

        forward = tuple(self.finish("forward", label, sym[kind.output], *rows_rk,
                                    definition(kind)(r, k), []) for kind in SPEC_LAYER)
        backward: dict[str, Equation] = {}
        for kind in reversed(SPEC_LAYER):
            V, dV = sym[kind.output], sym["d" + kind.output]
            rewrite = self.output_rewrite(sym, activation) if kind.restates_output else None
            uses = [(V, dV, sym["units"], definition(kind))]
            for grad in kind.gradients:
                position = grad.position(lay, r, s, k)
                target = sym[grad.target][position]
                lhs = sym[grad.result]
                steps, entry = self.chain(target, uses, rewrite)
                if grad.penalised and self.l2:
                    steps, entry = self.penalised(sym, target, steps, entry)
                if grad.per_example:
                    steps, entry = self.per_example(lhs[position], steps, entry)
                if is_output and kind.output == "A":
                    # The output's error comes from the cost: dA^[L] first, then dZ simplified.
                    backward["loss"] = self.loss_equation(label, sym)
                    backward[grad.name] = self.finish(grad.name, label, lhs, *position, entry,
                                                      steps)
                    more, entry = self.output_error(sym, entry, backward["loss"])
                    backward["output"] = self.finish("output", label, lhs, *position, entry,
                                                     [*steps, *more])
                    continue
                backward[grad.name] = self.finish(grad.name, label, lhs, *position, entry,
                                                  steps)

        return Layer(label, sym["units"], activation, *(sym[x] for x in (
            "W", "b", "Z", "A", "A_prev", "dZ", "dA", "dW", "db", "dA_prev")),
            forward, backward, is_output)

    def penalty(self, sym):
        """(λ/2m) Σ_j Σ_t (W_jt)²: the L2 penalty's part that depends on this layer's W."""
        j, t, W = N.j, N.t, sym["W"]
        return N.lam / (2 * self.m) * sp.Sum(W[self.layout.weight_pos(j, t)] ** 2,
                                             (j, 0, sym["units"] - 1),
                                             (t, 0, sym["prev_units"] - 1))

    def penalised(self, sym, target, steps, grad):
        """∂J/∂W with the penalty: the chain rule's part through Z, plus the penalty's own."""
        return self.penalised_entry(self.penalty(sym), target, steps, grad)

    def loss_equation(self, label, sym):
        """dA^[L] = m ∂J/∂A^[L], from the cost."""
        A, dA, n_l, m = sym["A"], sym["dA"], sym["units"], self.m
        r, k, i = N.r, N.k, N.i
        target = self.at(A, r, k)
        lhs = sp.Derivative(N.J, target)
        steps = [Step(lhs, sp.Sum(sp.Derivative(N.L[i], target), (i, 0, m - 1)) / m,
                      self.rule("linearity"))]
        inner = _sum_inner(sp.diff(self.loss_entry(A, self.Y, n_l, i), target))
        steps.append(Step(lhs, sp.Sum(inner, (i, 0, m - 1)) / m, "local"))
        grad = sum_over(inner / m, [(i, m)])
        steps.append(Step(lhs, grad, "kronecker"))
        steps, entry = self.per_example(self.at(dA, r, k), steps, grad)
        return self.finish("loss", label, dA, *self.layout.pos(r, k), entry, steps)

    def output_error(self, sym, entry, loss_eq):
        """dZ^[L]: substitute dA^[L] from the loss, simplify, use the targets' constraint."""
        dA, Y = sym["dA"], self.Y
        lhs = self.at(sym["dZ"], N.r, N.k)
        dA_entry = loss_eq.entry_rhs  # in A[r,k], Y[r,k]

        def dA_at(e):
            unit, example = self.layout.unit_example(e)
            return dA_entry.xreplace({N.r: unit, N.k: example})
        out = entry.replace(lambda e: isinstance(e, MatrixElement) and e.parent == dA, dA_at)
        out = _pull_sum_constants(out)
        steps = [Step(lhs, out, "substitute")]
        simpler = _simplest(out)
        if simpler != out:
            out = simpler
            steps.append(Step(lhs, out, "simplify"))
        if self.loss.targets_sum_to_one:
            sums = [e for e in out.atoms(sp.Sum) if _is_target_sum(e, Y)]
            if sums:
                out = _simplest(_pull_sum_constants(out.xreplace({e: 1 for e in sums})))
                steps.append(Step(lhs, out, "targets"))
        return steps, out

    # feature layers ------------------------------------------------------------------------
    def recurrent_symbols(self, label, feature, activation) -> dict:
        """The arrays and sizes of the rnn layer ``label``: sequences (m, T, n) of the input X
        and of Z, H and their errors, the weights W (n_1, n_0) and U (n_1, n_1), the bias b,
        and the matrix A[1] of what it passes on (a column per example, or per step)."""
        m, lay, T = N.m, self.layout, N.T
        n_in, n = N.units(label - 1), N.units(label)
        seq = (m, T, n)
        sym = {"units": n, "prev_units": n_in, "T": T, "layout": lay.name,
               "every_step": feature.every_step,
               "A_prev": N.tensor("A", label - 1, (m, T, n_in)),
               "W": N.tensor("W", label, (n, n_in)), "U": N.tensor("U", label, (n, n)),
               "b": N.tensor("b", label, (n,)),
               "dW": N.tensor("dW", label, (n, n_in)), "dU": N.tensor("dU", label, (n, n)),
               "db": N.tensor("db", label, (n,)),
               "A": N.matrix("A", label, *lay.shape(n, self.m)),
               "dA": N.matrix("dA", label, *lay.shape(n, self.m))}
        for name in ("Z", "H", "dZ", "dH"):
            sym[name] = N.tensor(name, label, seq)
        sym["activation_map"] = Map(sp.Lambda(z_var, activation.expr), sym["Z"])
        return sym

    def feature_symbols(self, label, feature, activation) -> dict:
        """The arrays and sizes of feature layer ``label`` (naming.feature_size, Ng's names)."""
        if FEATURE_KINDS[feature.kind].needs == "sequence":
            return self.recurrent_symbols(label, feature, activation)
        m, lay = self.m, self.layout
        prev = label - 1
        Cp, Hp, Wp = (N.feature_size(kind, prev) for kind in ("n_C", "n_H", "n_W"))
        sym = {"prev_channels": Cp, "layout": lay.name, "prev_sizes": (Cp, Hp, Wp),
               "A_prev": N.tensor("A", prev, (m, Cp, Hp, Wp)),
               "dA_prev": N.tensor("dA", prev, (m, Cp, Hp, Wp))}
        if feature.kind == "flatten":
            n = N.units(label)
            sym.update(units=n, A=N.matrix("A", label, *lay.shape(n, m)),
                       dA=N.matrix("dA", label, *lay.shape(n, m)))
            return sym
        C, H, W = (N.feature_size(kind, label) for kind in ("n_C", "n_H", "n_W"))
        f, s = N.feature_size("f", label), N.feature_size("s", label)
        shape = (m, C, H, W)
        sym.update(sizes=(C, H, W), channels=C, f=f, s=s, A=N.tensor("A", label, shape),
                   dA=N.tensor("dA", label, shape))
        if feature.kind == "conv":
            sym.update(p=N.feature_size("p", label),
                       W=N.tensor("W", label, (C, Cp, f, f)), b=N.tensor("b", label, (C,)),
                       dW=N.tensor("dW", label, (C, Cp, f, f)), db=N.tensor("db", label, (C,)),
                       Z=N.tensor("Z", label, shape), dZ=N.tensor("dZ", label, shape))
            sym["activation_map"] = Map(sp.Lambda(z_var, activation.expr), sym["Z"])
        if feature.kind == "maxpool":
            sym["M"] = N.tensor("M", label, (*shape, f, f))
        return sym

    def feature_layer(self, label, feature, activation) -> FeatureLayer:
        """Feature layer ``label``: each stage's forward definition (its operation's entry),
        then each stage's gradients by the chain rule through its output, last stage first,
        each recognised as the operation its gradient entry names."""
        kind = FEATURE_KINDS[feature.kind]
        sym = self.feature_symbols(label, feature, activation)
        lay = self.layout
        stages = kind.stages_of(feature)
        forward = []
        for stage in stages:
            node = stage.node(sym)
            idx = tuple(getattr(N, name) for name in stage.indices)
            lhs_e = stage.entry(sym, lay, stage.output, idx)
            forward.append(Equation("forward", label, sym[stage.output], node, lhs_e,
                                    node.entry(*idx),
                                    (Step(sym[stage.output], node, "vectorise"),)))
        def use(stage):
            """The entries of the stage's output, its errors, the sums over them and its
            forward definition: one use of whatever the definition reads."""
            sums = tuple(getattr(N, name) for name in stage.sums)
            return (stage.entry(sym, lay, stage.output, sums),
                    stage.entry(sym, lay, "d" + stage.output, sums),
                    list(zip(sums, stage.sizes(sym))), stage.node(sym).entry(*sums))

        by_name = {stage.name: stage for stage in stages}
        backward: dict[str, Equation] = {}
        for stage in reversed(stages):
            for grad in stage.gradients:
                # Every use of the target: the stages the gradient names, else its own.
                uses = [use(by_name[name]) for name in grad.through or (stage.name,)]
                position = grad.position()
                target = sym[grad.target][position]
                lhs = sym[grad.result]
                steps, entry = self.chain_entries(target, uses)
                if grad.penalised and self.l2:
                    steps, entry = self.penalised_entry(self.tensor_penalty(sym), target,
                                                        steps, entry)
                if grad.per_example:
                    steps, entry = self.per_example(lhs[position], steps, entry)
                rhs = self.recognise(grad, sym, entry, position)
                backward[grad.name] = Equation(grad.name, label, lhs, rhs, lhs[position],
                                               entry, (*steps, Step(lhs, rhs, "vectorise")))
        return FeatureLayer(label, feature, kind, activation, sym, tuple(forward), backward)

    def recognise(self, grad, sym, entry, position):
        """The operation the derived ``entry`` is: the gradient's node, checked entry for
        entry (with the 1/m of a parameter's gradient, and the penalty's λ/m W)."""
        if grad.node is None:
            node = recognise_map(entry, position)
            if node is None:
                raise DerivationError(f"{grad.result}: the derived entry {entry} is not an "
                                      "entry-by-entry map")
            return node
        node = grad.node(sym)
        if not grad.per_example:
            node = Scaled(1 / self.m, node)
            if grad.penalised and self.l2:
                node = Plus(node, Scaled(N.lam / self.m, sym[grad.target]))
        expected = node.entry(*position)
        if not _same(entry, expected):
            raise DerivationError(f"{grad.result}: the derived entry {entry} is not "
                                  f"{type(grad.node(sym)).__name__}'s entry {expected}")
        return node

    def tensor_penalty(self, sym):
        """(λ/2m) Σ (W_rcuv)² over a kernel's entries (and a recurrent layer's U too)."""
        total = sp.Integer(0)
        for name in ("W", "U"):
            if name not in sym:
                continue
            W = sym[name]
            idx = (N.j, N.t, N.mu, N.nu)[:len(W.shape)]
            total += N.lam / (2 * self.m) * sp.Sum(W[idx] ** 2, *[(x, 0, n - 1) for x, n
                                                                   in zip(idx, W.shape)])
        return total

    def penalised_entry(self, P, target, steps, grad):
        """∂J/∂target with the penalty P (a dense or a kernel's): the chain rule's part plus
        P's own derivative."""
        lhs = sp.Derivative(N.J, target)
        steps = [*steps, Step(lhs, grad + sp.Derivative(P, target, evaluate=False), "penalty")]
        total = grad + _sum_inner(_drop_zero_sums(sp.diff(P, target)))
        return [*steps, Step(lhs, total, "kronecker")], total

    def derive(self) -> Derivation:
        arch = self.arch
        if arch.every_step:  # the head sees m·T columns, one per (example, step); J averages
            self.m = N.m * N.T
        L_label = arch.depth
        self.Y = sp.MatrixSymbol("Y", *self.layout.shape(N.units(L_label), self.m))
        features = tuple(
            self.feature_layer(label, f, arch.activation_entry(f.activation)
                               if f.activation else None)
            for label, f in enumerate(arch.features, start=1))
        layers = tuple(
            self.layer(label, act, label == L_label)
            for label, act in zip(arch.dense_labels, arch.activation_entries))
        general = self.layer("l", None, False)
        A_out = layers[-1].A
        i = N.i
        loss_i = self.loss_entry(A_out, self.Y, N.units(L_label), i)
        cost = sp.Sum(loss_i, (i, 0, self.m - 1)) / self.m
        penalty = sp.Add(*[self.tensor_penalty(f.symbols) for f in features
                           if "W" in f.symbols],
                         *[self.penalty(self.symbols(layer.index)) for layer in layers]) \
            if self.l2 else sp.Integer(0)
        if arch.sequence is not None:
            X = features[0].symbols["A_prev"]
        elif arch.image is not None:
            X = N.tensor("A", 0, (self.m, *(N.feature_size(kind, 0)
                                            for kind in ("n_C", "n_H", "n_W"))))
        else:
            X = N.matrix("A", 0, *self.layout.shape(N.units(0), self.m))
        return Derivation(arch, self.layout.name, self.m, X, self.Y, cost + penalty, loss_i, i,
                          layers, general, self.l2, penalty, features)


def _same(a, b) -> bool:
    """Whether two index expressions are one (identical, or their difference expands to 0)."""
    return a == b or sp.expand(a - b) == 0


def _is_target_sum(s: sp.Sum, Y) -> bool:
    return (isinstance(s.function, MatrixElement) and s.function.parent == Y
            and len(s.limits) == 1)


def _simplest(expr):
    """The shortest of expr, cancel(expr) and factor(expr), taken entry by entry.

    Matrix entries and sums are held as opaque symbols, so that the rational-function
    simplifiers see a scalar expression.
    """
    opaque = {e: sp.Dummy() for e in sorted(expr.atoms(sp.Sum) | elements(expr),
                                            key=sp.default_sort_key)}
    scalar = expr.xreplace({e: d for e, d in opaque.items() if isinstance(e, sp.Sum)})
    scalar = scalar.xreplace({e: d for e, d in opaque.items() if isinstance(e, MatrixElement)})
    back = {d: e for e, d in opaque.items()}
    candidates = [scalar]
    for simplifier in (sp.cancel, sp.factor):
        try:
            candidates.append(simplifier(scalar))
        except (sp.PolynomialError, NotImplementedError, TypeError):
            pass
    best = min(candidates, key=lambda e: (sp.count_ops(e), candidates.index(e)))
    return _pull_sum_constants(best.xreplace(back))


def derive(arch: Architecture, notation: str = "ng") -> Derivation:
    """Backpropagation for ``arch``, derived by the chain rule. ``notation``: ng or rowvec."""
    if not isinstance(arch, Architecture):
        from .errors import SpecError

        hint = f"parse_arch({arch!r})" if isinstance(arch, str) and len(arch) < 60 \
            else "parse_arch('2-3-1')"
        raise SpecError(f"derive takes an Architecture, got {type(arch).__name__}; make one "
                        f"with {hint} or Architecture(sizes=[...])")
    if not isinstance(notation, str) or notation not in LAYOUTS:
        raise DerivationError(f"unknown notation {notation!r} (known: {', '.join(LAYOUTS)})")
    return _derive_cached(arch, notation)


@lru_cache(maxsize=32)
def _derive_cached(arch, notation):
    return _Network(arch, LAYOUTS[notation]).derive()
