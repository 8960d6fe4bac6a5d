"""The architecture spec: layer sizes, one activation per layer after the input, and a loss.

Three ways in, one validation: the one-line form ``784-128:relu-10:softmax``, a JSON or TOML file
with the same content, and ``Architecture(sizes=[...], activations=[...], loss=...)``.
Validation reads the registry, the one place that knows which activations and losses exist.
"""
from __future__ import annotations

import json
import math
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

    def __init__(self, sizes, activations=None, loss=DEFAULT_LOSS, definitions=(), l2=0):
        sizes = tuple(sizes)
        if activations is None:
            activations = (DEFAULT_ACTIVATION,) * max(len(sizes) - 1, 0)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activations", tuple(activations))
        object.__setattr__(self, "loss", loss)
        object.__setattr__(self, "definitions", _definitions(definitions))
        object.__setattr__(self, "l2", parse_l2(l2))
        _validate(self)

    @property
    def depth(self) -> int:
        """L, the number of layers with weights."""
        return len(self.sizes) - 1

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

    def used_definitions(self) -> tuple[Definition, ...]:
        """The user's definitions that this network uses, in the order they were given."""
        used = set(self.activations) | {self.loss}
        return tuple(d for d in self.definitions if d.name in used)

    def __str__(self) -> str:
        parts = [str(self.sizes[0])]
        parts += [f"{n}:{g}" for n, g in zip(self.sizes[1:], self.activations)]
        return "-".join(parts)

    def spec(self) -> str:
        """The shortest one-line form that parses back to this architecture."""
        if all(g == DEFAULT_ACTIVATION for g in self.activations):
            return "-".join(map(str, self.sizes))
        return str(self)

    def __repr__(self) -> str:
        extra = ""
        if self.definitions:
            extra += f", definitions={[str(d) for d in self.definitions]!r}"
        if self.l2:
            extra += f", l2={str(self.l2)!r}"
        return f"Architecture({self.spec()!r}, loss={self.loss!r}{extra})"


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
            raise SpecError(f"layer {pos}: size must be a positive integer, got {size!r}")
    if len(acts) != len(sizes) - 1:
        raise SpecError(
            f"{len(sizes) - 1} layers after the input need {len(sizes) - 1} activations, "
            f"got {len(acts)}")
    for pos, act in enumerate(acts, start=1):
        if not isinstance(act, str) or (act not in ACTIVATIONS and act not in defined_acts):
            raise SpecError(f"layer {pos}: unknown activation {act!r} "
                            f"{_known(set(ACTIVATIONS) | defined_acts)}; define your own with "
                            "--activation NAME=EXPR")
        if arch.activation_entry(act).output_only and pos != len(acts):
            raise SpecError(
                f"layer {pos}: {act} is allowed on the output layer only (layer {len(acts)}); "
                "use e.g. relu or tanh for hidden layers")
    if not isinstance(loss, str) or (loss not in LOSSES and loss not in defined_losses):
        raise SpecError(f"unknown loss {loss!r} {_known(set(LOSSES) | defined_losses)}; define "
                        "your own with --loss NAME=EXPR")
    needed = arch.loss_entry.output_activations
    if needed and acts[-1] not in needed:
        raise SpecError(
            f"loss {loss} needs a {' or '.join(needed)} output layer, got {acts[-1]}; "
            f"write e.g. '{'-'.join(map(str, sizes[:-1]))}-{sizes[-1]}:{needed[0]}'")


def parse_arch(text: str, loss: str | None = None, definitions=(), l2=0) -> Architecture:
    """Parse the one-line form: ``2-3-1``, ``784-128:relu-10:softmax``, ``3-1:relu-2:relu``.

    ``definitions`` and ``l2`` are passed on to ``Architecture``.
    """
    if not isinstance(text, str) or not text.strip():
        raise SpecError("empty architecture; write sizes joined by '-', e.g. '2-3-1'")
    from .kinds import SPEC_LAYER  # each token: the kinds of a spec layer, by their syntax

    dense, activation = SPEC_LAYER
    sizes, acts = [], []
    for pos, part in enumerate(text.strip().split("-")):
        size_text, sep, act = part.partition(":")
        size_text, act = size_text.strip(), act.strip()
        match = dense.pattern.match(size_text)
        if match is None or int(match["units"]) < 1:
            raise SpecError(
                f"layer {pos}: size must be a positive integer, got {size_text!r} "
                f"in {text!r}; write e.g. '2-3-1' or '784-128:relu-10:softmax'")
        sizes.append(int(match["units"]))
        if pos == 0:
            if sep:
                raise SpecError(
                    f"layer 0 is the input and takes no activation, got '{part}'; "
                    f"write '{size_text}-...'")
            continue
        if sep and not act:
            raise SpecError(f"layer {pos}: empty activation after ':' in {text!r}")
        if act and not activation.pattern.match(act):
            raise SpecError(f"layer {pos}: {act!r} is not an activation name; write "
                            f"{activation.syntax}, e.g. '2-3:relu-1'")
        acts.append(act or DEFAULT_ACTIVATION)
    return Architecture(sizes, acts, loss if loss is not None else DEFAULT_LOSS,
                        definitions, l2)


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


def load_arch(path: str | Path, loss: str | None = None, definitions=(),
              l2=None) -> Architecture:
    """Read a JSON (``.json``) or TOML (``.toml``) spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {str(path)!r}: {exc.strerror or exc}") from None
    if not text.strip():
        raise SpecError(f"spec file {str(path)!r} is empty; put e.g. {{\"arch\": \"2-3-1\"}} in it")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise SpecError(f"spec file {str(path)!r} is not valid {kind}: {exc}") from None
    return arch_from_mapping(data, source=str(path), loss=loss, definitions=definitions, l2=l2)


def _is_file(text: str) -> bool:
    """Whether text names an existing file; a one-line spec too long for a file name is not."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # name too long, or a NUL byte
        return False


def resolve_arch(text_or_path: str, loss: str | None = None, definitions=(),
                 l2=None) -> Architecture:
    """What the CLI takes: a one-line spec, or the path of a .json/.toml spec file."""
    if isinstance(text_or_path, str) and text_or_path.lower().endswith((".json", ".toml")):
        return load_arch(text_or_path, loss, definitions, l2)
    if isinstance(text_or_path, str) and _is_file(text_or_path):
        return load_arch(text_or_path, loss, definitions, l2)
    return parse_arch(text_or_path, loss, definitions, l2 if l2 is not None else 0)
