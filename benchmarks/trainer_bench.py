"""Time one training step of generated trainers against hand-written NumPy and PyTorch eager.

    python benchmarks/trainer_bench.py [--rounds 15] [--quick]

One step is what ``Trainer.fit`` runs per batch (``Trainer._step``, shuffle=False, data already
validated): forward pass, cost, gradients, plain SGD update. The three implementations run
interleaved in one process, round by round, and each cell is the median over rounds of the mean
step time within a round. Environment, set before NumPy is imported unless already set:
OPENBLAS_NUM_THREADS=1 (2-thread BLAS on small GEMMs is bimodal here) and, on CPUs with
AVX-512, OPENBLAS_CORETYPE=SkylakeX (OpenBLAS otherwise picks its Haswell kernels). PyTorch runs
with torch.set_num_threads(1) to match.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # before NumPy: threads, OpenBLAS kernels

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
harness.prepare(threads=None)

import argparse
import statistics
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference import Reference

# (label, architecture, loss, batch size, reference hidden activation, reference head)
NETS = [
    ("2-3-1 sigmoid mse", "2-3:sigmoid-1:sigmoid", "mse", 5, "sigmoid", "sigmoid_mse"),
    ("64-32-10 relu/softmax CE", "64-32:relu-10:softmax", "cross_entropy", 32, "relu",
     "softmax_ce"),
    ("784-128-10 relu/softmax CE", "784-128:relu-10:softmax", "cross_entropy", 128, "relu",
     "softmax_ce"),
    ("1024-1024-1024-10 relu/softmax CE", "1024-1024:relu-1024:relu-10:softmax",
     "cross_entropy", 256, "relu", "softmax_ce"),
    ("256+8x256 tanh-10 softmax CE", "-".join(["256"] + ["256:tanh"] * 8 + ["10:softmax"]),
     "cross_entropy", 64, "tanh", "softmax_ce"),
]


def load_generated(arch_text, loss):
    from symbackprop.codegen import generate
    from symbackprop.spec import parse_arch

    source = generate(parse_arch(arch_text, loss))
    module = types.ModuleType("generated_trainer")
    exec(compile(source, f"<generated {arch_text}>", "exec"), module.__dict__)  # noqa: S102
    return module


def make_data(sizes, loss, m, dtype, rng):
    X = rng.standard_normal((m, sizes[0])).astype(dtype)
    if loss == "cross_entropy":
        Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], m)]
    else:
        Y = rng.uniform(0, 1, (m, sizes[-1])).astype(dtype)
    return X, Y


def torch_step_factory(params, sizes, hidden, head, lr, dtype, X, Y):
    import torch

    torch.set_num_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    layers = []
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    for l in range(1, len(sizes)):
        lin = torch.nn.Linear(sizes[l - 1], sizes[l]).to(tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(params[f"W{l}"].astype(dtype)))
            lin.bias.copy_(torch.from_numpy(params[f"b{l}"].astype(dtype)))
        layers.append(lin)
        if l < len(sizes) - 1:
            layers.append(acts[hidden]())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    tX = torch.from_numpy(X)
    if head == "softmax_ce":
        target = torch.from_numpy(Y.argmax(axis=1))
        loss_fn = torch.nn.functional.cross_entropy

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(tX), target)
            loss.backward()
            opt.step()
            return loss.item()
    else:
        target = torch.from_numpy(Y)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(torch.sigmoid(model(tX)), target)
            loss.backward()
            opt.step()
            return loss.item()
    return step




def bench_net(net, dtype, rounds, budget, use_torch, with_gemm=False):
    """Median step times; medians of per-round ratios generated/other; with ``with_gemm``,
    the step's np.dot calls alone run interleaved too (the GEMM-bound fraction)."""
    label, arch_text, loss, m, hidden, head = net
    module = load_generated(arch_text, loss)
    sizes = module.ARCH["sizes"]
    rng = np.random.default_rng(0)
    params = module.init_params(seed=0, dtype=dtype)
    X, Y = make_data(sizes, loss, m, dtype, rng)
    lr = 0.01
    trainer = module.Trainer(params, lr=lr, batch_size=m, dtype=dtype)
    X, Y = module._check(X, Y, dtype)  # what fit does once, before its steps
    ref = Reference(params, sizes, hidden, head, m, lr, dtype)
    ref_t = Reference(params, sizes, hidden, head, m, lr, dtype, transposed=True)
    # Same cost from all implementations on the first step (same math, same parameters).
    j_gen, j_ref, j_ref_t = trainer._step(X, Y), ref.step(X, Y), ref_t.step(X, Y)
    assert abs(j_gen - j_ref) <= 1e-3 * max(1.0, abs(j_ref)), (label, j_gen, j_ref)
    assert abs(j_ref_t - j_ref) <= 1e-3 * max(1.0, abs(j_ref)), (label, j_ref_t, j_ref)
    impls = {"generated": (trainer._step, (X, Y)), "reference": (ref.step, (X, Y)),
             "reference Wt": (ref_t.step, (X, Y))}
    if use_torch:
        tstep = torch_step_factory(params, sizes, hidden, head, lr, dtype, X, Y)
        j_torch = tstep()
        assert abs(j_torch - j_gen) <= 1e-3 * max(1.0, abs(j_gen)) or head != "softmax_ce", \
            (label, j_torch, j_gen)
        impls["torch"] = (tstep, ())
    if with_gemm:
        run, flops = gemm_calls(arch_text, loss, m, dtype)
        impls["gemm"] = (run, ())
    # Warm up and pick repetitions so that a round of one implementation takes ~budget s.
    per = {}
    for name, (fn, a) in impls.items():
        harness.time_round(fn, a, 3)
        per[name] = harness.time_round(fn, a, 5)
    reps = {name: max(3, int(budget / max(t, 1e-7))) for name, t in per.items()}
    samples = {name: [] for name in impls}
    names = list(impls)
    for k in range(rounds):
        # Alternate the order so that no implementation always runs first in a round.
        for name in (names if k % 2 == 0 else names[::-1]):
            fn, a = impls[name]
            samples[name].append(harness.time_round(fn, a, reps[name]))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    # Ratios are medians of per-round ratios: both sides of a ratio ran back to back.
    ratios = {name: statistics.median(g / o for g, o in zip(samples["generated"], v))
              for name, v in samples.items() if name != "generated"}
    # the reference is the faster orientation, round by round
    ratios["best"] = statistics.median(
        g / min(a, b) for g, a, b in zip(samples["generated"], samples["reference"],
                                         samples["reference Wt"]))
    if with_gemm:
        medians["gemm_flops"] = flops
    return medians, ratios


def gemm_calls(arch_text, loss, m, dtype):
    """The np.dot calls of one step at their exact shapes and layouts, and their FLOPs."""
    from symbackprop.spec import parse_arch

    sizes = parse_arch(arch_text, loss).sizes
    rng = np.random.default_rng(1)
    calls = []
    for l in range(1, len(sizes)):
        n_in, n_out = sizes[l - 1], sizes[l]
        A = rng.standard_normal((m, n_in)).astype(dtype)
        W = rng.standard_normal((n_out, n_in)).astype(dtype)
        Z = np.empty((m, n_out), dtype)
        dW = np.empty((n_out, n_in), dtype)
        calls.append((A, W.T, Z))  # forward: Z = A_prev @ W.T
        calls.append((Z.T, A, dW))  # BP1: dW = dZ.T @ A_prev
        if l > 1:
            calls.append((Z, W, np.empty((m, n_in), dtype)))  # BP3: dA_prev = dZ @ W
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in calls)

    def run():
        for a, b, out in calls:
            np.dot(a, b, out)
    return run, flops


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--budget", type=float, default=0.005,
                        help="seconds per implementation per round")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--nets", default="", help="comma-separated indices of NETS to run")
    args = parser.parse_args(argv)
    try:
        import torch
        use_torch = not args.no_torch
    except ImportError:
        use_torch = False
    import numpy

    env = {k: os.environ.get(k, "") for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")}
    print(f"numpy {numpy.__version__}; " + "; ".join(f"{k}={v or '(unset)'}"
                                                     for k, v in env.items()))
    if use_torch:
        import torch

        torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    chosen = [NETS[int(i)] for i in args.nets.split(",")] if args.nets else NETS
    header = ("| net | m | dtype | generated | hand, W stored | hand, Wᵀ stored | torch eager "
              "| gen/best hand | gen/torch |")
    print(header)
    print("|---|---|---|---|---|---|---|---|---|")
    wide = None
    for net in chosen:
        for dtype in (np.float32, np.float64):
            wide_net = net[1].startswith("1024-")
            res, ratios = bench_net(net, dtype, args.rounds, args.budget, use_torch, wide_net)
            g, r = res["generated"], res["reference"]
            t = res.get("torch")
            row = (f"| {net[0]} | {net[3]} | {np.dtype(dtype).name} | {fmt(g)} | {fmt(r)} | "
                   f"{fmt(res['reference Wt'])} | "
                   f"{fmt(t) if t else 'n/a'} | {ratios['best']:.3f} | "
                   f"{format(ratios['torch'], '.3f') if t else 'n/a'} |")
            print(row, flush=True)
            if wide_net:
                wide = wide or {}
                wide[np.dtype(dtype).name] = (res["gemm_flops"], res["gemm"], 1 / ratios["gemm"])
    for name, (flops, gemm, fraction) in (wide or {}).items():
        print(f"wide net {name}: GEMMs need {flops / 1e9:.3f} GFLOP per step; np.dot at these "
              f"shapes runs at {flops / gemm / 1e9:.0f} GFLOP/s ({fmt(gemm)}), so the GEMMs "
              f"alone are {fraction:.1%} of the generated step")
    return 0


def fmt(seconds):
    """Times to 0.1 µs: the small nets' steps are a few µs apart."""
    if seconds >= 1e-3:
        return harness.fmt(seconds)
    return f"{seconds * 1e6:.1f} µs"


if __name__ == "__main__":
    raise SystemExit(main())
