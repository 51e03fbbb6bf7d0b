"""How BNP's defaults (rho, eps) were chosen: a sweep on the comparison's data.

For the MLP of ``bnp compare`` on the built-in synthetic data (2 epochs), it
trains plain SGD and SGD + BNP over a learning-rate grid, at batch sizes 1
and 16, for each (rho, eps), and prints the final training loss and test
accuracy of every run. Run: ``python benchmarks/sweep_bnp_defaults.py``.
"""

from __future__ import annotations

import argparse
import itertools

from bnp.experiments.compare import CompareConfig, load_data, run_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--lrs", default="1,0.3,0.1,0.03,0.01,0.003")
    args = parser.parse_args()
    config = CompareConfig(epochs=2, n_train=1500, n_test=500)
    arrays = load_data(config, image=False)
    lrs = [float(v) for v in args.lrs.split(",")]
    print(f"{'method':6} {'batch':>5} {'rho':>5} {'eps':>6} {'lr':>6} {'final loss':>11} {'test acc':>8}")
    for batch in (int(v) for v in args.batch_sizes.split(",")):
        grid = itertools.product([1e-3, 1e-2, 1e-1], [0.9, 0.99])
        settings = [("none", None, None)] + [("bnp", rho, eps) for eps, rho in grid]
        for method, rho, eps in settings:
            if method == "bnp":
                config.bnp_rho, config.bnp_eps = rho, eps
            for lr in lrs:
                r = run_one("mlp", method, batch, lr, 0, arrays, config)
                print(f"{method:6} {batch:>5} {rho or '-':>5} {eps or '-':>6} {lr:>6g} {r['final_loss']:>11.4g} "
                      f"{100 * r['test_accuracy']:>7.1f}%", flush=True)


if __name__ == "__main__":
    main()
