"""Layer kinds: one entry each, holding its forward definition in index notation.

A kind says what it computes (``output``, a key of the layer's symbol table) from what
(``inputs``, ``parameters``), entry by entry with symbolic sizes, and which gradients
backpropagation needs through it. The engine derives every gradient of every kind by the same
operations (chain rule over every use of a quantity, ``diff`` of the forward definition, sums
over Kronecker deltas, recognition of vectorised forms); nothing here is a derivative.

A spec layer ``n:g`` is two kinds in a row: ``dense`` (Z = W A + b 1ᵀ, n units) and
``activation`` (A = g(Z), entry by entry, or a map of a whole column such as softmax).

Adding a kind is adding one entry here: its forward definition (a function of the engine's
network, the layer's symbols, its activation entry and the entry's (unit, example) indices),
its gradients, its shape rule and its spec syntax. Its vectorised results are SymPy matrix
expressions; every printer (LaTeX, text, code) prints them by node type.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Gradient:
    """One backward equation of a kind: d``result`` = ∂J/∂``target`` through the kind's output.

    ``position(layout, r, s, k)`` is the entry differentiated; ``per_example``: an error
    (m ∂J/∂X, one example's share) rather than a parameter's gradient; ``penalised``: the L2
    penalty of the cost depends on the target directly.
    """

    name: str  # BP1 .. BP4
    target: str
    result: str
    position: Callable
    per_example: bool = False
    penalised: bool = False


@dataclass(frozen=True)
class LayerKind:
    name: str
    output: str  # key of the symbol table: what the kind computes
    inputs: tuple[str, ...]
    parameters: tuple[str, ...]
    forward: Callable  # (net, symbols, activation, unit, example) -> index expression
    gradients: tuple[Gradient, ...]  # in the order backpropagation computes them
    shape: Callable  # (input units, spec argument) -> output units
    syntax: str  # how a spec writes it
    pattern: re.Pattern  # the spec token, with named groups
    # The local derivative may be restated in terms of the kind's output (σ' = A(1 - A)).
    restates_output: bool = False

    def __repr__(self) -> str:
        return f"LayerKind({self.name}: {self.output} from {', '.join(self.inputs)})"


def _dense_forward(net, sym, activation, unit, example):
    """Z_{unit,example} = Σ_t W_{unit,t} A_{t,example} + b_unit (the layout places indices)."""
    return net.layout.forward_z(sym["W"], sym["A_prev"], sym["b"], sym["prev_units"], unit,
                                example)


def _activation_forward(net, sym, activation, unit, example):
    """A_{unit,example} = g(Z_{unit,example}), or entry ``unit`` of g of a column of Z."""
    return net.a_entry(sym, activation, unit, example)


DENSE = LayerKind(
    name="dense", output="Z", inputs=("A_prev",), parameters=("W", "b"),
    forward=_dense_forward,
    gradients=(
        Gradient("BP1", "W", "dW", lambda lay, r, s, k: lay.weight_pos(r, s), penalised=True),
        Gradient("BP2", "b", "db", lambda lay, r, s, k: lay.bias_pos(r)),
        Gradient("BP3", "A_prev", "dA_prev", lambda lay, r, s, k: lay.pos(s, k),
                 per_example=True),
    ),
    shape=lambda n_in, units: units,
    syntax="N (a positive integer: N units)",
    pattern=re.compile(r"(?P<units>[0-9]+)\Z"),
)

ACTIVATION = LayerKind(
    name="activation", output="A", inputs=("Z",), parameters=(),
    forward=_activation_forward,
    gradients=(Gradient("BP4", "Z", "dZ", lambda lay, r, s, k: lay.pos(r, k),
                        per_example=True),),
    shape=lambda n_in, _: n_in,
    syntax=":NAME after a dense layer's size (an activation of the registry, or defined)",
    pattern=re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\Z"),
    restates_output=True,
)

# A spec layer "n:g", in forward order.
LAYER_KINDS: dict[str, LayerKind] = {kind.name: kind for kind in (DENSE, ACTIVATION)}
SPEC_LAYER = (DENSE, ACTIVATION)


# --- feature layers: between an image input and flatten ----------------------------------
#
# A feature map is indexed (example, channel, row, column). A feature kind is one or two
# stages in a row (conv: the correlation Z = W ⋆ A + b, then the activation A = g(Z)); a stage
# holds its forward definition entry by entry, with symbolic sizes, and its gradients, each
# with the vectorised operation (a node of ``tensors``) it must come out as. The engine
# derives every entry by the chain rule and checks that it is that operation.

@dataclass(frozen=True)
class TensorGradient:
    """d``result`` = ∂J/∂``target`` at entry ``position()``; ``node(sym)`` is the operation
    the derived entry must be (without the 1/m of a parameter's gradient), None for an entry
    by entry map, recognised as one."""

    name: str
    target: str
    result: str
    position: Callable  # () -> tuple of entry indices of the target
    node: Callable | None  # (sym) -> tensors node
    per_example: bool = False
    penalised: bool = False
    # The stages whose outputs use the target (by stage name): the chain rule sums over all of
    # them. Empty: the stage that holds the gradient.
    through: tuple[str, ...] = ()


def _plain_entry(sym, layout, out, indices):
    return sym[out][indices]


@dataclass(frozen=True)
class Stage:
    """One quantity a feature kind computes, ``output`` (a key of the layer's symbol table),
    defined entry by entry by the operation ``node(sym)``: its forward definition is the
    node's entry. ``entry(sym, layout, output, indices)`` is the output's entry that index
    tuple names (flatten: the vector entry of position (c, h, w))."""

    name: str
    output: str
    node: Callable  # (sym) -> tensors node of the forward computation
    gradients: tuple[TensorGradient, ...]
    indices: tuple[str, ...] = ("k", "r", "x", "y")  # the forward definition's entry
    sums: tuple[str, ...] = ("i", "j", "x", "y")  # the chain rule's indices over the output
    entry: Callable = _plain_entry
    # (sym) -> the sizes the ``sums`` run over; None: the output's shape.
    extent: Callable | None = None

    def sizes(self, sym) -> tuple:
        return tuple(self.extent(sym)) if self.extent is not None else sym[self.output].shape


@dataclass(frozen=True)
class FeatureKind:
    """A layer kind between the image input and flatten: its stages in forward order, its spec
    syntax and shape rule."""

    name: str
    stages: tuple[Stage, ...]
    syntax: str
    pattern: re.Pattern
    token: Callable  # (Feature) -> spec token
    out_shape: Callable  # (Feature, (C, H, W)) -> output shape
    make: Callable  # (regex match, activation text) -> Feature
    parameters: tuple[str, ...] = ()
    example: str = ""  # a token of this kind, as the syntax is shown and tests use it
    needs: str = "image"  # the input the kind reads: "image" (a feature map) or "sequence"
    # (Feature) -> the stages of that layer, where they depend on its arguments
    select: Callable | None = None

    def __repr__(self) -> str:
        return f"FeatureKind({self.name})"

    def stages_of(self, feature) -> tuple[Stage, ...]:
        return self.select(feature) if self.select is not None else self.stages

    def check(self, feature, shape, pos) -> None:
        """Refuse a layer that does not fit its input, naming the fault and the fix."""
        from .errors import SpecError

        token = self.token(feature)
        if self.needs == "sequence":
            if feature.units < 1:
                raise SpecError(f"layer {pos}: {token}: the number of hidden units must be a "
                                f"positive integer, got {feature.units}")
            return
        if len(shape) != 3:
            raise SpecError(f"layer {pos}: {token} needs a feature map (channels x height x "
                            f"width) as input, got a vector of {shape[0]}")
        if self.name == "flatten":
            return
        height, width = shape[1:]
        k, s, p = feature.kernel, feature.stride, feature.padding
        for name, value in (("kernel", k), ("stride", s)):
            if value < 1:
                raise SpecError(f"layer {pos}: {token}: the {name} must be a positive "
                                f"integer, got {value}")
        if self.name == "conv" and feature.channels < 1:
            raise SpecError(f"layer {pos}: {token}: the number of channels must be a "
                            f"positive integer, got {feature.channels}")
        if p < 0 or (self.name == "conv" and p >= k):
            raise SpecError(f"layer {pos}: {token}: padding must be between 0 and the kernel "
                            f"size - 1 ({k - 1}), got {p}")
        padded = (height + 2 * p, width + 2 * p)
        if k > min(padded):
            what = "padded input" if p else "input"
            raise SpecError(
                f"layer {pos}: {token}: a {k}x{k} kernel is larger than its {what} "
                f"{padded[0]}x{padded[1]}; use a kernel of at most {min(padded)}"
                + ("" if p or self.name != "conv" else " or add padding (p1)"))


def _conv_out(f, shape):
    k, s, p = f.kernel, f.stride, f.padding
    return (f.channels, (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1)


def _pool_out(f, shape):
    return (shape[0], (shape[1] - f.kernel) // f.stride + 1,
            (shape[2] - f.kernel) // f.stride + 1)


def _conv_token(f):
    text = f"conv{f.channels}k{f.kernel}"
    text += f"s{f.stride}" if f.stride != 1 else ""
    text += f"p{f.padding}" if f.padding else ""
    return text + (f":{f.activation}" if f.activation != "identity" else "")


def _pool_token(f):
    return f"{f.kind}{f.kernel}" + (f"s{f.stride}" if f.stride != f.kernel else "")


def _tensors():
    from . import tensors as T
    return T


def _idx(*names):
    from . import naming as N
    return tuple(getattr(N, n) for n in names)


def _flat_entry(sym, layout, out, indices):
    k, c, h, w = indices
    unit = _tensors().Flatten.position(sym["A_prev"], c, h, w)
    return sym[out][layout.pos(unit, k)]


CONV_CORRELATION = Stage(
    "correlation", "Z",
    lambda sym: _tensors().Correlate(sym["W"], sym["A_prev"], sym["b"], sym["s"], sym["p"]),
    (TensorGradient("BP1", "W", "dW", lambda: _idx("r", "c", "u", "v"),
                    lambda sym: _tensors().WeightCorrelate(sym["A_prev"], sym["dZ"], sym["s"],
                                                           sym["p"]), penalised=True),
     TensorGradient("BP2", "b", "db", lambda: _idx("r"),
                    lambda sym: _tensors().ChannelSum(sym["dZ"])),
     TensorGradient("BP3", "A_prev", "dA_prev", lambda: _idx("k", "c", "h", "w"),
                    lambda sym: _tensors().FullCorrelate(sym["dZ"], sym["W"], sym["s"],
                                                         sym["p"]), per_example=True)))

FEATURE_ACTIVATION = Stage(
    "activation", "A", lambda sym: sym["activation_map"],
    (TensorGradient("BP4", "Z", "dZ", lambda: _idx("k", "r", "x", "y"), None,
                    per_example=True),), sums=("i", "j", "h", "w"))


def _pool_stage(how):
    return Stage(
        f"{how}pool", "A",
        lambda sym: _tensors().Pool(how, sym["A_prev"], sym["f"], sym["s"], sym.get("M")),
        (TensorGradient("BP3", "A_prev", "dA_prev", lambda: _idx("k", "c", "h", "w"),
                        lambda sym: _tensors().Unpool(how, sym["dA"], sym["f"], sym["s"],
                                                      sym.get("M")), per_example=True),),
        indices=("k", "c", "x", "y"))


FLATTEN_STAGE = Stage(
    "flatten", "A", lambda sym: _tensors().Flatten(sym["A_prev"], sym["layout"]),
    (TensorGradient("BP3", "A_prev", "dA_prev", lambda: _idx("k", "c", "h", "w"),
                    lambda sym: _tensors().Unflatten(sym["dA"], sym["A_prev"], sym["layout"]),
                    per_example=True),),
    indices=("k", "c", "h", "w"), sums=("i", "t", "x", "y"), entry=_flat_entry,
    extent=lambda sym: sym["A_prev"].shape)


def _make_conv(match, act):
    return _feature("conv", channels=int(match["channels"]), kernel=int(match["kernel"]),
                    stride=int(match["stride"] or 1), padding=int(match["padding"] or 0),
                    activation=act or "identity")


def _make_pool(kind):
    def make(match, act):
        kernel = int(match["kernel"])
        return _feature(kind, kernel=kernel, stride=int(match["stride"] or kernel))
    return make


def _feature(kind, **fields):
    from .spec import Feature
    return Feature(kind, **fields)


CONV = FeatureKind(
    "conv", (CONV_CORRELATION, FEATURE_ACTIVATION),
    syntax="conv{F}k{K}[s{S}][p{P}][:act]: F output channels, a KxK kernel, stride S "
           "(default 1), zero padding P (default 0)",
    pattern=re.compile(r"conv(?P<channels>[0-9]+)k(?P<kernel>[0-9]+)(?:s(?P<stride>[0-9]+))?"
                       r"(?:p(?P<padding>[0-9]+))?\Z"),
    token=_conv_token, out_shape=_conv_out, make=_make_conv, parameters=("W", "b"),
    example="conv2k2p1:tanh")
MAXPOOL = FeatureKind(
    "maxpool", (_pool_stage("max"),),
    syntax="maxpool{K}[s{S}]: the maximum of each KxK window, stride S (default K)",
    pattern=re.compile(r"maxpool(?P<kernel>[0-9]+)(?:s(?P<stride>[0-9]+))?\Z"),
    token=_pool_token, out_shape=_pool_out, make=_make_pool("maxpool"), example="maxpool2s1")
AVGPOOL = FeatureKind(
    "avgpool", (_pool_stage("avg"),),
    syntax="avgpool{K}[s{S}]: the mean of each KxK window, stride S (default K)",
    pattern=re.compile(r"avgpool(?P<kernel>[0-9]+)(?:s(?P<stride>[0-9]+))?\Z"),
    token=_pool_token, out_shape=_pool_out, make=_make_pool("avgpool"), example="avgpool2")
FLATTEN = FeatureKind(
    "flatten", (FLATTEN_STAGE,),
    syntax="flatten: the feature map as one vector (channel, row, column order), before the "
           "dense layers",
    pattern=re.compile(r"flatten\Z"), token=lambda f: "flatten",
    out_shape=lambda f, shape: (shape[0] * shape[1] * shape[2],),
    make=lambda match, act: _feature("flatten"), example="flatten")



# --- recurrent layers: after a sequence input, before the dense head ------------------------
#
# An Elman layer is three stages: the recurrence Z_t = W x_t + U H_{t-1} + b, the activation
# H_t = g(Z_t), and what it passes on to the dense head (its last state, or every state). H
# is used twice, by the next step's Z and by what is passed on: the chain rule sums over both,
# which is backpropagation through time; its boundary at the last step comes out of the
# range of the delta sum over steps.

RECURRENCE = Stage(
    "recurrence", "Z",
    lambda sym: _tensors().Recurrence(sym["W"], sym["A_prev"], sym["U"], sym["H"], sym["b"]),
    (TensorGradient("BP1", "W", "dW", lambda: _idx("r", "s"),
                    lambda sym: _tensors().StepOuter(sym["dZ"], sym["A_prev"], 0),
                    penalised=True),
     TensorGradient("BPU", "U", "dU", lambda: _idx("r", "s"),
                    lambda sym: _tensors().StepOuter(sym["dZ"], sym["H"], 1), penalised=True),
     TensorGradient("BP2", "b", "db", lambda: _idx("r"),
                    lambda sym: _tensors().StepSum(sym["dZ"]))),
    indices=("k", "tau", "r"), sums=("i", "t", "j"))

RECURRENT_ACTIVATION = Stage(
    "activation", "H", lambda sym: sym["activation_map"],
    (TensorGradient("BP4", "Z", "dZ", lambda: _idx("k", "tau", "r"), None, per_example=True),),
    indices=("k", "tau", "r"), sums=("i", "t", "j"))


def _last_entry(sym, layout, out, indices):
    k, r = indices
    return sym[out][layout.pos(r, k)]


def _every_entry(sym, layout, out, indices):
    k, tau, r = indices
    return sym[out][layout.pos(r, _tensors().EveryStep.position(sym["H"], k, tau))]


def _back_in_time(sym):
    return _tensors().BackThroughTime(sym["U"], sym["dZ"], sym["dA"], sym["every_step"],
                                      sym["layout"])


_BPTT = TensorGradient("BPTT", "H", "dH", lambda: _idx("k", "tau", "r"), _back_in_time,
                       per_example=True, through=("recurrence", "pass"))

LAST_STEP = Stage(
    "pass", "A", lambda sym: _tensors().LastStep(sym["H"], sym["layout"]), (_BPTT,),
    indices=("k", "r"), sums=("i", "j"), entry=_last_entry,
    extent=lambda sym: (sym["H"].shape[0], sym["H"].shape[2]))

EVERY_STEP = Stage(
    "pass", "A", lambda sym: _tensors().EveryStep(sym["H"], sym["layout"]), (_BPTT,),
    indices=("k", "tau", "r"), sums=("i", "t", "j"), entry=_every_entry,
    extent=lambda sym: sym["H"].shape)


def _rnn_token(f):
    return f"rnn{f.units}:{f.activation}" + (":all" if f.every_step else "")


def _make_rnn(match, act):
    """``rnn64``, ``rnn64:relu``, ``rnn64:all``, ``rnn64:relu:all``: ``act`` is the text after
    the first ':'."""
    from .errors import SpecError

    words = [w.strip() for w in act.split(":")] if act else []
    every = bool(words) and words[-1] == "all"
    if every:
        words = words[:-1]
    if len(words) > 1 or (words and not words[0]):
        raise SpecError(f"layer 1: rnn{match['units']}:{act}: write rnn{{H}}[:act][:all], e.g. "
                        f"'rnn{match['units']}:tanh:all'")
    return _feature("rnn", units=int(match["units"]), activation=words[0] if words else "tanh",
                    every_step=every)


RNN = FeatureKind(
    "rnn", (RECURRENCE, RECURRENT_ACTIVATION, LAST_STEP),
    syntax="rnn{H}[:act][:all]: an Elman layer of H units, H_t = act(W x_t + U H_{t-1} + b) "
           "(act default tanh); it passes on its last state, or with ':all' every state",
    pattern=re.compile(r"rnn(?P<units>[0-9]+)\Z"),
    token=_rnn_token, out_shape=lambda f, shape: (f.units,), make=_make_rnn,
    parameters=("W", "U", "b"), example="rnn3:tanh", needs="sequence",
    select=lambda f: (RECURRENCE, RECURRENT_ACTIVATION, EVERY_STEP if f.every_step
                      else LAST_STEP))

FEATURE_KINDS: dict[str, FeatureKind] = {kind.name: kind for kind in
                                         (CONV, MAXPOOL, AVGPOOL, FLATTEN, RNN)}
# The kinds that read a feature map, and those that read a sequence.
IMAGE_KINDS = {name: kind for name, kind in FEATURE_KINDS.items() if kind.needs == "image"}
SEQUENCE_KINDS = {name: kind for name, kind in FEATURE_KINDS.items()
                  if kind.needs == "sequence"}
