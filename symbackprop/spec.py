"""The architecture spec: layer sizes, one activation per layer after the input, and a loss.

Three ways in, one validation: the one-line form ``784-128:relu-10:softmax``, a JSON or TOML file
with the same content, and ``Architecture(sizes=[...], activations=[...], loss=...)``.
Validation reads the registry, the one place that knows which activations and losses exist.
"""
from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .errors import SpecError

DEFAULT_ACTIVATION = "sigmoid"
DEFAULT_LOSS = "half_sse"


@dataclass(frozen=True)
class Definition:
    """A function a user wrote: ``kind`` "activation" (in z) or "loss" (in a and y)."""

    kind: str
    name: str
    text: str

    def __str__(self) -> str:
        return f"{self.name} = {self.text}"


@dataclass(frozen=True)
class Feature:
    """A layer between an image input and ``flatten``: a convolution or a pooling layer, or
    ``flatten`` itself. ``kind`` names an entry of ``kinds.FEATURE_KINDS``; ``channels`` (F),
    ``kernel`` (K), ``stride`` (S), ``padding`` (P) as torch's Conv2d / max_pool2d take them
    (0 where the kind has no such argument); ``activation`` applies after a convolution.

    A recurrent layer (``rnn``, after a sequence input) has ``units`` (H) hidden units, its
    ``activation`` (default tanh), and ``every_step``: it passes on every hidden state
    (many-to-many) rather than the last one (many-to-one)."""

    kind: str
    channels: int = 0
    kernel: int = 0
    stride: int = 0
    padding: int = 0
    activation: str = ""
    units: int = 0
    every_step: bool = False

    def token(self) -> str:
        """The spec token: ``conv16k3p1:relu``, ``maxpool2``, ``avgpool3s2``, ``flatten``."""
        from .kinds import FEATURE_KINDS

        return FEATURE_KINDS[self.kind].token(self)

    def out_shape(self, shape: tuple[int, int, int]) -> tuple[int, ...]:
        """(C, H, W) of the output for input ``shape`` (flatten: (C·H·W,))."""
        from .kinds import FEATURE_KINDS

        return FEATURE_KINDS[self.kind].out_shape(self, shape)


@dataclass(frozen=True)
class Architecture:
    """A fully connected network: sizes[0] inputs, then one activation per later layer.

    ``definitions``: the functions the user wrote (``Definition``s, or a mapping
    ``{"activations": {name: expr}, "losses": {name: expr}}``); ``l2``: the weight of the
    penalty (λ/2m) Σ_l ‖W^[l]‖², 0 for none.
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...] = field(default=())
    loss: str = DEFAULT_LOSS
    definitions: tuple[Definition, ...] = field(default=())
    l2: Fraction = Fraction(0)
    image: tuple[int, ...] | None = None  # (C, H, W) of an image input, else None
    features: tuple[Feature, ...] = field(default=())  # conv / pooling layers, then flatten
    sequence: tuple[int, int] | None = None  # (T, n) of a sequence input, else None

    def __init__(self, sizes=None, activations=None, loss=DEFAULT_LOSS, definitions=(), l2=0,
                 image=None, features=(), sequence=None):
        features = tuple(features)
        if sequence is not None:
            if image is not None:
                raise SpecError("a network has one input: an image (image=...) or a sequence "
                                "(sequence=...), not both")
            sequence = _sequence_shape(sequence)
            _check_recurrent(sequence, features)
            if sizes is None:
                raise SpecError("a recurrent network needs its dense layers after the rnn "
                                "layer, e.g. sizes=[10]")
            sizes = (features[0].units, *tuple(sizes))
        elif image is not None:
            image = _image_shape(image)
            _check_features(image, features)
            shapes = feature_shapes(image, features)
            flat = shapes[-1][0] if features else None
            if sizes is None:
                raise SpecError("an image network needs its dense layers after flatten, "
                                "e.g. sizes=[10]")
            sizes = (flat, *tuple(sizes))
        elif any(getattr(f, "kind", None) == "rnn" for f in features):
            raise SpecError("an rnn layer needs a sequence input seq{T}x{n}, e.g. "
                            f"sequence=(8, 8), or '{EXAMPLE_SEQUENCE}'")
        elif features:
            raise SpecError("conv and pooling layers need an image input CxHxW, e.g. "
                            "'1x8x8-conv8k3:relu-maxpool2-flatten-10:softmax'")
        if sizes is None:
            raise SpecError("an architecture needs its layer sizes, e.g. sizes=[2, 3, 1]")
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise SpecError(f"sizes must be a list of positive integers such as [2, 3, 1], "
                            f"got {type(sizes).__name__}")
        sizes = tuple(sizes)
        if activations is None:
            activations = (DEFAULT_ACTIVATION,) * max(len(sizes) - 1, 0)
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "sequence", sequence)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activations", tuple(activations))
        object.__setattr__(self, "loss", loss)
        object.__setattr__(self, "definitions", _definitions(definitions))
        object.__setattr__(self, "l2", parse_l2(l2))
        _validate(self)

    @property
    def depth(self) -> int:
        """L, the label of the output layer: the layers after the input, features included."""
        return len(self.features) + len(self.sizes) - 1

    @property
    def offset(self) -> int:
        """The label of the layer the dense head reads (flatten's; 0 for a dense network)."""
        return len(self.features)

    @property
    def dense_labels(self) -> range:
        """The labels of the dense layers: 1..L, or offset+1..L after the features."""
        return range(self.offset + 1, self.depth + 1)

    def size(self, label: int) -> int:
        """n_l of dense layer ``label`` (or of flatten's output, label ``offset``)."""
        return self.sizes[label - self.offset]

    @property
    def recurrent(self) -> Feature | None:
        """The rnn layer of a recurrent network, else None."""
        return self.features[0] if self.sequence is not None else None

    @property
    def every_step(self) -> bool:
        """Whether the dense head applies at every time step (an ``rnn...:all`` layer)."""
        return self.sequence is not None and self.features[0].every_step

    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of every layer's output, input first: (C, H, W) for feature maps,
        (n,) for vectors; a sequence input is (T, n), and an rnn layer passes on vectors of
        its H units (one per example, or one per step with ':all')."""
        if self.sequence is not None:
            return (tuple(self.sequence), *((n,) for n in self.sizes))
        if self.image is None:
            return tuple((n,) for n in self.sizes)
        return (*feature_shapes(self.image, self.features),
                *((n,) for n in self.sizes[1:]))

    def activation_entry(self, name: str):
        """The registry entry of activation ``name``: built in, or defined by the user."""
        from .registry import activation

        return activation(name, self.definitions)

    @property
    def activation_entries(self) -> tuple:
        """The entry of each layer's activation, layer 1 first."""
        return tuple(self.activation_entry(name) for name in self.activations)

    @property
    def loss_entry(self):
        from .registry import loss

        return loss(self.loss, self.definitions)

    @property
    def feature_activations(self) -> tuple[str, ...]:
        return tuple(f.activation for f in self.features if f.activation)

    def used_definitions(self) -> tuple[Definition, ...]:
        """The user's definitions that this network uses, in the order they were given."""
        used = set(self.activations) | {self.loss} | set(self.feature_activations)
        return tuple(d for d in self.definitions if d.name in used)

    def _front(self) -> list[str]:
        if self.sequence is not None:
            return ["seq{}x{}".format(*self.sequence), self.features[0].token()]
        if self.image is None:
            return [str(self.sizes[0])]
        return ["x".join(map(str, self.image)), *(f.token() for f in self.features)]

    def __str__(self) -> str:
        parts = self._front()
        parts += [f"{n}:{g}" for n, g in zip(self.sizes[1:], self.activations)]
        return "-".join(parts)

    def spec(self) -> str:
        """The shortest one-line form that parses back to this architecture."""
        if all(g == DEFAULT_ACTIVATION for g in self.activations):
            return "-".join(self._front() + [str(n) for n in self.sizes[1:]])
        return str(self)

    def __repr__(self) -> str:
        extra = ""
        if self.definitions:
            extra += f", definitions={[str(d) for d in self.definitions]!r}"
        if self.l2:
            extra += f", l2={str(self.l2)!r}"
        return f"Architecture({self.spec()!r}, loss={self.loss!r}{extra})"


MAX_IMAGE_SIDE = 4096


def _image_shape(image) -> tuple[int, int, int]:
    if isinstance(image, (str, bytes)) or not hasattr(image, "__len__") or len(image) != 3:
        raise SpecError(f"an image input is (channels, height, width), e.g. (1, 8, 8), "
                        f"got {image!r}")
    for name, value in zip(("channels", "height", "width"), image):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"image {name} must be a positive integer, got {value!r}")
        if value > MAX_IMAGE_SIDE:
            raise SpecError(f"image {name} {value} is larger than {MAX_IMAGE_SIDE}")
    return tuple(image)


MAX_STEPS = 100_000


def _sequence_shape(sequence) -> tuple[int, int]:
    if isinstance(sequence, (str, bytes)) or not hasattr(sequence, "__len__") \
            or len(sequence) != 2:
        raise SpecError(f"a sequence input is (time steps, features), e.g. (8, 8), got "
                        f"{sequence!r}")
    for name, value in zip(("time steps", "features"), sequence):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"sequence {name} must be a positive integer, got {value!r}")
        if value > MAX_STEPS:
            raise SpecError(f"sequence {name} {value} is larger than {MAX_STEPS}")
    return tuple(sequence)


def _check_recurrent(sequence, features) -> None:
    """A sequence input is read by one rnn layer, then dense layers."""
    from .kinds import FEATURE_KINDS

    if len(features) != 1 or not isinstance(features[0], Feature) \
            or features[0].kind != "rnn":
        got = ", ".join(f.token() if isinstance(f, Feature) and f.kind in FEATURE_KINDS
                        else repr(f) for f in features) or "none"
        raise SpecError(f"a sequence input is read by one rnn layer, then dense layers, e.g. "
                        f"'{EXAMPLE_SEQUENCE}'; got layers before the dense head: {got}")
    FEATURE_KINDS["rnn"].check(features[0], sequence, 1)


def feature_shapes(image, features) -> tuple[tuple[int, ...], ...]:
    """The output shape of the input and of every feature layer."""
    shapes = [tuple(image)]
    for f in features:
        shapes.append(f.out_shape(shapes[-1]))
    return tuple(shapes)


def _check_features(image, features) -> None:
    """Each feature layer fits its input; flatten comes last, once."""
    from .kinds import FEATURE_KINDS

    if not features or features[-1].kind != "flatten":
        raise SpecError("an image network needs 'flatten' before its dense layers, e.g. "
                        "'1x8x8-conv8k3:relu-flatten-10:softmax'")
    shape = tuple(image)
    for pos, f in enumerate(features, start=1):
        if not isinstance(f, Feature) or f.kind not in FEATURE_KINDS:
            raise SpecError(f"layer {pos}: {f!r} is not a feature layer "
                            f"(known: {', '.join(FEATURE_KINDS)})")
        if f.kind == "flatten" and pos != len(features):
            raise SpecError(f"layer {pos + 1}: {features[pos].token()} after flatten; conv "
                            "and pooling layers come before 'flatten', dense layers after it")
        FEATURE_KINDS[f.kind].check(f, shape, pos)
        shape = f.out_shape(shape)


MAX_L2_DIGITS = 30


def parse_l2(value) -> Fraction:
    """λ of the L2 penalty as an exact fraction: a number >= 0, or its decimal text."""
    if isinstance(value, Fraction):
        out = value
    elif isinstance(value, bool):
        raise SpecError(f"l2 must be a number >= 0 such as 0.001, got {value!r}")
    elif isinstance(value, int):
        out = Fraction(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"l2 must be a finite number >= 0 such as 0.001, got {value!r}")
        out = Fraction(repr(value))
    elif isinstance(value, str):
        text = value.strip().lower().replace("_", "")
        mantissa, _, exponent = text.partition("e")
        ok = (0 < len(mantissa) <= MAX_L2_DIGITS
              and (not exponent or (exponent.lstrip("+-").isdigit()
                                    and len(exponent.lstrip("+-")) <= 2)))
        try:
            out = Fraction(text) if ok and text.isascii() else None
        except (ValueError, ZeroDivisionError):
            out = None
        if out is None:
            raise SpecError(f"l2 must be a decimal number >= 0 such as 0.001 or 1e-4, "
                            f"got {value[:40]!r}")
    else:
        raise SpecError(f"l2 must be a number >= 0 such as 0.001, got {type(value).__name__}")
    if out < 0:
        raise SpecError(f"l2 must be >= 0 (0 means no penalty), got {value}")
    return out


def _definitions(value) -> tuple[Definition, ...]:
    """Definitions from a tuple of Definition or a {"activations": {...}, "losses": {...}}."""
    if isinstance(value, dict):
        return definitions_from_mapping(value, "define")
    out = tuple(value or ())
    for d in out:
        if not isinstance(d, Definition):
            raise SpecError(f"definitions must be Definition entries or a mapping, got {d!r}")
    return out


def definitions_from_mapping(data, source: str) -> tuple[Definition, ...]:
    """``{"activations": {name: expr}, "losses": {name: expr}}`` as Definitions."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: 'define' must be a table with 'activations' and/or "
                        f"'losses', got {type(data).__name__}")
    unknown = set(data) - {"activations", "losses"}
    if unknown:
        raise SpecError(f"{source}: unknown key {min(map(str, unknown))!r} in 'define' "
                        "(known: activations, losses)")
    out = []
    for key, kind in (("activations", "activation"), ("losses", "loss")):
        table = data.get(key, {})
        if not isinstance(table, dict):
            raise SpecError(f"{source}: define.{key} must be a table of name = \"expression\"")
        for name, text in table.items():
            if not isinstance(text, str):
                raise SpecError(f"{source}: define.{key}.{name} must be an expression in a "
                                f"string, e.g. \"z*sigmoid(z)\", got {type(text).__name__}")
            out.append(Definition(kind, name, text))
    return tuple(out)


def definition_from_text(kind: str, text: str) -> Definition:
    """``NAME=EXPR`` from the command line (``--activation swish=z*sigmoid(z)``)."""
    if not isinstance(text, str) or "=" not in text:
        raise SpecError(
            f"--{kind} {str(text)[:40]!r}: write NAME=EXPR, e.g. --{kind} "
            + ("'swish=z*sigmoid(z)'" if kind == "activation" else "'my_l1=abs(a - y)'"))
    name, _, expr = text.partition("=")
    return Definition(kind, name.strip(), expr.strip())


def _known(names) -> str:
    return f"(known: {', '.join(sorted(names))})"


def _validate(arch: Architecture) -> None:
    from .registry import ACTIVATIONS, LOSSES, check_name, user_activation, user_loss

    sizes, acts, loss = arch.sizes, arch.activations, arch.loss
    seen = set()
    for d in arch.definitions:
        if d.kind not in ("activation", "loss"):
            raise SpecError(f"definition {d.name!r}: kind must be 'activation' or 'loss'")
        check_name(d.name, d.kind)
        if (d.kind, d.name) in seen:
            raise SpecError(f"{d.kind} {d.name!r} is defined twice; keep one definition")
        seen.add((d.kind, d.name))
        # Parse and check every definition, used or not: a wrong one is an error either way.
        (user_activation if d.kind == "activation" else user_loss)(d.name, d.text)
    defined_acts = {d.name for d in arch.definitions if d.kind == "activation"}
    defined_losses = {d.name for d in arch.definitions if d.kind == "loss"}
    if len(sizes) < 2:
        raise SpecError(
            f"an architecture needs at least two layers (inputs and outputs), got {len(sizes)}; "
            "write e.g. '2-3-1'")
    for pos, size in enumerate(sizes):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            shown = repr(size) if not isinstance(size, int) or size < 10 ** 12 else "a huge number"
            raise SpecError(f"layer {pos}: size must be a positive integer, got "
                            f"{shown[:40]}")
        if size > MAX_UNITS:
            shown = f"{size} units" if size < 10 ** 12 else "a size of more than 12 digits"
            raise SpecError(f"layer {pos}: {shown} is more than symbackprop handles (at most "
                            f"{MAX_UNITS:,})")
    if len(acts) != len(sizes) - 1:
        raise SpecError(
            f"{len(sizes) - 1} layers after the input need {len(sizes) - 1} activations, "
            f"got {len(acts)}")
    for pos, act in enumerate(acts, start=arch.offset + 1):
        if not isinstance(act, str) or (act not in ACTIVATIONS and act not in defined_acts):
            raise SpecError(f"layer {pos}: unknown activation {act!r} "
                            f"{_known(set(ACTIVATIONS) | defined_acts)}; define your own with "
                            "--activation NAME=EXPR")
        if arch.activation_entry(act).output_only and pos != arch.depth:
            raise SpecError(
                f"layer {pos}: {act} is allowed on the output layer only (layer {arch.depth}); "
                "use e.g. relu or tanh for hidden layers")
    for pos, f in enumerate(arch.features, start=1):
        if not f.activation:
            continue
        if f.activation not in ACTIVATIONS and f.activation not in defined_acts:
            raise SpecError(f"layer {pos}: unknown activation {f.activation!r} "
                            f"{_known(set(ACTIVATIONS) | defined_acts)}; define your own with "
                            "--activation NAME=EXPR")
        if not arch.activation_entry(f.activation).elementwise:
            what = "be the recurrent activation of an rnn layer" if f.kind == "rnn" \
                else "follow a conv layer"
            raise SpecError(f"layer {pos}: {f.activation} maps a whole vector and cannot "
                            f"{what}; use an entry-by-entry activation such as "
                            f"{'tanh' if f.kind == 'rnn' else 'relu'}, and {f.activation} on "
                            "the output layer")
    if not isinstance(loss, str) or (loss not in LOSSES and loss not in defined_losses):
        raise SpecError(f"unknown loss {loss!r} {_known(set(LOSSES) | defined_losses)}; define "
                        "your own with --loss NAME=EXPR")
    needed = arch.loss_entry.output_activations
    if needed and acts[-1] not in needed:
        units = sizes[-1]
        if units == 1 and not arch.activation_entry(needed[0]).elementwise:
            units = 2  # a map of the whole column over one unit is constant: suggest two
        front = arch._front() + [str(n) if g == DEFAULT_ACTIVATION else f"{n}:{g}"
                                 for n, g in zip(sizes[1:-1], acts[:-1])]
        raise SpecError(
            f"loss {loss} needs a {' or '.join(needed)} output layer, got {acts[-1]}; "
            f"write e.g. '{'-'.join(front)}-{units}:{needed[0]}'"
            + (" (one class per output unit)" if units != sizes[-1] else ""))
    out = arch.activation_entry(acts[-1])
    if not out.elementwise and sizes[-1] == 1:
        raise SpecError(
            f"a {acts[-1]} output over 1 unit is constant ({acts[-1]} of one number is "
            f"{'1' if acts[-1] == 'softmax' else '0'}): its cost never changes and every "
            f"gradient is 0; give it at least 2 units, or use sigmoid with bce for one "
            "probability")


IMAGE_PATTERN = re.compile(r"(?P<c>[0-9]+)x(?P<h>[0-9]+)x(?P<w>[0-9]+)\Z")
EXAMPLE_IMAGE = "1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax"
SEQUENCE_PATTERN = re.compile(r"seq(?P<steps>[0-9]+)x(?P<n>[0-9]+)\Z")
EXAMPLE_SEQUENCE = "seq8x8-rnn64:tanh-10:softmax"


def parse_arch(text: str, loss: str | None = None, definitions=(), l2=0) -> Architecture:
    """Parse the one-line form: ``2-3-1``, ``784-128:relu-10:softmax``, ``3-1:relu-2:relu``,
    or an image network ``1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax``.

    ``definitions`` and ``l2`` are passed on to ``Architecture``.
    """
    if not isinstance(text, str) or not text.strip():
        raise SpecError("empty architecture; write sizes joined by '-', e.g. '2-3-1'")
    _check_numbers(text)
    parts = text.strip().split("-")
    first = parts[0].strip()
    image = IMAGE_PATTERN.match(first) if first.isascii() else None
    sequence = SEQUENCE_PATTERN.match(first) if first.isascii() else None
    features = []
    if sequence is not None:
        dims = (int(sequence["steps"]), int(sequence["n"]))
        if min(dims) < 1:
            raise SpecError(f"layer 0: a sequence input needs at least one step and one "
                            f"feature, got {first!r}; write seq{{T}}x{{n}}, e.g. "
                            f"'{EXAMPLE_SEQUENCE}'")
        rnn, rest = _parse_recurrent(parts[1:], text)
        _, sizes, acts = _dense_part([str(rnn.units), *rest], text, 1)
        return Architecture(sizes[1:], acts, loss if loss is not None else DEFAULT_LOSS,
                            definitions, l2, sequence=dims, features=[rnn])
    if image is not None:
        dims = tuple(int(image[g]) for g in "chw")
        if min(dims) < 1:
            raise SpecError(f"layer 0: image sizes must be positive integers, got {first!r}; "
                            f"write CxHxW, e.g. '{EXAMPLE_IMAGE}'")
        features, rest = _parse_features(parts[1:], text)
        _check_features(dims, features)
        parts = [str(feature_shapes(dims, features)[-1][0]) if features else "0", *rest]
    _, sizes, acts = _dense_part(parts, text, len(features), image is not None)
    if image is not None:
        return Architecture(sizes[1:], acts, loss if loss is not None else DEFAULT_LOSS,
                            definitions, l2, image=dims, features=features)
    return Architecture(sizes, acts, loss if loss is not None else DEFAULT_LOSS,
                        definitions, l2)


def _dense_part(parts, text, offset, image=False):
    """The dense layers of a one-line spec: (parts, sizes, activations), ``parts[0]`` being
    the size of what they read (the input, or the layer before the head, label ``offset``)."""
    from .kinds import SPEC_LAYER

    dense, activation = SPEC_LAYER
    sizes, acts = [], []
    for pos, part in enumerate(parts):
        pos_shown = pos + offset
        size_text, sep, act = part.partition(":")
        size_text, act = size_text.strip(), act.strip()
        match = dense.pattern.match(size_text) if size_text.isascii() else None
        if match is None or int(match["units"]) < 1:
            raise SpecError(_token_error(pos_shown, size_text, text, image))
        sizes.append(int(match["units"]))
        if pos == 0:
            if sep:
                raise SpecError(
                    f"layer 0 is the input and takes no activation, got '{part}'; "
                    f"write '{size_text}-...'")
            continue
        if sep and not act:
            raise SpecError(f"layer {pos_shown}: empty activation after ':' in {text!r}")
        if act and not activation.pattern.match(act):
            raise SpecError(f"layer {pos_shown}: {act!r} is not an activation name; write "
                            f"{activation.syntax}, e.g. '2-3:relu-1'")
        acts.append(act or DEFAULT_ACTIVATION)
    return parts, sizes, acts


MAX_UNITS = 1_000_000  # the largest number a spec may hold (units, channels, steps, sides)
MAX_SPEC_CHARS = 100_000


def _check_numbers(text: str) -> None:
    """Refuse a one-line spec too long to be one, or holding a number beyond MAX_UNITS, before
    any number is converted (a number of thousands of digits cannot be)."""
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(f"the architecture is {len(text)} characters long, more than "
                        f"{MAX_SPEC_CHARS}; put a network that large in a spec file")
    for match in re.finditer(r"[0-9]+", text):
        digits = match.group().lstrip("0")
        if len(digits) > len(str(MAX_UNITS)) or (digits and int(digits) > MAX_UNITS):
            layer = text[:match.start()].count("-")
            shown = digits if len(digits) <= 12 else digits[:12] + f"... ({len(digits)} digits)"
            raise SpecError(f"layer {layer}: {shown} is larger than symbackprop handles (sizes, "
                            f"channels, kernels and steps are at most {MAX_UNITS:,})")


def _parse_recurrent(parts, text):
    """The rnn layer after a sequence input, and the dense tokens after it."""
    from .kinds import FEATURE_KINDS

    rnn = FEATURE_KINDS["rnn"]
    if not parts:
        raise SpecError(f"a sequence input is read by an rnn layer, then dense layers, e.g. "
                        f"'{EXAMPLE_SEQUENCE}'")
    token, _, act = parts[0].partition(":")
    token, act = token.strip(), act.strip()
    match = rnn.pattern.match(token) if token.isascii() else None
    if match is None:
        shown = token if len(token) <= 40 else token[:40] + "..."
        kind, _ = _feature_kind(token)
        if kind is not None:
            raise SpecError(f"layer 1: {shown} needs an image input CxHxW; after a sequence "
                            f"input write {rnn.syntax.split(': ')[0]}, e.g. "
                            f"'{EXAMPLE_SEQUENCE}'")
        raise SpecError(f"layer 1: unknown layer {shown!r} after a sequence input; write "
                        f"{rnn.syntax.split(': ')[0]}, then dense sizes, e.g. "
                        f"'{EXAMPLE_SEQUENCE}'")
    if int(match["units"]) < 1:
        raise SpecError(f"layer 1: {token}: the number of hidden units must be a positive "
                        f"integer, got {match['units']}; write e.g. 'rnn64:tanh'")
    if ":" in parts[0] and not act:
        raise SpecError(f"layer 1: empty activation after ':' in {text!r}")
    feature = rnn.make(match, act)
    rest = parts[1:]
    if not rest:
        raise SpecError(f"{feature.token()} must be followed by dense layers, e.g. "
                        f"'{text.strip()}-10:softmax'")
    after = rest[0].partition(":")[0].strip()
    if _feature_kind(after)[0] is not None:
        raise SpecError(f"layer 2: {after} after the rnn layer; a recurrent network has one "
                        "rnn layer, then dense layers")
    return feature, rest


def _feature_kind(token, kinds=None):
    from .kinds import FEATURE_KINDS

    for kind in (kinds or FEATURE_KINDS).values():
        match = kind.pattern.match(token) if token.isascii() else None
        if match is not None:
            return kind, match
    return None, None


def _parse_features(parts, text):
    """The feature layers up to and including flatten, and the dense tokens after it."""

    features = []
    for pos, part in enumerate(parts, start=1):
        token, sep, act = part.partition(":")
        token, act = token.strip(), act.strip()
        kind, match = _feature_kind(token)
        if kind is not None and kind.needs != "image":
            raise SpecError(f"layer {pos}: {token} needs a sequence input seq{{T}}x{{n}} "
                            f"(time steps x features), e.g. '{EXAMPLE_SEQUENCE}'")
        if kind is None:
            if token.isdigit() or DENSE_TOKEN.match(token):
                raise SpecError(
                    f"layer {pos}: dense layer {part!r} directly after a "
                    f"{'feature map' if not features else features[-1].kind + ' layer'}; "
                    f"put 'flatten' before it, e.g. '...-flatten-{part}'")
            raise SpecError(_token_error(pos, token, text, True))
        if sep and kind.name != "conv":
            raise SpecError(f"layer {pos}: {token} takes no activation, got {part!r}; "
                            "activations follow conv layers (conv8k3:relu)")
        if sep and not act:
            raise SpecError(f"layer {pos}: empty activation after ':' in {text!r}")
        for group in ("channels", "kernel", "stride"):
            if group in match.groupdict() and match[group] is not None \
                    and int(match[group]) < 1:
                raise SpecError(f"layer {pos}: {token}: the {group} must be a positive "
                                f"integer, got {match[group]}; write {kind.syntax}")
        features.append(kind.make(match, act))
        if kind.name == "flatten":
            rest = parts[pos:]
            if rest:
                after, _, _ = rest[0].partition(":")
                if _feature_kind(after.strip())[0] is not None:
                    raise SpecError(
                        f"layer {pos + 1}: {after.strip()} after flatten; conv and pooling "
                        "layers come before 'flatten', dense layers after it")
            else:
                raise SpecError(f"flatten must be followed by dense layers, e.g. "
                                f"'{text.strip()}-10:softmax'")
            return features, rest
    raise SpecError(f"an image network needs 'flatten' before its dense layers, e.g. "
                    f"'{EXAMPLE_IMAGE}'")


DENSE_TOKEN = re.compile(r"[0-9]+\Z")


def _token_error(pos, token, text, image) -> str:
    from .kinds import IMAGE_KINDS

    shown = token if len(token) <= 40 else token[:40] + "..."
    kind = _feature_kind(token)[0]
    if kind is not None and kind.needs == "sequence":
        return (f"layer {pos}: {shown} needs a sequence input seq{{T}}x{{n}} before it (time "
                f"steps x features), e.g. '{EXAMPLE_SEQUENCE}'")
    if kind is not None:
        return (f"layer {pos}: {shown} needs an image input CxHxW before it (channels x "
                f"height x width), e.g. '{EXAMPLE_IMAGE}'")
    if image:
        kinds = "; ".join(kind.syntax.split(": ")[0] for kind in IMAGE_KINDS.values())
        return (f"layer {pos}: unknown layer {shown!r} in an image network; write one of "
                f"{kinds}, then dense sizes, e.g. '{EXAMPLE_IMAGE}'")
    return (f"layer {pos}: size must be a positive integer, got {shown!r} in "
            f"{text if len(text) <= 80 else text[:80] + '...'!r}; write e.g. '2-3-1' or "
            "'784-128:relu-10:softmax'")


SPEC_KEYS = ("activations", "arch", "define", "l2", "loss", "sizes")


def arch_from_mapping(data, source: str = "spec", loss: str | None = None, definitions=(),
                      l2=None) -> Architecture:
    """Build from ``{"arch": "2-3-1"}`` or ``{"sizes": [...], "activations": [...]}``, with
    optional ``loss``, ``l2`` and ``define`` (the user's functions). ``definitions`` are added
    to the file's; ``loss`` and ``l2``, when given, replace the file's."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a table with 'arch' or 'sizes', got {type(data).__name__}")
    unknown = set(data) - set(SPEC_KEYS)
    if unknown:
        raise SpecError(
            f"{source}: unknown key {min(map(str, unknown))!r} (known: {', '.join(SPEC_KEYS)})")
    chosen = loss if loss is not None else data.get("loss", DEFAULT_LOSS)
    if not isinstance(chosen, str):
        raise SpecError(f"{source}: 'loss' must be a string such as 'half_sse'")
    defined = definitions_from_mapping(data.get("define", {}), source) + tuple(definitions)
    penalty = l2 if l2 is not None else data.get("l2", 0)
    if "arch" in data:
        if "sizes" in data or "activations" in data:
            raise SpecError(f"{source}: give either 'arch' or 'sizes'/'activations', not both")
        if not isinstance(data["arch"], str):
            raise SpecError(f"{source}: 'arch' must be a string such as \"2-3-1\"")
        return parse_arch(data["arch"], chosen, defined, penalty)
    if "sizes" not in data:
        raise SpecError(f"{source}: missing 'sizes' (or 'arch'), e.g. sizes = [2, 3, 1]")
    sizes, acts = data["sizes"], data.get("activations")
    if not isinstance(sizes, list) or (acts is not None and not isinstance(acts, list)):
        raise SpecError(f"{source}: 'sizes' and 'activations' must be lists")
    return Architecture(sizes, acts, chosen, defined, penalty)


MAX_SPEC_FILE_BYTES = 1 << 20  # a spec file is a few lines; anything over 1 MiB is not one
MAX_NESTING = 64  # tables and lists in a spec file nest a few levels deep


def read_spec_text(path: Path) -> str:
    """The text of a spec file: a regular file of at most MAX_SPEC_FILE_BYTES, in UTF-8 (a
    byte-order mark is allowed). A FIFO or a device is refused before it is opened, so reading
    never blocks or runs out of memory."""
    import os
    import stat

    shown = str(path) if len(str(path)) <= 80 else str(path)[:80] + "..."
    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SpecError(f"cannot read spec file {shown!r}: {reason}") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a directory" if stat.S_ISDIR(info.st_mode) else \
            "a FIFO" if stat.S_ISFIFO(info.st_mode) else \
            "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else \
            "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file"
        raise SpecError(f"spec file {shown!r} is {what}; give a regular .toml or .json file")
    if info.st_size > MAX_SPEC_FILE_BYTES:
        raise SpecError(f"spec file {shown!r} is {info.st_size} bytes, more than a spec file "
                        f"holds (at most {MAX_SPEC_FILE_BYTES} bytes)")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SPEC_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read spec file {shown!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_FILE_BYTES:
        raise SpecError(f"spec file {shown!r} is more than {MAX_SPEC_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec file {shown!r} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                        f"at offset {exc.start}); save it as UTF-8") from None


def _nesting(text: str) -> int:
    """How deep brackets and braces nest in ``text`` (strings ignored roughly: a spec's
    strings hold no brackets that matter for this bound)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def load_arch(path: str | Path, loss: str | None = None, definitions=(),
              l2=None) -> Architecture:
    """Read a JSON (``.json``) or TOML (``.toml``) spec file."""
    if not isinstance(path, (str, Path)):
        raise SpecError(f"a spec file is named by a path (str or Path), got "
                        f"{type(path).__name__}")
    path = Path(path)
    text = read_spec_text(path)
    if not text.strip():
        raise SpecError(f"spec file {str(path)!r} is empty; put e.g. {{\"arch\": \"2-3-1\"}} in it")
    kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
    if _nesting(text) > MAX_NESTING:
        raise SpecError(f"spec file {str(path)!r} nests tables or lists more than "
                        f"{MAX_NESTING} levels deep; a spec needs two or three")
    try:
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError, RecursionError) as exc:
        reason = " ".join(str(exc).split())
        if "integer string conversion" in reason:
            reason = "it holds a number of thousands of digits"
        reason = reason if len(reason) <= 160 else reason[:160] + "..."
        raise SpecError(f"spec file {str(path)!r} is not valid {kind}: {reason}") from None
    return arch_from_mapping(data, source=str(path), loss=loss, definitions=definitions, l2=l2)


def _is_file(text: str) -> bool:
    """Whether text names an existing file; a one-line spec too long for a file name is not."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # name too long, or a NUL byte
        return False


SPEC_SUFFIXES = (".json", ".toml")


def resolve_arch(text_or_path: str, loss: str | None = None, definitions=(),
                 l2=None) -> Architecture:
    """What the CLI takes: a one-line spec, or the path of a .json/.toml spec file."""
    if isinstance(text_or_path, str) and "-" not in text_or_path and "." in text_or_path \
            and Path(text_or_path).suffix.lower() not in SPEC_SUFFIXES \
            and Path(text_or_path).suffix[1:].isalpha():
        raise SpecError(f"spec files are .toml or .json, got {text_or_path[:80]!r}; or write "
                        "the architecture itself, e.g. '2-3-1'")
    if isinstance(text_or_path, str) and text_or_path.lower().endswith((".json", ".toml")):
        return load_arch(text_or_path, loss, definitions, l2)
    if isinstance(text_or_path, str) and (_is_file(text_or_path) or _is_special(text_or_path)):
        return load_arch(text_or_path, loss, definitions, l2)
    return parse_arch(text_or_path, loss, definitions, l2 if l2 is not None else 0)


def _is_special(text: str) -> bool:
    """Whether text names an existing path that is not a regular file (a FIFO, a device, a
    directory): read_spec_text refuses it with the reason, where a spec line would not."""
    if "-" in text and "/" not in text:
        return False
    try:
        return Path(text).exists() and not Path(text).is_file()
    except (OSError, ValueError):
        return False
