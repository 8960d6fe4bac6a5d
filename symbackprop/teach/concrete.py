"""An image network made concrete: the derivation's index equations, one entry at a time.

Every equation of a feature layer is an entry formula, ``entry_lhs = entry_rhs``, with symbolic
sizes (n_C^[l], f^[l], s^[l], p^[l], m). Teaching needs it for one network: the sizes filled in
(``concrete_sizes``), the indices of the left-hand side given values (``entry_positions``), the
sums over kernel windows written out term by term (``expand_sums``), and the entries a window
reads outside its input, the zero padding, set to 0 (``zero_padding``). ``Known`` evaluates such
an entry from the values of the arrays it reads. Nothing here knows what a layer computes: the
derivation's entries do.

The one definition that is not an equation of the derivation is max pooling's arg-max indicator
M (``first_max_indicator``): 1 at the first maximum of each window in row-major order, as
``tensors.Pool`` defines it.

A recurrent network is made concrete the same way, its sizes T, n_0, n_1 filled in; the hidden
state before the first step, H_{k,-1,ν}, lies outside its array and is 0 like the padding. Its
pre-activation reads the hidden state of the step before, which reads the pre-activation:
``Known.fill_together`` computes such equations together, each entry once every entry it reads
is known (forward in time; their errors backward in time).
"""
from __future__ import annotations

import itertools

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .. import naming as N
from .numbers import exactly, settle

#: The derivation's index symbols (entries and summed indices).
INDEX_SYMBOLS = tuple(getattr(N, name) for name in
                      ("k", "i", "r", "j", "c", "t", "s", "h", "w", "x", "y", "u", "v", "mu",
                       "nu", "tau"))


def concrete_sizes(arch, m=None, steps=None) -> dict:
    """The size symbols of ``arch`` and their numbers: every feature size (a sequence's T and
    n_0), every n_l from the flattened (or recurrent) layer on, and m when given; ``steps``
    puts another number of time steps in place of T."""
    out = N.feature_sizes(arch) if arch.image is not None else {}
    if arch.sequence is not None:
        out.update(N.sequence_sizes(arch))
        if steps is not None:
            out[N.T] = steps
    out.update({N.units(label): arch.size(label) for label in range(arch.offset, arch.depth + 1)})
    if m is not None:
        out[N.m] = m
    return out


def expand_sums(expr):
    """Every sum with concrete limits written out as its terms (inner sums first)."""
    def expand(s):
        variables = [v for v, _, _ in s.limits]
        ranges = [range(int(lo), int(hi) + 1) for _, lo, hi in s.limits]
        return sp.Add(*[s.function.xreplace(dict(zip(variables, map(sp.Integer, values))))
                        for values in itertools.product(*ranges)])
    return expr.replace(lambda e: isinstance(e, sp.Sum), expand)


def outside(entry) -> bool:
    """Whether a concrete entry of an array lies outside its shape (the zero padding)."""
    shape = _shape(entry)
    indices = entry.indices
    return any(i.is_Integer and n.is_Integer and not 0 <= i < n
               for i, n in zip(indices, shape))


def _shape(entry):
    if isinstance(entry, MatrixElement):
        return entry.parent.shape
    return entry.base.shape or ()


def zero_padding(expr):
    """Entries outside their array's rows and columns are 0: a padded window reads zeros."""
    return expr.replace(lambda e: isinstance(e, (sp.Indexed, MatrixElement)) and outside(e),
                        lambda e: sp.Integer(0))


def concrete(expr, sizes: dict, at: dict | None = None):
    """``expr`` with the sizes and the entry's indices filled in, sums written out, padding 0."""
    out = expr.xreplace(sizes)
    if at:
        out = out.xreplace(at)
    return zero_padding(expand_sums(out))


def _entries(expr):
    return sorted(expr.atoms(sp.Indexed) | expr.atoms(MatrixElement), key=sp.default_sort_key)


def _base(entry):
    return entry.base if isinstance(entry, sp.Indexed) else entry.parent


def entry_positions(entry_lhs, entry_rhs, sizes: dict) -> list[dict]:
    """Every value of the left-hand side's indices, in lexicographic order: each a mapping
    {index symbol: value}. The range of an index is the dimension it indexes in an entry that
    holds it alone (flatten's c, h, w: in A^[l-1]_{k,c,h,w} on the right)."""
    lhs, rhs = entry_lhs.xreplace(sizes), entry_rhs.xreplace(sizes)
    wanted = set().union(*(sp.sympify(i).free_symbols for i in lhs.indices)) & set(INDEX_SYMBOLS)
    if not wanted:
        return [{}]
    for atom in [lhs, *_entries(rhs)]:
        plain = [i for i in atom.indices if i in wanted]
        if set(plain) == wanted:
            shape = _shape(atom)
            ranges = [(i, int(n)) for i, n in zip(atom.indices, shape) if i in wanted]
            break
    else:  # pragma: no cover - every equation of the derivation has such an entry
        raise ValueError(f"no range for the indices of {entry_lhs}")
    symbols = [i for i, _ in ranges]
    return [dict(zip(symbols, map(sp.Integer, values)))
            for values in itertools.product(*[range(n) for _, n in ranges])]


def _done(expr):
    return expr.doit() if expr.has(sp.Piecewise) else expr


def array_name(array) -> str:
    """``W[1]`` for an IndexedBase or a MatrixSymbol of that name."""
    return str(array.label) if isinstance(array, sp.IndexedBase) else array.name


class Known:
    """Values of arrays (feature maps, kernels, matrices), by name; evaluates entries."""

    def __init__(self, sizes: dict):
        self.sizes = dict(sizes)
        self.values: dict = {}

    def __setitem__(self, array, value):
        self.values[array_name(array)] = value

    def __getitem__(self, array):
        return self.values[array_name(array)]

    def __contains__(self, array) -> bool:
        return array_name(array) in self.values

    def _value(self, entry):
        name = array_name(entry.base if isinstance(entry, sp.Indexed) else entry.parent)
        value = self.values.get(name)
        if value is None:
            return None
        if outside(entry):
            return sp.Integer(0)
        return value[tuple(int(i) for i in entry.indices)]

    def substitute(self, expr, exact: bool = False):
        """Every entry of a known array replaced by its value (``exact``: by the rational a
        Float holds, for ``settle`` to compute a value again from exact numbers)."""
        values = {}
        for entry in _entries(expr):
            number = self._value(entry)
            if number is not None:
                values[entry] = exactly(number) if exact else number
        return expr.xreplace(values)

    def settled(self, definition):
        """The value of an entry's definition at the known values (``numbers.settle``)."""
        result = self.substitute(definition)
        return settle(_done(result), lambda: _done(self.substitute(exactly(definition), True)))

    def evaluate(self, expr, at: dict | None = None, rules: dict | None = None):
        """The number an entry formula gives at the indices ``at``."""
        sizes = {**self.sizes, **(rules or {})}
        return self.settled(concrete(expr, sizes, at))

    def fill(self, eq, rules: dict | None = None):
        """The array an equation defines, entry by entry: an NDimArray (a feature map) or a
        Matrix (flatten's vectors, a matrix symbol on the left)."""
        return self.fill_together([eq], rules)[0]

    def fill_together(self, eqs, rules: dict | None = None) -> list:
        """The arrays of equations that read each other's entries (an rnn's Z and H), each as
        ``fill`` gives it: an entry is computed once every entry of the group it reads is
        known, so the order is the one the definitions impose (step by step in time)."""
        sizes = {**self.sizes, **(rules or {})}
        group = [array_name(eq.lhs) for eq in eqs]
        pending, shapes = [], []
        for eq in eqs:
            lhs = eq.entry_lhs
            dims = lhs.parent.shape if isinstance(lhs, MatrixElement) else lhs.base.shape
            shapes.append(tuple(int(sp.sympify(n).xreplace(sizes)) for n in dims))
            for at in entry_positions(lhs, eq.entry_rhs, sizes):
                where = tuple(int(sp.sympify(i).xreplace(sizes).xreplace(at))
                              for i in lhs.indices)
                definition = concrete(eq.entry_rhs, sizes, at)
                reads = {(array_name(_base(e)), tuple(int(i) for i in e.indices))
                         for e in _entries(definition) if array_name(_base(e)) in group}
                pending.append((array_name(eq.lhs), where, definition, reads))
        cells = {name: {} for name in group}
        before = {name: self.values.get(name) for name in group}
        for name in group:
            self.values[name] = cells[name]  # partly known while the group is computed
        try:
            # each cell once every cell it reads is known: a topological order, linear in the
            # cells (steps of an rnn, samples of --data)
            index = {(cell[0], cell[1]): n for n, cell in enumerate(pending)}
            waiting = [0] * len(pending)
            readers: dict = {}
            for n, (_, _, _, reads) in enumerate(pending):
                for read in reads:
                    if read in index:
                        waiting[n] += 1
                        readers.setdefault(read, []).append(n)
            ready = [n for n, count in enumerate(waiting) if count == 0]
            done = 0
            while ready:
                n = ready.pop()
                name, where, definition, _ = pending[n]
                cells[name][where] = self.settled(definition)
                done += 1
                for reader in readers.get((name, where), ()):
                    waiting[reader] -= 1
                    if waiting[reader] == 0:
                        ready.append(reader)
            if done != len(pending):  # pragma: no cover - the derivation's definitions are causal
                raise ValueError(f"the entries of {', '.join(group)} read each other")
        finally:
            for name, value in before.items():
                if value is None:
                    self.values.pop(name, None)
                else:
                    self.values[name] = value
        out = []
        for eq, shape in zip(eqs, shapes):
            values = cells[array_name(eq.lhs)]
            if isinstance(eq.entry_lhs, MatrixElement):
                out.append(sp.ImmutableMatrix(shape[0], shape[1],
                                              lambda p, q, v=values: v[(p, q)]))
            else:
                flat = [values[where] for where in itertools.product(*[range(n) for n in shape])]
                out.append(sp.ImmutableDenseNDimArray(flat, shape))
        return out


def first_max_indicator(A, kernel: int, stride: int) -> sp.ImmutableDenseNDimArray:
    """M of max pooling: M[k,c,x,y,μ,ν] = 1 where A[k,c,s x+μ,s y+ν] is the first maximum of
    window (x, y) in row-major order (μ, then ν), 0 elsewhere."""
    m, channels, rows, cols = A.shape
    out_rows, out_cols = (rows - kernel) // stride + 1, (cols - kernel) // stride + 1
    shape = (m, channels, out_rows, out_cols, kernel, kernel)
    cells = {}
    for k, c, x, y in itertools.product(range(m), range(channels), range(out_rows),
                                        range(out_cols)):
        window = [(mu, nu) for mu in range(kernel) for nu in range(kernel)]
        best = window[0]
        for mu, nu in window[1:]:
            if A[k, c, stride * x + mu, stride * y + nu] > \
                    A[k, c, stride * x + best[0], stride * y + best[1]]:
                best = (mu, nu)
        for mu, nu in window:
            cells[(k, c, x, y, mu, nu)] = sp.Integer(1 if (mu, nu) == best else 0)
    return sp.ImmutableDenseNDimArray(
        [cells[where] for where in itertools.product(*[range(n) for n in shape])], shape)


def slices(array) -> list[tuple[tuple[int, int], sp.ImmutableMatrix]]:
    """A 4-D array (example or out-channel, channel, row, column) as its 2-D maps, each a
    matrix of rows x columns, in order."""
    first, second, rows, cols = array.shape
    return [((a, b), sp.ImmutableMatrix([[array[a, b, p, q] for q in range(cols)]
                                         for p in range(rows)]))
            for a in range(first) for b in range(second)]
