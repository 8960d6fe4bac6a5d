"""``symbackprop example``: one step of gradient descent worked with real numbers."""
from __future__ import annotations

from .common import FORMATS, add_arch_args, add_output_args, arch_from_args
from .explain import add_document_args, document_options


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "example", help="work one gradient-descent step with exact numbers",
        description="A worked numeric example of one gradient-descent step: every Z and A of the "
                    "forward pass, the cost, dA and dZ of every layer, every gradient and every "
                    "updated parameter, computed exactly from the derived equations. With --l2 "
                    "the penalty's part of the cost, of each dW and of each weight's update is "
                    "shown apart. A recurrent network's step is backpropagation through time: "
                    "its hidden states step by step, then its errors backward in time.")
    add_arch_args(parser)
    params = parser.add_mutually_exclusive_group(required=True)
    params.add_argument("--weights", metavar="FILE.json",
                        help='JSON {"W1": [[...]], "b1": [...], ...}; W<l> has shape '
                             "(n_l, n_{l-1}), b<l> has n_l entries; a convolution's W<l> has "
                             "shape (F, C, K, K) (out channels, in channels, kernel rows, "
                             "kernel columns), as that nested list or its numbers in that "
                             "order flattened, and b<l> has F entries; an rnn layer has W1 "
                             "(H, n), U1 (H, H) and b1 (H)")
    params.add_argument("--init", metavar="SEED", type=int,
                        help="draw small weights (-0.5..0.5 in steps of 0.1, biases 0) from SEED "
                             "and print them first")
    parser.add_argument("--x", metavar='"x; x; ..."',
                        help="inputs, one sample a row: n_0 numbers, rows separated by ';'; "
                             "an image input CxHxW takes C·H·W numbers a sample, in channel, "
                             "row, column order; a sequence input seq{T}x{n} takes T·n numbers "
                             "a sample, row by row (step 0's n features, then step 1's, ...)")
    parser.add_argument("--y", metavar='"y; y; ..."',
                        help="targets, one sample a row: n_L numbers, rows separated by ';'; "
                             "after an rnn layer with ':all', T·n_L numbers a sample, step by "
                             "step")
    parser.add_argument("--data", metavar="FILE.csv",
                        help="instead of --x/--y: a CSV file, one sample a row, n_0 inputs "
                             "(C·H·W for an image, T·n for a sequence) then n_L targets (a "
                             "header row is skipped)")
    parser.add_argument("--lr", default="0.1", metavar="RATE",
                        help="learning rate, read exactly (default 0.1)")
    parser.add_argument("--digits", type=int, default=6, metavar="N",
                        help="significant digits printed for values that are not rational "
                             "(default 6)")
    parser.add_argument("--format", choices=FORMATS, default=None)
    add_document_args(parser)
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..engine import derive
    from ..io import write_output
    from ..teach.api import parameters_for
    from ..teach.inputs import (
        InputError,
        check_targets,
        load_samples_of,
        parse_samples_of,
        sample_form,
    )
    from ..teach.limits import check_example
    from ..teach.numbers import NumberError, parse_number
    from ..teach.present import example_document
    from ..teach.worked import work_example

    page = document_options(args)
    arch = arch_from_args(args)
    check_example(arch)  # the network alone, before its samples are read
    form = sample_form(arch)
    if args.data is not None:
        if args.x is not None or args.y is not None:
            raise InputError("give either --data FILE.csv or --x and --y, not both")
        samples = load_samples_of(form, args.data)
    else:
        if args.x is None or args.y is None:
            missing = "--x" if args.x is None else "--y"
            raise InputError(f"missing {missing}: give --x \"inputs\" and --y \"targets\" "
                             "(one sample a row, rows separated by ';'), or --data FILE.csv")
        samples = parse_samples_of(form, args.x, args.y)
    check_targets(samples, arch.loss_entry)
    check_example(arch, samples.m)
    parameters = parameters_for(arch, args.weights, args.init)
    try:
        learning_rate = parse_number(args.lr, "--lr")
    except NumberError as exc:
        raise InputError(str(exc)) from None
    if learning_rate <= 0:
        raise InputError(f"--lr must be positive, got {args.lr}; e.g. --lr 0.1")
    if not 1 <= args.digits <= 40:
        raise InputError(f"--digits must be between 1 and 40, got {args.digits}")
    worked = work_example(derive(arch), parameters, samples, learning_rate)
    write_output(example_document(worked, args.format, args.digits, **page), args.output,
                 args.force)
    return 0
