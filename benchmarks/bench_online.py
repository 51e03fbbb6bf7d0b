"""Online learning: one training step at batch size 1, bnp against PyTorch (CPU), one run.

    python benchmarks/bench_online.py [--quick] [--threads 1]

The MLP of ``bnp compare`` (20-64-64-4, ReLU) in float64, one sample per step
(forward, cross-entropy, backward, SGD update; cycling through 256 samples),
with and without BNP (statistics hooks and the gradient rewrite included).
Batch size 1 is BNP's reason to exist, and there every step is dominated by
the per-operation cost of the autograd, not by arithmetic.

Target: the plain step at most 1.0x PyTorch's time (one thread each).
"""

from __future__ import annotations

import common as bench

SAMPLES = 256


def main() -> None:
    args = bench.parser(__doc__).parse_args()
    timer = bench.settings(args, repeats=40)
    xs, ys = bench.batch((SAMPLES, bench.ONLINE_SIZES[0]), bench.ONLINE_SIZES[-1], "float64")
    data = [(xs[i : i + 1], ys[i : i + 1]) for i in range(SAMPLES)]
    with bench.limit_threads(args.threads):
        steps = {
            "bnp": bench.bnp_step(bench.bnp_mlp(bench.ONLINE_SIZES, "float64"), data),
            "bnp+BNP": bench.bnp_step(bench.bnp_mlp(bench.ONLINE_SIZES, "float64"), data, precondition=True),
        }
        if bench.torch is not None:
            steps["torch"] = bench.torch_step(bench.torch_twin(bench.bnp_mlp(bench.ONLINE_SIZES, "float64")), data)
        t = timer.measure(steps)
    bench.header("bench_online", timer, args.threads)
    model = "-".join(map(str, bench.ONLINE_SIZES)) + " ReLU MLP"
    bench.describe("all rows", model=model, dtype="float64", batch=1, init=bench.INIT,
                   step="forward + cross-entropy + backward + SGD (optim.SGD both sides)")
    rows = [bench.Row("step b=1 + BNP vs plain", t["bnp+BNP"], "bnp step", t["bnp"], None)]
    if "torch" in t:
        rows = [bench.Row("step b=1", t["bnp"], "torch cpu", t["torch"], 1.0),
                bench.Row("step b=1 + BNP", t["bnp+BNP"], "torch cpu (no BNP)", t["torch"], None)] + rows
    else:
        print("torch is not installed: the PyTorch rows are skipped")
    bench.print_table(rows)
    print(f"  BNP adds {100 * (t['bnp+BNP'] / t['bnp'] - 1):.1f}% at batch size 1; "
          f"per step {1e6 * t['bnp']:.0f} us without, {1e6 * t['bnp+BNP']:.0f} us with")


if __name__ == "__main__":
    main()
