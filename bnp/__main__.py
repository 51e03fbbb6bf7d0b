"""The ``bnp`` command line: ``bnp compare``, ``bnp hessian``, ``bnp grade``, ``bnp info``.

Also runs as ``python -m bnp ...``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


def _words(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _compare_parser(sub) -> None:
    from .experiments.compare import CompareConfig

    d = CompareConfig()
    p = sub.add_parser("compare", help="compare none / BN / BNP / FN across batch sizes",
                       description="Train the same networks without normalization, with BN, with BNP and with FN, "
                       "picking each method's learning rate from a grid, and report loss and accuracy.")
    p.add_argument("--methods", type=_words, default=d.methods,
                   help="comma list from none,bn,bnp,fn (and wbnp: whitening BNP, mlp only)")
    p.add_argument("--models", type=_words, default=d.models, help="comma list from mlp,cnn")
    p.add_argument("--batch-sizes", type=_ints, default=d.batch_sizes, help="comma list, e.g. 1,8,64")
    p.add_argument("--data", default=d.data, help="synthetic (built in), digits (scikit-learn), mnist or fashion")
    p.add_argument("--data-dir", default=None, help="directory with MNIST IDX files or mnist.npz (or set BNP_DATA)")
    p.add_argument("--seeds", type=int, default=d.seeds, help="seeds per setting (the first also picks the lr)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lrs", type=_floats, default=d.lrs, help="learning-rate grid, comma list")
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--sorted", dest="class_sorted", action="store_true",
                   help="draw batches sorted by class (non-representative batches)")
    p.add_argument("--rho", dest="bnp_rho", type=float, default=d.bnp_rho, help="BNP running-statistics decay")
    p.add_argument("--eps", dest="bnp_eps", type=float, default=d.bnp_eps, help="BNP variance floor")
    p.add_argument("--out", default=d.out, help="output directory")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--quick", action="store_true", help="a run of seconds (tests, first look)")


def _run_compare(args: argparse.Namespace) -> int:
    from .experiments import compare

    fields = {k: v for k, v in vars(args).items() if k in compare.CompareConfig.__dataclass_fields__}
    given = {k: v for k, v in fields.items() if v != getattr(compare.CompareConfig(), k)}
    config = compare.CompareConfig.quick_config(**given) if args.quick else compare.CompareConfig(**fields)
    print(f"bnp compare: data={config.data} models={','.join(config.models)} batch sizes="
          f"{','.join(map(str, config.batch_sizes))} seeds={config.seeds} epochs={config.epochs}"
          f"{' class-sorted batches' if config.class_sorted else ''}")
    print(f"learning rate per (model, method, batch size): the best of {list(config.lrs)} by the final loss on the "
          "whole training set (eval mode) "
          f"on seed 0; SGD momentum {config.momentum}; BNP rho={config.bnp_rho} eps={config.bnp_eps}")
    print(compare.HEADER)
    result = compare.run(config)
    print(f"\nwrote {config.out}/results.json, summary.csv, loss_curves.png, accuracy_vs_batch_size.png")
    return 0 if result["summary"] else 1


def _info(_: argparse.Namespace) -> int:
    import bnp

    print(f"bnp {bnp.__version__}; backend {bnp.get_backend()}; default dtype {bnp.get_default_dtype()}; "
          f"GPU available: {bnp.backend.gpu_available()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bnp", description="Batch Normalization Preconditioning, from scratch.")
    sub = parser.add_subparsers(dest="command", required=True)
    _compare_parser(sub)
    sub.add_parser("info", help="version, backend and GPU availability")
    from .experiments import hessian_study

    hessian_study.add_parser(sub)
    from .grading import cli as grade_cli

    grade_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "compare":
        return _run_compare(args)
    if args.command == "hessian":
        from .experiments import hessian_study

        return hessian_study.main_from_args(args)
    if args.command == "grade":
        return grade_cli.main_from_args(args)
    return _info(args)


if __name__ == "__main__":
    sys.exit(main())
