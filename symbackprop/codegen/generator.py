"""From a derivation to the blocks of a generated NumPy trainer.

``plan(derivation)`` walks the derivation layer by layer and turns every equation into a
``Block``: the equation quoted as a comment, then the operations (``ops.Op``, data) that
compute it into preallocated buffers. Every decision (which buffers exist, which share memory,
where a value saved in the forward pass is reused, where the learning rate is folded in) is
made here; a backend (``backends.py``) prints the operations, and the template
``trainer.py.j2`` only lays the printed blocks out.

The derivation is in Ng's layout (columns are examples); the generated code keeps rows as
examples, so every activation-sized array holds the transpose of its symbol (``Z1`` is
``Z[1]ᵀ``) while ``W1`` and ``b1`` are stored as derived.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import sympy as sp

from .. import naming as N
from ..matrices import Elementwise
from ..naming import code_name
from ..registry import a as a_var
from ..registry import n as n_var
from ..registry import y as y_var
from . import conv_kernels, recurrent, rnn_kernels
from .features import FeaturePlanner, parameter_shapes
from .ops import Op, Penalty, Value, op
from .printer import (
    GenerationError,
    GuardedPiecewise,
    KernelPrinter,
    computed_form,
    decimal,
    expand_logs,
    factors,
    matrix_text,
    number,
    scalar_text,
    shift_invariant,
    stable,
)


@dataclass
class Block:
    """One equation: comment lines (without '#'), then the operations that compute it."""

    comments: list[str]
    code: list[Op]
    memory: list[str] = field(default_factory=list)  # notes on shared memory (NumPy's)


def block(comments, code, memory=()) -> Block:
    """A Block with its comment lines wrapped to fit the generated module's line length;
    ``memory``: the comments that say which buffers share memory (the in-place backend's)."""
    return Block(_wrap(comments), list(code), _wrap(memory))


def _wrap(comments) -> list[str]:
    wrapped = []
    for line in comments:
        wrapped += textwrap.wrap(line, 92, subsequent_indent="    ", break_long_words=False,
                                 break_on_hyphens=False) or [""]
    return wrapped


@dataclass
class Buffer:
    """A preallocated array of shape (m, cols), or another buffer's memory under a new name."""

    name: str
    cols: int
    alias: str | None = None
    note: str = ""
    value: str | None = None  # a constant: a 0-d array holding this literal
    boolean: bool = False  # a mask for ufuncs' where=, not a float array
    shape: tuple[int, ...] | None = None  # a parameter's shape, not (m, cols)
    rows: str = "m"  # many-to-many rnn networks: the dense head's m*T rows

    @property
    def line(self) -> str:
        """The line of the NumPy module's _buffers() that makes it."""
        from .backends import NUMPY

        return NUMPY.buffer_line(self)


@dataclass
class Plan:
    """Everything the template lays out for one architecture."""

    params: list[tuple[str, tuple[int, ...]]]
    buffers: list[Buffer]
    forward: list[Block]
    output: str  # the code name of A^[L]
    cost: list[Block]
    cost_value: Value  # J's total from the cost block's buffers
    backward: list[Block]
    scale_note: str
    kernels: list[str]  # the functions of ``kernels`` the calls use (erf, ...)
    conv_kernels: list[str] = ()  # the functions of ``conv_kernels`` the calls use
    rnn_kernels: list[str] = ()  # the functions of ``rnn_kernels`` the calls use
    penalty: Penalty | None = None  # the L2 penalty's part of J (of P and m), or None
    penalty_note: str = ""
    transposed: tuple[str, ...] = ()  # parameters the flat vector stores as their transposes


@dataclass
class Kernel:
    """An Elementwise map ready to print: a scalar body and what its symbols stand for."""

    body: sp.Expr
    names: dict  # placeholder -> code name of a matrix
    reductions: dict  # placeholder -> (inner body, its names, key of the reduction)
    equation: str  # the derived form, for the comment
    computed: str = ""  # the form the code evaluates, where a rewrite changed it

    @property
    def reads(self) -> set:
        out = {name for var, name in self.names.items() if self.body.has(var)}
        for inner, names, _ in self.reductions.values():
            out |= set(names.values())
        return out


def plan(derivation) -> Plan:
    """The blocks, buffers and parameters of the trainer for ``derivation`` (layout "ng")."""
    return TrainerPlanner(derivation).plan()


class TrainerPlanner:
    """Turns one derivation into a Plan; holds the buffers the blocks allocate on the way."""

    def __init__(self, derivation):
        if derivation.notation != "ng":
            raise GenerationError("the trainer generator reads derivations in the ng layout")
        self.d = derivation
        self.arch = derivation.arch
        self.m = derivation.m
        self.sizes = self.arch.sizes
        self.L = self.arch.depth
        self.offset = self.arch.offset
        self.units = {N.units(label): self.arch.size(label)
                      for label in range(self.offset, self.L + 1)}
        self.units[n_var] = self.sizes[-1]
        self.feature_sizes = N.feature_sizes(self.arch) if derivation.features else {}
        self.features = FeaturePlanner(self)
        self.recurrent = recurrent.RecurrentPlanner(self)
        self.param_shapes: dict[str, tuple[int, ...]] = {}
        self.buffers: dict[str, Buffer] = {}
        self.reduction_names: dict = {}  # reduction matrix expression -> buffer name
        self.kernels: set[str] = set()  # functions of ``kernels`` the kept calls use

    # buffers --------------------------------------------------------------------------------
    def buffer(self, name, cols, note=""):
        if name not in self.buffers:
            self.buffers[name] = Buffer(name, cols, note=note)
        return name

    def temps(self, cols, pending: dict, suffix=""):
        """A fresh scratch-buffer allocator for one kernel (buffers are shared across kernels).

        New buffers go to ``pending``; they exist once the kernel's code is kept. ``suffix``
        names a separate set (an rnn layer's per-step scratch: ``tmp64t_0``).
        """
        used = {"full": 0, "column": 0, "mask": 0}

        def temp(shape):
            k = used[shape]
            used[shape] += 1
            name, width = {"column": (f"col{suffix}_{k}", 1),
                           "full": (f"tmp{cols}{suffix}_{k}", cols),
                           "mask": (f"mask{cols}{suffix}_{k}", cols)}[shape]
            if name not in self.buffers:
                pending.setdefault(name, Buffer(name, width, note="scratch",
                                                boolean=shape == "mask"))
            return name
        return temp

    def constant(self, value) -> str:
        """The name of a 0-d array of the buffers' dtype holding ``value``."""
        literal = number(value)
        name = "c" + literal.replace("-", "m").replace(".", "_").replace("+", "")
        if name not in self.buffers:
            self.buffers[name] = Buffer(name, 0, value=literal,
                                        note="a constant in the arrays' dtype")
        return name

    # kernels ---------------------------------------------------------------------------------
    def kernel(self, expr) -> Kernel:
        """An Elementwise map (or a bare matrix) as a Kernel, with sizes and stable forms."""
        if isinstance(expr, sp.MatrixSymbol):
            var = sp.Symbol(expr.name)
            return Kernel(var, {var: code_name(expr.name)}, {}, code_name(expr.name))
        if not isinstance(expr, Elementwise):
            raise GenerationError(f"no elementwise rule for {expr}")
        names, reductions = {}, {}
        for var, M in expr.bindings().items():
            if isinstance(M, sp.MatrixSymbol):
                names[var] = code_name(M.name)
                continue
            ones = [f for f in M.args if isinstance(f, sp.OneMatrix)]
            inner = [f for f in M.args if isinstance(f, Elementwise)]
            if not (isinstance(M, sp.MatMul) and len(ones) == 1 and len(inner) == 1
                    and ones[0].shape[0] == ones[0].shape[1]):
                raise GenerationError(f"no rule for the binding {var} = {M}")
            inner_kernel = self.kernel(inner[0])
            reductions[var] = (inner_kernel.body, inner_kernel.names, M)
        body = stable(expr.scalar().xreplace(self.units))
        reductions = {var: (stable(inner.xreplace(self.units)), nm, key)
                      for var, (inner, nm, key) in reductions.items()}
        shown = dict(names)
        for var, (inner, nm, _) in reductions.items():
            shown[var] = f"sum({scalar_text(inner, nm)}, axis=1)"
        equation = scalar_text(expr.scalar().xreplace(self.units), shown)
        computed = scalar_text(body, shown)
        return Kernel(body, names, reductions, equation,
                      computed if computed != equation else "")

    def emit(self, kernel: Kernel, dest: str, cols: int, alias: str | None = None,
             scale: str | None = None, saved: dict | None = None):
        """Code lines computing ``kernel`` into ``dest``.

        ``alias``: an input whose memory ``dest`` may take; kept only if no emitted call reads
        it after one has written ``dest``. ``scale``: a factor the result is multiplied by,
        merged with the body's numeric coefficient. ``saved``: values computed here into
        their own buffers for a later kernel.
        """
        for candidate in ([alias] if alias else []) + [None]:
            printer, pending, reductions = self._emit(kernel, dest, cols, candidate, scale,
                                                      saved or {})
            if candidate is None or _alias_safe(printer.ops, dest, candidate):
                self.buffers.update(pending)
                self.reduction_names.update(reductions)
                self.kernels |= printer.kernels
                if candidate is not None:
                    self.buffers[dest] = Buffer(dest, cols, alias=candidate)
                else:
                    self.buffer(dest, cols)
                return printer.ops
        raise AssertionError("unreachable")

    def _emit(self, kernel, dest, cols, alias, scale, saved, suffix=""):
        """One attempt at emit(): (printer with its calls, new buffers, new reductions);
        ``suffix``: the scratch set (``temps``)."""
        names = dict(kernel.names)
        column = set()
        new = {}
        for var, (inner, inner_names, key) in kernel.reductions.items():
            names.update(inner_names)
            column.add(var)
            if key in self.reduction_names:
                names[var] = self.reduction_names[key]
            else:
                new[var] = (inner, key)
        names.update({sym: name for sym, (name, _) in saved.items()})
        pending, reductions = {}, {}
        printer = KernelPrinter(names, self.temps(cols, pending, suffix), column, self.constant)
        for sym, (name, expr) in saved.items():
            printer.emit(expr, name)
        new_vars = list(new)
        reps, reduced = _cse([new[v][0] for v in new_vars] + [kernel.body], "_x")
        inners, body = reduced[:-1], reduced[-1]
        coeff = sp.Integer(1)
        if scale is not None:
            coeff, body = body.as_coeff_Mul()
        in_dest = None
        if alias is None and reps and not isinstance(body, sp.Symbol):
            last = reps[-1][0]
            if last in body.args and body.count(last) == 1:
                in_dest = last
        for sym, expr in reps:
            if sym == in_dest:
                names[sym] = dest
                printer.emit(expr, dest)
            else:
                names[sym] = printer.temp(printer.shape_of(expr))
                printer.emit(expr, names[sym])
        for var, inner in zip(new_vars, inners):
            key = new[var][1]
            target = self._reduction_name(key, reductions)
            pending[target] = Buffer(target, 1, note="sum over the units")
            source = names[inner] if inner in names else printer.operand(inner)
            printer.call("sum_units", source, target)
            names[var] = target
            reductions[key] = target
        printer.preferred = in_dest or next((v for v, n in names.items() if n == alias), None)
        printer.emit(body, dest)
        if scale is not None:
            factor = scale if coeff == 1 else f"{scale} * {number(coeff)}"
            printer.call("multiply", dest, factor, dest)
        return printer, pending, reductions

    def _reduction_name(self, key, pending):
        labels = sorted(N.split(M.name)[1] for M in key.atoms(sp.MatrixSymbol)
                        if N.split(M.name)[1] is not None)
        base = "S" + labels[-1]
        names = [*self.reduction_names.values(), *pending.values()]
        taken = sum(1 for name in names if name.split("_")[0] == base)
        return base if taken == 0 else f"{base}_{taken}"

    # the plan ----------------------------------------------------------------------------------
    def plan(self) -> Plan:
        loss = self.arch.loss_entry
        layers = self.d.layers
        fwd, bwd, saved = {}, {}, {}
        for layer in layers:
            l = layer.index
            fwd[l] = self.kernel(layer.forward[1].rhs)
            bwd[l] = self.kernel(layer.dZ_equation.rhs)
            saved[l] = self._hoist(l, fwd[l], bwd[l])
        out = layers[-1]
        cost_kernel = self._cost_kernel(out, loss)
        # What each later step reads: an array may be overwritten once nothing reads it.
        reads_after = self._reads_after(layers, fwd, bwd, cost_kernel)

        params = []
        for layer in self.d.features:
            params += FEATURE_PARAMETERS[_needs(layer)](self.arch, layer)
        for layer in layers:
            l = layer.index
            params += [(f"W{l}", (self.arch.size(l), self.arch.size(l - 1))),
                       (f"b{l}", (self.arch.size(l),))]
        self.param_shapes = dict(params)
        # how each dense weight is laid out in the flat vector (STORAGE): as its transpose, the
        # forward product reads it without a transpose
        self.transposed = tuple(f"W{layer.index}" for layer in layers
                                if STORAGE["dense weight"] == "transposed")

        forward = []
        for layer in self.d.features:
            forward += self.feature_planner(layer).forward_blocks(layer)
        for layer in layers:
            forward += self._forward_blocks(layer, fwd[layer.index], bwd[layer.index],
                                            cost_kernel, saved[layer.index], reads_after)
        shared = self._share_with_cost(cost_kernel, bwd[self.L])
        saved[self.L] = {**saved[self.L], **shared}
        cost_block, cost_value = self._cost_block(cost_kernel, loss, shared)
        backward = []
        for layer in reversed(layers):
            backward += self._backward_blocks(layer, bwd[layer.index], saved[layer.index],
                                              shared, reads_after)
        for layer in reversed(self.d.features):
            backward += self.feature_planner(layer).backward_blocks(layer)
        if self.arch.every_step:
            self.recurrent.set_rows()

        penalty, penalty_note = self._penalty()
        return Plan(
            params=params, buffers=list(self.buffers.values()),
            forward=forward, output=code_name(out.A.name), cost=cost_block,
            cost_value=cost_value, backward=backward,
            scale_note="BP1 and BP2 carry the factor 1/m; it is folded into the output error",
            kernels=sorted(self.kernels), penalty=penalty, penalty_note=penalty_note,
            transposed=self.transposed,
            conv_kernels=conv_kernels.needed(self.features.used),
            rnn_kernels=rnn_kernels.needed(self.recurrent.used))

    def feature_planner(self, layer):
        """The planner printing feature layer ``layer``: by the input its kind needs."""
        return {"image": self.features, "sequence": self.recurrent}[_needs(layer)]

    def _equation_block(self, label, target, rhs, fold=False) -> Block:
        """A linear equation (Z, BP1, BP2, BP3): as derived and in rows, then its calls."""
        m = self.m
        rhs = _as_sum(rhs)
        derived = f"{target} = {matrix_text(rhs, m, False)}"
        rows = f"{target} = {matrix_text(rhs, m, True)}"
        comments = [f"{label}{derived}    (rows are examples: {rows})"]
        if rhs.has(N.lam):
            comments.append(f"with lambda = {decimal(self.d.l2)} (--l2): the penalty's "
                            "derivative, times the same scale as the product")
        return block(comments, self._linear(rhs, target, fold=fold))

    def _penalty(self):
        """The L2 penalty's part of J, (lambda/(2m)) sum_l ||W^[l]||^2, and a note."""
        if not self.d.l2:
            return None, ""
        penalised = {code_name(str(w.label if isinstance(w, sp.IndexedBase) else w.name))
                     for w in self.d.penalty.atoms(sp.IndexedBase, sp.MatrixSymbol)}
        weights = [name for name in self.param_shapes if name in penalised]
        value = Penalty(self.d.l2 / 2, tuple(weights))
        return value, (f"the L2 penalty (lambda/(2m)) sum_l ||W[l]||^2, lambda = "
                       f"{decimal(self.d.l2)} (biases are not penalised)")

    def _forward_blocks(self, layer, kernel, bwd, cost, saved, reads_after) -> list[Block]:
        l, cols = layer.index, self.arch.size(layer.index)
        Z, A = code_name(layer.Z.name), code_name(layer.A.name)
        self.buffer(Z, cols)
        blocks = [self._equation_block("", Z, layer.forward[0].rhs)]
        if isinstance(kernel.body, sp.Symbol):
            self.buffers[A] = Buffer(A, cols, alias=kernel.names[kernel.body])
            return [*blocks, block([f"{A} = {kernel.equation}: the same array"], [])]
        comments, code = [f"{A} = {kernel.equation}"], []
        if kernel.computed:
            how = computed_form(kernel.body, kernel.names)
            comments.append(f"  = {kernel.computed}: {how} (finite for every input, factors "
                            "reusable)")
        if self._shift(layer, kernel, bwd, cost):
            zmax = self.buffer(f"{Z}max", 1, "row maximum")
            code += [op("max_units", Z, zmax), op("subtract", Z, zmax, Z)]
            comments.append(f"{Z} is first shifted by its row maximum: every expression that "
                            f"reads {Z} is unchanged by the shift, and exp cannot overflow")
        for name, expr in saved.values():
            comments.append(f"{name} = {scalar_text(expr, kernel.names)} is kept for BP4")
            self.buffer(name, cols)
        alias = Z if Z not in reads_after[("A", l)] else None
        code += self.emit(kernel, A, cols, alias=alias, saved=saved)
        memory = [f"{A} takes the memory of {Z}: nothing reads {Z} afterwards"] \
            if self.buffers[A].alias else []
        return [*blocks, block(comments, code, memory)]

    def _backward_blocks(self, layer, kernel, saved, shared, reads_after) -> list[Block]:
        l, cols = layer.index, self.arch.size(layer.index)
        dZ, dA = code_name(layer.dZ.name), code_name(layer.dA.name)
        label = "output" if layer.is_output else "BP4"
        scaled = ("times scale (1/m, or lr/m when training): every gradient below is linear "
                  "in dZ, so this one product scales them all")
        coeff, rest = kernel.body.as_coeff_Mul()
        if layer.is_output and rest in shared:
            # The cost left exactly this error in a buffer: scale it where it is.
            name = shared[rest][0]
            self.buffers[dZ] = Buffer(dZ, cols, alias=name)
            factor = "scale" if coeff == 1 else f"scale * {number(coeff)}"
            said = f"{label}: {dZ} = {kernel.equation}, which the cost left in {name}"
            blocks = [block([said, scaled], [op("multiply", dZ, factor, dZ)])]
        elif isinstance(kernel.body, sp.Symbol):
            self.buffers[dZ] = Buffer(dZ, cols, alias=kernel.names[kernel.body])
            blocks = [block([f"{label}: {dZ} = {kernel.equation}: the same array"], [])]
        elif layer.is_output:
            code = self.emit(_with_saved(kernel, saved), dZ, cols, scale="scale")
            blocks = [block([f"{label}: {dZ} = {kernel.equation}", scaled], code)]
        else:
            alias = dA if dA not in reads_after[("dZ", l)] else None
            code = self.emit(_with_saved(kernel, saved), dZ, cols, alias=alias)
            comments = [f"{label}: {dZ} = {kernel.equation}"]
            computed = scalar_text(kernel.body, kernel.names)
            if saved:
                comments.append(f"  = {computed}")
            elif computed != kernel.equation:
                comments.append(f"  = {computed}: {computed_form(kernel.body, kernel.names)}")
            memory = [f"{dZ} takes the memory of {dA}"] if self.buffers[dZ].alias else []
            blocks = [block(comments, code, memory)]
        for name in ("BP1", "BP2", "BP3"):
            eq = layer.backward[name]
            target = code_name(eq.lhs.name)
            if name == "BP3" and not self.error_needed(l - 1):
                blocks.append(block([self.unneeded(l, target)], []))
                continue
            if name == "BP3":
                self.buffer(target, self.arch.size(l - 1))
            blocks.append(self._equation_block(f"{name}: ", target, eq.rhs,
                                               fold=name in ("BP1", "BP2")))
        return blocks

    def error_needed(self, label) -> bool:
        """Whether dA[label] is needed: some layer up to ``label`` has parameters."""
        with_params = [layer.index for layer in self.d.features if "W" in layer.symbols]
        first = min([*with_params, self.offset + 1])
        return label >= first

    @staticmethod
    def unneeded(l, target) -> str:
        if l == 1:
            return (f"BP3 for layer 1 would give {target}, the gradient for the input: "
                    "not needed, not computed")
        return (f"BP3 for layer {l} would give {target}: no layer before it has parameters, "
                "so nothing reads it; not computed")

    # pieces -------------------------------------------------------------------------------------
    def _hoist(self, l, fwd: Kernel, bwd: Kernel) -> dict:
        """Subexpressions of BP4 that the forward pass computes anyway: computed once, saved."""
        return _share(fwd, bwd, set(fwd.names), f"H{l}")

    def _cost_kernel(self, out, loss) -> Kernel:
        """L summed over the units, as a scalar body; a log of A^[L] is written through Z^[L]."""
        A_sym, Y_sym = sp.Symbol(out.A.name), sp.Symbol("Y")
        term = loss.term.xreplace({a_var: A_sym, y_var: Y_sym, n_var: self.sizes[-1]})
        names = {A_sym: code_name(out.A.name), Y_sym: "Y"}
        equation = scalar_text(term, names)
        activation = out.forward[1].rhs
        logs_of_a = [e for e in term.atoms(sp.log)
                     if e.args[0].has(A_sym) and e.args[0].is_rational_function(A_sym)]
        if logs_of_a and isinstance(activation, Elementwise):
            through_z = self.kernel(activation)
            body = activation.scalar().xreplace(self.units)
            term = stable(expand_logs(term.xreplace({A_sym: body})))
            return Kernel(term, {Y_sym: "Y", **through_z.names}, through_z.reductions, equation)
        return Kernel(stable(term), names, {}, equation)

    def _cost_block(self, kernel: Kernel, loss, shared: dict):
        """J as code lines and the expression of its value.

        ``shared``: subexpressions the output error also needs, computed here into buffers.
        A sum of squares is a dot product of a vector with itself (one call, no square).
        """
        cols = self.sizes[-1]
        coeff, body = kernel.body.as_coeff_Mul()
        dest = f"L{self.L}"
        names = {**kernel.names, **{sym: name for sym, (name, _) in shared.items()}}
        # A sum of products of two factors is a dot product (a square: of a vector with itself).
        pair = None
        if body.is_Pow and body.exp == 2:
            pair = (body.base, body.base)
        elif body.is_Mul and len(body.args) == 2 and any(f in names for f in body.args):
            pair = tuple(sorted(body.args, key=lambda f: f not in names))
        squares = pair is not None
        if squares:
            body = pair[1]
        comments = [f"J = (1/m) sum over examples and units of {kernel.equation}: "
                    + loss.description]
        lines = []
        for name, expr in shared.values():
            comments.append(f"{name} = {scalar_text(expr, kernel.names)} is kept for the "
                            "output error")
            self.buffer(name, cols)
        if squares and body in names:
            total = ("vdot", (names[pair[0]], names[body]))
            printer = KernelPrinter(names, self.temps(cols, self.buffers), constant=self.constant)
            for name, expr in shared.values():
                printer.emit(expr, name)
            lines = printer.ops
            self.kernels |= printer.kernels
        else:
            self.buffer(dest, cols, "the loss of each example and output unit")
            printer, pending, reductions = self._emit(
                Kernel(body, kernel.names, kernel.reductions, ""), dest, cols, None, None,
                shared)
            self.buffers.update(pending)
            self.reduction_names.update(reductions)
            self.kernels |= printer.kernels
            lines = printer.ops
            first = dest if pair is None or pair[0] == pair[1] else names[pair[0]]
            total = ("vdot", (first, dest)) if squares else ("sum", (dest,))
        value = Value(total[0], total[1], coeff)
        if kernel.body.has(sp.Symbol(self.d.layers[-1].Z.name)):
            comments.append(f"  = (1/m) sum of {scalar_text(kernel.body, _shown(kernel))}: "
                            "logs of probabilities written through Z, finite where A "
                            "underflows to 0")
        return [block(comments, lines)], value

    def _share_with_cost(self, cost: Kernel, out: Kernel) -> dict:
        """Subexpressions of the output error that the cost computes anyway (A2 - Y)."""
        same = {sym for sym in cost.names if out.names.get(sym) == cost.names[sym]}
        return _share(cost, out, same, f"E{self.L}")

    def _shift(self, layer, fwd: Kernel, bwd: Kernel, cost: Kernel) -> bool:
        """Shift Z by its row maximum when a kernel takes exp of it and all are shift-free."""
        z = sp.Symbol(layer.Z.name)
        if not fwd.reductions:  # an entry by entry function is never unchanged by a shift
            return False
        if not any(e.args[0].has(z) for e in _all_bodies(fwd).atoms(sp.exp)):
            return False
        for kernel in (fwd, bwd, cost):
            if not _all_bodies(kernel).has(z):
                continue
            inner = {var: body for var, (body, _, _) in kernel.reductions.items()}
            if not shift_invariant(kernel.body, z, inner):
                return False
        return True

    def _reads_after(self, layers, fwd, bwd, cost):
        steps = []
        for layer in layers:
            l = layer.index
            steps.append((("A", l), fwd[l].reads))
        steps.append((("cost", 0), cost.reads))
        for layer in reversed(layers):
            l = layer.index
            steps.append((("dZ", l), bwd[l].reads))
            steps.append((("BP", l), {code_name(layer.dZ.name), code_name(layer.A_prev.name),
                                      code_name(layer.W.name)}))
        after = {}
        for k, (key, _) in enumerate(steps):
            later = set()
            for _, reads in steps[k + 1:]:
                later |= reads
            after[key] = later
        return after

    def _linear(self, rhs, target, fold=False) -> list[Op]:
        """Z = W A + b 1ᵀ, dW = (1/m) dZ Aᵀ, db = (1/m) dZ 1, dA = Wᵀ dZ as NumPy calls."""
        m = self.m
        terms = list(rhs.args) if isinstance(rhs, sp.MatAdd) else [rhs]
        lines, rest = [], []
        for term in terms:
            scalars = [a for a in factors(term) if not getattr(a, "is_Matrix", False)]
            mats = [a for a in factors(term) if getattr(a, "is_Matrix", False)]
            coeff = sp.Mul(*scalars)
            if fold and len(mats) == 1 and isinstance(mats[0], sp.MatrixSymbol) \
                    and coeff.has(N.lam):
                # (lambda/m) W: scaled as the product's 1/m is, by scale
                rest += self._penalty_term(mats[0], coeff * m, target)
                continue
            if coeff != 1 and not (fold and coeff == 1 / m):
                raise GenerationError(f"no rule for the factor {coeff} in {rhs}")
            if fold and coeff != 1 / m:
                raise GenerationError(f"expected the factor 1/m in {rhs}")
            ones = [a for a in mats if isinstance(a, sp.OneMatrix)]
            rest_m = [a for a in mats if not isinstance(a, sp.OneMatrix)]
            if ones and ones[0].shape == (1, m) and len(rest_m) == 1:
                rest.append(op("add", target, code_name(rest_m[0].name), target))
            elif ones and ones[0].shape == (m, 1) and len(rest_m) == 1:
                lines.append(op("sum_rows", matrix_text(rest_m[0], m, True), target))
            elif len(mats) == 2 and not ones:
                left, right = mats
                into = target
                if m in rhs.shape:  # stored transposed: (left right)ᵀ = rightᵀ leftᵀ
                    pair = [matrix_text(x, m, True, transposed=True) for x in (right, left)]
                elif target.removeprefix("d") in self.transposed:  # dW kept as dWᵀ, written so
                    pair = [matrix_text(x, m, True, transposed=True) for x in (right, left)]
                    into = f"{target}.T"
                else:
                    pair = [matrix_text(x, m, True, transposed=False) for x in (left, right)]
                lines.append(op("dot", pair[0], pair[1], into))
            else:
                raise GenerationError(f"no NumPy rule for the term {term} of {rhs}")
        if len(lines) != 1:
            raise GenerationError(f"expected one product in {rhs}")
        return lines + rest

    def _penalty_term(self, W, factor, target) -> list[Op]:
        """target += scale * factor * W, factor = lambda with the penalty's value put in."""
        value = factor.xreplace({N.lam: self.d.l2})
        if not value.is_number or value.free_symbols:
            raise GenerationError(f"no rule for the penalty factor {factor} of {W}")
        name = code_name(W.name)
        scratch = f"{name}_decay"
        self.buffers.setdefault(scratch, Buffer(scratch, 0, note=f"the penalty's term of d{name}",
                                                shape=self._param_shape(name)))
        return [op("multiply", name, f"scale * {number(value)}", scratch),
                op("add", target, scratch, target)]

    def _param_shape(self, name: str) -> tuple[int, ...]:
        return self.param_shapes[name]


# How the flat parameter vector lays out a dense layer's weight W (n_l, n_{l-1}): "transposed"
# keeps it as Wᵀ in rows, so the forward product A W^T reads it untransposed (measured faster
# on this project's nets: benchmarks/trainer_bench.py); "as derived" keeps it as W.
STORAGE = {"dense weight": "transposed"}


def _needs(layer) -> str:
    """What input a feature layer's kind needs: "image" (conv, pooling) or "sequence" (rnn)."""
    from ..kinds import FEATURE_KINDS

    return FEATURE_KINDS[layer.feature.kind].needs


# Each feature layer's parameters, by the input its kind needs.
FEATURE_PARAMETERS = {"image": parameter_shapes, "sequence": recurrent.parameter_shapes}


def _as_sum(rhs):
    """An Elementwise map linear in matrices (BP1 with the L2 penalty: lambda/m W + 1/m dZ Aᵀ)
    as the sum of scaled matrices it is; anything else as it is."""
    if not isinstance(rhs, Elementwise):
        return rhs
    body, bound = rhs.scalar(), rhs.bindings()
    terms = sp.Add.make_args(sp.expand(body))
    out = []
    for term in terms:
        used = [v for v in bound if term.has(v)]
        if len(used) != 1 or not (term / used[0]).free_symbols.isdisjoint(bound):
            return rhs
        out.append(sp.MatMul(term / used[0], bound[used[0]]))
    return sp.MatAdd(*out)


def _with_saved(kernel: Kernel, saved: dict) -> Kernel:
    names = dict(kernel.names)
    names.update({sym: name for sym, (name, _) in saved.items()})
    return Kernel(kernel.body, names, kernel.reductions, kernel.equation)


def _share(first: Kernel, second: Kernel, allowed: set, prefix: str) -> dict:
    """Subexpressions common to two kernels, over ``allowed`` symbols only: each becomes a
    saved buffer (``prefix``, ``prefix_1``, ...) that both bodies read. Returns
    {symbol: (buffer name, expression)}, and rewrites both bodies in place."""
    if isinstance(first.body, sp.Symbol) or isinstance(second.body, sp.Symbol):
        return {}
    reps, (a2, b2) = _cse([first.body, second.body], "_c")
    full = {}
    for sym, expr in reps:
        full[sym] = expr.xreplace(full)
    shared = [sym for sym, _ in reps
              if a2.has(sym) and b2.has(sym) and full[sym].free_symbols <= allowed]
    saved = {}
    for k, sym in enumerate(shared):
        name = prefix if k == 0 else f"{prefix}_{k}"
        saved[sp.Symbol(name)] = (name, full[sym])
    back = {full[sym]: new for sym, new in zip(shared, saved)}
    first.body = first.body.xreplace(back)
    second.body = second.body.xreplace(back)
    return saved


def _cse(exprs, prefix):
    """SymPy's cse, with each GuardedPiecewise kept whole: the parts of its branches hold only
    where the branch is selected, so none may be computed outside it."""
    guarded = {}
    for expr in exprs:
        for g in sorted(expr.atoms(GuardedPiecewise), key=sp.default_sort_key):
            guarded.setdefault(g, sp.Dummy())
    hidden = [e.xreplace(guarded) for e in exprs]
    reps, reduced = sp.cse(hidden, symbols=sp.numbered_symbols(prefix))
    back = {d: g for g, d in guarded.items()}
    return ([(sym, e.xreplace(back)) for sym, e in reps], [e.xreplace(back) for e in reduced])


def _all_bodies(kernel: Kernel) -> sp.Expr:
    return sp.Tuple(kernel.body, *[inner for inner, _, _ in kernel.reductions.values()])


def _shown(kernel: Kernel) -> dict:
    shown = dict(kernel.names)
    for var, (inner, names, _) in kernel.reductions.items():
        shown[var] = f"sum({scalar_text(inner, names)}, axis=1)"
    return shown


def _alias_safe(ops, dest, source) -> bool:
    """dest may share source's memory: no call reads source after one has written dest."""
    written = False
    for o in ops:
        if written and source in o.reads:
            return False
        if o.dest == dest:
            written = True
    return True
