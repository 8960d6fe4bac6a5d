"""``symbackprop verify``: prove the derivation against direct differentiation."""
from __future__ import annotations

from .common import add_arch_args, arch_from_args


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "verify", help="prove the derived gradients equal direct differentiation",
        description="Expand the whole cost at small concrete sizes, differentiate it directly "
                    "with respect to every weight and bias, and compare with the derived "
                    "equations at random rational points. Exit 1 if any entry differs.")
    add_arch_args(parser)
    parser.add_argument("--notation", choices=("ng", "rowvec"), default="ng")
    parser.add_argument("-m", "--examples", type=int, default=2, metavar="M",
                        help="number of examples in the expanded cost (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random points")
    parser.add_argument("--verbose", action="store_true", help="print every compared entry")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..errors import SpecError
    from ..verify import verify

    if args.examples < 1:
        raise SpecError(f"-m must be a positive number of examples, got {args.examples}")
    report = verify(arch_from_args(args), m=args.examples, seed=args.seed,
                    notation=args.notation)
    print(report)
    if args.verbose:
        for check in report.checks:
            print(f"  {check.name:<16} {check.method:<6} {check.derived}")
    return 0 if report.ok else 1
