"""The network diagram as data: columns of neurons, the edges between them, and their labels.

Layout decisions live here; the templates only draw what this module places. A layer wider
than ``MAX_DRAWN`` neurons is elided: its first and last few neurons are drawn with vertical
dots between them, and its size label says how many there are.
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_DRAWN = 8  # layers up to this width are drawn in full
HEAD, TAIL = 2, 1  # an elided layer: this many neurons above the dots, this many below
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


# --- image networks: a chain of feature maps and vectors ----------------------------------
#
# Each layer's output is one box, left to right: a feature map C x H x W as a square stack
# (height and width by its rows and columns, up to STACK sheets for its channels), a vector
# as a thin bar; between two boxes an arrow labelled with the operation.

CHAIN_WIDTH = 13.5  # cm the chain may span
CHAIN_STEP = 2.9  # cm between box centres when there is room
MAP_MIN, MAP_MAX = 0.45, 1.4  # cm: the side of the smallest and of the largest map drawn
BAR = 0.3  # cm: the width of a vector's bar
STACK = 3  # sheets drawn at most for a map's channels
SHEET = 0.12  # cm between sheets


@dataclass(frozen=True)
class Box:
    layer: int
    shape: tuple[int, ...]
    x: float  # centre
    width: float
    height: float
    sheets: int  # 1 for a vector or a one-channel map

    @property
    def left(self) -> float:
        return round(self.x - self.width / 2, 3)

    @property
    def right(self) -> float:
        return round(self.x + self.width / 2 + (self.sheets - 1) * SHEET, 3)

    @property
    def top(self) -> float:
        return round(self.height / 2 + (self.sheets - 1) * SHEET, 3)

    def rectangles(self):
        """(x0, y0, x1, y1) of each sheet, the back one first."""
        for n in reversed(range(self.sheets)):
            dx = dy = n * SHEET
            yield (round(self.x - self.width / 2 + dx, 3), round(-self.height / 2 + dy, 3),
                   round(self.x + self.width / 2 + dx, 3), round(self.height / 2 + dy, 3))


@dataclass(frozen=True)
class Chain:
    boxes: tuple[Box, ...]
    step: float

    @property
    def top(self) -> float:
        return max(b.top for b in self.boxes)

    @property
    def bottom(self) -> float:
        return min(-b.height / 2 for b in self.boxes)

    def arrows(self):
        """(left box, right box) of each arrow."""
        return zip(self.boxes, self.boxes[1:])


def chain_layout(shapes) -> Chain:
    """Boxes for the output shapes of every layer, input first ((C, H, W) or (n,))."""
    import math

    step = round(min(CHAIN_STEP, CHAIN_WIDTH / max(len(shapes) - 1, 1)), 3)
    rows = max(s[1] for s in shapes if len(s) == 3)
    units = max((s[0] for s in shapes if len(s) == 1), default=1)
    boxes = []
    for layer, shape in enumerate(shapes):
        if len(shape) == 3:
            channels, height, width = shape
            scale = (MAP_MAX - MAP_MIN) / max(rows - 1, 1)
            h = MAP_MIN + (height - 1) * scale
            w = MAP_MIN + (width - 1) * scale
            sheets = min(channels, STACK)
        else:
            n = shape[0]
            h = MAP_MIN + (MAP_MAX - MAP_MIN) * (math.log(n) / math.log(units)
                                                 if units > 1 else 1)
            w, sheets = BAR, 1
        boxes.append(Box(layer, tuple(shape), round(layer * step, 3), round(w, 3),
                         round(h, 3), sheets))
    return Chain(tuple(boxes), step)


# --- recurrent networks: the network unrolled in time ---------------------------------------
#
# Left to right, the state before the first step (0), then one column per drawn time step:
# the input at that step below, the hidden state in the middle, what the dense head computes
# above (at the last step only, or at every step). A long sequence is drawn as its first
# steps, dots, and its last step.

UNROLL_DRAWN = 4  # sequences up to this many steps are drawn in full
UNROLL_HEAD = 2  # a longer one: this many first steps, the dots, then the last step
UNROLL_STEP = 2.4  # cm between step columns
UNROLL_ROWS = (-1.5, 0.0, 1.6)  # cm: y of the inputs, the hidden states, the head's outputs


@dataclass(frozen=True)
class StepColumn:
    step: int | None  # the time step drawn here, None for the dots
    x: float
    head: bool  # the dense head reads this step's state


@dataclass(frozen=True)
class Unrolled:
    start: float  # x of the state before the first step
    steps: tuple[StepColumn, ...]


def unrolled(steps: int, every_step: bool) -> Unrolled:
    """The columns of a sequence of ``steps`` time steps; the head at every step or the last."""
    if steps <= UNROLL_DRAWN:
        drawn = list(range(steps))
    else:
        drawn = [*range(UNROLL_HEAD), None, steps - 1]
    last = len(drawn) - 1
    columns = tuple(StepColumn(step, round((n + 1) * UNROLL_STEP, 3),
                               step is not None and (every_step or n == last))
                    for n, step in enumerate(drawn))
    return Unrolled(0.0, columns)
