"""Speed of a training step through ``bnp.nn``, against references in the same run.

    python benchmarks/bench_nn.py [--quick] [--threads 1]

1. ``small_cnn`` (two conv3x3-ReLU-maxpool stages, linear head), batch 64 of
   1x28x28 float32 images: forward, cross-entropy, backward, ``optim.SGD``
   step, against the same network (same weights) and step in PyTorch.
   Targets: at most 1.5x PyTorch with one thread, 2x with default threads.
2. The 784-256-256-10 ReLU MLP, batch 128, float32, the same step through
   ``bnp.nn`` modules, the autograd and ``optim.SGD``, against the step
   written out by hand in NumPy (no autograd) with the same weights.
   Target: at most 1.15x.
"""

from __future__ import annotations

import common as bench

CNN_BATCH, MLP_BATCH = 64, 128


def main() -> None:
    args = bench.parser(__doc__).parse_args()
    timer = bench.settings(args, repeats=40)
    cnn_data = [bench.batch((CNN_BATCH, 1, 28, 28), 10, "float32")]
    x, y = bench.batch((MLP_BATCH, bench.MLP_SIZES[0]), bench.MLP_SIZES[-1], "float32")
    rows = []
    with bench.limit_threads(args.threads):
        cnn = {"bnp": bench.bnp_step(bench.bnp_cnn("float32"), cnn_data)}
        if bench.torch is not None:
            cnn["torch"] = bench.torch_step(bench.torch_twin(bench.bnp_cnn("float32")), cnn_data)
        mlp = bench.bnp_mlp(bench.MLP_SIZES, "float32")
        both = timer.measure({"cnn": cnn["bnp"], **({"cnn torch": cnn["torch"]} if "torch" in cnn else {})})
        # each pair on its own: a 10 ms CNN step between two MLP steps would evict their caches
        both |= timer.measure({"mlp": bench.bnp_step(mlp, [(x, y)]),
                               "mlp hand": bench.handwritten_mlp_step(bench.host_params(mlp), x, y)})
    cnn_target = 1.5 if args.threads == 1 else 2.0
    if "cnn torch" in both:
        rows.append(bench.Row("small_cnn step", both["cnn"], f"torch {bench.torch_device()}", both["cnn torch"],
                              cnn_target))
    else:
        print("torch is not installed: the small_cnn row has no reference")
    rows.append(bench.Row("mlp step via bnp.nn", both["mlp"], f"hand-written {bench.backend.get_backend()}",
                          both["mlp hand"], 1.15))
    bench.header("bench_nn", timer, args.threads)
    bench.describe("small_cnn step", model="small_cnn(1, 10): conv3x3(8)-ReLU-pool-conv3x3(16)-ReLU-pool-linear",
                   dtype="float32", batch=f"{CNN_BATCH} x 1x28x28", init=bench.INIT,
                   step="forward + cross-entropy + backward + optim.SGD (both sides)")
    bench.describe("mlp step via bnp.nn", model="784-256-256-10 ReLU MLP (bnp.nn.mlp)", dtype="float32",
                   batch=MLP_BATCH, init=bench.INIT, step="bnp.nn + optim.SGD vs every derivative by hand")
    bench.print_table(rows)


if __name__ == "__main__":
    main()
