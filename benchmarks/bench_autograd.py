"""How much does the autograd cost? Ratios measured in one run, on one machine.

    python benchmarks/bench_autograd.py [--quick]
    BNP_BACKEND=cupy python benchmarks/bench_autograd.py

(a) One SGD step (forward, backward, update) of a 784-256-256-10 ReLU MLP on a
    batch of 128 in float32, built from bnp ops, against the same step written
    by hand with the array library (NumPy or CuPy), and against PyTorch.
(b) The dense Hessian of small tanh MLPs (MSE, 64 samples, float64) with
    ``bnp.hessian`` against ``torch.func.hessian`` (forward over reverse).

Each time is the median of several repeats after a warm-up. Ratios above 1
mean bnp is slower. PyTorch rows are skipped when torch is not installed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np

import bnp
import bnp.functional as F
from bnp import backend

try:
    import torch
except ImportError:  # the comparison rows are optional
    torch = None


CLOCK = time.perf_counter  # main() switches to CPU time where that is the honest measure


def median_times(steps: list[Callable[[], object]], repeats: int, warmup: int = 2) -> list[float]:
    """Median time in seconds of each step (GPU work included).

    The steps take turns, repeat by repeat, so that a busy machine slows all of
    them alike and the ratios stay fair.
    """
    for step in steps:
        for _ in range(warmup):
            step()
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for step, record in zip(steps, times, strict=True):
            backend.synchronize()
            start = CLOCK()
            step()
            backend.synchronize()
            record.append(CLOCK() - start)
    return [statistics.median(t) for t in times]


def limit_threads(n: int) -> object:
    """Use ``n`` BLAS / OpenMP threads in NumPy and PyTorch alike.

    On a shared machine, multithreaded BLAS waits for descheduled worker
    threads, which penalises whoever runs more Python between BLAS calls by
    up to 100x; one thread each gives ratios that can be reproduced.
    """
    if torch is not None:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print(f"threadpoolctl is not installed: set OPENBLAS_NUM_THREADS={n} OMP_NUM_THREADS={n} yourself")
        return None
    return threadpool_limits(limits=n)  # active until garbage collected


def torch_device() -> str:
    return "cuda" if bnp.get_backend() == "cupy" and torch.cuda.is_available() else "cpu"


def torch_sync() -> None:
    if torch_device() == "cuda":
        torch.cuda.synchronize()


# -- (a) one SGD step of a 784-256-256-10 ReLU MLP, float32 --------------------------
SIZES = (784, 256, 256, 10)
BATCH, LR = 128, 0.01


def mlp_arrays(seed: int = 0):
    """He-initialised weights (out, in), zero biases, a batch and its labels, on the host."""
    rng = np.random.default_rng(seed)
    weights = [
        (rng.standard_normal((d_out, d_in)) * np.sqrt(2.0 / d_in)).astype(np.float32)
        for d_in, d_out in zip(SIZES[:-1], SIZES[1:], strict=True)
    ]
    biases = [np.zeros(d_out, dtype=np.float32) for d_out in SIZES[1:]]
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    return weights, biases, x, y


def bnp_step_fn():
    weights, biases, x, y = mlp_arrays()
    params = [bnp.tensor(a, requires_grad=True) for pair in zip(weights, biases, strict=True) for a in pair]
    x, y = bnp.tensor(x), bnp.tensor(y)

    def step():
        loss = F.cross_entropy(F.mlp(x, params, F.relu), y)
        loss.backward()
        for p in params:
            p.data -= LR * p.grad.data
            p.grad = None
        return loss

    return step


def handwritten_step_fn():
    """The same step with arrays only: the floor any autograd is measured against."""
    xp = backend.xp()
    weights, biases, x, y = mlp_arrays()
    ws = [backend.asarray(w) for w in weights]
    bs = [backend.asarray(b) for b in biases]
    x, y = backend.asarray(x), backend.asarray(y)
    rows = xp.arange(BATCH)

    def step():
        acts, h = [x], x
        for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
            h = h @ w.T + b
            if k + 1 < len(ws):
                h = xp.maximum(h, 0)
            acts.append(h)
        z = h - h.max(axis=1, keepdims=True)
        p = xp.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -xp.log(p[rows, y]).mean()
        g = p
        g[rows, y] -= 1
        g /= BATCH
        for k in range(len(ws) - 1, -1, -1):
            gw, gb = g.T @ acts[k], g.sum(axis=0)
            if k:
                g = (g @ ws[k]) * (acts[k] > 0)
            ws[k] -= LR * gw
            bs[k] -= LR * gb
        return loss

    return step


def torch_step_fn():
    weights, biases, x, y = mlp_arrays()
    dev = torch_device()
    arrays = [a for pair in zip(weights, biases, strict=True) for a in pair]
    params = [torch.tensor(a, device=dev, requires_grad=True) for a in arrays]
    x, y = torch.tensor(x, device=dev), torch.tensor(y, device=dev)

    def step():
        h = x
        for k in range(0, len(params), 2):
            h = torch.nn.functional.linear(h, params[k], params[k + 1])
            if k + 2 < len(params):
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
        torch_sync()
        return loss

    return step


# -- (b) dense Hessians of small tanh MLPs, float64 ----------------------------------------
HESSIAN_NETS = {  # name -> layer sizes; parameter counts 99, 661, 1931
    "~100": (5, 8, 5, 1),
    "661": (10, 20, 20, 1),
    "~2000": (10, 30, 50, 1),
}
SAMPLES = 64


def hessian_problem(sizes, seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        arrays += [rng.standard_normal((d_out, d_in)) / np.sqrt(d_in), rng.standard_normal(d_out) * 0.1]
    x = rng.standard_normal((SAMPLES, sizes[0]))
    y = rng.standard_normal((SAMPLES, sizes[-1]))
    return arrays, x, y


def bnp_hessian_fn(sizes):
    arrays, x, y = hessian_problem(sizes)
    params = [bnp.tensor(a, requires_grad=True, dtype="float64") for a in arrays]
    x, y = bnp.tensor(x, dtype="float64"), bnp.tensor(y, dtype="float64")

    def loss_fn():
        return F.mse_loss(F.mlp(x, params, F.tanh), y)

    return lambda: bnp.hessian(loss_fn, params)


def torch_hessian_fn(sizes):
    arrays, x, y = hessian_problem(sizes)
    dev = torch_device()
    shapes, counts = [a.shape for a in arrays], [a.size for a in arrays]
    theta = torch.tensor(np.concatenate([a.ravel() for a in arrays]), device=dev)
    x, y = torch.tensor(x, device=dev), torch.tensor(y, device=dev)

    def loss_of_flat(flat):
        ps = [p.reshape(s) for p, s in zip(torch.split(flat, counts), shapes, strict=True)]
        h = x
        for k in range(0, len(ps), 2):
            h = torch.nn.functional.linear(h, ps[k], ps[k + 1])
            if k + 2 < len(ps):
                h = torch.tanh(h)
        return torch.nn.functional.mse_loss(h, y)

    hess = torch.func.hessian(loss_of_flat)  # jacfwd(jacrev(f))

    def run():
        out = hess(theta)
        torch_sync()
        return out

    return run


def check_hessians_agree(sizes) -> float:
    """Largest relative difference between the two Hessians (a sanity check of the timed code)."""
    ours = backend.to_numpy(bnp_hessian_fn(sizes)())
    theirs = torch_hessian_fn(sizes)().cpu().numpy()
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


# -- the table -------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test, noisier)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads for NumPy and PyTorch (default 1)")
    parser.add_argument(
        "--clock", choices=["auto", "cpu", "wall"], default="auto",
        help="cpu: process time, immune to other programs on the machine (single-threaded CPU runs only); "
        "auto: cpu for NumPy with one thread, else wall",
    )  # fmt: skip
    args = parser.parse_args()
    limits = limit_threads(args.threads)  # noqa: F841 (kept alive for the whole run)
    global CLOCK
    cpu = args.clock == "cpu" or (args.clock == "auto" and bnp.get_backend() == "numpy" and args.threads == 1)
    CLOCK = time.process_time if cpu else time.perf_counter
    repeats = 5 if args.quick else 30
    hessian_repeats = 3 if args.quick else 7

    lib = bnp.get_backend()
    rows = []  # (what, bnp seconds, reference name, reference seconds, target)
    what = "SGD step 784-256-256-10, b=128, f32"
    if torch is None:
        print("torch is not installed: the PyTorch rows are skipped")
        ours, hand = median_times([bnp_step_fn(), handwritten_step_fn()], repeats)
    else:
        ours, hand, theirs = median_times([bnp_step_fn(), handwritten_step_fn(), torch_step_fn()], repeats)
    rows.append((what, ours, f"hand-written {lib}", hand, 1.3))
    if torch is not None:
        rows.append((what, ours, f"torch {torch_device()}", theirs, None))
        for sizes in HESSIAN_NETS.values():
            n = sum(a.size for a in hessian_problem(sizes)[0])
            ours, theirs = median_times([bnp_hessian_fn(sizes), torch_hessian_fn(sizes)], hessian_repeats, warmup=1)
            what = f"hessian {'-'.join(map(str, sizes))} ({n} params), f64"
            rows.append((what, ours, "torch.func.hessian", theirs, 2.0))

    print(
        f"bnp {bnp.__version__} on {lib}, {args.threads} BLAS thread(s), {'CPU' if cpu else 'wall'} time; "
        f"median of {repeats} (Hessians: {hessian_repeats}) interleaved repeats after warm-up"
    )
    header = f"{'benchmark':<44} {'bnp ms':>9} {'reference':<22} {'ref ms':>9} {'ratio':>6}  target"
    print(header)
    print("-" * len(header))
    for what, ours, ref_name, ref, target in rows:
        verdict = "" if target is None else (f"<= {target:g}x " + ("ok" if ours / ref <= target else "MISSED"))
        print(f"{what:<44} {ours * 1e3:9.2f} {ref_name:<22} {ref * 1e3:9.2f} {ours / ref:6.2f}  {verdict}")
    if torch is not None:
        print(f"(Hessians agree with torch: max relative difference {check_hessians_agree(HESSIAN_NETS['661']):.1e})")


if __name__ == "__main__":
    main()
