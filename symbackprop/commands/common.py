"""Arguments several commands share: the architecture, the loss, the output file."""
from __future__ import annotations

# The output formats of the commands that write documents: derive, explain, example.
FORMATS = ("text", "latex", "markdown")


def _arch_help() -> str:
    """ARCH's help, the layer tokens from the kinds' own syntax."""
    from ..kinds import IMAGE_KINDS, SEQUENCE_KINDS
    from ..spec import EXAMPLE_IMAGE, EXAMPLE_SEQUENCE

    def tokens(kinds):
        return ", ".join(kind.syntax.split(": ")[0] for kind in kinds.values())
    return ("sizes joined by '-', each layer after the input optionally ':activation' "
            "(e.g. 2-3-1, 784-128:relu-10:softmax); an image network: CxHxW, then "
            f"{tokens(IMAGE_KINDS)}, dense layers (e.g. {EXAMPLE_IMAGE}); a recurrent "
            f"network: seq{{T}}x{{n}}, then {tokens(SEQUENCE_KINDS)}, dense layers (e.g. "
            f"{EXAMPLE_SEQUENCE}); or a .json/.toml spec file").replace("%", "%%")


def add_arch_args(parser) -> None:
    parser.add_argument("arch", metavar="ARCH", help=_arch_help())
    parser.add_argument(
        "--loss", default=None, metavar="NAME[=EXPR]",
        help="half_sse (default), mse, bce (sigmoid outputs), cross_entropy (softmax outputs), "
             "huber, log_cosh; or NAME=EXPR to define a loss per output unit in a and y "
             "(e.g. 'pseudo_huber=sqrt(1 + (a - y)**2) - 1') and use it")
    parser.add_argument(
        "--activation", action="append", default=[], metavar="NAME=EXPR",
        help="define an activation in z usable in ARCH, e.g. 'swish=z*sigmoid(z)' "
             "(repeatable)")
    parser.add_argument(
        "--l2", default=None, metavar="LAMBDA",
        help="L2 penalty (LAMBDA/2m) sum_l ||W[l]||^2 added to the cost (biases not "
             "penalised); default 0, or the spec file's l2")


def arch_from_args(args):
    from ..spec import definition_from_text, resolve_arch

    definitions = [definition_from_text("activation", text) for text in args.activation]
    loss = args.loss
    if loss is not None and "=" in loss:
        definitions.append(definition_from_text("loss", loss))
        loss = definitions[-1].name
    return resolve_arch(args.arch, loss, tuple(definitions), args.l2)


# The format a file name asks for when --format is not given; anything else is text.
FORMAT_OF_SUFFIX = {".tex": "latex", ".latex": "latex", ".md": "markdown",
                    ".markdown": "markdown", ".txt": "text"}


def output_format(args) -> str:
    """--format, or else the one the -o file's extension names (text for stdout)."""
    if getattr(args, "format", None) is not None:
        return args.format
    output = getattr(args, "output", None)
    if output is None or output == "-":
        return "text"
    from pathlib import Path

    return FORMAT_OF_SUFFIX.get(Path(output).suffix.lower(), "text")


def add_output_args(parser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write to FILE instead of stdout (atomically; a device or FIFO "
                             "such as /dev/stdout is written through); without --format, "
                             "FILE's extension picks it (.tex, .md, .txt)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
