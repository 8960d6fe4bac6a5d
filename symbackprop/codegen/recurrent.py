"""The recurrent (Elman rnn) layer in a generated trainer: the derived operations, each printed
as a call of a kernel of ``rnn_kernels``.

The engine recognised each equation of the rnn layer as an operation of ``tensors`` (a node);
``FORWARD`` and ``BACKWARD`` map each node type to the function that prints it, one entry per
node type, as ``features`` does for convolutions. The recurrence and its activation are one
kernel call (``_rnn_forward``: every Z_t needs H_{t-1}), and so are BPTT and BP4
(``_rnn_backward``: every dH_t needs dZ_{t+1}): the first node of each pair prints its equation,
the second (the Map) prints the step function the kernel calls and then the call itself.

The activation g(Z) and BP4's dH ⊙ g'(Z) are the derivation's Map nodes, printed through the
dense layers' elementwise machinery (stable forms, masks, scratch) as nested functions of one
step's (m, H) block: ``g1(Z1_t, H1_t)`` and ``bp4_1(dH1_t, Z1_t, H1_t, dZ1_t)``. Where the
activation's derivative has a form in its output (tanh' = 1 - tanh^2, σ' = σ(1 - σ):
``Activation.derivative_of_output``, the rule the dense layers' BP4 follows), BP4's map is
first rewritten in H, so that the backward pass reads the states instead of recomputing g.

Buffers: the layer runs time major (``rnn_kernels``): Xt1 (T, m, n) the input, Z1 and H1
(T, m, H) hold the derivation's Z[1] and H[1] with Z1[t] its Z[1]_t, dZ1 likewise. What the
layer passes on is A1: the last states, ``H1[T - 1]`` (many-to-one), or every state batch first,
an (m*T, H) buffer whose row T k + t is example k at step t (many-to-many, ``:all``): the
dense head then runs over m*T rows, and every dense buffer has m*T rows (``set_rows``).
"""
from __future__ import annotations

import sympy as sp

from .. import naming as N
from .. import tensors as T
from ..matrices import Elementwise
from ..naming import code_name
from ..registry import a as a_var
from ..registry import z as z_var
from . import rnn_kernels as RK
from .ops import Op, op
from .printer import GenerationError, computed_form, scalar_text

M_SYMBOL = sp.Symbol("m")


class RecurrentPlanner:
    """Prints the rnn layer's blocks for a TrainerPlanner (which owns buffers and the
    elementwise kernels)."""

    def __init__(self, planner):
        self.p = planner
        self.arch = planner.arch
        self.used: set[str] = set()  # kernels of rnn_kernels the calls name
        self.step_buffers: set[str] = set()  # scratch of one step's block: (m, H), not rows

    # sizes and buffers --------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return self.arch.sequence[0]

    @property
    def features(self) -> int:
        return self.arch.sequence[1]

    def units(self, layer) -> int:
        return layer.feature.units

    def sizes(self) -> dict:
        """The network's size symbols (T, n_0, n_1) with its numbers, for comments."""
        return N.sequence_sizes(self.arch)

    def sequence(self, name, shape, note) -> str:
        """A buffer of an explicit shape (time major), in terms of m."""
        from .generator import Buffer

        if name not in self.p.buffers:
            self.p.buffers[name] = Buffer(name, 0, note=note,
                                          shape=tuple(sp.sympify(d) for d in shape))
        return name

    def kernel_buffers(self, kernel, layer, names: dict):
        """The arrays of ``kernel`` for layer ``layer`` (``rnn_kernels.buffers``), each under
        the name ``names`` gives its parameter; outputs and kept arrays alike."""
        T_, n, H = self.steps, self.features, self.units(layer)
        for param, shape in RK.buffers(kernel, m=M_SYMBOL, T=T_, n=n, H=H).items():
            if param in names:
                self.sequence(names[param][0], shape, names[param][1])

    def view(self, name, of, shape, note):
        """``name``: buffer ``of`` seen as ``shape`` (a view)."""
        from .generator import Buffer

        dims = ", ".join(str(d) for d in shape)
        self.p.buffers[name] = Buffer(name, 0, alias=f"{of}.reshape({dims})", note=note)
        return name

    def set_rows(self):
        """Many-to-many: the dense head runs over every (example, step) pair, m*T rows; the
        rnn layer's own buffers keep their shapes."""
        rows = f"{self.steps}*m"
        for buffer in self.p.buffers.values():
            if buffer.shape is None and buffer.alias is None and buffer.value is None \
                    and buffer.name not in self.step_buffers:
                buffer.rows = rows

    def call(self, kernel, *args) -> Op:
        self.used.add(kernel)
        return op(kernel, *args)

    # blocks -------------------------------------------------------------------------------
    def forward_blocks(self, layer) -> list:
        from .generator import block

        blocks = []
        for eq in layer.forward:
            rule = FORWARD.get(type(eq.rhs))
            if rule is None:
                raise GenerationError(f"no kernel for the operation {type(eq.rhs).__name__}")
            comments, code = rule(self, layer, eq)
            blocks.append(block(comments, code))
        return blocks

    def backward_blocks(self, layer) -> list:
        from .generator import block

        blocks = []
        for name, eq in layer.backward.items():
            rule = BACKWARD.get(type(T.core(eq.rhs)))
            if rule is None:
                raise GenerationError(f"no kernel for the operation "
                                      f"{type(T.core(eq.rhs)).__name__}")
            comments, code = rule(self, layer, name, eq)
            blocks.append(block(comments, code))
        blocks.append(block([(f"no gradient for the input A{layer.index - 1}: not needed, "
                              "not computed")], []))
        return blocks

    def step_function(self, layer, node: T.Map, fn_name, params, dest) -> tuple[list, list]:
        """The map ``node`` as a nested function of one step's blocks: ``params`` are the code
        names of its arrays (each read as NAME_t), ``dest`` the one it writes. Printed by the
        dense layers' elementwise machinery on (m, H) blocks; its scratch is one step's size."""
        H = self.units(layer)
        mats = [sp.MatrixSymbol(str(t.label), M_SYMBOL, H) for t in node.tensors]
        expr = Elementwise(node.fn, *mats)
        kernel = self.p.kernel(expr)
        # the comment reads the step's blocks as Z1[t], the code as the parameters Z1_t
        shown = {var: f"{name}[t]" for var, name in kernel.names.items()}
        equation = scalar_text(expr.scalar().xreplace(self.p.units), shown)
        computed = scalar_text(kernel.body, shown)
        kernel.names = {var: f"{name}_t" for var, name in kernel.names.items()}
        printer, pending, _ = self.p._emit(kernel, f"{dest}_t", H, None, None, {}, suffix="t")
        self.p.buffers.update(pending)
        self.step_buffers |= set(pending)
        self.p.kernels |= printer.kernels
        code = [Op("function", (fn_name, *(f"{name}_t" for name in params)),
                   body=tuple(printer.ops))]
        comments = [f"{fn_name}: {dest}[t] = {equation}, one step t at a time"]
        if computed != equation:
            how = computed_form(kernel.body, shown)
            comments.append(f"  = {computed}: {how} (finite for every input)")
        return comments, code


def how(kernel) -> str:
    """What ``kernel`` computes, as its docstring's first paragraph says."""
    from .features import how as described

    return described(kernel, RK)


def _equation(rp, eq, label="") -> list[str]:
    """The derived equation, vectorised and entry by entry with the network's sizes."""
    from ..printing.linear import text

    sizes = rp.sizes()
    entry = f"{text(eq.entry_lhs.xreplace(sizes))} = {text(eq.entry_rhs.xreplace(sizes))}"
    return [f"{label}{text(eq.lhs)} = {text(eq.rhs.xreplace(sizes))}",
            f"  entry by entry: {entry}"]


def _names(layer) -> dict:
    l = layer.index
    names = {key: f"{key}{l}" for key in ("Xt", "S", "Z", "H", "dZ", "g")}
    return {**names, "bp4": f"bp4_{l}"}


def output_form(arch, layer, node: T.Map) -> T.Map:
    """BP4's map dH ⊙ g'(Z) written in the layer's output H where g' has a form in g(z)
    (the dense layers' rule: ``Activation.derivative_of_output``); else the map as derived."""
    activation = arch.activation_entry(layer.feature.activation)
    h = activation.derivative_of_output
    sym = layer.symbols
    if h is None or set(node.tensors) != {sym["dH"], sym["Z"]}:
        return node
    dh, zz = (node.fn.variables[node.tensors.index(sym[key])] for key in ("dH", "Z"))
    if sp.simplify(node.fn.expr - dh * activation.derivative.xreplace({z_var: zz})) != 0:
        return node
    hh = sp.Symbol("h_")
    return T.Map(sp.Lambda((dh, hh), dh * h.xreplace({a_var: hh})), sym["dH"], sym["H"])


# --- forward ---------------------------------------------------------------------------------

def _recurrence(rp, layer, eq):
    l, n = layer.index, _names(layer)
    T_ = rp.steps
    rp.kernel_buffers("_rnn_forward", layer, {
        "Xt": (n["Xt"], "the input, time major (T, m, n): kept for BP1"),
        "S": (n["S"], "one step's H_{t-1} U^T; BPTT's dH_t"),
        "Z": (n["Z"], f"Z[{l}], time major: Z{l}[t] is Z[{l}]_t"),
        "H": (n["H"], f"H[{l}], time major: H{l}[t] is H[{l}]_t")})
    comments = [*_equation(rp, eq),
                (f"computed with H[{l}] below by one call: each Z_t needs H_(t-1), "
                 f"H[{l}]_(-1) = 0; the input projection of all {T_} steps is one GEMM")]
    return comments, []


def _activation(rp, layer, eq):
    l, n = layer.index, _names(layer)
    comments, code = rp.step_function(layer, eq.rhs, n["g"], ("Z" + str(l), "H" + str(l)),
                                      n["H"])
    comments = [*_equation(rp, eq)[:1], *comments, how("_rnn_forward")]
    code.append(rp.call("_rnn_forward", f"A{l - 1}", f"W{l}", f"b{l}", f"U{l}", n["g"],
                        n["Xt"], n["S"], n["Z"], n["H"]))
    return comments, code


def _last_step(rp, layer, eq):
    from .generator import Buffer

    n = _names(layer)
    A = code_name(layer.symbols["A"].name)
    rp.p.buffers[A] = Buffer(A, 0, alias=f"{n['H']}[{rp.steps - 1}]",
                             note=f"the last step's states, a view of {n['H']}")
    comments = [*_equation(rp, eq),
                (f"{A} is {n['H']}[{rp.steps - 1}], an (m, {rp.units(layer)}) view: the dense "
                 "head reads the last states in place")]
    return comments, []


def _every_step(rp, layer, eq):
    n = _names(layer)
    A = code_name(layer.symbols["A"].name)
    H = rp.units(layer)
    rp.p.buffer(A, H, "every step's states, batch first: row T k + t is example k at step t")
    view = rp.view(f"{A}s", A, ("m", rp.steps, H), f"{A} as (m, T, H)")
    comments = [*_equation(rp, eq), how("_rnn_every_step")]
    return comments, [rp.call("_rnn_every_step", n["H"], view)]


# --- backward --------------------------------------------------------------------------------

def _back_through_time(rp, layer, name, eq):
    l, n = layer.index, _names(layer)
    rp.kernel_buffers("_rnn_backward", layer, {
        "dZ": (n["dZ"], f"dZ[{l}], time major: dZ{l}[t] is dZ[{l}]_t")})
    dA = code_name(layer.symbols["dA"].name)
    comments = [*_equation(rp, eq, f"{name}: "),
                (f"computed with BP4 below by one call, backward in time: each dH_t needs "
                 f"dZ_(t+1); {dA} already carries the scale (1/m, or lr/m when training)")]
    return comments, []


def _bp4(rp, layer, name, eq):
    l, n = layer.index, _names(layer)
    every = bool(layer.symbols["every_step"])
    node = output_form(rp.arch, layer, eq.rhs)
    params = (f"dH{l}", f"Z{l}", f"H{l}", f"dZ{l}")
    comments, code = rp.step_function(layer, node, n["bp4"], params, f"dZ{l}")
    comments = [*_equation(rp, eq, f"{name}: ")[:1], *comments]
    if node is not eq.rhs:
        comments.append(f"g' written in the states H{l} (the activation's derivative in its "
                        "output)")
    dA = code_name(layer.symbols["dA"].name)
    if every:
        dA = rp.view(f"{dA}s", dA, ("m", rp.steps, rp.units(layer)), f"{dA} as (m, T, H)")
    comments += [how("_rnn_backward"), f"dH_t is {n['S']}, the forward pass's scratch"]
    code.append(rp.call("_rnn_backward", dA, every, f"U{l}", n["Z"], n["H"], n["bp4"],
                        n["S"], n["dZ"]))
    return comments, code


def _step_outer(rp, layer, name, eq):
    l, n = layer.index, _names(layer)
    node = T.core(eq.rhs)
    sym = layer.symbols
    # each sequence the gradient reads, as the layer holds it (time major)
    source = {sym["A_prev"]: n["Xt"], sym["H"]: n["H"]}
    if node.A not in source:
        raise GenerationError(f"no time-major buffer for {node.A}")
    target = code_name(eq.lhs.name)
    code = [rp.call("_rnn_step_outer", n["dZ"], source[node.A], node.lag, target)]
    comments = [*_equation(rp, eq, f"{name}: "),
                f"dZ{l} already carries the scale; " + how("_rnn_step_outer")]
    if isinstance(eq.rhs, T.Plus):
        penalty = eq.rhs.args[1]  # (lambda/m) W or (lambda/m) U: a Scaled parameter
        weight = sp.MatrixSymbol(str(penalty.node.label), 1, 1)
        comments.append("with the L2 penalty (--l2): its derivative, times the same scale")
        code += rp.p._penalty_term(weight, sp.expand(penalty.factor * rp.p.m), target)
    return comments, code


def _step_sum(rp, layer, name, eq):
    l, n = layer.index, _names(layer)
    target = code_name(eq.lhs.name)
    comments = [*_equation(rp, eq, f"{name}: "),
                f"dZ{l} already carries the scale; " + how("_rnn_step_sum")]
    return comments, [rp.call("_rnn_step_sum", n["dZ"], target)]


# One entry per operation: the function printing it.
FORWARD = {T.Recurrence: _recurrence, T.Map: _activation, T.LastStep: _last_step,
           T.EveryStep: _every_step}
BACKWARD = {T.BackThroughTime: _back_through_time, T.Map: _bp4, T.StepOuter: _step_outer,
            T.StepSum: _step_sum}


def parameter_shapes(arch, layer) -> list[tuple[str, tuple[int, ...]]]:
    """The parameters of an rnn layer, as torch.nn.RNN stores them: W (H, n) input weights,
    U (H, H) recurrent weights, b (H,) (torch's b_ih + b_hh)."""
    l, H, n = layer.index, layer.feature.units, arch.sequence[1]
    return [(f"W{l}", (H, n)), (f"U{l}", (H, H)), (f"b{l}", (H,))]
