"""``symbackprop explain``: one gradient by the chain rule, path by path, then by backprop."""
from __future__ import annotations

from .common import FORMATS, add_arch_args, add_output_args, arch_from_args


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "explain", help="explain one parameter's gradient path by path",
        description="The computation graph from one weight or bias to the loss: every path, the "
                    "local derivative on each edge, their products and sum, and how "
                    "backpropagation computes the same sum by caching dZ of later layers. With "
                    "--l2 a weight also reaches the cost directly, by the penalty's edge; biases "
                    "are not penalised. A convolution's weight is shared: it has one path per "
                    "output position it is used at (and on), summed by the correlation of BP1.")
    add_arch_args(parser)
    parser.add_argument("--param", required=True, metavar="PARAM",
                        help="W<l>[row,col] (e.g. W2[0,1]) or b<l>[row] (e.g. b1[2]); a "
                             "convolution's kernel entry W<l>[r,c,u,v] (out channel, in "
                             "channel, kernel row, kernel column, e.g. W1[0,0,1,0]) or its "
                             "bias b<l>[r]")
    parser.add_argument("--format", choices=FORMATS, default=None)
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..engine import derive
    from ..io import write_output
    from ..teach.paths import explain, parse_parameter
    from ..teach.present import explain_document

    arch = arch_from_args(args)
    parameter = parse_parameter(args.param, arch)
    write_output(explain_document(explain(derive(arch), parameter), args.format),
                 args.output, args.force)
    return 0
