"""How much does the autograd cost? Ratios measured in one run, on one machine.

    python benchmarks/bench_autograd.py [--quick] [--threads 1]
    BNP_BACKEND=cupy python benchmarks/bench_autograd.py

(a) One SGD step (forward, cross-entropy, backward, update done by hand on
    ``.data``) of the 784-256-256-10 ReLU MLP written as a *function* of its
    parameters (``F.mlp``, no modules, no optimizer) on a batch of 128 in
    float32, against the same step written by hand with the array library
    (NumPy or CuPy), and against PyTorch (``F.linear``, same weights).
(b) The dense Hessian of small tanh MLPs (MSE, 64 samples, float64) with
    ``bnp.hessian`` against ``torch.func.hessian`` (forward over reverse).

Ratios above 1 mean bnp is slower. PyTorch rows are skipped without torch.
"""

from __future__ import annotations

import common as bench
import numpy as np

import bnp
import bnp.functional as F
from bnp import backend

BATCH = 128
HESSIAN_NETS = ((5, 8, 5, 1), (10, 20, 20, 1), (10, 30, 50, 1))  # 99, 661, 1931 parameters
SAMPLES = 64


# -- (a) the functional SGD step -------------------------------------------------------------
def functional_step(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> bench.Step:
    leaves = [bnp.tensor(a, requires_grad=True) for a in params]
    x, y = bnp.tensor(x), bnp.tensor(y)

    def step() -> object:
        loss = F.cross_entropy(F.mlp(x, leaves, F.relu), y)
        loss.backward()
        for p in leaves:
            p.data -= bench.LR * p.grad.data
            p.grad = None
        return loss

    return step


def torch_functional_step(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> bench.Step:
    torch, dev = bench.torch, bench.torch_device()
    leaves = [torch.tensor(a, device=dev, requires_grad=True) for a in params]
    x, y = torch.tensor(x, device=dev), torch.tensor(y, device=dev)

    def step() -> object:
        h = x
        for k in range(0, len(leaves), 2):
            h = torch.nn.functional.linear(h, leaves[k], leaves[k + 1])
            if k + 2 < len(leaves):
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        loss.backward()
        with torch.no_grad():
            for p in leaves:
                p -= bench.LR * p.grad
                p.grad = None
        bench.torch_sync()
        return loss

    return step


# -- (b) dense Hessians of small tanh MLPs, float64 --------------------------------------------
def hessian_problem(sizes: tuple[int, ...], seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        arrays += [rng.standard_normal((d_out, d_in)) / np.sqrt(d_in), rng.standard_normal(d_out) * 0.1]
    return arrays, rng.standard_normal((SAMPLES, sizes[0])), rng.standard_normal((SAMPLES, sizes[-1]))


def bnp_hessian(sizes: tuple[int, ...]) -> bench.Step:
    arrays, x, y = hessian_problem(sizes)
    params = [bnp.tensor(a, requires_grad=True, dtype="float64") for a in arrays]
    x, y = bnp.tensor(x, dtype="float64"), bnp.tensor(y, dtype="float64")
    return lambda: bnp.hessian(lambda: F.mse_loss(F.mlp(x, params, F.tanh), y), params)


def torch_hessian(sizes: tuple[int, ...]) -> bench.Step:
    torch, dev = bench.torch, bench.torch_device()
    arrays, x, y = hessian_problem(sizes)
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

    def run() -> object:
        out = hess(theta)
        bench.torch_sync()
        return out

    return run


def hessians_agree(sizes: tuple[int, ...]) -> float:
    """Largest relative difference between the two Hessians (a check of the timed code)."""
    ours = backend.to_numpy(bnp_hessian(sizes)())
    theirs = torch_hessian(sizes)().cpu().numpy()
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def main() -> None:
    args = bench.parser(__doc__).parse_args()
    timer = bench.settings(args, repeats=30)
    hessian_timer = bench.Timer(timer.clock_name, 3 if args.quick else 7, timer.rounds, 1)
    params = bench.host_params(bench.bnp_mlp(bench.MLP_SIZES, "float32"))
    x, y = bench.batch((BATCH, bench.MLP_SIZES[0]), bench.MLP_SIZES[-1], "float32")
    lib = backend.get_backend()
    rows = []
    with bench.limit_threads(args.threads):
        steps = {"bnp": functional_step(params, x, y), "hand": bench.handwritten_mlp_step(params, x, y)}
        if bench.torch is not None:
            steps["torch"] = torch_functional_step(params, x, y)
        t = timer.measure(steps)
        what = "functional SGD step"
        rows.append(bench.Row(what, t["bnp"], f"hand-written {lib}", t["hand"], 1.15))
        if bench.torch is not None:
            rows.append(bench.Row(what, t["bnp"], f"torch {bench.torch_device()}", t["torch"], None))
            for sizes in HESSIAN_NETS:
                h = hessian_timer.measure({"bnp": bnp_hessian(sizes), "torch": torch_hessian(sizes)})
                n = sum(a.size for a in hessian_problem(sizes)[0])
                rows.append(bench.Row(f"hessian {'-'.join(map(str, sizes))} ({n} params)", h["bnp"],
                                      "torch.func.hessian", h["torch"], 2.0))
    bench.header("bench_autograd", timer, args.threads)
    bench.describe("functional SGD step", model="784-256-256-10 ReLU MLP via F.mlp (no modules)",
                   dtype="float32", batch=BATCH, init=bench.INIT, data="standard normal inputs, seed 0",
                   update="p.data -= lr * p.grad by hand (no optimizer)")
    bench.describe("hessian rows", model="tanh MLPs, MSE", dtype="float64", batch=SAMPLES,
                   init="weights N(0, 1/fan_in), biases N(0, 0.01), seed 0",
                   timing=f"min over {hessian_timer.rounds} rounds of the median of {hessian_timer.repeats}")
    bench.print_table(rows)
    if bench.torch is None:
        print("torch is not installed: the PyTorch rows are skipped")
    else:
        print(f"  (Hessians agree with torch: max relative difference {hessians_agree(HESSIAN_NETS[1]):.1e})")


if __name__ == "__main__":
    main()
