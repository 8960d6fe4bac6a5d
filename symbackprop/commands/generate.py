"""``symbackprop generate``: a standalone trainer module for an architecture (NumPy, or any
array-API library)."""
from __future__ import annotations

import keyword
import sys
from pathlib import Path

from ..codegen.options import BACKENDS, DTYPES, INITS, OPTIMIZERS
from .common import add_arch_args, add_output_args, arch_from_args


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "generate", help="write a NumPy trainer module (forward, gradients, Trainer, "
                         "a scikit-learn style Classifier or Regressor)",
        description="Generate a standalone NumPy module that trains the architecture with the "
                    "derived BP1-BP4: the functions, a Trainer (schedules, validation and early "
                    "stopping, divergence checks, exact resume), a Classifier or Regressor in "
                    "scikit-learn's conventions, and a command line.")
    add_arch_args(parser)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                        help="the Trainer's default optimizer (default: sgd)")
    parser.add_argument("--dtype", choices=DTYPES, default="float64",
                        help="the module's default floating-point type (default: float64)")
    parser.add_argument("--init", choices=list(INITS), default="he",
                        help="weight initialisation of init_params (default: he)")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy",
                        help="numpy: in place, NumPy alone; array-api: pure functions of the "
                             "arrays of any array-API library (PyTorch, CuPy, JAX, Dask; needs "
                             "array-api-compat) (default: numpy)")
    add_output_args(parser)
    parser.set_defaults(run=run)


# Packages a generated trainer imports (or may, when present), besides the standard library.
SHADOWED = frozenset({"numpy", "sklearn", "scipy", "torch", "array_api_compat", "symbackprop"})


def run(args) -> int:
    from ..errors import SymbackpropError
    from ..io import write_output

    if args.output is not None and str(args.output) != "-":
        stem = Path(args.output).stem
        if Path(args.output).suffix != ".py" or not stem.isidentifier() \
                or keyword.iskeyword(stem):
            raise SymbackpropError(
                f"the module name {stem!r} of {args.output!r} is not a valid Python "
                "identifier; name the file like my_trainer.py")
        if stem in SHADOWED or stem in sys.stdlib_module_names:
            what = f"the {stem} package the trainer imports" if stem in SHADOWED \
                else f"the standard library's {stem} module"
            raise SymbackpropError(f"a module named {stem!r} would shadow {what}; name the "
                                   "file like my_trainer.py")
    from ..codegen import generate
    from ..codegen.module import command_line

    arch = arch_from_args(args)
    name = Path(args.output).name if args.output not in (None, "-") else None
    command = command_line(arch, args.optimizer, args.dtype, args.init, name, args.backend)
    text = generate(arch, args.optimizer, args.dtype, args.init, command=command,
                    backend=args.backend)
    write_output(text, args.output, args.force)
    return 0
