"""One module per CLI command, each with ``add_parser(subparsers)``; run functions import lazily.

Command modules must not import SymPy at module level: ``symbackprop --help`` imports them all.
"""
