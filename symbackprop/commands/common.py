"""Arguments several commands share: the architecture, the loss, the output file."""
from __future__ import annotations

# The output formats of the commands that write documents: derive, explain, example.
FORMATS = ("text", "latex", "markdown")


def add_arch_args(parser) -> None:
    parser.add_argument(
        "arch", metavar="ARCH",
        help="sizes joined by '-', each layer after the input optionally ':activation' "
             "(e.g. 2-3-1, 784-128:relu-10:softmax), or a .json/.toml spec file")
    parser.add_argument(
        "--loss", default=None,
        help="half_sse (default), mse, bce (sigmoid outputs), cross_entropy (softmax outputs)")


def arch_from_args(args):
    from ..spec import resolve_arch

    return resolve_arch(args.arch, args.loss)


def add_output_args(parser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write to FILE instead of stdout (atomically)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
