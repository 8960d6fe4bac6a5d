"""``symbackprop explain``: one gradient by the chain rule, path by path, then by backprop."""
from __future__ import annotations

from .common import FORMATS, add_arch_args, add_output_args, arch_from_args
from .derive import HEADINGS


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "explain", help="explain one parameter's gradient path by path",
        description="The computation graph from one weight or bias to the loss: every path, the "
                    "local derivative on each edge, their products and sum, and how "
                    "backpropagation computes the same sum by caching dZ of later layers. With "
                    "--l2 a weight also reaches the cost directly, by the penalty's edge; biases "
                    "are not penalised. A convolution's weight is shared: it has one path per "
                    "output position it is used at (and on), summed by the correlation of BP1. "
                    "A recurrent network's weight is shared by every time step: its paths go "
                    "through every later step, their number grows with T, backpropagation "
                    "through time sums them, and the Jacobians from step to step, at the "
                    "numbers of one example (--init/--weights, --x, --y), show why the "
                    "gradients of early steps vanish or explode; with ':all' the head reads "
                    "every step, and a path leaves for it at any step.")
    add_arch_args(parser)
    parser.add_argument("--param", required=True, metavar="PARAM",
                        help="W<l>[row,col] (e.g. W2[0,1]) or b<l>[row] (e.g. b1[2]); a "
                             "convolution's kernel entry W<l>[r,c,u,v] (out channel, in "
                             "channel, kernel row, kernel column, e.g. W1[0,0,1,0]) or its "
                             "bias b<l>[r]; an rnn layer's input weight W1[r,s], recurrent "
                             "weight U1[r,s] (e.g. U1[0,1]) or bias b1[r]")
    numbers = parser.add_argument_group(
        "the example of a recurrent network (the numbers of its Jacobians)")
    weights = numbers.add_mutually_exclusive_group()
    weights.add_argument("--init", metavar="SEED", type=int, default=None,
                         help="draw the weights from SEED as example does (default 0)")
    weights.add_argument("--weights", metavar="FILE.json",
                         help='JSON {"W1": [[...]], "U1": [[...]], "b1": [...], ...}')
    numbers.add_argument("--x", metavar='"x"',
                         help="one sample's inputs: T·n numbers, row by row (step 0's n "
                              "features, then step 1's, ...); default: drawn from -1 to 1 in "
                              "steps of 0.5")
    numbers.add_argument("--y", metavar='"y"',
                         help="its targets: n_L numbers (default: 1 for the first output unit, "
                              "0 for the others)")
    parser.add_argument("--format", choices=FORMATS, default=None)
    add_document_args(parser)
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..engine import derive
    from ..io import write_output
    from ..teach.api import explanation_numbers
    from ..teach.limits import check_explain
    from ..teach.paths import explain, parse_parameter
    from ..teach.present import explain_document

    arch = arch_from_args(args)
    check_explain(arch)
    parameter = parse_parameter(args.param, arch)
    numbers = explanation_numbers(arch, x=args.x, y=args.y, weights=args.weights,
                                  init=args.init, options=True)
    page = document_options(args)
    write_output(explain_document(explain(derive(arch), parameter, **numbers), args.format,
                                  **page), args.output, args.force)
    return 0


# The document options explain and example share with derive (derive.FORMAT_OPTIONS): option ->
# (its argparse name, its default, the formats it applies to).
DOCUMENT_OPTIONS = {"--standalone": ("standalone", False, ("latex",)),
                    "--heading": ("heading", "section", ("latex", "markdown"))}


def add_document_args(parser) -> None:
    parser.add_argument("--standalone", action="store_true",
                        help="LaTeX: a complete document, not a fragment to \\input")
    parser.add_argument("--heading", choices=HEADINGS, default="section",
                        help="LaTeX and Markdown: the level of the document's own heading, "
                             "its parts one level below (default section; none: no heading "
                             "of its own, its parts as paragraphs)")


def document_options(args) -> dict:
    """{standalone, heading} for the document, refusing an option its format does not take."""
    from ..errors import SymbackpropError

    for option, (name, default, formats) in DOCUMENT_OPTIONS.items():
        if getattr(args, name) != default and args.format not in formats:
            only = " and ".join(f"--format {f}" for f in formats)
            raise SymbackpropError(
                f"{option} applies to {only} only; leave it out of a {args.format} document")
    options = {}
    if args.format == "latex":
        options["standalone"] = args.standalone
    if args.format in ("latex", "markdown"):
        options["heading"] = args.heading
    return options
