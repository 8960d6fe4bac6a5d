"""Worked examples and explanations of recurrent networks as text, Markdown or LaTeX.

As in ``present`` and ``present_images``: Python decides what is shown and prints every piece of
mathematics through the teaching printers; the templates ``example_sequence.<fmt>.j2`` and
``explain_sequence.<fmt>.j2`` lay the pieces out. A sequence array (example, step, unit) is shown
one time step at a time, each step a matrix with a column per sample (``H[1]<τ>``), as the dense
head's matrices are; at every step its equations' entries are shown with that step filled in
(the hidden state before step 0 is 0, so step 0's entry has no recurrent term), forward in time
for the forward pass and backward in time for the errors.
"""
from __future__ import annotations

import sympy as sp

from .. import naming as N
from ..templating import render
from .concrete import concrete_sizes
from .graph import EDGE_NOTES
from .numbers import PRINTED_DIGITS, decimal_text, is_approximate
from .paths import LOSS
from .present import _template, formatter, page, terms_fit
from .present_images import (
    _activations,
    _backward_item,
    _dense_value,
    _every_number,
    _forward_item,
    _maps,
    _update,
)
from .sequences import _tidy
from .worked import ALPHA
from .worked_images import MapValue, _name


def _is_sequence(value) -> bool:
    """A value indexed (example, step, unit)."""
    return isinstance(value, sp.NDimArray) and value.rank() == 3


def step_matrix(value, tau: int) -> sp.ImmutableMatrix:
    """Step τ of a sequence array as a matrix of units × samples."""
    m, _, units = value.shape
    return sp.ImmutableMatrix(units, m, lambda r, k: value[k, tau, r])


def _sizes_text(f, arch) -> str:
    sizes = concrete_sizes(arch)
    order = [N.T, N.units(0), *[N.units(label) for label in range(1, arch.depth + 1)]]
    return ", ".join(f"{f.math(symbol)} = {sizes[symbol]}" for symbol in order)


def _steps(f, items, sizes, backward: bool) -> dict:
    """A layer's sequence arrays step by step: their entries (sizes in, at each step), and
    each step's values; its other arrays (what it passes on, its gradients) after them."""
    stepped = [item for item in items if _is_sequence(item.value)]
    others = [item for item in items if not _is_sequence(item.value)]
    definitions = [f.equation(item.entry[0], [("=", f.math(_tidy(item.entry[1])))],
                              item.rule if backward else "") for item in stepped]
    count = stepped[0].value.shape[1] if stepped else 0
    order = reversed(range(count)) if backward else range(count)
    steps = []
    for tau in order:
        at = {N.tau: sp.Integer(tau)}
        rows = []
        for item in stepped:
            lhs, rhs = (x.xreplace(sizes).xreplace(at) for x in item.entry)
            rows.append(f.equation(lhs, [("=", f.math(_tidy(rhs)))]))
            rows.append(f.equation(f.printer.step_slice(_name(item.symbol), tau),
                                   [f.value_step(step_matrix(item.value, tau))]))
        steps.append({"tau": tau, "equations": rows})
    after = []
    for item in others:
        tag = item.rule if backward else ""
        if item.entry is not None:
            after.append(f.equation(item.entry[0], [("=", f.math(item.entry[1]))], tag))
        after += _maps(f, item.symbol, item.value)
    return {"definitions": definitions, "steps": steps, "after": after}


def example_sequence_document(worked, fmt: str = "text", digits: int = PRINTED_DIGITS,
                          frame: dict | None = None) -> str:
    d = worked.derivation
    arch = d.arch
    f = formatter(fmt, digits, arch)
    steps, features = arch.sequence
    sizes = concrete_sizes(arch)
    given = []
    for item in worked.given:
        if item.symbol in (d.X, d.Y):
            continue
        given.append(_maps(f, item.symbol, item.value) if isinstance(item, MapValue)
                     else _dense_value(f, item))
    X = worked.samples.sequences
    inputs = [f.equation(f.printer.step_slice(_name(d.X), tau), [f.value_step(step_matrix(X, tau))])
              for tau in range(steps)]
    inputs.append(f.equation(d.Y, [f.value_step(worked.samples.Y)]))

    def stage_of(stage, backward):
        title = f"layer {stage.layer}: {stage.token}"
        if stage.layer <= arch.offset:
            title += ", backward in time" if backward else ", step by step"
            return {"title": f.text(title), "recurrent": True,
                    **_steps(f, stage.values, sizes, backward)}
        make = _backward_item if backward else (lambda f, item: _forward_item(
            f, item, d.layer(stage.layer)))
        return {"title": f.text(title), "recurrent": False,
                "parts": [make(f, item) for item in stage.values]}

    forward = [stage_of(stage, False) for stage in worked.forward]
    backward = [stage_of(stage, True) for stage in worked.backward]
    i = d.example_index
    loss_i = f.equation(N.L[i], [("=", f.math(d.loss_entry))])
    columns = worked.samples.Y.shape[1]
    losses = [f.equation(N.L[k], [f.value_step(value)]) for k, value in enumerate(worked.losses)]
    cost = f.equation(N.J, [("=", f.math(sp.Sum(N.L[i], (i, 0, d.m - 1)) / d.m)),
                            f.value_step(worked.cost)])
    contributions = []
    for part in worked.contributions:
        layer = d.layer(part.layer)
        is_map = part.layer <= arch.offset
        samples = [{"label": f.sample(part.gradient, k),
                    "equations": _maps(f, part.gradient, value) if is_map else
                    [f.equation(f.sample(part.gradient, k), [f.value_step(value)])]}
                   for k, value in enumerate(part.per_sample)]
        contributions.append({"gradient": f.math(part.gradient), "samples": samples,
                              "mean": _maps(f, part.gradient, part.mean), "is_map": is_map,
                              "dZ": f.math(layer.symbols["dZ"] if is_map else layer.dZ)})
    updated = [_update(f, item) for item in worked.updated]
    approximate = any(is_approximate(x) for x in _every_number(worked))
    name, kind = _template("example_sequence", fmt)
    return render(
        name, kind, **(frame if frame is not None else page(fmt)), spec=f.text(arch.spec()),
        activations=f.text(_activations(arch)),
        loss=f.text(arch.loss), loss_description=f.text(arch.loss_entry.description),
        m=worked.m, sizes=_sizes_text(f, arch), lr=decimal_text(worked.learning_rate)[0],
        alpha=f.math(ALPHA), source=f.text(worked.parameters.source),
        drawn=worked.parameters.source.startswith("--init"), digits=digits,
        approximate=approximate, steps=steps, features=features, per_sample=steps * features,
        every_step=arch.every_step, columns=columns, X=f.math(d.X),
        H=f.math(d.features[0].symbols["H"]), given=given, inputs=inputs, forward=forward,
        loss_i=loss_i, losses=losses if len(worked.losses) > 1 else [], cost=cost,
        backward=backward, contributions=contributions, updated=updated)


# --- the explanation ------------------------------------------------------------------------

#: How each format writes the few pieces of mathematics that are not expressions: a
#: derivative of one step's state by another's, the diagonal matrix of g', a product's dots.
_FORMS = {
    "text": {"partial": "∂{}/∂{}", "diag": "diag(g'({}))", "dots": " ··· ", "times": " × ",
             "power": "{}^{}"},
    "latex": {"partial": r"\frac{{\partial {}}}{{\partial {}}}",
              "diag": r"\operatorname{{diag}}\left(g'\left({}\right)\right)",
              "dots": r" \cdots ", "times": r" \times ", "power": "{}^{{{}}}"},
}
_FORMS["markdown"] = _FORMS["latex"]


def _jacobian_words(f, H, Z, U, last) -> dict:
    """J<τ+1> = ∂H<τ+1>/∂H<τ> = diag(g'(Z<τ+1>)) U and ∂H<T-1>/∂H<τ> = J<T-1> ··· J<τ+1>,
    in the format's notation."""
    forms, step = _FORMS[f.name], f.printer.step_slice
    tau = N.tau
    return {
        "J_next": step("J", tau + 1),
        "J_definition": forms["partial"].format(step(H, tau + 1), step(H, tau)),
        "J_form": forms["diag"].format(step(Z, tau + 1)) + " " + f.math(U),
        "product_lhs": forms["partial"].format(step(H, last), step(H, tau)),
        "product_rhs": step("J", last) + forms["dots"] + step("J", tau + 1),
        "last_state": step(H, last),
    }


def _numbers(f, e, d, gradient) -> dict | None:
    """The numbers of the example: inputs, hidden states, U, each step's Jacobian, the
    products a path crosses, the errors backward in time and θ's gradient by step."""
    numbers = e.numbers
    if numbers is None:
        return None
    rnn = d.features[0]
    H, Z = (_name(rnn.symbols[name]) for name in ("H", "Z"))
    forms, step = _FORMS[f.name], f.printer.step_slice
    worked = numbers.worked
    X, hidden = worked.samples.sequences, worked.value_of(H)
    U_value = sp.ImmutableMatrix(worked.parameters.get("U", 1).tolist())
    products = []
    for p in numbers.products:
        factors = " ".join(step("J", t) for t in range(e.steps - 1, p.tau, -1))
        products.append({"lhs": forms["partial"].format(step(H, e.steps - 1), step(H, p.tau)),
                         "factors": factors, "length": p.length,
                         "equation": f.equation(factors, [f.value_step(p.value)])
                         if p.length > 1 else None,
                         "norm": f.printer.norm(factors), "value": f.value(p.norm)})
    largest = f.value(numbers.largest)
    return {
        "source": f.text(worked.parameters.source), "x_drawn": numbers.x_drawn,
        "y_default": numbers.y_default,
        "inputs": [f.equation(step(_name(d.X), tau), [f.value_step(step_matrix(X, tau))])
                   for tau in range(e.steps)],
        "Y": f.equation(d.Y, [f.value_step(worked.samples.Y)]),
        "states": [f.equation(step(H, tau), [f.value_step(step_matrix(hidden, tau))])
                   for tau in range(e.steps)],
        "U": f.equation(rnn.symbols["U"], [f.value_step(U_value)]),
        "U_norm_name": f.printer.norm(f.math(rnn.symbols["U"])),
        "U_norm": f.value(numbers.U_norm),
        "jacobians": [{"equation": f.equation(step("J", j.tau), [f.value_step(j.value)]),
                       "norm": f.printer.norm(step("J", j.tau)), "value": f.value(j.norm),
                       "slope": f.value(j.slope), "Z": step(Z, j.tau)}
                      for j in numbers.jacobians],
        "products": products,
        "error_norms": [{"norm": f.printer.norm(step(_name(rnn.symbols["dH"]), tau)),
                         "value": f.value(value)} for tau, value in numbers.error_norms],
        "contributions": [f.equation(term, [f.value_step(value)])
                          for _, term, value in numbers.contributions],
        "penalty": f.equation(numbers.penalty[0], [f.value_step(numbers.penalty[1])])
        if numbers.penalty is not None else None,
        "gradient": f.equation(sp.Derivative(N.J, gradient.variables[0], evaluate=False)
                               if numbers.penalty is not None else gradient,
                               [f.value_step(numbers.gradient)]),
        "largest": largest, "largest_k": forms["power"].format(largest, "k"),
        "vanishing": bool(numbers.largest < 1),
        "long_bounds": [{"steps": n, "power": forms["power"].format(largest, n - 1),
                         "bound": f.value(v)} for n, v in numbers.long_bounds],
    }


#: How the paths from a step reach the head, the errors reach the steps, and what the longest
#: Jacobian product is, many-to-one and with the head at every step (Architecture.every_step).
_ROUTES = {
    False: {"route": "to the last hidden state, then through the head ({paths} from each "
                     "entry of it)",
            "head_errors": "the last step's from the head", "leave": "",
            "each_product": "each a product of"},
    True: {"route": "to the head at that step or any later one, which reads every step's "
                    "hidden state ({paths} from each entry of one)",
           "head_errors": "every step's also from its own head",
           "each_product": "each a product of at most",
           "leave": "A path that leaves for the head at an earlier step s carries the "
                    "product up to step s."},
}


def _path_count(forms, e, tau: int) -> str:
    """How many paths start at step τ: n^(T-1-τ) × h to the last step's head; with the head
    at every step (1 + n + ... + n^(T-1-τ)) × h, a term per step it can leave at."""
    power = [forms["power"].format(e.units, j) for j in range(e.steps - tau)]
    if not e.derivation.arch.every_step or len(power) == 1:
        return power[-1] + forms["times"] + str(e.head_paths)
    return "(" + " + ".join(power) + ")" + forms["times"] + str(e.head_paths)


def explain_sequence_document(e, fmt: str = "text", frame: dict | None = None) -> str:
    from .sequences import NUMBERS_STATES, NUMBERS_UNITS

    g = e.graph
    d = g.derivation
    arch = d.arch
    f = formatter(fmt, arch=arch, one_example=True)
    forms = _FORMS[f.name]
    rnn = d.features[0]
    H, U = rnn.symbols["H"], rnn.symbols["U"]
    definitions = [f.equation(lhs, [("=", f.math(rhs))]) for lhs, rhs in g.definitions]
    edges = [f.equation(edge.lhs, [("=", f.math(edge.derivative))], EDGE_NOTES[edge.kind])
             for edge in g.first_path_edges]
    uses = [{"tau": use.tau, "paths": use.paths, "factors": use.factors,
             "count": _path_count(forms, e, use.tau),
             "equation": f.equation(use.edge.lhs, [("=", f.math(use.edge.derivative))])}
            for use in e.uses]
    used = {use.tau for use in e.uses}
    head_uses = [f.equation(edge.lhs, [("=", f.math(edge.derivative))]) for edge in g.uses] \
        if not e.in_rnn else []
    paths = [{"nodes": [f.math(node) for node in path.nodes], "product": f.chain(path.factors)}
             for path in g.paths]
    gradient = sp.Derivative(LOSS, g.theta, evaluate=False)
    path_sum = f.equation(gradient, [("=", f.chains([p.factors for p in g.paths]))]) \
        if g.path_sum is not None else None
    cached = [f.equation(step.lhs, [("=", f.math(_tidy(x))) for x in (step.rhs, step.simplified)
                                    if x is not None], step.rule) for step in g.cached]
    in_time = [{"tau": rows.tau,
                "equations": [f.equation(lhs, [("=", f.math(rhs))], rule)
                              for lhs, rhs, rule in rows.rows]}
               for rows in e.backward_in_time]
    from .graph import gradient_name

    rule = gradient_name(d, g.parameter)
    name, kind = _template("explain_sequence", fmt)
    counts = g.counts
    return render(
        name, kind, **(frame if frame is not None else page(fmt)), spec=f.text(arch.spec()),
        activations=f.text(_activations(arch)),
        loss=f.text(arch.loss), loss_description=f.text(arch.loss_entry.description),
        **{key: f.text(words.format(paths=f"{e.head_paths} path"
                                    + ("s" if e.head_paths != 1 else "")))
           for key, words in _ROUTES[arch.every_step].items()},
        scale=f.math(1 / d.m),
        theta=f.math(g.theta), in_rnn=e.in_rnn, steps=e.steps, last=e.steps - 1,
        units=e.units, n1=f.math(N.units(1)),
        H_at=f.math(sp.IndexedBase(H.label)[N.tau, N.r]),
        H_before=f.math(sp.IndexedBase(H.label)[-1, N.nu]),
        definitions=definitions, edges=edges, uses=uses,
        unused=[tau for tau in range(e.steps) if tau not in used], head_uses=head_uses,
        head_paths=e.head_paths,
        counts_by_steps=", ".join(f"{f.math(N.T)} = {T}: {n}" for T, n in e.counts_by_steps),
        path_count=g.path_count, paths=paths, all_shown=g.all_shown, path_sum=path_sum,
        path_sum_fits=path_sum is not None and terms_fit(path_sum.lhs, paths),
        grouped=f.equation(gradient, [("=", f.plus([f.chain(pair) for pair in g.grouped]))]),
        expanded=f.equation(gradient, [("=", f.math(g.expanded))]), cached=cached,
        in_time=in_time, agrees=g.agrees, checked_by=g.checked_by,
        entry=f.equation(g.entry[0], [("=", f.math(g.entry[1]))], rule),
        entry_at=f.equation(g.entry_at[0], [("=", f.math(g.entry_at[1]))]), rule=rule,
        jacobian_entry=f.equation(e.jacobian_entry[0], [("=", f.math(e.jacobian_entry[1]))]),
        **_jacobian_words(f, _name(H), _name(rnn.symbols["Z"]), U, e.steps - 1),
        U=f.math(U), U_T=f.math(sp.MatrixSymbol(_name(U), e.units, e.units).T),
        numbers=_numbers(f, e, d, gradient), most_units=NUMBERS_UNITS,
        most_states=NUMBERS_STATES,
        by_paths=counts.by_paths, by_backprop=counts.by_backprop,
        for_parameter=counts.for_parameter_by_paths,
        ratio=f"{counts.by_paths / counts.by_backprop:.1f}", targets=g.targets_sum_to_one,
        dZ_output=f.math(d.output.dZ))
