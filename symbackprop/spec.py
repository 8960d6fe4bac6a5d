"""The architecture spec: layer sizes, one activation per layer after the input, and a loss.

Three ways in, one validation: the one-line form ``784-128:relu-10:softmax``, a JSON or TOML file
with the same content, and ``Architecture(sizes=[...], activations=[...], loss=...)``.
Validation reads the registry, the one place that knows which activations and losses exist.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError

DEFAULT_ACTIVATION = "sigmoid"
DEFAULT_LOSS = "half_sse"


@dataclass(frozen=True)
class Architecture:
    """A fully connected network: sizes[0] inputs, then one activation per later layer."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...] = field(default=())
    loss: str = DEFAULT_LOSS

    def __init__(self, sizes, activations=None, loss=DEFAULT_LOSS):
        sizes = tuple(sizes)
        if activations is None:
            activations = (DEFAULT_ACTIVATION,) * max(len(sizes) - 1, 0)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activations", tuple(activations))
        object.__setattr__(self, "loss", loss)
        _validate(self)

    @property
    def depth(self) -> int:
        """L, the number of layers with weights."""
        return len(self.sizes) - 1

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
        return f"Architecture({self.spec()!r}, loss={self.loss!r})"


def _known(names) -> str:
    return f"(known: {', '.join(sorted(names))})"


def _validate(arch: Architecture) -> None:
    from .registry import ACTIVATIONS, LOSSES  # SymPy: imported only once a spec is checked

    sizes, acts, loss = arch.sizes, arch.activations, arch.loss
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
        if act not in ACTIVATIONS:
            raise SpecError(f"layer {pos}: unknown activation {act!r} {_known(ACTIVATIONS)}")
        if ACTIVATIONS[act].output_only and pos != len(acts):
            raise SpecError(
                f"layer {pos}: {act} is allowed on the output layer only (layer {len(acts)}); "
                "use e.g. relu or tanh for hidden layers")
    if not isinstance(loss, str) or loss not in LOSSES:
        raise SpecError(f"unknown loss {loss!r} {_known(LOSSES)}")
    needed = LOSSES[loss].output_activations
    if needed and acts[-1] not in needed:
        raise SpecError(
            f"loss {loss} needs a {' or '.join(needed)} output layer, got {acts[-1]}; "
            f"write e.g. '{'-'.join(map(str, sizes[:-1]))}-{sizes[-1]}:{needed[0]}'")


def parse_arch(text: str, loss: str | None = None) -> Architecture:
    """Parse the one-line form: ``2-3-1``, ``784-128:relu-10:softmax``, ``3-1:relu-2:relu``."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError("empty architecture; write sizes joined by '-', e.g. '2-3-1'")
    sizes, acts = [], []
    for pos, part in enumerate(text.strip().split("-")):
        size_text, sep, act = part.partition(":")
        size_text, act = size_text.strip(), act.strip()
        if not size_text.isdigit() or int(size_text) < 1:
            raise SpecError(
                f"layer {pos}: size must be a positive integer, got {size_text!r} "
                f"in {text!r}; write e.g. '2-3-1' or '784-128:relu-10:softmax'")
        sizes.append(int(size_text))
        if pos == 0:
            if sep:
                raise SpecError(
                    f"layer 0 is the input and takes no activation, got '{part}'; "
                    f"write '{size_text}-...'")
            continue
        if sep and not act:
            raise SpecError(f"layer {pos}: empty activation after ':' in {text!r}")
        acts.append(act or DEFAULT_ACTIVATION)
    return Architecture(sizes, acts, loss if loss is not None else DEFAULT_LOSS)


def arch_from_mapping(data, source: str = "spec", loss: str | None = None) -> Architecture:
    """Build from ``{"arch": "2-3-1"}`` or ``{"sizes": [...], "activations": [...]}`` (+ loss)."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a table with 'arch' or 'sizes', got {type(data).__name__}")
    unknown = set(data) - {"arch", "sizes", "activations", "loss"}
    if unknown:
        raise SpecError(
            f"{source}: unknown key {min(unknown)!r} (known: activations, arch, loss, sizes)")
    chosen = loss if loss is not None else data.get("loss", DEFAULT_LOSS)
    if not isinstance(chosen, str):
        raise SpecError(f"{source}: 'loss' must be a string such as 'half_sse'")
    if "arch" in data:
        if "sizes" in data or "activations" in data:
            raise SpecError(f"{source}: give either 'arch' or 'sizes'/'activations', not both")
        return parse_arch(data["arch"], chosen)
    if "sizes" not in data:
        raise SpecError(f"{source}: missing 'sizes' (or 'arch'), e.g. sizes = [2, 3, 1]")
    sizes, acts = data["sizes"], data.get("activations")
    if not isinstance(sizes, list) or (acts is not None and not isinstance(acts, list)):
        raise SpecError(f"{source}: 'sizes' and 'activations' must be lists")
    return Architecture(sizes, acts, chosen)


def load_arch(path: str | Path, loss: str | None = None) -> Architecture:
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
    return arch_from_mapping(data, source=str(path), loss=loss)


def resolve_arch(text_or_path: str, loss: str | None = None) -> Architecture:
    """What the CLI takes: a one-line spec, or the path of a .json/.toml spec file."""
    if isinstance(text_or_path, str) and text_or_path.lower().endswith((".json", ".toml")):
        return load_arch(text_or_path, loss)
    if isinstance(text_or_path, str) and Path(text_or_path).is_file():
        return load_arch(text_or_path, loss)
    return parse_arch(text_or_path, loss)
