"""The network diagram as data: columns of neurons, the edges between them, and their labels.

Layout decisions live here; the templates only draw what this module places. A layer wider
than ``MAX_DRAWN`` neurons is elided: its first and last few neurons are drawn with vertical
dots between them, and its size label says how many there are.
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_DRAWN = 8  # layers up to this width are drawn in full
HEAD, TAIL = 3, 2  # an elided layer: this many neurons above the dots, this many below
ROW = 0.85  # cm between neurons of one column
MAX_WIDTH = 11.0  # cm the columns may span (fits an article's text width)
COLUMN = 2.9  # cm between columns when there is room


@dataclass(frozen=True)
class Neuron:
    name: str  # TikZ node name, e.g. n1_2
    y: float


@dataclass(frozen=True)
class Column:
    layer: int
    x: float
    size: int
    neurons: tuple[Neuron, ...]
    dots_y: float | None  # where the vertical dots go, for an elided layer
    top: float  # y of the column's highest slot
    bottom: float


@dataclass(frozen=True)
class Diagram:
    columns: tuple[Column, ...]
    top: float
    bottom: float

    def edges(self):
        """(from, to) node names between neighbouring columns, every drawn pair."""
        for left, right in zip(self.columns, self.columns[1:]):
            for a in left.neurons:
                for b in right.neurons:
                    yield a.name, b.name

    def gaps(self):
        """(x, left column, right column) for the weight label between each pair of columns."""
        for left, right in zip(self.columns, self.columns[1:]):
            yield (left.x + right.x) / 2, left, right


def _slots(size: int) -> tuple[list[int], int | None]:
    """Which slots hold neurons (0 is the top), and the slot of the dots, for a layer of size."""
    if size <= MAX_DRAWN:
        return list(range(size)), None
    return list(range(HEAD)) + [HEAD + 1 + t for t in range(TAIL)], HEAD


def layout(sizes) -> Diagram:
    """Columns centred on y = 0, spaced to fit ``MAX_WIDTH``."""
    spacing = min(COLUMN, MAX_WIDTH / max(len(sizes) - 1, 1))
    columns = []
    for layer, size in enumerate(sizes):
        filled, dots = _slots(size)
        count = len(filled) + (1 if dots is not None else 0)
        y0 = (count - 1) * ROW / 2

        def y(slot, y0=y0):
            return round(y0 - slot * ROW, 3)

        neurons = tuple(Neuron(f"n{layer}_{pos}", y(slot)) for pos, slot in enumerate(filled))
        columns.append(Column(layer, round(layer * spacing, 3), size, neurons,
                              y(dots) if dots is not None else None, y(0), y(count - 1)))
    top = max(c.top for c in columns)
    bottom = min(c.bottom for c in columns)
    return Diagram(tuple(columns), top, bottom)
