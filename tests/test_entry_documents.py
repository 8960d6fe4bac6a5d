"""Every registry entry, and functions users write, in every document format and notation.

Driven by the registry: adding an activation or a loss adds its cases here.
"""
import pytest
from test_latex import _pdflatex

from symbackprop import derive, parse_arch
from symbackprop.printing.document import latex_document, markdown_document
from symbackprop.printing.text import derivation_text
from symbackprop.registry import ACTIVATIONS, LOSSES

USER = {"activations": {"swish": "z*sigmoid(z)", "bent": "where(z > 0, z**2 + z, tanh(z))",
                        "clip": "min(max(z, -1), 1)"},
        "losses": {"pseudo_huber": "sqrt(1 + (a - y)**2) - 1", "l1": "abs(a - y)"}}


def _nets():
    """(spec, loss): each hidden activation once, each loss once with each output it allows
    (one output activation for losses that allow any), the user's functions, a penalty."""
    hidden = [n for n, act in ACTIVATIONS.items() if not act.output_only]
    nets = [(f"3-4:{name}-2:identity", "mse", 0) for name in hidden]
    for name, loss in LOSSES.items():
        for out in loss.output_activations or ("tanh",):
            nets.append((f"3-4:relu-2:{out}", name, 0))
    nets += [("3-4:swish-3:bent-2:clip", "pseudo_huber", 0), ("3-4:clip-2:identity", "l1", 0),
             ("3-4:relu-2:sigmoid", "bce", "0.01")]
    return nets


NETS = _nets()
FORMATS = {
    "text": lambda d: derivation_text(d),
    "markdown": lambda d: markdown_document(d),
    "latex": lambda d: latex_document(d),
}


@pytest.mark.parametrize("notation", ["ng", "rowvec"])
@pytest.mark.parametrize("spec,loss,l2", NETS)
def test_every_entry_derives_in_every_format(spec, loss, l2, notation):
    arch = parse_arch(spec, loss, definitions=USER, l2=l2)
    d = derive(arch, notation)
    for fmt, render in FORMATS.items():
        out = render(d)
        assert out == render(d)  # deterministic
        for name in {*arch.activations, arch.loss}:
            shown = name.replace("_", r"\_") if fmt == "latex" else name
            # LaTeX prose names the loss as a paper does: by its entry's human name.
            human = arch.loss_entry.human_name if name == arch.loss else name
            assert shown in out or human in out or ACTIVATIONS.get(name, None) is not None, \
                (fmt, name)
        if arch.l2:  # Markdown's math is LaTeX too
            assert ("λ" if fmt == "text" else "\\lambda") in out


@pytest.mark.parametrize("spec,loss,l2", NETS)
def test_every_entry_compiles_as_a_standalone_document(tmp_path, spec, loss, l2):
    arch = parse_arch(spec, loss, definitions=USER, l2=l2)
    (tmp_path / "d.tex").write_text(latex_document(derive(arch), standalone=True),
                                    encoding="utf-8")
    log = _pdflatex(tmp_path, "d.tex")
    assert "! " not in log
