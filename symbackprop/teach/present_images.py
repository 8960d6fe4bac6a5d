"""Worked examples and explanations of image networks as text, Markdown or LaTeX.

As in ``present``: Python decides what is shown and prints every piece of mathematics through
the teaching printers; the templates ``example_image.<fmt>.j2`` and ``explain_image.<fmt>.j2``
lay the pieces out. A feature layer's array is shown by its vectorised definition (the node the
derivation recognised), its entry formula with the feature sizes filled in, and its value one
map at a time: a feature map per example and channel, a kernel per output and input channel,
each as a matrix of rows by columns.
"""
from __future__ import annotations

import itertools

import sympy as sp

from .. import naming as N
from ..templating import render
from .concrete import concrete_sizes
from .graph import EDGE_NOTES
from .numbers import PRINTED_DIGITS, decimal_text, is_approximate
from .paths import LOSS, PATH_LIMIT
from .present import _template, formatter, page, terms_fit
from .worked import ALPHA, Value
from .worked_images import MapValue, _flat


def _column(array) -> sp.ImmutableMatrix:
    values = _flat(array)
    return sp.ImmutableMatrix(len(values), 1, values)


def _maps(f, symbol, value) -> list:
    """The equations that show an array's value, one 2-D map each."""
    name = str(symbol.label) if isinstance(symbol, sp.IndexedBase) else symbol.name
    if isinstance(value, sp.MatrixBase):
        return [f.equation(symbol, [f.value_step(value)])]
    rank = value.rank()
    if rank == 1:
        return [f.equation(symbol, [f.value_step(_column(value))])]
    if rank == 2:
        return [f.equation(symbol, [f.value_step(sp.ImmutableMatrix(value.tolist()))])]
    lead = value.shape[:-2]
    rows, cols = value.shape[-2:]
    out = []
    for fixed in itertools.product(*[range(n) for n in lead]):
        block = value[(*fixed, slice(None), slice(None))]
        matrix = sp.ImmutableMatrix([[block[p, q] for q in range(cols)] for p in range(rows)])
        out.append(f.equation(f.printer.map_slice(name, *fixed), [f.value_step(matrix)]))
    return out


def _sizes_text(f, arch) -> str:
    """Every size symbol and its number, layer by layer: n_C[0] = 1, ..., f[1] = 2, ..."""
    sizes = concrete_sizes(arch)
    order = []
    for label in range(arch.offset + 1):
        feature = arch.features[label - 1] if label else None
        kinds = ("n_C", "n_H", "n_W") if label < arch.offset else ()
        if feature is not None and feature.kernel:
            kinds = ("f", "s", *(("p",) if feature.kind == "conv" else ()), *kinds)
        order += [N.feature_size(kind, label) for kind in kinds]
    order += [N.units(label) for label in range(arch.offset, arch.depth + 1)]
    return ", ".join(f"{f.math(symbol)} = {sizes[symbol]}" for symbol in order)


def _activations(arch) -> str:
    return ", ".join([*arch.feature_activations, *arch.activations])


def _map_value(f, item: MapValue, tag: str = "", activation=None) -> list:
    """Definition, entry formula and maps of a feature layer's array; an activation's
    definition by its name, g(Z), as a dense layer's."""
    out = []
    if item.formula is not None:
        formula = sp.Function(activation.name)(item.formula.tensors[0]) \
            if activation is not None else item.formula
        out.append(f.equation(item.symbol, [("=", f.math(formula))], tag))
    if item.entry is not None:
        out.append(f.equation(item.entry[0], [("=", f.math(item.entry[1]))]))
    return out + _maps(f, item.symbol, item.value)


def _dense_value(f, item: Value, tag: str = "", formula=None) -> list:
    steps = [("=", f.math(formula if formula is not None else item.formula))] \
        if (formula is not None or item.formula is not None) else []
    return [f.equation(item.symbol, [*steps, f.value_step(item.value)], tag)]


def _forward_item(f, item, layer) -> dict:
    if isinstance(item, MapValue):
        if item.rule == "argmax":
            return {"note": "argmax", "A_prev": f.math(layer.symbols["A_prev"]),
                    "M": f.math(item.symbol), "equations": _maps(f, item.symbol, item.value)}
        is_activation = layer.activation is not None and item.symbol == layer.symbols.get("A")
        return {"note": "", "equations": _map_value(
            f, item, activation=layer.activation if is_activation else None)}
    formula = sp.Function(layer.activation.name)(layer.Z) if item.symbol == layer.A \
        else item.formula
    return {"note": "", "equations": _dense_value(f, item, formula=formula)}


def _backward_item(f, item) -> dict:
    if isinstance(item, MapValue):
        return {"note": "", "equations": _map_value(f, item, item.rule)}
    return {"note": "", "equations": _dense_value(f, item, item.rule)}


def _update(f, item) -> list:
    """W <- W - α dW: a kernel's rule on its own line, then its maps."""
    steps = [("←", f.math(item.formula))]
    if isinstance(item, MapValue):
        return [f.equation(item.symbol, steps), *_maps(f, item.symbol, item.value)]
    return [f.equation(item.symbol, [*steps, f.value_step(item.value)])]


def _every_number(worked):
    values = [item.value for item in worked.updated]
    values += [item.value for stage in (*worked.forward, *worked.backward)
               for item in stage.values]
    for value in values:
        yield from (list(value) if isinstance(value, sp.MatrixBase) else _flat(value))
    yield worked.cost


def example_image_document(worked, fmt: str = "text", digits: int = PRINTED_DIGITS,
                          frame: dict | None = None) -> str:
    d = worked.derivation
    arch = d.arch
    f = formatter(fmt, digits, arch)
    given = []
    for item in worked.given:
        if item.symbol in (d.X, d.Y):
            continue
        given.append(_maps(f, item.symbol, item.value) if isinstance(item, MapValue)
                     else _dense_value(f, item))
    inputs = [*_maps(f, d.X, worked.samples.maps),
              f.equation(d.Y, [f.value_step(worked.samples.Y)])]
    forward = [{"title": f.text(f"layer {stage.layer}: {stage.token}"),
                "parts": [_forward_item(f, item, d.layer(stage.layer)) for item in stage.values]}
               for stage in worked.forward]
    backward = [{"title": f.text(f"layer {stage.layer}: {stage.token}"),
                 "parts": [_backward_item(f, item) for item in stage.values]}
                for stage in worked.backward]
    i = d.example_index
    loss_i = f.equation(N.L[i], [("=", f.math(d.loss_entry))])
    losses = [f.equation(N.L[k], [f.value_step(value)]) for k, value in enumerate(worked.losses)]
    cost = f.equation(N.J, [("=", f.math(sp.Sum(N.L[i], (i, 0, d.m - 1)) / d.m)),
                            f.value_step(worked.cost)])
    contributions = []
    for part in worked.contributions:
        layer = d.layer(part.layer)
        is_map = part.layer <= arch.offset
        A_prev = layer.symbols["A_prev"] if is_map else layer.A_prev
        dZ = layer.symbols["dZ"] if is_map else layer.dZ
        samples = [{"label": f.sample(part.gradient, k),
                    "equations": _maps(f, part.gradient, value) if is_map else
                    [f.equation(f.sample(part.gradient, k), [f.value_step(value)])]}
                   for k, value in enumerate(part.per_sample)]
        contributions.append({"gradient": f.math(part.gradient), "dZ": f.math(dZ),
                              "A_prev": f.math(A_prev), "samples": samples,
                              "mean": _maps(f, part.gradient, part.mean), "is_map": is_map})
    updated = [_update(f, item) for item in worked.updated]
    approximate = any(is_approximate(x) for x in _every_number(worked))
    name, kind = _template("example_image", fmt)
    return render(
        name, kind, **(frame if frame is not None else page(fmt)), spec=f.text(arch.spec()),
        activations=f.text(_activations(arch)),
        loss=f.text(arch.loss), loss_description=f.text(arch.loss_entry.description),
        m=worked.m, sizes=_sizes_text(f, arch), lr=decimal_text(worked.learning_rate)[0],
        alpha=f.math(ALPHA), source=f.text(worked.parameters.source),
        drawn=worked.parameters.source.startswith("--init"), digits=digits,
        approximate=approximate, image=f.text("x".join(map(str, arch.image))),
        X=f.math(d.X), given=given, inputs=inputs, forward=forward, loss_i=loss_i,
        losses=losses if worked.m > 1 else [], cost=cost, backward=backward,
        contributions=contributions, updated=updated)


# --- the explanation ------------------------------------------------------------------------

def _through(arch, label) -> str:
    """What θ of layer ``label`` reaches the loss through, in words."""
    parts = []
    if label <= arch.offset:
        first, last = label, arch.offset
        parts.append(f"the feature maps of layer {first}" if first == last else
                     f"the feature maps of layers {first}..{last}")
    first = max(label, arch.offset + 1)
    parts.append(f"the neurons of layer {first}" if first == arch.depth else
                 f"the neurons of layers {first}..{arch.depth}")
    return " and ".join(parts)


def _array_of(f, node) -> str:
    if node is LOSS:
        return f.math(LOSS)
    if isinstance(node, sp.Indexed):
        return f.math(node.base)
    return f.math(node.parent)


def _axes(f, e) -> list:
    out = []
    for axis in e.axes:
        full = len(axis.values) == axis.count
        values = (f"0..{axis.count - 1}" if full and axis.count > 1 else
                  ", ".join(map(str, axis.values)))
        out.append({"read": f.math(axis.read), "last": axis.last, "range": values,
                    "size": f.math(axis.size), "count": axis.count, "n": len(axis.values)})
    return out


def _terms(counts, shown: int = PATH_LIMIT) -> str:
    """``2 + 4 + 2``: the paths from each use, the first ``shown`` of many."""
    text = " + ".join(map(str, counts[:shown]))
    return text + (f" + ... ({len(counts)} positions)" if len(counts) > shown else "")


def explain_image_document(e, fmt: str = "text", frame: dict | None = None) -> str:
    d = e.derivation
    arch = d.arch
    f = formatter(fmt, arch=arch, one_example=True)
    theta = f.math(e.theta)
    definitions = [f.equation(lhs, [("=", f.math(rhs))]) for lhs, rhs in e.definitions]
    edges = [f.equation(edge.lhs, [("=", f.math(edge.derivative))], EDGE_NOTES[edge.kind])
             for edge in e.first_path_edges]
    uses = [f.equation(edge.lhs, [("=", f.math(edge.derivative))])
            for edge in e.uses[:PATH_LIMIT]]
    paths = [{"nodes": [f.math(node) for node in path.nodes], "product": f.chain(path.factors)}
             for path in e.paths]
    gradient = sp.Derivative(LOSS, e.theta, evaluate=False)
    path_sum = f.equation(gradient, [("=", f.chains([p.factors for p in e.paths]))]) \
        if e.path_sum is not None else None
    grouped = f.equation(gradient, [("=", f.plus([f.chain(pair) for pair in e.grouped]))])
    expanded = f.equation(gradient, [("=", f.math(e.expanded))])
    cached = [f.equation(step.lhs, [("=", f.math(x)) for x in (step.rhs, step.simplified)
                                    if x is not None], step.rule) for step in e.cached]
    rule = "BP1" if e.parameter.kind == "W" else "BP2"
    entry = f.equation(e.entry[0], [("=", f.math(e.entry[1]))], rule)
    entry_at = f.equation(e.entry_at[0], [("=", f.math(e.entry_at[1]))])
    uniform = len(set(e.per_use)) == 1
    fans = [{"array": _array_of(f, node), "fan": fan} for node, fan in e.fans] \
        if e.fans is not None else []
    first_use = e.uses[0]
    name, kind = _template("explain_image", fmt)
    counts = e.counts
    return render(
        name, kind, **(frame if frame is not None else page(fmt)), spec=f.text(arch.spec()),
        activations=f.text(_activations(arch)),
        loss=f.text(arch.loss), loss_description=f.text(arch.loss_entry.description),
        parameter=f.text(str(e.parameter)), theta=theta,
        parameter_offset=", ".join(map(str, e.parameter.offset)),
        maps=e.parameter.layer <= arch.offset, is_bias=e.parameter.kind == "b",
        is_kernel=bool(e.axes) and e.parameter.kind == "W",
        through=_through(arch, e.parameter.layer),
        definitions=definitions, edges=edges, uses=uses,
        more_uses=len(e.uses) - len(uses), use_count=len(e.uses), axes=_axes(f, e),
        use_array=_array_of(f, first_use.target),
        path_count=e.path_count, per_use=e.per_use[0] if uniform else None,
        per_use_sum=_terms(e.per_use), fans=fans,
        factors_per_path=len(e.first_path_edges), paths=paths, all_shown=e.all_shown,
        path_sum=path_sum,
        path_sum_fits=path_sum is not None and terms_fit(path_sum.lhs, paths), grouped=grouped, expanded=expanded, cached=cached,
        agrees=e.agrees, checked_by=e.checked_by, entry=entry, entry_at=entry_at, rule=rule,
        by_paths=counts.by_paths, by_backprop=counts.by_backprop,
        for_parameter=counts.for_parameter_by_paths,
        ratio=f"{counts.by_paths / counts.by_backprop:.1f}", targets=e.targets_sum_to_one,
        dZ_output=f.math(d.output.dZ), error=f.math(_error_of(d, e.parameter.layer)))


def _error_of(d, label):
    """dZ of layer ``label``: the error backpropagation caches for each use of θ."""
    layer = d.layer(label)
    return layer.symbols["dZ"] if label <= d.arch.offset else layer.dZ
