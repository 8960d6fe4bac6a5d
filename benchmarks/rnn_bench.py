"""Time a recurrent (Elman RNN) training step built from symbackprop's rnn kernels against PyTorch.

    python benchmarks/rnn_bench.py --generated          # both thread modes, both nets (~5 min)
    python benchmarks/rnn_bench.py --threads 1 --nets a --rounds 11

One step: forward pass through the recurrence, a dense softmax head on the last state,
softmax cross-entropy cost, every parameter gradient (backpropagation through time; none for
the input), plain SGD update. ``RNNReference`` assembles it by hand from the kernels of
``symbackprop.codegen.rnn_kernels`` (exec'd from ``source(name)``, as a generated trainer
carries them) and a dense softmax head in the style of ``reference.py``; PyTorch eager does
the same step (torch.nn.RNN(batch_first=True, nonlinearity="tanh"), nn.Linear on the last
state, F.cross_entropy, backward, optim.SGD). Both start from the same parameters (torch's
second bias b_hh at zero, its b_ih ours); the script checks that their first costs and the
parameters after one step agree, then runs them interleaved round by round and reports
medians of the per-round mean step times and the median of the per-round ratios.
``--generated`` adds the trainer symbackprop generates for the same net (``Trainer._step``,
from the same parameters) as a third column.

Threads are decided before NumPy is imported: ``--threads 1`` sets OPENBLAS_NUM_THREADS=1
and torch.set_num_threads(1); ``--threads default`` leaves both libraries their defaults;
``--threads both`` (the default) runs this script once per mode in fresh processes. On CPUs
with AVX-512, OPENBLAS_CORETYPE=SkylakeX is set unless the environment sets it (OpenBLAS
otherwise picks Haswell kernels). The script re-executes itself once with glibc's malloc
thresholds fixed (``MALLOC``), as ``conv_bench.py`` does and for the same reason.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", choices=("1", "default", "both"), default="both")
    parser.add_argument("--nets", default="a,b", help="comma-separated: a, b")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--budget", type=float, default=0.15,
                        help="seconds per implementation per round")
    parser.add_argument("--gap", type=float, default=None,
                        help="seconds of sleep before each implementation's turn in a round "
                             "(default 0.3 with --threads default, else 0)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-malloc-tuning", action="store_true",
                        help="leave glibc's malloc thresholds as they are (see MALLOC)")
    parser.add_argument("--generated", action="store_true",
                        help="time symbackprop's generated trainer of each net too")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


ARGS = _parse() if __name__ == "__main__" else None
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # before NumPy: threads, OpenBLAS kernels, malloc thresholds

if ARGS is not None:
    harness.prepare(ARGS.threads, malloc=not ARGS.no_malloc_tuning)

import statistics
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symbackprop.codegen import rnn_kernels

# A net: sequences of T steps of n features, an Elman layer of H tanh units passing on its
# last state, a dense softmax head of ``classes`` units; m examples a batch.
NETS = {
    "a": {"spec": "seq8x8-rnn64:tanh-10:softmax", "T": 8, "n": 8, "H": 64, "classes": 10,
          "m": 32},
    "b": {"spec": "seq50x16-rnn128:tanh-10:softmax", "T": 50, "n": 16, "H": 128,
          "classes": 10, "m": 64},
}


def load_kernels():
    """The rnn kernels exec'd from their source, in a namespace holding only ``np`` (as in a
    generated trainer)."""
    namespace = {"np": np}
    for name in rnn_kernels.needed(rnn_kernels.KERNELS):
        exec(compile(rnn_kernels.source(name), f"<{name}>", "exec"), namespace)  # noqa: S102
    return types.SimpleNamespace(**{k: v for k, v in namespace.items() if k != "np"})


def param_shapes(net):
    n, H, k = net["n"], net["H"], net["classes"]
    return {"W1": (H, n), "U1": (H, H), "b1": (H,), "W2": (k, H), "b2": (k,)}


def init_params(net, seed, dtype):
    """PyTorch's defaults for nn.RNN and nn.Linear: every entry U(-1/sqrt(fan), 1/sqrt(fan)),
    fan = H for the recurrent layer, H for the head (its fan-in)."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(net["H"])
    return {name: rng.uniform(-bound, bound, shape).astype(dtype)
            for name, shape in param_shapes(net).items()}


class RNNReference:
    """A hand-assembled training step of an Elman RNN with a softmax head (see NETS).

    Parameters and gradients are views into two flat vectors (the SGD update is one call);
    the learning rate over m is folded into the output error, so the recurrent gradients
    carry it. Buffers are preallocated for batches of m; the forward's scratch S doubles as
    the backward's dH.
    """

    def __init__(self, net, params, m, lr, dtype=np.float64, kernels=None):
        self.k = kernels or load_kernels()
        shapes = param_shapes(net)
        total = sum(int(np.prod(s)) for s in shapes.values())
        self.theta, self.grad = np.empty(total, dtype), np.zeros(total, dtype)
        views, start = {}, 0
        for name, s in shapes.items():
            size = int(np.prod(s))
            views[name] = (self.theta[start:start + size].reshape(s),
                           self.grad[start:start + size].reshape(s))
            start += size
            views[name][0][...] = params[name]
        (self.W1, self.dW1), (self.U1, self.dU1), (self.b1, self.db1) = \
            views["W1"], views["U1"], views["b1"]
        (self.W2, self.dW2), (self.b2, self.db2) = views["W2"], views["b2"]
        T, n, H, k = net["T"], net["n"], net["H"], net["classes"]
        sizes = {"m": m, "T": T, "n": n, "H": H}
        self.buf = {}
        for kernel in ("rnn_forward", "rnn_backward"):
            for name, shape in rnn_kernels.buffers(kernel, **sizes).items():
                self.buf.setdefault(name, np.empty(shape, dtype))
        self.Zd, self.Ed, self.T = (np.empty((m, k), dtype) for _ in range(3))
        self.dA = np.empty((m, H), dtype)
        self.col, self.col2 = np.empty((m, 1), dtype), np.empty((m, 1), dtype)
        self.scale = lr / m
        self.one = np.array(1.0, dtype)
        one = self.one

        def dtanh(dH, Z, Hs, dZ):  # dZ = dH (1 - H^2): tanh's derivative in output form
            np.multiply(Hs, Hs, dZ)
            np.subtract(one, dZ, dZ)
            np.multiply(dZ, dH, dZ)
        self.act, self.dact = np.tanh, dtanh

    def step(self, X, Y):
        """One SGD step on X (m, T, n), one-hot Y (m, classes); returns the cost before."""
        k, b = self.k, self.buf
        Hs = b["H"]
        k._rnn_forward(X, self.W1, self.b1, self.U1, self.act, b["Xt"], b["S"], b["Z"], Hs)
        A = Hs[-1]
        Z, E, col, col2, T = self.Zd, self.Ed, self.col, self.col2, self.T
        np.dot(A, self.W2.T, Z)
        np.add(Z, self.b2, Z)
        np.maximum.reduce(Z, 1, None, col, True)
        np.subtract(Z, col, Z)
        np.exp(Z, E)
        np.add.reduce(E, 1, None, col, True)
        np.divide(E, col, E)
        np.log(col, col2)
        np.subtract(Z, col2, T)
        J = -np.vdot(Y, T) / X.shape[0]
        np.subtract(E, Y, E)
        np.multiply(E, self.scale, E)
        np.dot(E.T, A, self.dW2)
        np.add.reduce(E, 0, None, self.db2)
        np.dot(E, self.W2, self.dA)
        k._rnn_backward(self.dA, False, self.U1, b["Z"], Hs, self.dact, b["S"], b["dZ"])
        k._rnn_step_outer(b["dZ"], b["Xt"], 0, self.dW1)
        k._rnn_step_outer(b["dZ"], Hs, 1, self.dU1)
        k._rnn_step_sum(b["dZ"], self.db1)
        np.subtract(self.theta, self.grad, self.theta)
        return J


def torch_model(net, params, dtype):
    import torch

    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    rnn = torch.nn.RNN(net["n"], net["H"], batch_first=True, nonlinearity="tanh").to(tdtype)
    head = torch.nn.Linear(net["H"], net["classes"]).to(tdtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(params["W1"]))
        rnn.weight_hh_l0.copy_(torch.from_numpy(params["U1"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(params["b1"]))
        rnn.bias_hh_l0.zero_()
        head.weight.copy_(torch.from_numpy(params["W2"]))
        head.bias.copy_(torch.from_numpy(params["b2"]))
    return rnn, head


def torch_step_factory(net, params, lr, dtype, X, Y):
    import torch

    rnn, head = torch_model(net, params, dtype)
    opt = torch.optim.SGD([*rnn.parameters(), *head.parameters()], lr=lr)
    tX, target = torch.from_numpy(X), torch.from_numpy(Y.argmax(axis=1))
    loss_fn = torch.nn.functional.cross_entropy

    def step():
        opt.zero_grad(set_to_none=True)
        _, h_n = rnn(tX)
        loss = loss_fn(head(h_n[0]), target)
        loss.backward()
        opt.step()
        return loss.item()

    def flat():
        """The parameters in our order (W1, U1, b1, W2, b2); b_ih is our b1."""
        order = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, head.weight, head.bias]
        return np.concatenate([q.detach().numpy().ravel() for q in order])
    return step, flat


def generated_step_factory(net, params, m, lr, dtype, X, Y):
    """The unchecked step (``Trainer._step``) of the trainer symbackprop generates for ``net``
    (its ``spec``), from the same parameters (W1, U1, b1, W2, b2 by layer position)."""
    from symbackprop.codegen import generate
    from symbackprop.spec import parse_arch

    module = types.ModuleType("generated_trainer")
    source = generate(parse_arch(net["spec"], "cross_entropy"))
    exec(compile(source, "<generated>", "exec"), module.__dict__)  # noqa: S102
    names = set(module.init_params(seed=0, dtype=dtype))
    assert names == set(params), (names, set(params))
    trainer = module.Trainer(dict(params), lr=lr, batch_size=m, dtype=dtype)
    X, Y = module._check(X, Y, dtype)
    return trainer._step, (X, Y)



def make_data(net, m, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, net["T"], net["n"])).astype(dtype)
    Y = np.eye(net["classes"], dtype=dtype)[rng.integers(0, net["classes"], m)]
    return X, Y


def bench_net(key, dtype, rounds, budget, use_torch, generated=False, gap=0.0):
    load_before = os.getloadavg()[0]
    net = NETS[key]
    m, lr = net["m"], 0.01
    params = init_params(net, 0, dtype)
    X, Y = make_data(net, m, dtype)
    ref = RNNReference(net, params, m, lr, dtype)
    impls = {"reference": (ref.step, (X, Y))}
    tol = 2e-4 if dtype == np.float32 else 1e-9
    if use_torch:
        tstep, tflat = torch_step_factory(net, params, lr, dtype, X, Y)
        j_ref, j_torch = ref.step(X, Y), tstep()
        assert abs(j_ref - j_torch) <= tol * max(1.0, abs(j_ref)), (key, j_ref, j_torch)
        # the step moved both parameter vectors the same way
        err = np.abs(ref.theta - tflat()).max() / max(1.0, np.abs(ref.theta).max())
        assert err <= tol, (key, "parameters after one step differ", err)
        impls["torch"] = (tstep, ())
    if generated:
        gstep, gargs = generated_step_factory(net, params, m, lr, dtype, X, Y)
        j_gen = gstep(*gargs)
        probe = RNNReference(net, params, m, lr, dtype)
        j_probe = probe.step(X, Y)
        assert abs(j_gen - j_probe) <= tol * max(1.0, abs(j_probe)), (key, j_gen, j_probe)
        impls["generated"] = (gstep, gargs)
    per = {}
    for name, (fn, a) in impls.items():
        time.sleep(gap)
        harness.time_round(fn, a, 3)
        per[name] = harness.time_round(fn, a, 5)
    reps = {name: max(3, int(budget / max(t, 1e-7))) for name, t in per.items()}
    samples = {name: [] for name in impls}
    names = list(impls)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn, a = impls[name]
            if gap:
                # let the other library's idle worker threads stop spinning (OpenBLAS spins
                # about 0.1 s after a call): with both pools awake on 2 cores, each one's
                # barriers wait on descheduled threads
                time.sleep(gap)
            samples[name].append(harness.time_round(fn, a, reps[name]))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    ratios = {name: statistics.median(r / o for r, o in zip(samples["reference"], v))
              for name, v in samples.items() if name != "reference"}
    # the 1-minute load average of the machine before and after (other jobs share its cores)
    return {"net": key, "m": m, "dtype": np.dtype(dtype).name, "medians": medians,
            "ratios": ratios, "load": (load_before, os.getloadavg()[0])}



def run_benchmark(args):
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            use_torch = False
    rows = []
    for key in args.nets.split(","):
        for dtype in args.dtypes.split(","):
            gap = args.gap if args.gap is not None else (0.3 if args.threads == "default"
                                                         else 0.0)
            row = bench_net(key, np.dtype(dtype).type, args.rounds, args.budget, use_torch,
                            args.generated, gap)
            row["threads"] = args.threads
            rows.append(row)
            print(json.dumps(row) if args.json else table_row(row), flush=True)
    return rows


def table_row(row):
    med, ratios = row["medians"], row["ratios"]
    torch_cells = (f"{harness.fmt(med['torch'])} | {ratios['torch']:.2f}" if "torch" in med
                   else "n/a | n/a")
    gen = ""
    if "generated" in med:
        vs_torch = (f"{ratios['torch'] / ratios['generated']:.2f}" if "torch" in ratios
                    else "n/a")
        gen = f" {harness.fmt(med['generated'])} | {vs_torch} | {1 / ratios['generated']:.2f} |"
    load = "{:.1f}-{:.1f}".format(*row["load"])
    return (f"| ({row['net']}) {NETS[row['net']]['spec']} | {row['m']} | {row['threads']} | "
            f"{row['dtype']} | {harness.fmt(med['reference'])} | {torch_cells} |{gen} {load} |")


def header(generated=False):
    text = "| net | m | threads | dtype | kernels step | torch eager | kernels/torch |"
    rule = "|---|---|---|---|---|---|---|"
    if generated:
        text += " generated | generated/torch | generated/kernels |"
        rule += "---|---|---|"
    return text + " load |\n" + rule + "---|"


def run_both(argv):
    """Each thread mode in its own process (threads are fixed when NumPy loads)."""
    return harness.run_both(__file__, argv, header("--generated" in argv), table_row)


def main(args):
    harness.torch_threads(args.threads)
    if args.threads == "both":
        return run_both(sys.argv[1:])
    if args.json:
        print("# " + harness.environment(), flush=True)
    else:
        print(harness.environment())
        print(header(args.generated), flush=True)
    run_benchmark(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(ARGS))
