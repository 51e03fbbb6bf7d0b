"""What every benchmark script shares: threads, clocks, timing, the reference steps, the table.

The scripts compare bnp with a reference *in the same run*, as a ratio, so
that a slow or busy machine slows both alike:

* timing: the steps take turns (interleaved), a round of ``repeats`` samples
  gives one median per step, and the figure is the minimum of the medians of
  several rounds (the least disturbed round; noise only ever adds time);
* threads: one BLAS/OpenMP thread for NumPy (via threadpoolctl, if installed)
  and for PyTorch by default, so that the ratios measure the libraries and not
  thread contention on a shared machine; ``--threads 0`` keeps the defaults;
* clock: CPU time of the process with one thread (immune to other programs
  taking the CPU), wall time otherwise (and on a GPU);
* models: the 784-256-256-10 ReLU MLP and ``small_cnn`` are built by
  ``bnp.nn`` with its default (PyTorch's) initialization from seed 0, and the
  hand-written and PyTorch versions copy those very weights, so "the same
  step" is the same arithmetic in every script.

Every script prints, per figure, the clock, model, dtype, batch size,
initialization and threads it used.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import bnp
import bnp.functional as F
from bnp import backend, nn

try:
    import torch
except ImportError:  # the PyTorch rows are optional
    torch = None

LR = 0.01
INIT = "bnp.nn default (uniform +-1/sqrt(fan_in), as PyTorch), seed 0"
MLP_SIZES = (784, 256, 256, 10)
ONLINE_SIZES = (20, 64, 64, 4)  # the MLP of `bnp compare` on its synthetic data

Step = Callable[[], object]


# -- the run's settings ---------------------------------------------------------------
def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark has."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few repeats: a smoke test with noisy numbers")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP and PyTorch threads (0: library defaults)")
    p.add_argument("--clock", choices=["auto", "cpu", "wall"], default="auto",
                   help="cpu: process CPU time; wall: elapsed time; auto: cpu with one thread on NumPy, else wall")
    p.add_argument("--rounds", type=int, default=None, help="rounds of samples (figure: min of their medians)")
    return p


@dataclass
class Timer:
    """How a run times its steps (see the module docstring)."""

    clock_name: str
    repeats: int
    rounds: int
    warmup: int
    min_sample_s: float = 2e-3  # steps shorter than this are timed in groups

    @property
    def clock(self) -> Callable[[], float]:
        return time.process_time if self.clock_name == "cpu" else time.perf_counter

    def describe(self, threads: int) -> str:
        clock = "process CPU time" if self.clock_name == "cpu" else "wall time"
        return (f"{clock}; {threads or 'default'} thread(s); min over {self.rounds} rounds of the median of "
                f"{self.repeats} interleaved samples, after {self.warmup} warm-up calls")

    def measure(self, steps: dict[str, Step]) -> dict[str, float]:
        """Seconds per call of each step: the minimum over rounds of the median over samples."""
        clock, sync = self.clock, backend.synchronize
        for step in steps.values():
            for _ in range(self.warmup):
                step()
        sync()
        inner = {name: self._calls_per_sample(step) for name, step in steps.items()}
        best = {name: float("inf") for name in steps}
        for _ in range(self.rounds):
            samples: dict[str, list[float]] = {name: [] for name in steps}
            for _ in range(self.repeats):
                for name, step in steps.items():
                    n = inner[name]
                    start = clock()
                    for _ in range(n):
                        step()
                    sync()
                    samples[name].append((clock() - start) / n)
            for name, record in samples.items():
                best[name] = min(best[name], statistics.median(record))
        return best

    def _calls_per_sample(self, step: Step) -> int:
        """Enough calls per sample that it lasts ``min_sample_s`` (the clocks tick coarsely for short steps)."""
        start = time.perf_counter()
        step()
        backend.synchronize()
        once = max(time.perf_counter() - start, 1e-7)
        return max(1, int(np.ceil(self.min_sample_s / once)))


def settings(args: argparse.Namespace, repeats: int, quick_repeats: int = 5) -> Timer:
    """The Timer for the parsed options."""
    cpu = args.clock == "cpu" or (args.clock == "auto" and backend.get_backend() == "numpy" and args.threads == 1)
    rounds = args.rounds or (1 if args.quick else 3)
    return Timer("cpu" if cpu else "wall", quick_repeats if args.quick else repeats, rounds, 2 if args.quick else 10)


@contextlib.contextmanager
def limit_threads(threads: int) -> Iterator[None]:
    """Limit BLAS/OpenMP pools (threadpoolctl, optional) and PyTorch to ``threads``; 0 changes nothing."""
    if threads <= 0:
        yield
        return
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print(f"(threadpoolctl is not installed: set OPENBLAS_NUM_THREADS={threads} OMP_NUM_THREADS={threads})")
        yield
        return
    with threadpool_limits(limits=threads):
        yield


def torch_device() -> str:
    return "cuda" if backend.get_backend() == "cupy" and torch.cuda.is_available() else "cpu"


def torch_sync() -> None:
    if torch_device() == "cuda":
        torch.cuda.synchronize()


# -- problems: models, data and steps ---------------------------------------------------
def batch(shape: Sequence[int], classes: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal inputs of ``shape`` and uniform labels, on the host."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(tuple(shape)).astype(dtype), rng.integers(0, classes, shape[0])


def bnp_mlp(sizes: Sequence[int], dtype: str) -> nn.Module:
    bnp.set_default_dtype(dtype)
    return nn.mlp(list(sizes), rng=0)


def bnp_cnn(dtype: str) -> nn.Module:
    bnp.set_default_dtype(dtype)
    return nn.small_cnn(1, 10, rng=0)


def host_params(model: nn.Module) -> list[np.ndarray]:
    """Copies of the parameters, in order, on the host."""
    return [backend.to_numpy(p.data).copy() for p in model.parameters()]


def bnp_step(model: nn.Module, data: Sequence[tuple[Any, Any]], precondition: bool = False) -> Step:
    """One training step per call (forward, cross-entropy, backward, [BNP], SGD), cycling through ``data``."""
    opt = bnp.optim.SGD(model.parameters(), lr=LR)
    pre = bnp.BNP(model) if precondition else None
    pairs = [(bnp.tensor(x), bnp.tensor(y)) for x, y in data]
    state = {"i": 0}

    def step() -> object:
        x, y = pairs[state["i"] % len(pairs)]
        state["i"] += 1
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if pre is not None:
            pre.step()
        opt.step()
        return loss

    return step


def torch_twin(model: nn.Module) -> Any:
    """The PyTorch network with the same layers and the same parameter values as ``model``."""
    layers = []
    for m in model:
        if isinstance(m, nn.Linear):
            layers.append(torch.nn.Linear(m.in_features, m.out_features))
        elif isinstance(m, nn.Conv2d):
            layers.append(torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding))
        elif isinstance(m, nn.ReLU):
            layers.append(torch.nn.ReLU())
        elif isinstance(m, nn.MaxPool2d):
            layers.append(torch.nn.MaxPool2d(m.kernel_size, m.stride))
        elif isinstance(m, nn.Flatten):
            layers.append(torch.nn.Flatten())
        else:
            raise TypeError(f"torch_twin: no PyTorch counterpart for {m!r}")
    net = torch.nn.Sequential(*layers).to(device=torch_device())
    with torch.no_grad():
        for ours, theirs in zip(host_params(model), net.parameters(), strict=True):
            theirs.data = torch.tensor(ours, device=torch_device())
    return net


def torch_step(net: Any, data: Sequence[tuple[np.ndarray, np.ndarray]]) -> Step:
    """The same training step in PyTorch (``torch.optim.SGD``), cycling through ``data``."""
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    dev = torch_device()
    pairs = [(torch.tensor(x, device=dev), torch.tensor(y, device=dev)) for x, y in data]
    state = {"i": 0}

    def step() -> object:
        x, y = pairs[state["i"] % len(pairs)]
        state["i"] += 1
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        torch_sync()
        return loss

    return step


def handwritten_mlp_step(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> Step:
    """The MLP's SGD step with arrays only, every derivative written by hand: the floor of any autograd.

    ``params`` is [W1, b1, W2, b2, ...] (weights (out, in)); ReLU between layers.
    """
    xp = backend.xp()
    ws = [backend.asarray(a.copy()) for a in params[0::2]]
    bs = [backend.asarray(a.copy()) for a in params[1::2]]
    x, y = backend.asarray(x), backend.asarray(y)
    n = len(y)
    rows = xp.arange(n)

    def step() -> object:
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
        g /= n
        for k in range(len(ws) - 1, -1, -1):
            gw, gb = g.T @ acts[k], g.sum(axis=0)
            if k:
                g = (g @ ws[k]) * (acts[k] > 0)
            ws[k] -= LR * gw
            bs[k] -= LR * gb
        return loss

    return step


# -- output -------------------------------------------------------------------------------
@dataclass
class Row:
    """One figure: bnp's time against a reference's, with the target on the ratio (None: for information)."""

    what: str
    ours: float
    reference: str
    ref: float
    target: float | None

    @property
    def ratio(self) -> float:
        return self.ours / self.ref

    def verdict(self) -> str:
        if self.target is None:
            return ""
        return f"<= {self.target:g}x " + ("ok" if self.ratio <= self.target else "MISSED")


def header(title: str, timer: Timer, threads: int) -> None:
    print(f"{title}: bnp {bnp.__version__} on {backend.get_backend()}, {timer.describe(threads)}")


def describe(figure: str, **facts: Any) -> None:
    """One line per figure naming what it measures (model, dtype, batch, initialization, ...)."""
    print(f"  {figure}: " + "; ".join(f"{k} {v}" for k, v in facts.items()))


def print_table(rows: Sequence[Row]) -> None:
    cells = [("benchmark", "bnp ms", "reference", "ref ms", "ratio", "target")]
    cells += [(r.what, f"{1e3 * r.ours:.3f}", r.reference, f"{1e3 * r.ref:.3f}", f"{r.ratio:.2f}x", r.verdict())
              for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    for k, c in enumerate(cells):
        print("  ".join(v.rjust(w) if 0 < i < 5 and i != 2 else v.ljust(w) for i, (v, w) in
                        enumerate(zip(c, widths, strict=True))).rstrip())
        if k == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))
