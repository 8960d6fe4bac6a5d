"""Time a convolutional training step built from symbackprop's conv kernels against PyTorch.

    python benchmarks/conv_bench.py --generated          # both thread modes, both nets (~3 min)
    python benchmarks/conv_bench.py --threads 1 --nets a --rounds 11
    python benchmarks/conv_bench.py --digits             # train net (a) on digits, seeds 0-2

One step: forward pass, softmax cross-entropy cost, every parameter gradient (none for the
input), plain SGD update. ``ConvReference`` assembles it by hand from the kernels of
``symbackprop.codegen.conv_kernels`` (exec'd from ``source(name)``, as a generated trainer
carries them) and a dense softmax head in the style of ``reference.py``; PyTorch eager does
the same step (nn.Conv2d, ReLU, max_pool2d, Flatten, Linear, F.cross_entropy, backward,
optim.SGD). Both start from the same parameters; the script checks that their first costs
and the parameters after one step agree, then runs them interleaved round by round and
reports medians of the per-round mean step times and the median of the per-round ratios.
``--generated`` adds the trainer symbackprop generates for the same net (``Trainer._step``,
from the same parameters) as a third column.

Threads are decided before NumPy is imported: ``--threads 1`` sets OPENBLAS_NUM_THREADS=1
and torch.set_num_threads(1); ``--threads default`` leaves both libraries their defaults;
``--threads both`` (the default) runs this script once per mode in fresh processes. On CPUs
with AVX-512, OPENBLAS_CORETYPE=SkylakeX is set unless the environment sets it (OpenBLAS
otherwise picks Haswell kernels). The script re-executes itself once with glibc's malloc
thresholds fixed (``MALLOC``): see the comment there. ``--digits`` trains net (a) on
scikit-learn's digits with the kernel step (and PyTorch from the same start, if installed).
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
    parser.add_argument("--digits", action="store_true", help="train net (a) on digits")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--digits-dtype", default="float64")
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

from symbackprop.codegen import conv_kernels

# A net: input (C, H, W), then layers: ("conv", F, K, S, P) is a convolution followed by
# ReLU, ("maxpool", K) a max-pooling of stride K; the flattened features feed a dense
# softmax head of ``classes`` units.
NETS = {
    "a": {"spec": "1x8x8-conv16k3p1:relu-maxpool2-flatten-10:softmax", "input": (1, 8, 8),
          "m": 32,
          "layers": [("conv", 16, 3, 1, 1), ("maxpool", 2)], "classes": 10},
    "b": {"spec": "1x28x28-conv8k5:relu-maxpool2-conv16k5:relu-maxpool2-flatten-10:softmax",
          "input": (1, 28, 28), "m": 64,
          "layers": [("conv", 8, 5, 1, 0), ("maxpool", 2), ("conv", 16, 5, 1, 0),
                     ("maxpool", 2)], "classes": 10},
}


def load_kernels(numpy_module=np):
    """The conv kernels exec'd from their source, in a namespace holding only ``np`` (as in a
    generated trainer). ``numpy_module`` may be a stand-in whose ``dot`` is timed."""
    namespace = {"np": numpy_module}
    for name in conv_kernels.needed(conv_kernels.KERNELS):
        exec(compile(conv_kernels.source(name), f"<{name}>", "exec"), namespace)  # noqa: S102
    return types.SimpleNamespace(**{k: v for k, v in namespace.items() if k != "np"})


def shapes(net):
    """Per layer: its kind and sizes, input and output shapes (without m); parameter shapes."""
    C, H, W = net["input"]
    plan, params = [], []
    for layer in net["layers"]:
        if layer[0] == "conv":
            _, F, K, S, P = layer
            Ho, Wo = conv_kernels.conv_size(H, K, S, P), conv_kernels.conv_size(W, K, S, P)
            plan.append({"kind": "conv", "C": C, "H": H, "W": W, "F": F, "K": K, "S": S,
                         "P": P, "out": (F, Ho, Wo)})
            params += [(F, C, K, K), (F,)]
            C, H, W = F, Ho, Wo
        else:
            _, K = layer
            Ho, Wo = conv_kernels.pool_size(H, K), conv_kernels.pool_size(W, K)
            plan.append({"kind": "maxpool", "C": C, "H": H, "W": W, "K": K, "S": K,
                         "out": (C, Ho, Wo)})
            H, W = Ho, Wo
    n_flat = C * H * W
    params += [(net["classes"], n_flat), (net["classes"],)]
    return plan, params, n_flat


def init_params(net, seed, dtype):
    """He initialisation: weights N(0, 2/fan_in), biases 0; named W1, b1, W2, b2, ... in
    layer order (torch layouts: conv (F, C, K, K), dense (n_out, n_in))."""
    rng = np.random.default_rng(seed)
    _, pshapes, _ = shapes(net)
    params = {}
    for l, (ws, bs) in enumerate(zip(pshapes[0::2], pshapes[1::2]), 1):
        fan_in = int(np.prod(ws[1:]))
        params[f"W{l}"] = (rng.standard_normal(ws) * np.sqrt(2.0 / fan_in)).astype(dtype)
        params[f"b{l}"] = np.zeros(bs, dtype)
    return params


class ConvReference:
    """A hand-assembled training step of a conv net from the conv kernels (see NETS).

    Parameters and gradients are views into two flat vectors (the SGD update is one call);
    the learning rate over m is folded into the output error, so the conv gradients take
    scale 1. Buffers are preallocated for batches of m: the GEMM output Zt of a convolution
    doubles as its dZt, and its im2col columns as dcols once dW is taken.
    ``flat`` = (theta, grad) shares the parameter vectors of another instance (for a last,
    smaller batch). ``kernels`` and ``numpy_module`` are where the step finds the kernels and
    ``np.dot`` (a timed stand-in for the GEMM fraction).
    """

    def __init__(self, net, params, m, lr, dtype=np.float64, flat=None, kernels=None,
                 numpy_module=np):
        self.plan, pshapes, self.n_flat = shapes(net)
        self.m, self.lr, self.dtype = m, lr, dtype
        self.k = kernels or load_kernels()
        self.dot = numpy_module.dot
        total = sum(int(np.prod(s)) for s in pshapes)
        if flat is None:
            self.theta, self.grad = np.empty(total, dtype), np.zeros(total, dtype)
        else:
            self.theta, self.grad = flat
        views, start = [], 0
        for s in pshapes:
            n = int(np.prod(s))
            views.append((self.theta[start:start + n].reshape(s),
                          self.grad[start:start + n].reshape(s)))
            start += n
        if flat is None:
            for l, (w, b) in enumerate(zip(views[0::2], views[1::2]), 1):
                w[0][...] = params[f"W{l}"]
                b[0][...] = params[f"b{l}"]
        convs = [p for p in self.plan if p["kind"] == "conv"]
        for p, (w, b) in zip(convs, zip(views[0:-2:2], views[1:-2:2])):
            p["Wt"], p["dW"], p["b"], p["db"] = w[0], w[1], b[0], b[1]
        (self.Wd, self.dWd), (self.bd, self.dbd) = views[-2], views[-1]
        first = True
        for p in self.plan:
            out = (m, *p["out"])
            p["Z"], p["dZ"] = np.empty(out, dtype), np.empty(out, dtype)
            if p["kind"] == "conv":
                sizes = {key: p[key] for key in "CHWFKSP"}
                for kernel in ("conv2d_forward", "conv2d_grad_params", "conv2d_grad_input"):
                    for name, shape in conv_kernels.scratch(kernel, m=m, **sizes).items():
                        p[name] = None if shape is None else np.empty(shape, dtype)
                # (the step passes the forward's Zt as dZt and its cols as dcols)
                p["M"] = np.empty(out, dtype)  # the ReLU mask
                p["first"] = first
            else:
                sizes = {key: p[key] for key in "CHWKS"}
                for kernel in ("maxpool2d_forward", "maxpool2d_backward"):
                    for name, shape in conv_kernels.scratch(kernel, m=m, **sizes).items():
                        p[name] = None if shape is None else np.empty(shape, dtype)
            first = False
        # the input gradient of layer l is the output gradient of layer l - 1
        for prev, p in zip(self.plan, self.plan[1:]):
            p["dA"] = prev["dZ"]
        self.flat_out = self.plan[-1]["Z"].reshape(m, self.n_flat)
        self.dflat_out = self.plan[-1]["dZ"].reshape(m, self.n_flat)
        n = self.Wd.shape[0]
        self.Zd, self.Ed, self.T = (np.empty((m, n), dtype) for _ in range(3))
        self.col, self.col2 = np.empty((m, 1), dtype), np.empty((m, 1), dtype)
        self.scale = lr / m
        self.zero = np.array(0.0, dtype)

    def step(self, X, Y):
        """One SGD step on X (m, C, H, W), one-hot Y (m, classes); returns the cost before."""
        k, dot, zero = self.k, self.dot, self.zero
        A = X
        for p in self.plan:
            if p["kind"] == "conv":
                Z, M = p["Z"], p["M"]
                k._conv2d_forward(A, p["Wt"], p["b"], p["S"], p["P"], p["Ap"], p["R"],
                                  p["Wb"], p["cols"], p["Zt"], Z)
                np.greater(Z, zero, M)
                np.multiply(Z, M, Z)
            else:
                k._maxpool2d_forward(A, p["K"], p["S"], p["R"], p["mask"], p["Z"])
            A = p["Z"]
        Af, Z, E, col, col2, T = self.flat_out, self.Zd, self.Ed, self.col, self.col2, self.T
        dot(Af, self.Wd.T, Z)
        np.add(Z, self.bd, Z)
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
        dot(E.T, Af, self.dWd)
        np.add.reduce(E, 0, None, self.dbd)
        dot(E, self.Wd, self.dflat_out)
        for p in reversed(self.plan):
            if p["kind"] == "conv":
                dZ, Zt = p["dZ"], p["Zt"]
                np.multiply(dZ, p["M"], dZ)
                k._conv2d_dz_t(dZ, Zt)
                k._conv2d_grad_params(Zt, p["cols"], 1.0, p["dWt"], p["dW"], p["db"])
                if not p["first"]:
                    k._conv2d_grad_input(Zt, p["Wt"], p["S"], p["P"], p["R"], p["cols"],
                                         p["dA"])
            else:
                k._maxpool2d_backward(p["dZ"], p["mask"], p["K"], p["S"], p["T"], p["dA"])
        np.subtract(self.theta, self.grad, self.theta)
        return J

    def predict(self, X):
        """Class scores of X (any batch size), the same forward pass in plain NumPy."""
        A = X
        k = self.k
        for p in self.plan:
            m = A.shape[0]
            out = np.empty((m, *p["out"]), self.dtype)
            if p["kind"] == "conv":
                sizes = {key: p[key] for key in "CHWFKSP"}
                buf = {name: None if s is None else np.empty(s, self.dtype) for name, s in
                       conv_kernels.scratch("conv2d_forward", m=m, **sizes).items()}
                k._conv2d_forward(A, p["Wt"], p["b"], p["S"], p["P"], buf["Ap"], buf["R"],
                                  buf["Wb"], buf["cols"], buf["Zt"], out)
                np.maximum(out, 0, out=out)
            else:
                sizes = {key: p[key] for key in "CHWKS"}
                buf = {name: np.empty(s, self.dtype) for name, s in
                       conv_kernels.scratch("maxpool2d_forward", m=m, **sizes).items()}

                k._maxpool2d_forward(A, p["K"], p["S"], buf["R"], buf["mask"], out)
            A = out
        return A.reshape(A.shape[0], -1) @ self.Wd.T + self.bd


def torch_model(net, params, dtype):
    import torch

    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    layers, l = [], 1
    for layer in net["layers"]:
        if layer[0] == "conv":
            _, F, K, S, P = layer
            conv = torch.nn.Conv2d(params[f"W{l}"].shape[1], F, K, stride=S, padding=P)
            layers += [conv, torch.nn.ReLU()]
            l += 1
        else:
            layers.append(torch.nn.MaxPool2d(layer[1]))
    layers += [torch.nn.Flatten(), torch.nn.Linear(params[f"W{len(params) // 2}"].shape[1],
                                                    net["classes"])]
    model = torch.nn.Sequential(*layers).to(tdtype)
    weighted = [mod for mod in model if hasattr(mod, "weight")]
    with torch.no_grad():
        for l, mod in enumerate(weighted, 1):
            mod.weight.copy_(torch.from_numpy(params[f"W{l}"]))
            mod.bias.copy_(torch.from_numpy(params[f"b{l}"]))
    return model


def torch_step_factory(net, params, lr, dtype, X, Y):
    import torch

    model = torch_model(net, params, dtype)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    tX, target = torch.from_numpy(X), torch.from_numpy(Y.argmax(axis=1))
    loss_fn = torch.nn.functional.cross_entropy

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(tX), target)
        loss.backward()
        opt.step()
        return loss.item()

    def flat():
        return np.concatenate([q.detach().numpy().ravel() for q in model.parameters()])
    return step, flat


def generated_step_factory(net, params, m, lr, dtype, X, Y):
    """The unchecked step (``Trainer._step``) of the trainer symbackprop generates for ``net``
    (its ``spec``), from the same parameters: the generated module's parameters are named by
    layer position (W1, W3, ...), in the same order and layouts as ours."""
    from symbackprop.codegen import generate
    from symbackprop.spec import parse_arch

    module = types.ModuleType("generated_trainer")
    source = generate(parse_arch(net["spec"], "cross_entropy"))
    exec(compile(source, "<generated>", "exec"), module.__dict__)  # noqa: S102
    names = list(module.init_params(seed=0, dtype=dtype))
    ours = [f"{kind}{l}" for l in range(1, len(params) // 2 + 1) for kind in "Wb"]
    assert len(names) == len(ours), (names, ours)
    trainer = module.Trainer({n: params[o] for n, o in zip(names, ours)}, lr=lr,
                             batch_size=m, dtype=dtype)
    X, Y = module._check(X, Y, dtype)
    return trainer._step, (X, Y)



class TimedNumpy(types.ModuleType):
    """NumPy with ``dot`` timed (the time inside it accumulates in ``gemm_seconds``)."""

    def __init__(self):
        super().__init__("numpy")
        self.__dict__.update({k: v for k, v in np.__dict__.items() if not k.startswith("__")})
        self.gemm_seconds = 0.0
        clock, dot = time.perf_counter, np.dot

        def timed_dot(a, b, out):
            t0 = clock()
            dot(a, b, out)
            self.gemm_seconds += clock() - t0
        self.dot = timed_dot


def make_data(net, m, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, *net["input"])).astype(dtype)
    Y = np.eye(net["classes"], dtype=dtype)[rng.integers(0, net["classes"], m)]
    return X, Y


def bench_net(key, dtype, rounds, budget, use_torch, generated=False, gap=0.0):
    load_before = os.getloadavg()[0]
    net = NETS[key]
    m, lr = net["m"], 0.01
    params = init_params(net, 0, dtype)
    X, Y = make_data(net, m, dtype)
    ref = ConvReference(net, params, m, lr, dtype)
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
        probe = ConvReference(net, params, m, lr, dtype)
        j_probe = probe.step(X, Y)
        assert abs(j_gen - j_probe) <= tol * max(1.0, abs(j_probe)), (key, j_gen, j_probe)
        impls["generated"] = (gstep, gargs)
    # the step with np.dot timed: the GEMM-bound fraction, measured in the step itself
    timed_np = TimedNumpy()
    timed = ConvReference(net, params, m, lr, dtype, kernels=load_kernels(timed_np),
                          numpy_module=timed_np)
    impls["timed"] = (timed.step, (X, Y))
    per = {}
    for name, (fn, a) in impls.items():
        time.sleep(gap)
        harness.time_round(fn, a, 3)
        per[name] = harness.time_round(fn, a, 5)
    reps = {name: max(3, int(budget / max(t, 1e-7))) for name, t in per.items()}
    samples = {name: [] for name in impls}
    gemm_fractions = []
    names = list(impls)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn, a = impls[name]
            if gap:
                # let the other library's idle worker threads stop spinning (OpenBLAS spins
                # about 0.1 s after a call): with both pools awake on 2 cores, each one's
                # barriers wait on descheduled threads
                time.sleep(gap)
            before = timed_np.gemm_seconds
            t = harness.time_round(fn, a, reps[name])
            samples[name].append(t)
            if name == "timed":
                gemm_fractions.append((timed_np.gemm_seconds - before) / (t * reps[name]))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    ratios = {name: statistics.median(r / o for r, o in zip(samples["reference"], v))
              for name, v in samples.items() if name != "reference"}
    # the 1-minute load average of the VM before and after (other jobs share its 2 cores)
    return {"net": key, "m": m, "dtype": np.dtype(dtype).name, "medians": medians,
            "ratios": ratios, "gemm_fraction": statistics.median(gemm_fractions),
            "load": (load_before, os.getloadavg()[0])}



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
    gen = (f" {harness.fmt(med['generated'])} | {1 / ratios['generated']:.2f} |" if "generated" in med
           else "")
    load = "{:.1f}-{:.1f}".format(*row["load"])
    return (f"| ({row['net']}) | {row['m']} | {row['threads']} | {row['dtype']} | "
            f"{harness.fmt(med['reference'])} | {torch_cells} | {row['gemm_fraction']:.0%} |{gen}"
            f" {load} |")


def header(generated=False):
    text = ("| net | m | threads | dtype | kernels step | torch eager | kernels/torch "
            "| GEMM share |")
    rule = "|---|---|---|---|---|---|---|---|"
    if generated:
        text += " generated | generated/kernels |"
        rule += "---|---|"
    return text + " load |\n" + rule + "---|"


def run_both(argv):
    """Each thread mode in its own process (threads are fixed when NumPy loads)."""
    return harness.run_both(__file__, argv, header("--generated" in argv), table_row)


# --- digits -------------------------------------------------------------------------------------

def train_digits(seed, epochs=50, lr=0.1, batch=32, dtype=np.float64, with_torch=False):
    """Net (a) on scikit-learn's digits with the hand-assembled kernel step: He init from
    ``seed``, plain SGD, every example once per epoch in a fresh order (the last batch is
    smaller). Returns the test accuracy, the training time, and PyTorch's test accuracy from
    the same start and batch order (None without ``with_torch``)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 1, 8, 8).astype(dtype)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    Ytr = np.eye(10, dtype=dtype)[ytr]
    net = NETS["a"]
    params = init_params(net, seed, dtype)
    n = len(Xtr)
    main = ConvReference(net, params, batch, lr, dtype)
    last = n % batch
    tail = ConvReference(net, params, last, lr, dtype, flat=(main.theta, main.grad),
                         kernels=main.k) if last else None
    order_rng = np.random.default_rng(seed)
    orders = [order_rng.permutation(n) for _ in range(epochs)]
    t0 = time.perf_counter()
    for order in orders:
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            (main if len(idx) == batch else tail).step(Xtr[idx], Ytr[idx])
    seconds = time.perf_counter() - t0
    acc = float(np.mean(main.predict(Xte).argmax(axis=1) == yte))
    if not with_torch:
        return acc, seconds, None
    import torch

    model = torch_model(net, params, dtype)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    tX, ty = torch.from_numpy(Xtr), torch.from_numpy(ytr)
    for order in orders:
        for start in range(0, n, batch):
            idx = torch.from_numpy(order[start:start + batch])
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(tX[idx]), ty[idx]).backward()
            opt.step()
    with torch.no_grad():
        tacc = float((model(torch.from_numpy(Xte)).argmax(1).numpy() == yte).mean())
    return acc, seconds, tacc


def run_digits(args):
    try:
        import torch  # noqa: F401
        with_torch = not args.no_torch
    except ImportError:
        with_torch = False
    accs = []
    dtype = np.dtype(args.digits_dtype).type
    print(f"net (a) on digits, {np.dtype(dtype).name}, lr 0.1, batch 32, {args.epochs} epochs")
    for seed in map(int, args.seeds.split(",")):
        acc, seconds, tacc = train_digits(seed, args.epochs, dtype=dtype, with_torch=with_torch)
        accs.append(acc)
        extra = f"; torch from the same start and order: {tacc:.4f}" if tacc is not None else ""
        print(f"seed {seed}: test accuracy {acc:.4f} (training {seconds:.1f} s{extra})",
              flush=True)
    print(f"mean {np.mean(accs):.4f}")
    return 0


def main(args):
    harness.torch_threads(args.threads)
    if args.digits:
        return run_digits(args)
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
