"""``symbackprop derive``: the backpropagation equations of an architecture, written up."""
from __future__ import annotations

from .common import FORMATS, add_arch_args, add_output_args, arch_from_args

NOTATIONS = ("ng", "rowvec")
HEADINGS = ("section", "subsection", "none")
# Options that apply to some formats only: option -> (its argparse name, its default, the
# formats it applies to).
FORMAT_OPTIONS = {"--standalone": ("standalone", False, ("latex",)),
                  "--label-prefix": ("label_prefix", None, ("latex",)),
                  "--heading": ("heading", "section", ("latex", "markdown"))}


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "derive", help="derive BP1-BP4 for an architecture and write them up",
        description="Derive the backpropagation equations by the chain rule and write them up "
                    "as text, a LaTeX document or fragment, or Markdown: dense networks, image "
                    "networks (convolutions, pooling, flatten) and recurrent networks "
                    "(seq{T}x{n}-rnn{H}[:act][:all]-..., backpropagation through time).")
    add_arch_args(parser)
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="text (default: pretty-printed for a terminal), latex, markdown")
    parser.add_argument("--notation", choices=NOTATIONS, default="ng",
                        help="ng: columns are examples, dZ^[l] (default); rowvec: rows are "
                             "examples, Z_l = A_{l-1} W_l + b_l, errors delta_l")
    parser.add_argument("--standalone", action="store_true",
                        help="LaTeX: a complete document, not a fragment to \\input")
    parser.add_argument("--no-steps", dest="steps", action="store_false",
                        help="leave out the step-by-step derivations; keep the results")
    parser.add_argument("--no-diagram", dest="diagram", action="store_false",
                        help="leave out the network diagram")
    parser.add_argument("--label-prefix", default=None, metavar="NAME",
                        help="LaTeX: label the equations NAME:BP1 ... NAME:BP4 and the figure "
                             "NAME:diagram, so that several networks' fragments share one "
                             "paper (default: from the architecture, e.g. "
                             "2-3-1-half-sse)")
    parser.add_argument("--heading", choices=HEADINGS, default="section",
                        help="LaTeX and Markdown: the level of the document's own heading, "
                             "its parts one level below (default section; none: no heading "
                             "of its own, its parts as paragraphs)")
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..engine import derive
    from ..errors import SymbackpropError
    from ..io import write_output

    for option, (name, default, formats) in FORMAT_OPTIONS.items():
        if getattr(args, name) != default and args.format not in formats:
            only = " and ".join(f"--format {f}" for f in formats)
            raise SymbackpropError(
                f"{option} applies to {only} only; leave it out of a {args.format} document")
    d = derive(arch_from_args(args), args.notation)
    if args.format == "latex":
        from ..printing.document import latex_document

        out = latex_document(d, standalone=args.standalone, steps=args.steps,
                             diagram=args.diagram, label_prefix=args.label_prefix,
                             heading=args.heading)
    elif args.format == "markdown":
        from ..printing.document import markdown_document

        out = markdown_document(d, steps=args.steps, diagram=args.diagram,
                                heading=args.heading)
    else:
        from ..printing.text import derivation_text

        out = derivation_text(d, steps=args.steps, diagram=args.diagram,
                              width=_terminal_width(args.output))
    write_output(out, args.output, args.force)
    return 0


def _terminal_width(output) -> int:
    """The width text prose wraps to: the terminal's, when writing to one; 80 otherwise (a
    file, a pipe)."""
    from ..printing.text import terminal_width

    return terminal_width() if output in (None, "-") else 80
