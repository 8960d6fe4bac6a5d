"""The teaching commands as Python functions: ``symbackprop.explain`` and
``symbackprop.example``, returning objects that write themselves in every format."""
from __future__ import annotations

from dataclasses import dataclass


def _arch(arch, loss=None):
    from ..spec import Architecture, resolve_arch

    if isinstance(arch, Architecture):
        return arch
    return resolve_arch(arch, loss)


class _Documents:
    """``to_text()``, ``to_markdown()``, ``to_latex()`` and the Jupyter display of a teaching
    result, as the command line writes them."""

    def _document(self, fmt: str) -> str:  # pragma: no cover - each result defines it
        raise NotImplementedError

    def to_text(self) -> str:
        return self._document("text")

    def to_markdown(self) -> str:
        return self._document("markdown")

    def to_latex(self) -> str:
        return self._document("latex")

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_text()


@dataclass(frozen=True, repr=False)
class Explained(_Documents):
    """One parameter's gradient path by path (``explanation``: teach.paths.Explanation)."""

    explanation: object

    def _document(self, fmt):
        from .present import explain_document

        return explain_document(self.explanation, fmt)

    def __repr__(self) -> str:
        return f"<Explained {self.explanation.parameter} of {self.explanation.derivation.arch.spec()}>"


@dataclass(frozen=True, repr=False)
class Worked(_Documents):
    """One gradient-descent step with exact numbers (``worked``: the worked example)."""

    worked: object
    digits: int = 6

    def _document(self, fmt):
        from .present import example_document

        return example_document(self.worked, fmt, self.digits)

    def __repr__(self) -> str:
        return f"<Worked step of {self.worked.derivation.arch.spec()}>"


def explain(arch, param: str, loss: str | None = None) -> Explained:
    """``symbackprop explain ARCH --param PARAM``: e.g. ``explain("2-3-1", "W2[0,1]")``."""
    from ..engine import derive
    from .paths import explain as path_by_path
    from .paths import parse_parameter

    arch = _arch(arch, loss)
    return Explained(path_by_path(derive(arch), parse_parameter(param, arch)))


def example(arch, x: str, y: str, *, weights=None, init: int | None = 0, lr="0.1",
            loss: str | None = None, digits: int = 6) -> Worked:
    """``symbackprop example``: ``x`` and ``y`` one sample a row ("1, 2; 0.5, -1"); weights from
    a mapping ``{"W1": [[...]], "b1": [...]}`` or a file name, else drawn with seed ``init``."""
    from ..engine import derive
    from .inputs import (
        InputError,
        check_targets,
        draw_parameters,
        load_parameters,
        parameters_from_mapping,
        parse_samples,
    )
    from .numbers import parse_number
    from .worked import work_example

    arch = _arch(arch, loss)
    image = arch.image
    n_in = arch.sizes[0] if image is None else image[0] * image[1] * image[2]
    samples = parse_samples(x, y, n_in, arch.sizes[-1], image)
    check_targets(samples, arch.loss_entry)
    shapes = arch.sizes if image is None else arch
    if isinstance(weights, dict):
        parameters = parameters_from_mapping(weights, shapes, "weights")
    elif weights is not None:
        parameters = load_parameters(weights, shapes)
    else:
        parameters = draw_parameters(init, shapes)
    learning_rate = parse_number(str(lr), "lr")
    if learning_rate <= 0:
        raise InputError(f"lr must be positive, got {lr}")
    return Worked(work_example(derive(arch), parameters, samples, learning_rate), digits)
