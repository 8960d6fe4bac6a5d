"""``symbackprop example``: one step of gradient descent worked with real numbers."""
from __future__ import annotations

from .common import FORMATS, add_arch_args, add_output_args, arch_from_args


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "example", help="work one gradient-descent step with exact numbers",
        description="A worked numeric example of one gradient-descent step: every Z and A of the "
                    "forward pass, the cost, dA and dZ of every layer, every gradient and every "
                    "updated parameter, computed exactly from the derived equations. With --l2 "
                    "the penalty's part of the cost, of each dW and of each weight's update is "
                    "shown apart.")
    add_arch_args(parser)
    params = parser.add_mutually_exclusive_group(required=True)
    params.add_argument("--weights", metavar="FILE.json",
                        help='JSON {"W1": [[...]], "b1": [...], ...}; W<l> has shape '
                             "(n_l, n_{l-1}), b<l> has n_l entries; a convolution's W<l> has "
                             "shape (F, C, K, K) (out channels, in channels, kernel rows, "
                             "kernel columns), as that nested list or its numbers in that "
                             "order flattened, and b<l> has F entries")
    params.add_argument("--init", metavar="SEED", type=int,
                        help="draw small weights (-0.5..0.5 in steps of 0.1, biases 0) from SEED "
                             "and print them first")
    parser.add_argument("--x", metavar='"x; x; ..."',
                        help="inputs, one sample a row: n_0 numbers, rows separated by ';'; "
                             "an image input CxHxW takes C·H·W numbers a sample, in channel, "
                             "row, column order")
    parser.add_argument("--y", metavar='"y; y; ..."',
                        help="targets, one sample a row: n_L numbers, rows separated by ';'")
    parser.add_argument("--data", metavar="FILE.csv",
                        help="instead of --x/--y: a CSV file, one sample a row, n_0 inputs "
                             "(C·H·W for an image) then n_L targets (a header row is skipped)")
    parser.add_argument("--lr", default="0.1", metavar="RATE",
                        help="learning rate, read exactly (default 0.1)")
    parser.add_argument("--digits", type=int, default=6, metavar="N",
                        help="significant digits printed for values that are not rational "
                             "(default 6)")
    parser.add_argument("--format", choices=FORMATS, default=None)
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..engine import derive
    from ..io import write_output
    from ..teach.inputs import (
        InputError,
        check_targets,
        draw_parameters,
        load_parameters,
        load_samples,
        parse_samples,
    )
    from ..teach.numbers import NumberError, parse_number
    from ..teach.present import example_document
    from ..teach.worked import work_example

    arch = arch_from_args(args)
    sizes = arch.sizes
    image = arch.image
    n_in = sizes[0] if image is None else image[0] * image[1] * image[2]
    if args.data is not None:
        if args.x is not None or args.y is not None:
            raise InputError("give either --data FILE.csv or --x and --y, not both")
        samples = load_samples(args.data, n_in, sizes[-1], image)
    else:
        if args.x is None or args.y is None:
            missing = "--x" if args.x is None else "--y"
            raise InputError(f"missing {missing}: give --x \"inputs\" and --y \"targets\" "
                             "(one sample a row, rows separated by ';'), or --data FILE.csv")
        samples = parse_samples(args.x, args.y, n_in, sizes[-1], image)
    check_targets(samples, arch.loss_entry)
    shapes = sizes if image is None else arch
    if args.weights is not None:
        parameters = load_parameters(args.weights, shapes)
    else:
        parameters = draw_parameters(args.init, shapes)
    try:
        learning_rate = parse_number(args.lr, "--lr")
    except NumberError as exc:
        raise InputError(str(exc)) from None
    if learning_rate <= 0:
        raise InputError(f"--lr must be positive, got {args.lr}; e.g. --lr 0.1")
    if not 1 <= args.digits <= 40:
        raise InputError(f"--digits must be between 1 and 40, got {args.digits}")
    worked = work_example(derive(arch), parameters, samples, learning_rate)
    write_output(example_document(worked, args.format, args.digits), args.output, args.force)
    return 0
