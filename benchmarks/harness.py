"""What every benchmark script here shares: the environment set before NumPy loads, timing a
step, printing times, and running each thread mode in a process of its own.

Import it before NumPy (``import harness`` from a script in this folder) and call
``prepare(threads, malloc)`` first: thread counts and OpenBLAS's kernel choice are fixed when
NumPy loads, glibc's malloc thresholds when the process starts.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

# PyTorch allocates fresh tensors every step; with NumPy's preallocated buffers in the same
# heap, glibc's malloc handed those allocations back to the system and faulted them in again
# (measured on the conv benchmark: net (b)'s torch step 2.4 ms in a process of its own,
# 3.5-3.9 ms once the NumPy implementations' buffers existed). Fixed thresholds make a torch
# step cost in a shared process what it costs alone; the NumPy steps allocate nothing. glibc
# reads them at start-up, hence the re-exec.
MALLOC = "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=536870912"


def has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return "avx512f" in cpuinfo.read()
    except OSError:
        return False


def prepare(threads: str | None = "1", malloc: bool = False) -> None:
    """Before NumPy loads: one BLAS thread for ``threads == "1"``, OpenBLAS's SkylakeX
    kernels on CPUs with AVX-512 (it picks Haswell's otherwise), and with ``malloc`` fixed
    glibc malloc thresholds (the process re-executes itself once to apply them)."""
    if threads == "1":
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    if malloc and "glibc.malloc" not in os.environ.get("GLIBC_TUNABLES", ""):
        tunables = os.environ.get("GLIBC_TUNABLES")
        os.environ["GLIBC_TUNABLES"] = f"{tunables}:{MALLOC}" if tunables else MALLOC
        os.execv(sys.executable, [sys.executable, *sys.argv])
    if has_avx512():
        os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")


def torch_threads(threads: str) -> None:
    """PyTorch on one thread too, when NumPy's BLAS is."""
    if threads != "1":
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def time_round(step, args, reps) -> float:
    """The mean time of ``reps`` calls of ``step(*args)``."""
    t0 = time.perf_counter()
    for _ in range(reps):
        step(*args)
    return (time.perf_counter() - t0) / reps


def fmt(seconds) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def environment() -> str:
    """The libraries and the settings a run measured under, in one line."""
    import numpy

    text = f"numpy {numpy.__version__}"
    try:
        import torch

        text += f", torch {torch.__version__} ({torch.get_num_threads()} thread(s))"
    except ImportError:
        pass
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "(unset)")
    return text + f", OPENBLAS_NUM_THREADS={blas}, " \
                  f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, " \
                  f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}"


def run_both(script, argv, header: str, table_row) -> int:
    """Run ``script`` once per thread mode ("1", "default"), each in a fresh process (threads
    are fixed when NumPy loads), with ``--json``; print the header, then each JSON row through
    ``table_row``, then each run's environment line."""
    print(header)
    for mode in ("1", "default"):
        rest, skip = [], False
        for a in argv:
            if skip or a.startswith("--threads="):
                skip = False
            elif a == "--threads":
                skip = True
            else:
                rest.append(a)
        cmd = [sys.executable, script, "--threads", mode, "--json", *rest]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.stderr.write(proc.stdout + proc.stderr)
            return proc.returncode
        env_line = [line for line in proc.stdout.splitlines() if line.startswith("# ")]
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                print(table_row(json.loads(line)), flush=True)
        if env_line:
            print(env_line[0])
    return 0
