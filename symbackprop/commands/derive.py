"""``symbackprop derive``: the backpropagation equations of an architecture, written up."""
from __future__ import annotations

from .common import FORMATS, add_arch_args, add_output_args, arch_from_args

NOTATIONS = ("ng", "rowvec")


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
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..engine import derive
    from ..errors import SymbackpropError
    from ..io import write_output

    if args.standalone and args.format != "latex":
        raise SymbackpropError(
            f"--standalone applies to --format latex only; a {args.format} document is "
            "complete as it is, so leave --standalone out")
    d = derive(arch_from_args(args), args.notation)
    if args.format == "latex":
        from ..printing.document import latex_document

        out = latex_document(d, standalone=args.standalone, steps=args.steps,
                             diagram=args.diagram)
    elif args.format == "markdown":
        from ..printing.document import markdown_document

        out = markdown_document(d, steps=args.steps, diagram=args.diagram)
    else:
        from ..printing.text import derivation_text

        out = derivation_text(d, steps=args.steps, diagram=args.diagram)
    write_output(out, args.output, args.force)
    return 0
