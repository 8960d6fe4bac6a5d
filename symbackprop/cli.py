"""The ``symbackprop`` command line: one subcommand per module in ``symbackprop.commands``.

Bad input ends in one line on stderr naming what is wrong and what would be right, and exit
code 2; never a traceback.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import sys

# The commands, in the order ``--help`` lists them; each is symbackprop/commands/<name>.py.
COMMANDS = ("derive", "verify", "generate", "explain", "example")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the whole usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="symbackprop",
        description="Derive neural-network backpropagation symbolically, write it up, "
                    "and generate NumPy trainers from it.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"symbackprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"symbackprop.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"symbackprop.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def _unknown(parser, args, extra) -> str:
    """One line naming the subcommand, the first argument it does not take, and the nearest
    option it does take."""
    command = args.command
    sub = parser._subparsers._group_actions[0].choices[command]
    options = sorted({o for action in sub._actions for o in action.option_strings})
    first = extra[0]
    if not first.startswith("-"):
        return (f"symbackprop {command}: error: unexpected argument {first!r}; see "
                f"symbackprop {command} --help")
    close = difflib.get_close_matches(first.split("=")[0], options, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"see symbackprop {command} --help"
    return f"symbackprop {command}: error: unrecognized option {first}; {hint}"


def main(argv=None) -> int:
    """Run one command; every failure is one line on stderr and an exit code, never a
    traceback (2: bad input or an output that cannot be written; 130: interrupted)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        from .io import _silence_stdout

        _silence_stdout()
        return 0
    except OSError as exc:  # stdout or stderr themselves unwritable
        from .io import _silence_stdout

        _silence_stdout()
        _say(f"symbackprop: error: {exc.strerror or exc}")
        return 2


def _say(line: str) -> None:
    """A line on stderr, if stderr can take one."""
    try:
        if sys.stderr is not None:
            print(line, file=sys.stderr)
    except (OSError, ValueError):
        pass


def _main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:  # a bare command: the usage and the commands
        _say(parser.format_help().rstrip("\n"))
        return 2
    args, extra = parser.parse_known_args(argv)
    if extra:
        _say(_unknown(parser, args, extra))
        return 2
    from .commands.common import output_format
    from .errors import SymbackpropError

    if hasattr(args, "format"):
        args.format = output_format(args)
    try:
        return args.run(args) or 0
    except SymbackpropError as exc:
        _say(f"symbackprop {args.command}: error: {exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
