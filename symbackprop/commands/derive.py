"""``symbackprop derive``: the backpropagation equations of an architecture."""
from __future__ import annotations

from .common import add_arch_args, add_output_args, arch_from_args

FORMATS = ("text", "latex", "markdown")


def add_parser(sub) -> None:
    parser = sub.add_parser("derive", help="derive BP1-BP4 for an architecture and print them",
                            description="Derive the backpropagation equations by the chain rule.")
    add_arch_args(parser)
    parser.add_argument("--format", choices=FORMATS, default="text")
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..engine import derive
    from ..io import write_output
    from ..printing.text import derivation_text

    arch = arch_from_args(args)
    if args.format != "text":
        from ..errors import SymbackpropError

        raise SymbackpropError(f"format {args.format!r} is not available yet; use --format text")
    write_output(derivation_text(derive(arch)), args.output, args.force)
    return 0
