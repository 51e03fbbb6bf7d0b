"""BNP's overhead per training step over plain SGD, measured in one run.

    python benchmarks/bench_bnp.py [--quick] [--threads 1]

For the 784-256-256-10 ReLU MLP (batch 128) and ``small_cnn`` (batch 64,
1x28x28), float32: a full step (forward, cross-entropy, backward, SGD update)
with and without ``bnp.BNP`` (statistics gathered by forward hooks, gradients
rewritten before the update). The two variants take turns, so that both see
the same machine load. Target: BNP adds at most 5% to a step.
"""

from __future__ import annotations

import common as bench

TARGET = 1.05


def main() -> None:
    args = bench.parser(__doc__).parse_args()
    timer = bench.settings(args, repeats=40)
    mlp_data = [bench.batch((128, bench.MLP_SIZES[0]), bench.MLP_SIZES[-1], "float32")]
    cnn_data = [bench.batch((64, 1, 28, 28), 10, "float32")]
    cases = (("mlp 784-256-256-10 b=128", lambda: bench.bnp_mlp(bench.MLP_SIZES, "float32"), mlp_data),
             ("small_cnn b=64", lambda: bench.bnp_cnn("float32"), cnn_data))
    rows = []
    with bench.limit_threads(args.threads):
        for name, build, data in cases:
            t = timer.measure({"plain": bench.bnp_step(build(), data),
                               "bnp": bench.bnp_step(build(), data, precondition=True)})
            rows.append(bench.Row(f"{name} SGD+BNP", t["bnp"], "SGD step", t["plain"], TARGET))
    bench.header("bench_bnp", timer, args.threads)
    bench.describe("all rows", dtype="float32", init=bench.INIT, data="standard normal inputs, seed 0",
                   step="forward + cross-entropy + backward + [BNP.step] + optim.SGD; BNP hooks included",
                   BNP="defaults (rho 0.99, eps 1e-3, channel statistics)")
    bench.print_table(rows)
    for r in rows:
        print(f"  {r.what}: BNP adds {100 * (r.ratio - 1):.1f}% (target <= {100 * (TARGET - 1):.0f}%)")


if __name__ == "__main__":
    main()
