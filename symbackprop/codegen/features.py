"""Feature layers (convolution, pooling, flatten) in a generated trainer: the derived
operations, each printed as a call of a kernel of ``conv_kernels``.

The engine recognised each feature-layer equation as an operation of ``tensors`` (a node);
``FORWARD`` and ``BACKWARD`` map each node type to the function that prints its calls, one entry
per node type. An entry-by-entry map (the activation g(Z), BP4's dA ⊙ g'(Z)) goes through the
same elementwise kernels as a dense layer's, on the map's (m, C·H·W) buffer.

Feature maps live in (m, C·H·W) buffers named as the derivation names them (``A1``, ``dZ1``),
each with a (m, C, H, W) view (``A1m``) for the kernels; flatten's output is the map's buffer
itself, and its error the dense layer's. The input A0 arrives as (m, C, H, W).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import sympy as sp

from .. import tensors as T
from ..matrices import Elementwise
from ..naming import code_name
from . import conv_kernels as CK
from .ops import Op, op
from .printer import GenerationError, computed_form

M_SYMBOL = sp.Symbol("m")
# Kernel arguments that are the layer's own arrays (feature maps, gradients), not scratch.
GIVEN = ("Z", "dW", "db", "dA", "out")


@dataclass
class FeatureSizes:
    """The concrete shape of the input of feature layer l and of its output."""

    C: int
    H: int
    W: int
    out: tuple[int, ...]


def _shapes(arch, label) -> FeatureSizes:
    shapes = arch.shapes()
    C, H, W = shapes[label - 1]
    return FeatureSizes(C, H, W, shapes[label])


def map_name(label, error=False) -> str:
    """The (m, C, H, W) view of layer ``label``'s output (or of its error); A0 is the input."""
    if label == 0 and not error:
        return "A0"
    return f"{'dA' if error else 'A'}{label}m"


class FeaturePlanner:
    """Prints the feature layers' blocks for a TrainerPlanner (which owns buffers and the
    elementwise kernels)."""

    def __init__(self, planner):
        self.p = planner
        self.arch = planner.arch
        self.used: set[str] = set()  # kernels of conv_kernels the calls name

    # buffers ------------------------------------------------------------------------------
    def map_buffer(self, name, shape, view=None, alias=None, note=""):
        """A (m, prod(shape)) buffer (or an alias of one) and its (m, *shape) view."""
        from .generator import Buffer

        cols = prod(shape)
        if alias is not None:
            self.p.buffers[name] = Buffer(name, cols, alias=alias, note=note)
        else:
            self.p.buffer(name, cols, note)
        if view is not None:
            _view(self, name, shape, view)
        return name

    def scratch(self, kernel, label, **sizes) -> dict:
        """The scratch arrays of ``kernel`` for layer ``label``, allocated once: name per
        parameter, "None" where the kernel takes none."""
        from .generator import Buffer

        out = {}
        for param, shape in CK.buffers(kernel, m=M_SYMBOL, **sizes).items():
            if param in GIVEN:
                continue
            if shape is None:
                out[param] = "None"
                continue
            name = f"{param}{label}"
            if name not in self.p.buffers:
                self.p.buffers[name] = Buffer(name, 0, note=f"{kernel} of layer {label}",
                                              shape=_shape_text(shape))
            out[param] = name
        return out

    def call(self, kernel, *args) -> Op:
        self.used.add(kernel)
        return op(kernel, *args)

    def invoke(self, kernel, label, given: dict, **sizes) -> str:
        """The call of ``kernel`` for layer ``label``: each parameter from ``given`` (the
        layer's arrays and numbers) or else a scratch array of the layer, allocated once under
        the parameter's name (so ``cols`` of the forward pass is the ``cols`` of BP1)."""
        import inspect

        params = inspect.signature(getattr(CK, kernel)).parameters
        numbers = {"S": sizes.get("S"), "P": sizes.get("P", 0), "K": sizes.get("K")}
        numbers["Wp"] = sizes.get("W", 0) + 2 * numbers["P"]
        numbers["Hp"] = sizes.get("H", 0) + 2 * numbers["P"]
        scratch = None
        args = []
        for name in params:
            if name in given:
                args.append(given[name])
            elif name in numbers and numbers[name] is not None:
                args.append(numbers[name])
            elif f"{name}{label}" in self.p.buffers:  # kept by an earlier call of the layer
                args.append(f"{name}{label}")
            else:
                if scratch is None:
                    scratch = self.scratch(kernel, label, **sizes)
                if name not in scratch:
                    raise GenerationError(f"{kernel}: no array for its argument {name}")
                args.append(scratch[name])
        return self.call(kernel, *args)

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
        order = [name for name in ("BP4", "BP1", "BP2", "BP3") if name in layer.backward]
        for name in order:
            eq = layer.backward[name]
            node = T.core(eq.rhs)
            if name == "BP3" and not self.p.error_needed(layer.index - 1):
                blocks.append(block([self.p.unneeded(layer.index, code_name(eq.lhs.name))],
                                    []))
                continue
            if name == "BP2":
                continue  # computed with BP1 by the same kernel
            rule = BACKWARD.get(type(node))
            if rule is None:
                raise GenerationError(f"no kernel for the operation {type(node).__name__}")
            comments, code = rule(self, layer, eq)
            blocks.append(block(comments, code))
        return blocks

    def elementwise(self, layer, node: T.Map, dest, note) -> tuple[list, list]:
        """An entry-by-entry map on the layer's (m, C·H·W) buffers, through the dense layers'
        elementwise kernels (stable forms, masks, scratch)."""
        cols = prod(_shapes(self.arch, layer.index).out)
        mats = [sp.MatrixSymbol(str(t.label), M_SYMBOL, cols) for t in node.tensors]
        kernel = self.p.kernel(Elementwise(node.fn, *mats))
        equation = f"{dest} = {kernel.equation}"
        if isinstance(kernel.body, sp.Symbol):
            from .generator import Buffer

            self.p.buffers[dest] = Buffer(dest, cols, alias=kernel.names[kernel.body])
            return [f"{note}{equation}: the same array"], []
        code = self.p.emit(kernel, dest, cols)
        comments = [f"{note}{equation}"]
        if kernel.computed:
            how = computed_form(kernel.body, kernel.names)
            comments.append(f"  = {kernel.computed}: {how}")
        return comments, code


def how(kernel, module=CK) -> str:
    """What ``kernel`` (of the kernel ``module``) computes, as its docstring's first paragraph
    says (one source)."""
    doc = getattr(module, kernel).__doc__ or kernel
    return f"{kernel}: " + " ".join(doc.split("\n\n")[0].split())


def _conv_sizes(s: FeatureSizes, f) -> dict:
    return {"C": s.C, "H": s.H, "W": s.W, "F": f.channels, "K": f.kernel, "S": f.stride, "P": f.padding}


def _pool_sizes(s: FeatureSizes, f) -> dict:
    return {"C": s.C, "H": s.H, "W": s.W, "K": f.kernel, "S": f.stride}


def _shape_text(shape) -> tuple:
    return tuple(sp.sympify(d) for d in shape)


def _equation(eq, sizes) -> list[str]:
    """The derived equation, vectorised and entry by entry with the network's sizes."""
    from ..printing.linear import text

    entry = eq.entry_rhs.xreplace(sizes)
    return [f"{text(eq.lhs)} = {text(eq.rhs.xreplace(sizes))}",
            f"  entry by entry: {text(eq.entry_lhs.xreplace(sizes))} = {text(entry)}"]


# --- forward ---------------------------------------------------------------------------------

def _conv_forward(fp, layer, eq):
    l, f = layer.index, layer.feature
    s = _shapes(fp.arch, l)
    Z = f"Z{l}"
    fp.map_buffer(Z, s.out, view=f"Z{l}m")
    code = [fp.invoke("_conv2d_forward", l,
                      {"A": map_name(l - 1), "W": f"W{l}", "b": f"b{l}", "Z": f"Z{l}m"},
                      **_conv_sizes(s, f))]
    comments = [*_equation(eq, fp.p.feature_sizes), how("_conv2d_forward"),
                f"cols{l}, the im2col of the input, is kept for BP1"]
    return comments, code


def _activation_forward(fp, layer, eq):
    l = layer.index
    s = _shapes(fp.arch, l)
    comments, code = fp.elementwise(layer, eq.rhs, f"A{l}", "")
    _view(fp, f"A{l}", s.out)  # elementwise() made A{l} (a buffer, or Z{l}'s memory)
    return comments, code


def _view(fp, name, shape, view=None):
    """The (m, *shape) view of buffer ``name`` (called ``name + "m"`` unless ``view``)."""
    from .generator import Buffer

    view = view or f"{name}m"
    dims = ", ".join(str(d) for d in shape)
    fp.p.buffers[view] = Buffer(view, prod(shape), alias=f"{name}.reshape(m, {dims})",
                                note=f"{name} as (m, {dims})")


def _pool_forward(fp, layer, eq):
    l, f = layer.index, layer.feature
    s = _shapes(fp.arch, l)
    fp.map_buffer(f"A{l}", s.out, view=f"A{l}m")
    comments = _equation(eq, fp.p.feature_sizes)
    kernel = "_maxpool2d_forward" if eq.rhs.how == "max" else "_avgpool2d_forward"
    code = [fp.invoke(kernel, l, {"A": map_name(l - 1), "out": f"A{l}m"}, **_pool_sizes(s, f))]
    if eq.rhs.how == "max":
        comments.append(f"mask{l} holds M[{l}], 1 at the first maximum of each window in "
                        "row-major order (kept for BP3)")
    return comments, code


def _flatten_forward(fp, layer, eq):
    l = layer.index
    s = _shapes(fp.arch, l)
    comments = _equation(eq, fp.p.feature_sizes)
    if l == 1:  # the input itself, seen as rows
        return [*comments, "A1 is the input's memory, seen as (m, C*H*W) rows"], \
            [op("rows", "A0", "A1")]
    source = f"A{l - 1}"
    fp.map_buffer(f"A{l}", s.out, alias=source,
                  note=f"flatten: {source}'s memory, (channel, row, column) order")
    return [*comments, (f"A{l} is {source}'s memory: a (m, C, H, W) map is stored as its "
            "flattened rows")], []


# --- backward --------------------------------------------------------------------------------

def _activation_backward(fp, layer, eq):
    l = layer.index
    s = _shapes(fp.arch, l)
    comments, code = fp.elementwise(layer, eq.rhs, f"dZ{l}", "BP4: ")
    if f"dZ{l}m" not in fp.p.buffers:
        _view(fp, f"dZ{l}", s.out)
    return comments, code


def _conv_params(fp, layer, eq):
    l, f = layer.index, layer.feature
    s = _shapes(fp.arch, l)
    sizes = _conv_sizes(s, f)
    bp2 = layer.backward["BP2"]
    code = [fp.invoke("_conv2d_dz_t", l, {"dZ": f"dZ{l}m"}, **sizes),
            fp.invoke("_conv2d_grad_params", l, {"scale": 1, "dW": f"dW{l}", "db": f"db{l}"},
                      **sizes)]
    comments = [*(f"BP1: {line}" if k == 0 else line
                  for k, line in enumerate(_equation(eq, fp.p.feature_sizes))),
                *(f"BP2: {line}" if k == 0 else line
                  for k, line in enumerate(_equation(bp2, fp.p.feature_sizes))),
                "dZ already carries the scale (1/m, or lr/m when training); "
                + how("_conv2d_grad_params")]
    if isinstance(eq.rhs, T.Plus):
        penalty = eq.rhs.args[1]  # (lambda/m) W
        comments.append("with the L2 penalty (--l2): its derivative, times the same scale")
        code += fp.p._penalty_term(sp.MatrixSymbol(f"W[{l}]", 1, 1),
                                   sp.expand(penalty.factor * fp.p.m), f"dW{l}")
    return comments, code


def _conv_input(fp, layer, eq):
    l, f = layer.index, layer.feature
    s = _shapes(fp.arch, l)
    fp.map_buffer(f"dA{l - 1}", (s.C, s.H, s.W), view=map_name(l - 1, error=True))
    code = [fp.invoke("_conv2d_grad_input", l, {"W": f"W{l}", "dcols": f"cols{l}",
                                                 "dA": map_name(l - 1, error=True)},
                      **_conv_sizes(s, f))]
    comments = [*(f"BP3: {line}" if k == 0 else line
                  for k, line in enumerate(_equation(eq, fp.p.feature_sizes))),
                how("_conv2d_grad_input"),
                f"cols{l} is its scratch once BP1 has read it"]
    return comments, code


def _unpool(fp, layer, eq):
    l, f = layer.index, layer.feature
    s = _shapes(fp.arch, l)
    fp.map_buffer(f"dA{l - 1}", (s.C, s.H, s.W), view=map_name(l - 1, error=True))
    comments = [f"BP3: {line}" if k == 0 else line
                for k, line in enumerate(_equation(eq, fp.p.feature_sizes))]
    kernel = "_maxpool2d_backward" if eq.rhs.how == "max" else "_avgpool2d_backward"
    code = [fp.invoke(kernel, l, {"dP": map_name(l, error=True),
                                  "dA": map_name(l - 1, error=True)}, **_pool_sizes(s, f))]
    return comments, code


def _unflatten(fp, layer, eq):
    l = layer.index
    s = _shapes(fp.arch, l)
    target = f"dA{l - 1}"
    fp.map_buffer(target, (s.C, s.H, s.W), view=map_name(l - 1, error=True),
                  alias=f"dA{l}", note=f"unflatten: dA{l}'s memory")
    comments = [f"BP3: {line}" if k == 0 else line
                for k, line in enumerate(_equation(eq, fp.p.feature_sizes))]
    return [*comments, f"{target} is dA{l}'s memory, seen as (m, {s.C}, {s.H}, {s.W})"], []


# One entry per operation: the function printing its calls.
FORWARD = {T.Correlate: _conv_forward, T.Map: _activation_forward, T.Pool: _pool_forward,
           T.Flatten: _flatten_forward}
BACKWARD = {T.Map: _activation_backward, T.WeightCorrelate: _conv_params,
            T.FullCorrelate: _conv_input, T.Unpool: _unpool, T.Unflatten: _unflatten}


def parameter_shapes(arch, layer) -> list[tuple[str, tuple[int, ...]]]:
    """The parameters of a feature layer in PyTorch's layout: W (F, C, K, K), b (F,)."""
    if layer.feature.kind != "conv":
        return []
    f = layer.feature
    C = arch.shapes()[layer.index - 1][0]
    return [(f"W{layer.index}", (f.channels, C, f.kernel, f.kernel)),
            (f"b{layer.index}", (f.channels,))]
