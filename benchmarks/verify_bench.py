"""Proof speed: deep nets in seconds, cost at most quadratic in depth; image nets in seconds.

    python benchmarks/verify_bench.py [--rounds N] [--depths 2,4,8,16,20] [--no-cli]
                                      [--tables targets,images,depth]

Every figure is a median over rounds of a cold proof, each in a fresh Python process (no
derivation and no SymPy cache carried over): derive + lemmas + the random points, as
``symbackprop verify`` runs them (default sizes, m = 2, 2 points). Times are the CPU seconds of
the ``verify`` call, after the imports (wall time on a shared machine jumps with the
neighbours); the CLI line is the wall time of a whole ``symbackprop verify`` process, Python
start and imports included.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# Run in a fresh process: one cold proof, its CPU seconds and the report's own timings.
CHILD = """
import json, sys, time
from symbackprop.spec import parse_arch
from symbackprop.verify import verify
spec, loss = sys.argv[1], sys.argv[2]
arch = parse_arch(spec, loss)
start = time.process_time()
report = verify(arch)
cpu = time.process_time() - start
print(json.dumps({"ok": report.ok, "text": str(report), "cpu": cpu,
                  "checks": len(report.checks), "lemmas": len(report.lemmas),
                  "exact": report.count("exact"), "timings": report.timings}))
"""
TARGETS = [  # (spec, loss, target seconds)
    ("10-8:relu-8:relu-8:relu-6:relu-4:identity", "mse", 10),
    ("10-8:tanh-8:relu-8:sigmoid-6:relu-4:softmax", "cross_entropy", 15),
    ("4" + "-4:tanh" * 12 + "-4:relu" * 7 + "-3:softmax", "cross_entropy", 60),
    ("4" + "-4:gelu" * 10 + "-4:mish" * 9 + "-3:silu", "log_cosh", 60),
]
IMAGES = [  # (spec, loss, target seconds): conv, max and average pooling, flatten, dense
    ("1x4x4-conv2k3s2p1:tanh-avgpool2s1-flatten-3:sigmoid", "mse", 5),
    ("1x4x4-conv2k3s2p1:relu-maxpool2s1-flatten-2:softmax", "cross_entropy", 5),
    ("2x4x4-conv2k3s2p1:relu-maxpool2s1-flatten-2:softmax", "cross_entropy", 5),
    ("1x6x6-conv2k3:relu-maxpool2-conv2k2:tanh-flatten-3:softmax", "cross_entropy", 5),
    ("1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax", "cross_entropy", 15),
]
SCALING = {  # name -> spec of depth L (L layers with weights)
    "relu + identity, mse": lambda L: "4" + "-4:relu" * (L - 1) + "-3:identity",
    "tanh + softmax, cross_entropy": lambda L: "4" + "-4:tanh" * (L - 1) + "-3:softmax",
}
SCALING_LOSS = {"relu + identity, mse": "mse",
                "tanh + softmax, cross_entropy": "cross_entropy"}


def cold_proof(spec, loss) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, spec, loss], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    out = json.loads(done.stdout)
    if not out["ok"]:
        raise SystemExit(f"not proven: {out['text']}")
    t = out["timings"]
    parts = {"derive": t["derive"], "lemmas": t["lemmas"],
             "points": sum(v for k, v in t.items() if k.startswith("point"))}
    return {"cpu": out["cpu"], "checks": out["checks"], "lemmas": out["lemmas"],
            "exact": out["exact"], **parts}


def median_proof(spec, loss, rounds) -> dict:
    runs = [cold_proof(spec, loss) for _ in range(rounds)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def cli_seconds(spec, loss) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "symbackprop", "verify", spec, "--loss", loss],
                   cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def table(rows, rounds) -> None:
    print("| net | loss | depth | verify (s) | derive | lemmas | points | checks | target (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for spec, loss, target in rows:
        r = median_proof(spec, loss, rounds)
        name = spec if len(spec) < 64 else f"{spec[:24]}… ({spec.count('-')} layers)"
        print(f"| `{name}` | {loss} | {spec.count('-')} | {r['cpu']:.2f} | {r['derive']:.2f} | "
              f"{r['lemmas']:.2f} | {r['points']:.2f} | {r['checks']} | < {target} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depths", default="2,4,8,16,20,32")
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--tables", default="targets,images,depth",
                        help="which tables to measure, comma-separated")
    args = parser.parse_args()
    depths = [int(x) for x in args.depths.split(",")]
    tables = set(args.tables.split(","))

    if "targets" in tables:
        print(f"## Targets (median of {args.rounds}, CPU seconds)\n")
        table(TARGETS, args.rounds)
        if not args.no_cli:
            spec, loss, _ = TARGETS[0]
            wall = statistics.median(cli_seconds(spec, loss) for _ in range(args.rounds))
            print(f"\n`symbackprop verify {spec} --loss {loss}`, whole process: {wall:.2f} s "
                  "wall")
    if "images" in tables:
        print(f"\n## Image networks (median of {args.rounds}, CPU seconds)\n")
        table(IMAGES, args.rounds)
        if not args.no_cli:
            spec, loss, _ = IMAGES[-1]
            wall = statistics.median(cli_seconds(spec, loss) for _ in range(args.rounds))
            print(f"\n`symbackprop verify {spec} --loss {loss}`, whole process: {wall:.2f} s "
                  "wall")
    if "depth" not in tables:
        return
    print(f"\n## Depth (median of {args.rounds}, CPU seconds)\n")
    print("| net | " + " | ".join(f"L = {L}" for L in depths) + " | exponent |")
    print("|---|" + "---|" * (len(depths) + 1))
    for name, make in SCALING.items():
        times = [median_proof(make(L), SCALING_LOSS[name], args.rounds)["cpu"] for L in depths]
        # Slope of log(time) against log(depth) over the deeper half: 1 linear, 2 quadratic.
        half = len(depths) // 2
        slope = (math.log(times[-1]) - math.log(times[half])) / \
            (math.log(depths[-1]) - math.log(depths[half]))
        print(f"| {name} | " + " | ".join(f"{t:.2f}" for t in times) + f" | {slope:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
