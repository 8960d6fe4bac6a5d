"""Time one training step of the array-API trainer against torch eager, on the same device.

    python benchmarks/array_api_bench.py [--rounds 15] [--quick] [--threads 1|default]

One step is one SGD update on one batch: forward pass, cost, every gradient, the update. Per
net, interleaved round by round in one process: the NumPy module's Trainer step (in place);
the array-API module's pure step on NumPy arrays (through array-api-compat) and on PyTorch CPU
tensors; torch eager (nn.Linear layers, autograd, torch.optim.SGD) on the CPU; and, when
torch.cuda finds a device, the array-API step on CUDA tensors and torch eager on CUDA (with
torch.cuda.synchronize() closing each round). Each cell is the median over rounds of the mean
step time within a round; ratios are medians of the per-round ratios.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # before NumPy: threads, OpenBLAS kernels

THREADS = "default" if "--threads=default" in sys.argv or (
    "--threads" in sys.argv and sys.argv[sys.argv.index("--threads") + 1] == "default") else "1"
harness.prepare(threads=THREADS)

import argparse
import statistics
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (label, architecture, batch size, the torch model doing the same step: MODELS)
NETS = [
    ("64-32-10 relu/softmax CE", "64-32:relu-10:softmax", 32, "dense"),
    ("784-128-10 relu/softmax CE (mnist)", "784-128:relu-10:softmax", 128, "dense"),
    ("1024-1024-1024-10 relu/softmax CE (wide)", "1024-1024:relu-1024:relu-10:softmax", 256,
     "dense"),
    ("1x8x8 conv16k3p1 relu, maxpool2, 10 softmax CE (cnn)",
     "1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax", 64, "cnn"),
    ("seq8x8 rnn64 tanh, 10 softmax CE (rnn)", "seq8x8-rnn64:tanh-10:softmax", 64, "rnn"),
]


def _dense(torch, params):
    n = len(params) // 2
    sizes = [params["W1"].shape[1]] + [params[f"W{l}"].shape[0] for l in range(1, n + 1)]
    layers = []
    for l in range(1, len(sizes)):
        layers.append(torch.nn.Linear(sizes[l - 1], sizes[l]))
        if l < len(sizes) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers), [params[f"{k}{l}"] for l in range(1, n + 1)
                                          for k in "Wb"]


def _cnn(torch, params):
    F, C, K = params["W1"].shape[:3]
    model = torch.nn.Sequential(torch.nn.Conv2d(C, F, K, padding=1), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(params["W4"].shape[1], params["W4"].shape[0]))
    return model, [params[k] for k in ("W1", "b1", "W4", "b4")]


class _LastState:
    """torch.nn.RNN (batch first, tanh) and a Linear head on the last state."""

    def __init__(self, torch, n, H, n_out):
        self.rnn = torch.nn.RNN(n, H, batch_first=True)
        self.head = torch.nn.Linear(H, n_out)

    def parameters(self):
        return [*self.rnn.parameters(), *self.head.parameters()]

    def to(self, **kwargs):
        self.rnn.to(**kwargs)
        self.head.to(**kwargs)
        return self

    def __call__(self, X):
        out, _ = self.rnn(X)
        return self.head(out[:, -1])


def _rnn(torch, params):
    H, n = params["W1"].shape
    model = _LastState(torch, n, H, params["W2"].shape[0])
    zero = np.zeros_like(params["b1"])  # torch's two biases: b1 and 0
    return model, [params["W1"], params["U1"], params["b1"], zero, params["W2"], params["b2"]]


# how each kind of net is built in torch: (model, the values of its parameters in its order)
MODELS = {"dense": _dense, "cnn": _cnn, "rnn": _rnn}


def load(arch_text, backend):
    from symbackprop.codegen import generate
    from symbackprop.spec import parse_arch

    source = generate(parse_arch(arch_text, "cross_entropy"), backend=backend)
    module = types.ModuleType(f"trainer_{backend}")
    exec(compile(source, f"<{arch_text} {backend}>", "exec"), module.__dict__)  # noqa: S102
    return module


def torch_eager(kind, params, X, Y, lr, device):
    """The same step in torch eager: its layers (MODELS), cross-entropy, autograd, SGD."""
    import torch

    model, values = MODELS[kind](torch, params)
    model = model.to(device=device, dtype=torch.float32)
    with torch.no_grad():
        for p, value in zip(model.parameters(), values, strict=True):
            p.copy_(torch.asarray(value))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    tX = torch.asarray(X, device=device)
    target = torch.asarray(Y.argmax(axis=1), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(tX), target)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


def functional(module, params, X, Y, lr, xp, device=None):
    """The array-API module's pure step, its parameters carried from step to step."""
    state = {"P": {k: xp.asarray(v, device=device) for k, v in params.items()}}
    tX, tY = xp.asarray(X, device=device), xp.asarray(Y, device=device)

    def step():
        J, state["P"] = module.train_step(state["P"], tX, tY, lr)
        return J
    return step


def bench(net, rounds, budget):
    import torch
    from array_api_compat import array_namespace

    harness.torch_threads(THREADS)
    label, arch_text, m, kind = net
    numpy_module, xp_module = load(arch_text, "numpy"), load(arch_text, "array-api")
    params = numpy_module.init_params(seed=0, dtype=np.float32)
    rng = np.random.default_rng(0)
    arch = numpy_module.ARCH
    dims = arch.get("image") or arch.get("sequence") or (arch["sizes"][0],)
    X = rng.standard_normal((m, *dims)).astype(np.float32)
    Y = np.eye(arch["sizes"][-1], dtype=np.float32)[rng.integers(0, arch["sizes"][-1], m)]
    trainer = numpy_module.Trainer({k: v.copy() for k, v in params.items()}, lr=0.01,
                                   batch_size=m, dtype="float32")
    Xc, Yc = numpy_module._check(X, Y, trainer.dtype)
    steps = {
        "numpy module": lambda: trainer._step(Xc, Yc),
        "array-api on numpy": functional(xp_module, params, X, Y, 0.01,
                                         array_namespace(np.empty(0))),
        "array-api on torch cpu": functional(xp_module, params, X, Y, 0.01,
                                             array_namespace(torch.empty(0))),
        "torch eager cpu": torch_eager(kind, params, X, Y, 0.01, "cpu"),
    }
    sync = {}
    if torch.cuda.is_available():
        steps["array-api on cuda"] = functional(xp_module, params, X, Y, 0.01,
                                                array_namespace(torch.empty(0)), "cuda")
        steps["torch eager cuda"] = torch_eager(kind, params, X, Y, 0.01, "cuda")
        sync = {"array-api on cuda": torch.cuda.synchronize,
                "torch eager cuda": torch.cuda.synchronize}
    # the same step: the first costs agree (float32)
    first = {name: float(steps[name]()) for name in ("array-api on torch cpu", "torch eager cpu")}
    if abs(first["array-api on torch cpu"] - first["torch eager cpu"]) \
            > 1e-4 * abs(first["torch eager cpu"]):
        raise SystemExit(f"{label}: torch eager computes another cost: {first}")
    reps = {}
    for name, step in steps.items():  # warm up, and pick repetitions filling the budget
        for _ in range(3):
            step()
        sync.get(name, lambda: None)()
        t = harness.time_round(step, (), 5)
        reps[name] = max(3, int(budget / max(t, 1e-7)))
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            done = sync.get(name, lambda: None)
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                step()
            done()
            times[name].append((time.perf_counter() - t0) / reps[name])
    medians = {name: statistics.median(ts) for name, ts in times.items()}

    def ratio(a, b):
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    ratios = {"array-api torch cpu / torch eager cpu": ratio("array-api on torch cpu",
                                                              "torch eager cpu"),
              "array-api numpy / numpy module": ratio("array-api on numpy", "numpy module")}
    if "torch eager cuda" in times:
        ratios["array-api cuda / torch eager cuda"] = ratio("array-api on cuda",
                                                            "torch eager cuda")
    return label, medians, ratios


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 rounds, a small budget")
    parser.add_argument("--threads", choices=["1", "default"], default="1")
    args = parser.parse_args(argv)
    rounds, budget = (5, 0.02) if args.quick else (args.rounds, 0.1)
    print(f"float32, one SGD step, medians of {rounds} interleaved rounds "
          f"(threads: {THREADS})")
    for net in NETS:
        label, medians, ratios = bench(net, rounds, budget)
        print(f"\n{label}")
        for name, t in medians.items():
            print(f"  {name:28s} {harness.fmt(t)}")
        for name, r in ratios.items():
            print(f"  {name:40s} {r:.2f}x")
    print("# " + harness.environment())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
