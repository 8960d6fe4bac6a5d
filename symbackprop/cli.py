"""The ``symbackprop`` command line: one subcommand per module in ``symbackprop.commands``.

Bad input ends in one line on stderr naming what is wrong and what would be right, and exit
code 2; never a traceback.
"""
from __future__ import annotations

import argparse
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import SymbackpropError

    try:
        return args.run(args) or 0
    except SymbackpropError as exc:
        print(f"symbackprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
