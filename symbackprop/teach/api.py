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
    result, as the command line writes them: LaTeX a fragment to ``\\input`` unless
    ``standalone``, the document's own heading at ``heading``'s level (section, subsection or
    none), as ``Derivation.to_latex`` has them."""

    def _document(self, fmt: str, **frame) -> str:  # pragma: no cover - each result defines it
        raise NotImplementedError

    def to_text(self) -> str:
        return self._document("text")

    def to_markdown(self, heading: str = "section") -> str:
        return self._document("markdown", heading=heading)

    def to_latex(self, standalone: bool = False, heading: str = "section") -> str:
        return self._document("latex", standalone=standalone, heading=heading)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_text()


@dataclass(frozen=True, repr=False)
class Explained(_Documents):
    """One parameter's gradient path by path (``explanation``: teach.paths.Explanation)."""

    explanation: object

    def _document(self, fmt, **frame):
        from .present import explain_document

        return explain_document(self.explanation, fmt, **frame)

    def __repr__(self) -> str:
        return f"<Explained {self.explanation.parameter} of {self.explanation.derivation.arch.spec()}>"


@dataclass(frozen=True, repr=False)
class Worked(_Documents):
    """One gradient-descent step with exact numbers (``worked``: the worked example)."""

    worked: object
    digits: int = 6

    def _document(self, fmt, **frame):
        from .present import example_document

        return example_document(self.worked, fmt, self.digits, **frame)

    def __repr__(self) -> str:
        return f"<Worked step of {self.worked.derivation.arch.spec()}>"


def parameters_for(arch, weights=None, init: int | None = 0):
    """The weights of a worked example: a mapping ``{"W1": [[...]], "b1": [...]}``, a JSON
    file's name, or else drawn with seed ``init`` (0 when None)."""
    from .inputs import draw_parameters, load_parameters, parameters_from_mapping

    shapes = arch if arch.features else arch.sizes
    if isinstance(weights, dict):
        return parameters_from_mapping(weights, shapes, "weights")
    if weights is not None:
        return load_parameters(weights, shapes)
    return draw_parameters(0 if init is None else init, shapes)


def explanation_numbers(arch, x=None, y=None, weights=None, init=None,
                        options: bool = False) -> dict:
    """The numbers an explanation of a recurrent network evaluates its Jacobians at: its
    weights (``weights`` or seed ``init``, default 0) and one example (``x``, T·n numbers row
    by row, and ``y``; by default drawn inputs and the target 1 for the first output unit).
    Other networks take none: their explanation is symbolic. ``options``: name them as the
    command line does in messages."""
    from .inputs import InputError, check_targets

    given = {"x": x, "y": y, "weights": weights, "init": init}
    if arch.sequence is None:
        named = [("--" + key if options else key) for key, value in given.items()
                 if value is not None]
        if named:
            raise InputError(f"{', '.join(named)}: an explanation takes numbers for a "
                             "recurrent network only (the Jacobians of its steps); this "
                             "network's explanation is symbolic")
        return {}
    from .sequences import default_samples

    samples, x_drawn, y_default = default_samples(arch, 0, x, y)
    check_targets(samples, arch.loss_entry)
    return {"parameters": parameters_for(arch, weights, init), "samples": samples,
            "drawn": (x_drawn, y_default)}


def explain(arch, param: str, loss: str | None = None, *, x: str | None = None,
            y: str | None = None, weights=None, init: int | None = None) -> Explained:
    """``symbackprop explain ARCH --param PARAM``: e.g. ``explain("2-3-1", "W2[0,1]")``; a
    recurrent network's Jacobians at the numbers of one example: ``x`` (T·n numbers, row by
    row), ``y``, ``weights`` or seed ``init`` (by default drawn)."""
    from ..engine import derive
    from .limits import check_explain
    from .paths import explain as path_by_path
    from .paths import parse_parameter

    arch = _arch(arch, loss)
    check_explain(arch)
    parameter = parse_parameter(param, arch)
    numbers = explanation_numbers(arch, x=x, y=y, weights=weights, init=init)
    return Explained(path_by_path(derive(arch), parameter, **numbers))


def example(arch, x: str, y: str, *, weights=None, init: int | None = 0, lr="0.1",
            loss: str | None = None, digits: int = 6) -> Worked:
    """``symbackprop example``: ``x`` and ``y`` one sample a row ("1, 2; 0.5, -1"; a sequence
    input's T·n numbers row by row, step 0's first); weights from a mapping
    ``{"W1": [[...]], "b1": [...]}`` (an rnn layer's ``"U1"`` too) or a file name, else drawn
    with seed ``init``."""
    from ..engine import derive
    from .inputs import InputError, check_targets, parse_samples_of, sample_form
    from .limits import check_example
    from .numbers import parse_number
    from .worked import work_example

    arch = _arch(arch, loss)
    check_example(arch)
    samples = parse_samples_of(sample_form(arch), x, y)
    check_targets(samples, arch.loss_entry)
    check_example(arch, samples.m)
    parameters = parameters_for(arch, weights, init)
    learning_rate = parse_number(str(lr), "lr")
    if learning_rate <= 0:
        raise InputError(f"lr must be positive, got {lr}")
    return Worked(work_example(derive(arch), parameters, samples, learning_rate), digits)
