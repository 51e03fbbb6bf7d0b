"""BNP's overhead per training step over plain SGD, measured in one run.

    python benchmarks/bench_bnp.py [--quick] [--threads 1]

For the 784-256-256-10 ReLU MLP (batch 128) and ``small_cnn`` (batch 64,
1x28x28), float32: a full step (forward, cross-entropy, backward, SGD update)
with and without ``bnp.BNP`` (statistics gathered by forward hooks, gradients
rewritten before the update). The two variants alternate so that both see the
same machine load; the table gives medians and the overhead in percent.
Target: at most 10 %.
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_nn import limit_threads, median_ms

import bnp
import bnp.functional as F
from bnp import nn


def make_step(model: nn.Module, x: bnp.Tensor, y: bnp.Tensor, precondition: bool):
    opt = bnp.optim.SGD(model.parameters(), lr=0.01)
    pre = bnp.BNP(model) if precondition else None

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if pre is not None:
            pre.step()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/PyTorch threads (0: library defaults)")
    args = parser.parse_args()
    repeats, warmup = (10, 3) if args.quick else (60, 10)
    bnp.set_default_dtype("float32")
    rng = np.random.default_rng(0)
    cases = []
    nn.init.manual_seed(0)
    mlp_x = bnp.tensor(rng.standard_normal((128, 784)) + 1.0, dtype="float32")
    mlp_y = bnp.tensor(rng.integers(0, 10, 128))
    cases.append(("mlp 784-256-256-10, batch 128", lambda: nn.mlp([784, 256, 256, 10]), mlp_x, mlp_y))
    cnn_x = bnp.tensor(rng.standard_normal((64, 1, 28, 28)) + 1.0, dtype="float32")
    cnn_y = bnp.tensor(rng.integers(0, 10, 64))
    cases.append(("small_cnn, batch 64, 1x28x28", lambda: nn.small_cnn(1, 10), cnn_x, cnn_y))
    print(f"backend {bnp.get_backend()}, float32, threads {args.threads or 'default'}, "
          f"median of {repeats} alternating steps after {warmup} warm-up")
    print(f"{'model':32} {'SGD ms':>8} {'SGD+BNP ms':>11} {'overhead':>9}  target")
    with limit_threads(args.threads):
        for name, build, x, y in cases:
            plain, with_bnp = median_ms([make_step(build(), x, y, False), make_step(build(), x, y, True)],
                                        repeats, warmup)
            overhead = 100 * (with_bnp / plain - 1)
            verdict = "ok" if overhead <= 10 else "MISSED"
            print(f"{name:32} {plain:8.2f} {with_bnp:11.2f} {overhead:8.1f}%  <= 10% {verdict}")


if __name__ == "__main__":
    main()
