"""``symbackprop verify``: prove the derivation against direct differentiation."""
from __future__ import annotations

import sys
import time

from .common import add_arch_args, arch_from_args

MAX_EXAMPLES = 64  # as verify.MAX_EXAMPLES; here so that --help does not import SymPy
MAX_POINTS = 10
QUIET_SECONDS = 2.0  # progress lines start once the proof has run this long
INTERVAL = 1.0  # and come at most once in this many seconds


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "verify", help="prove the derived gradients equal direct differentiation",
        description="At small concrete sizes, prove each layer's equations as symbolic "
                    "identities against SymPy's differentiation of the registry's expressions, "
                    "and compare every derived entry of the whole network with forward-mode "
                    "differentiation of the cost at random rational points (exact rational "
                    "arithmetic, or 100-digit arithmetic agreeing to 50 digits where values "
                    "are transcendental). Image networks: every conv, pooling and flatten "
                    "equation's entry formula is evaluated at the spec's feature-map sizes (at "
                    "most 3 channels) and compared with the network expanded from the "
                    "definitions (zero padding, a real max over each pooling window). "
                    "Recurrent networks: at most 3 time steps, 3 features and 3 hidden "
                    "units, the rnn layer's entry formulas evaluated step by step (the "
                    "recurrence forward in time, BPTT backward in time) against the recurrence "
                    "unrolled from H_{-1} = 0 and differentiated directly. Exit 1 "
                    "if anything differs. Progress goes to stderr once the proof has run for "
                    "2 s.")
    add_arch_args(parser)
    parser.add_argument("--notation", choices=("ng", "rowvec"), default="ng")
    parser.add_argument("-m", "--examples", type=int, default=2, metavar="M",
                        help=f"number of examples (default 2, at most {MAX_EXAMPLES})")
    parser.add_argument("--points", type=int, default=2, metavar="N",
                        help=f"random points to compare at (default 2, at most {MAX_POINTS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random points")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON (verdict, sizes, method and precision, "
                             "every check and lemma, timings)")
    parser.add_argument("--verbose", action="store_true", help="print every compared entry")
    parser.set_defaults(run=run)


class _Progress:
    """Lines on stderr, once the proof has run QUIET_SECONDS, at most one an INTERVAL."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.monotonic()
        self.last = None

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self.start < QUIET_SECONDS or (self.last is not None and now - self.last < INTERVAL):
            return
        self.last = now
        print(f"verify: {text} ...", file=self.stream, flush=True)


def run(args) -> int:
    from ..errors import SpecError

    if not 1 <= args.examples <= MAX_EXAMPLES:
        raise SpecError(f"-m must be a positive number of examples, at most {MAX_EXAMPLES} "
                        f"(the equations do not depend on m; 2 shows the sums over examples), "
                        f"got {args.examples}")
    if not 1 <= args.points <= MAX_POINTS:
        raise SpecError(f"--points must be between 1 and {MAX_POINTS}, got {args.points}")
    arch = arch_from_args(args)
    from ..verify import verify

    report = verify(arch, m=args.examples, seed=args.seed, notation=args.notation,
                    points=args.points, progress=_Progress())
    if args.json:
        import json

        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(report)
        if args.verbose:
            import sympy as sp

            for lemma in report.lemmas:
                print(f"  lemma {lemma.lhs:<16} {lemma.equation:<8} {lemma.method}")
            for check in report.checks:
                print(f"  {check.name:<16} {check.equation:<8} {check.method:<6} "
                      f"{sp.N(check.derived, 20)}")
    return 0 if report.ok else 1
