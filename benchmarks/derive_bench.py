"""Derivation speed: width must not matter, depth must be linear, the CLI must start fast.

    python benchmarks/derive_bench.py [--rounds N]

Every figure is a median over rounds; the two widths are timed interleaved in one process.
Cold derivations: the per-architecture cache is cleared before each one.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symbackprop import engine
from symbackprop.spec import parse_arch


def cold_derive_seconds(arch) -> float:
    engine._derive_cached.cache_clear()
    start = time.perf_counter()
    engine.derive(arch)
    return time.perf_counter() - start


def width(rounds: int) -> dict:
    wide = parse_arch("784-128-10")
    small = parse_arch("4-3-2")
    cold_derive_seconds(small)  # warm SymPy's own caches of the rules once
    times = {"784-128-10": [], "4-3-2": []}
    for _ in range(rounds):
        times["784-128-10"].append(cold_derive_seconds(wide))
        times["4-3-2"].append(cold_derive_seconds(small))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"median_s": med, "ratio": med["784-128-10"] / med["4-3-2"]}


def depth(rounds: int, max_depth: int = 20) -> list[tuple[int, float]]:
    rows = []
    for layers in (1, 2, 5, 10, 15, max_depth):
        arch = parse_arch("-".join(["8"] + ["8:tanh"] * (layers - 1) + ["4:sigmoid"]))
        rows.append((layers, statistics.median(cold_derive_seconds(arch)
                                               for _ in range(max(1, rounds // 2)))))
    return rows


def wall(args: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "symbackprop", *args], cwd=ROOT, check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds

    w = width(rounds)
    print(f"Width (cold derive, median of {rounds}):")
    for name, seconds in w["median_s"].items():
        print(f"  {name:<12} {seconds * 1000:8.1f} ms")
    print(f"  ratio 784-128-10 / 4-3-2 = {w['ratio']:.2f}   (target <= 1.2)")

    print("Depth (layers with weights; cold derive, median):")
    rows = depth(rounds)
    for layers, seconds in rows:
        print(f"  {layers:>2} layers {seconds:7.2f} s   {seconds / layers * 1000:6.0f} ms/layer")
    print(f"  20 layers: {rows[-1][1]:.2f} s   (target < 5 s, linear)")

    print("Command line (wall clock, median):")
    help_s = wall(["--help"], rounds)
    derive_s = wall(["derive", "784-128:relu-10:softmax", "--loss", "cross_entropy"], rounds)
    print(f"  symbackprop --help                                           {help_s:6.3f} s"
          "   (target < 0.3 s)")
    print(f"  symbackprop derive 784-128:relu-10:softmax --loss cross_entropy {derive_s:6.3f} s"
          "   (target < 2 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
