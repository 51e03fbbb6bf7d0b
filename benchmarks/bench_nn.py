"""Speed of a training step through bnp.nn, against references in the same run.

    python benchmarks/bench_nn.py [--quick] [--batch 64] [--repeats 50]

1. ``small_cnn`` (two conv3x3-ReLU-maxpool stages, linear head), batch 64 of
   1x28x28 float32 images: forward, cross-entropy, backward, SGD update done
   by hand on ``.data`` -- against the same network and step in PyTorch (CPU).
   Target: at most 2x PyTorch's time.
2. The 784-256-256-10 ReLU MLP, same step, through ``bnp.nn`` modules and the
   autograd -- against the same step written out by hand in NumPy (forward,
   backward and update, no autograd). Target: at most 1.3x.

Each step is timed after warm-up, bnp and the reference alternating so that
both see the same machine load; the table shows the median over repeats.

Threads: ``--threads 1`` (the default) limits BLAS (via threadpoolctl, if
installed) and PyTorch to one thread each. On a small shared machine,
multi-threaded timings mostly measure contention with other processes;
``--threads 0`` leaves every library at its default.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Callable

import numpy as np

import bnp
import bnp.functional as F
from bnp import nn

LR = 0.01


def median_ms(steps: list[Callable[[], None]], repeats: int, warmup: int) -> list[float]:
    """Median time of each step in milliseconds, the steps run alternately."""
    for _ in range(warmup):
        for step in steps:
            step()
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for step, record in zip(steps, times, strict=True):
            start = time.perf_counter()
            step()
            bnp.backend.synchronize()
            record.append(time.perf_counter() - start)
    return [1e3 * statistics.median(record) for record in times]


def limit_threads(threads: int) -> contextlib.AbstractContextManager:
    """Limit BLAS/OpenMP pools (threadpoolctl) and PyTorch to ``threads``; 0 changes nothing."""
    if threads <= 0:
        return contextlib.nullcontext()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("(threadpoolctl not installed: BLAS threads not limited; set OPENBLAS_NUM_THREADS instead)")
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def bnp_step(model: nn.Module, x: bnp.Tensor, y) -> Callable[[], None]:
    params = list(model.parameters())

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        for p in params:
            p.data -= LR * p.grad.data

    return step


# -- 1. small CNN vs PyTorch ----------------------------------------------------------------
def cnn_steps(batch: int, rng: np.random.Generator) -> dict[str, Callable[[], None]]:
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    steps = {"bnp": bnp_step(nn.small_cnn(rng=0), bnp.tensor(x), bnp.backend.asarray(y))}
    try:
        import torch
    except ImportError:
        return steps
    tnn = torch.nn
    net = tnn.Sequential(
        tnn.Conv2d(1, 8, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(8, 16, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(16 * 7 * 7, 10),
    )
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step() -> None:
        loss = torch.nn.functional.cross_entropy(net(tx), ty)
        net.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= LR * p.grad

    steps["torch"] = torch_step
    return steps


# -- 2. MLP vs hand-written NumPy -------------------------------------------------------------
def numpy_mlp_step(sizes: list[int], x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Callable[[], None]:
    """The same forward, backward and SGD update, every derivative written by hand."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1 / np.sqrt(fan_in)
        params.append([rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                       rng.uniform(-bound, bound, fan_out).astype(np.float32)])
    n = len(y)
    rows = np.arange(n)

    def step() -> None:
        acts = [x]
        for k, (w, b) in enumerate(params):
            z = acts[-1] @ w.T + b
            acts.append(np.maximum(z, 0) if k < len(params) - 1 else z)
        logits = acts[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        probs = exp / exp.sum(axis=1, keepdims=True)
        _loss = -np.log(probs[rows, y]).mean()
        g = probs
        g[rows, y] -= 1
        g /= n
        for k in range(len(params) - 1, -1, -1):
            w, b = params[k]
            gw, gb = g.T @ acts[k], g.sum(axis=0)
            if k:
                g = (g @ w) * (acts[k] > 0)
            w -= LR * gw
            b -= LR * gb

    return step


def mlp_steps(batch: int, rng: np.random.Generator) -> dict[str, Callable[[], None]]:
    sizes = [784, 256, 256, 10]
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return {
        "bnp": bnp_step(nn.mlp(sizes, rng=0), bnp.tensor(x), bnp.backend.asarray(y)),
        "numpy": numpy_mlp_step(sizes, x, y, rng),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few repeats (a smoke test, noisy numbers)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="threads for BLAS and PyTorch (0: library defaults)")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 100)
    warmup = 2 if args.quick else 10
    bnp.set_default_dtype("float32")
    rng = np.random.default_rng(0)

    rows = []
    for name, steps, reference, target in (
        ("small_cnn step", cnn_steps(args.batch, rng), "torch", 2.0),
        ("mlp 784-256-256-10 step", mlp_steps(args.batch, rng), "numpy", 1.3),
    ):
        if reference in steps:
            with limit_threads(args.threads):
                ours, ref = median_ms([steps["bnp"], steps[reference]], repeats, warmup)
            ratio = ours / ref
            verdict = "ok" if ratio <= target else "MISSED"
            rows.append((name, f"{ours:.2f}", f"{reference} {ref:.2f}", f"{ratio:.2f}x", f"<= {target}x {verdict}"))
        else:
            with limit_threads(args.threads):
                (ours,) = median_ms([steps["bnp"]], repeats, warmup)
            rows.append((name, f"{ours:.2f}", f"{reference} not installed", "-", f"<= {target}x"))

    header = (f"benchmark (batch {args.batch}, float32)", "bnp ms", "reference ms", "ratio", "target")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    threads = args.threads if args.threads > 0 else "library default"
    print(f"backend {bnp.get_backend()}, threads {threads}, median of {repeats} steps after {warmup} warm-up steps")
    for r in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
