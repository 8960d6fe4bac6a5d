"""How much ``example`` and ``explain`` enumerate, bounded before any work is done.

A worked example computes every number of one step and prints it; an explanation of an image
or a recurrent network builds the computation graph of one example, a node per entry. Both are
meant to be read by hand, and both take time in proportion to what they enumerate: a network
far beyond what anyone reads (2-1000000-1, an image of 1000 × 1000) is refused, with the limit
and why, before anything is derived, drawn or computed. A dense network's explanation is
symbolic (its paths are counted, never listed) and has no limit.

The sizes are counted from the architecture alone (``Architecture.shapes``): the entries of
every layer's output for one example, as many again for its errors, its parameters, and for a
worked example each sample's part of every gradient.
"""
from __future__ import annotations

from math import prod

from .inputs import InputError, parameter_arrays

#: Numbers a worked example computes in all (its dense layers a matrix at a time: 2,000
#: samples of 2-2-1 are about 70,000 numbers, a few seconds).
EXAMPLE_NUMBERS = 200_000
#: Entries of feature layers (convolution, pooling, rnn) a worked example computes one at a
#: time, forward and backward, over all its samples (about 10 ms each).
EXAMPLE_FEATURE_ENTRIES = 4_000
#: Entries of one example's computation graph that an explanation of an image or a recurrent
#: network builds (5,000 take about half a minute).
EXPLAIN_ENTRIES = 5_000


class LimitError(InputError):
    """A network or data set larger than a worked example or an explanation enumerates."""


def _count(n: int) -> str:
    return f"{n:,}"


def entries(arch) -> tuple[int, int, int]:
    """(input, feature, dense): the entries of one example's input, of its feature layers'
    stages (a convolution's Z and A, a pooling layer's, an rnn's Z and H at every step) and of
    its dense layers' Z and A (at every step after an rnn with ':all')."""
    from ..kinds import FEATURE_KINDS

    shapes = arch.shapes()
    feature = 0
    for label, layer in enumerate(arch.features, start=1):
        stages = len(FEATURE_KINDS[layer.kind].stages_of(layer))
        out = arch.sequence[0] * layer.units if layer.kind == "rnn" else prod(shapes[label])
        feature += stages * out
    steps = arch.sequence[0] if arch.sequence is not None and arch.every_step else 1
    dense = 2 * steps * sum(arch.size(label) for label in arch.dense_labels)
    return prod(shapes[0]), feature, dense


def parameter_count(arch) -> int:
    return sum(prod(shape) for arrays in parameter_arrays(arch).values()
               for _, shape, _ in arrays)


def check_example(arch, m: int = 1) -> None:
    """Refuse a worked example of ``arch`` on ``m`` samples that computes more than
    EXAMPLE_NUMBERS numbers, or more than EXAMPLE_FEATURE_ENTRIES entries of feature layers."""
    inputs, feature, dense = entries(arch)
    params = parameter_count(arch)
    # forward and backward of every layer, each sample's part of each gradient, the update
    numbers = m * (inputs + 2 * (feature + dense)) + (m + 3) * params
    spec = arch.spec()
    shown = spec if len(spec) <= 40 else spec[:40] + "..."
    samples = f"{m} sample{'s' if m != 1 else ''}"
    if numbers > EXAMPLE_NUMBERS:
        raise LimitError(
            f"a worked step of {shown} on {samples} computes about {_count(numbers)} numbers "
            f"({_count(params)} parameters), more than the {_count(EXAMPLE_NUMBERS)} a worked "
            "example prints to be followed by hand; use a smaller network or fewer samples")
    if 2 * m * feature > EXAMPLE_FEATURE_ENTRIES:
        raise LimitError(
            f"a worked step of {shown} on {samples} computes {_count(2 * m * feature)} entries "
            f"of its feature layers one at a time, more than the "
            f"{_count(EXAMPLE_FEATURE_ENTRIES)} a worked example takes (about 10 ms each); "
            "use a smaller input, fewer channels or steps, or fewer samples")


def check_explain(arch) -> None:
    """Refuse an explanation of an image or a recurrent network whose computation graph of
    one example has more than EXPLAIN_ENTRIES entries (a dense network's is symbolic)."""
    if not arch.features:
        return
    inputs, feature, dense = entries(arch)
    nodes = inputs + feature + dense
    if nodes > EXPLAIN_ENTRIES:
        spec = arch.spec()
        shown = spec if len(spec) <= 40 else spec[:40] + "..."
        raise LimitError(
            f"the computation graph of one example of {shown} has {_count(nodes)} entries, "
            f"more than the {_count(EXPLAIN_ENTRIES)} an explanation builds (every entry a "
            "node, every path through them followed); explain a smaller copy of the network "
            "(a smaller input, fewer channels, steps or units): its paths have the same form")
