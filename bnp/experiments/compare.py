"""``bnp compare``: no normalization, BN, BNP and FN side by side.

For every model, method and batch size, the learning rate is picked fairly
from a small grid by the final training loss reached with seed 0 (the loss
over the whole training set at the final weights, in eval mode; diverged runs
lose); the chosen rate is then run with every seed. All runs see the same
number of samples (epochs), so batch size 1 means many more, noisier steps:
the online-learning regime in which BN cannot train and BNP is meant to.

Outputs (in ``--out``): ``results.json`` (every run, with its loss curve),
``summary.csv`` (one row per model, method and batch size), and the plots
``loss_curves.png`` and ``accuracy_vs_batch_size.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np  # host-side summaries of results only

from .. import backend
from .. import data as bdata
from ..data import DataLoader
from ..nn import init, models
from ..optim import SGD
from ..plotting import headless_pyplot, save
from ..preconditioner import BNP
from ..train import evaluate, fit
from .arguments import floats, ints, words

METHODS = ("none", "bn", "bnp", "fn")
# also available, not in the default run: "wbnp", BNP with the full input covariance
# (whitening, the K-FAC-like extension; Linear layers only, so MLP only)
EXTRA_METHODS = ("wbnp",)
MODELS = ("mlp", "cnn")


@dataclass
class CompareConfig:
    methods: tuple[str, ...] = METHODS
    models: tuple[str, ...] = MODELS
    batch_sizes: tuple[int, ...] = (1, 8, 64)
    data: str = "synthetic"
    data_dir: str | None = None
    seeds: int = 3
    epochs: int = 2
    lrs: tuple[float, ...] = (0.3, 0.1, 0.03, 0.01, 0.003)
    momentum: float = 0.0
    class_sorted: bool = False
    bnp_rho: float = 0.99
    bnp_eps: float = 1e-3
    n_train: int = 1500
    n_test: int = 500
    hidden: tuple[int, ...] = (64, 64)
    image_size: int = 10
    out: str = "results/compare"
    progress: bool = False

    @classmethod
    def quick_config(cls, **overrides: Any) -> CompareConfig:
        """A run of seconds, for tests and a first look."""
        base = dict(
            batch_sizes=(1, 16), seeds=1, epochs=1, lrs=(0.1, 0.01), n_train=200, n_test=100,
            hidden=(16,), image_size=8,
        )
        base.update(overrides)
        return cls(**base)


# -- building blocks ---------------------------------------------------------------
def load_data(config: CompareConfig, image: bool):
    """The data set as host arrays (X_train, y_train, X_test, y_test, n_classes);
    images (N, C, H, W) for the convnet, flat vectors for the MLP."""
    if config.data == "synthetic":
        shape = (config.image_size, config.image_size) if image else None
        ds = bdata.synthetic(n_train=config.n_train, n_test=config.n_test, seed=1234, image_shape=shape)
    elif config.data == "digits":
        ds = bdata.digits(seed=1234)
    elif config.data in ("mnist", "fashion"):
        ds = bdata.mnist(config.data_dir, kind=config.data).subset(config.n_train, config.n_test)
    elif config.data == "mnist1d":  # generated locally, cached in --data-dir (else $BNP_DATA or ~/.cache/bnp)
        ds = bdata.mnist1d(config.data_dir, as_image=image).subset(config.n_train, config.n_test)
    else:
        raise ValueError(
            f"compare: unknown data {config.data!r}; expected synthetic, digits, mnist, fashion or mnist1d"
        )
    if image and ds.X_train.ndim != 4:
        raise ValueError(f"compare: the cnn needs image data, but {ds.name} has inputs of shape {ds.input_shape}")
    if not image:
        ds = ds.flattened()
    return ds.X_train, ds.y_train, ds.X_test, ds.y_test, ds.n_classes


def build_model(kind: str, method: str, shape: tuple[int, ...], n_classes: int, config: CompareConfig, seed: int):
    """The network for one run; the method decides its normalization layers."""
    init.manual_seed(seed)
    if method not in METHODS + EXTRA_METHODS:
        raise ValueError(f"compare: unknown method {method!r}; expected one of {METHODS + EXTRA_METHODS}")
    if method == "wbnp" and kind != "mlp":
        raise ValueError("compare: method 'wbnp' (whitening BNP) supports Linear layers only: use --models mlp")
    norm = {"none": None, "bnp": None, "wbnp": None, "bn": "bn", "fn": "fn"}[method]
    if kind == "mlp":
        return models.mlp([shape[-1], *config.hidden, n_classes], activation="relu", norm=norm)
    if kind == "cnn" and shape[2] == 1:  # 1 x L signals (mnist1d): the MNIST-1D paper's 1-D convnet
        return models.mnist1d_cnn(length=shape[-1], num_classes=n_classes, norm=norm)
    if kind == "cnn":
        return models.small_cnn(shape[1], n_classes, norm=norm, image_size=shape[-1])
    raise ValueError(f"compare: unknown model {kind!r}; expected one of {MODELS}")


def run_one(kind: str, method: str, batch_size: int, lr: float, seed: int, arrays, config: CompareConfig) -> dict:
    """Train one network; returns losses, accuracy, time and a status."""
    X_tr, y_tr, X_te, y_te, n_classes = arrays
    model = build_model(kind, method, X_tr.shape, n_classes, config, seed)
    loader = DataLoader((X_tr, y_tr), batch_size=batch_size, shuffle=True, seed=seed, class_sorted=config.class_sorted)
    test_loader = DataLoader((X_te, y_te), batch_size=256, shuffle=False)
    optimizer = SGD(model.parameters(), lr=lr, momentum=config.momentum)
    pre = None
    if method in ("bnp", "wbnp"):
        pre = BNP(model, rho=config.bnp_rho, eps=config.bnp_eps, whiten=method == "wbnp")
    record = dict(model=kind, method=method, batch_size=batch_size, lr=lr, seed=seed)
    start = time.perf_counter()
    try:
        history = fit(model, loader, optimizer, epochs=config.epochs, preconditioner=pre, progress=config.progress)
    except FloatingPointError as exc:
        return {**record, "status": "diverged", "error": str(exc), "final_loss": math.inf,
                "test_accuracy": math.nan, "seconds": time.perf_counter() - start, "losses": []}
    except ValueError as exc:  # e.g. BN with one value per channel at batch size 1
        return {**record, "status": "failed", "error": str(exc), "final_loss": math.nan,
                "test_accuracy": math.nan, "seconds": time.perf_counter() - start, "losses": []}
    seconds = time.perf_counter() - start
    # The final loss is the training objective at the final weights over the whole
    # training set, in eval mode (the network one would deploy). The running
    # mini-batch loss would mislead with class-sorted batches: a network that
    # just predicts the current batch's class scores well on it.
    train_metrics = evaluate(model, DataLoader((X_tr, y_tr), batch_size=256, shuffle=False))
    metrics = evaluate(model, test_loader)
    losses = np.asarray(history.step_losses, dtype=float)
    final = float(train_metrics["loss"]) if math.isfinite(train_metrics["loss"]) else math.inf
    return {**record, "status": "ok", "error": "", "final_loss": final,
            "train_accuracy": float(train_metrics["accuracy"]),
            "test_accuracy": float(metrics["accuracy"]), "seconds": seconds, "losses": _downsample(losses, 200)}


def _downsample(x: np.ndarray, points: int) -> list[float]:
    """Mean of equal chunks: a smoothed curve of at most ``points`` values."""
    if len(x) <= points:
        return [float(v) for v in x]
    chunks = np.array_split(x, points)
    return [float(c.mean()) for c in chunks]


def _score(run: dict) -> float:
    return run["final_loss"] if run["status"] == "ok" and math.isfinite(run["final_loss"]) else math.inf


# -- the experiment ----------------------------------------------------------------
def run(config: CompareConfig, log=print) -> dict:
    """Run the whole comparison; returns {"config", "runs", "summary"} and writes the outputs."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    summary: list[dict] = []
    for kind in config.models:
        arrays = load_data(config, image=(kind == "cnn"))
        for batch_size in config.batch_sizes:
            for method in config.methods:
                trials = [run_one(kind, method, batch_size, lr, 0, arrays, config) for lr in config.lrs]
                best = min(trials, key=_score)
                chosen = [best] + [
                    run_one(kind, method, batch_size, best["lr"], seed, arrays, config)
                    for seed in range(1, config.seeds)
                ]
                for t in trials:
                    t["role"] = "lr_search"
                for c in chosen[1:]:
                    c["role"] = "seed"
                runs.extend(trials + chosen[1:])
                row = _summarize(kind, method, batch_size, chosen, trials)
                summary.append(row)
                log(_format_row(row))
    result = {"config": asdict(config), "backend": backend.get_backend(), "runs": runs, "summary": summary}
    (out / "results.json").write_text(json.dumps(result, indent=1, default=_json_default))
    _write_csv(summary, out / "summary.csv")
    _plot(result, out)
    return result


def _summarize(kind: str, method: str, batch_size: int, chosen: list[dict], trials: list[dict]) -> dict:
    ok = [r for r in chosen if r["status"] == "ok"]
    losses = np.array([r["final_loss"] for r in ok]) if ok else np.array([math.nan])
    accs = np.array([r["test_accuracy"] for r in ok]) if ok else np.array([math.nan])
    status = "ok" if len(ok) == len(chosen) else (chosen[0]["status"] if not ok else "partial")
    return dict(
        model=kind, method=method, batch_size=batch_size, lr=chosen[0]["lr"], seeds=len(chosen), status=status,
        final_loss_mean=float(losses.mean()), final_loss_std=float(losses.std()),
        test_accuracy_mean=float(accs.mean()), test_accuracy_std=float(accs.std()),
        seconds_mean=float(np.mean([r["seconds"] for r in chosen])),
        lrs_tried=[t["lr"] for t in trials], error=chosen[0].get("error", ""),
    )


HEADER = f"{'model':5} {'method':6} {'batch':>5} {'lr':>6} {'final loss':>17} {'test acc':>15} {'s/run':>6}  note"


def _format_row(row: dict) -> str:
    if row["status"] in ("failed", "diverged"):
        note = row["status"] + (": " + row["error"] if row["error"] else "")
        head = f"{row['model']:5} {row['method']:6} {row['batch_size']:>5} {'-':>6} {'-':>17} {'-':>15}"
        return f"{head} {row['seconds_mean']:6.1f}  {note}"
    loss = f"{row['final_loss_mean']:.4f} ± {row['final_loss_std']:.4f}"
    acc = f"{100 * row['test_accuracy_mean']:.1f} ± {100 * row['test_accuracy_std']:.1f} %"
    head = f"{row['model']:5} {row['method']:6} {row['batch_size']:>5} {row['lr']:>6g}"
    return f"{head} {loss:>17} {acc:>15} {row['seconds_mean']:6.1f}"


def format_table(summary: list[dict]) -> str:
    """The printed table of ``bnp compare`` for a list of summary rows (header included)."""
    return "\n".join([HEADER, "-" * len(HEADER)] + [_format_row(r) for r in summary])


def _write_csv(summary: list[dict], path: Path) -> None:
    fields = ["model", "method", "batch_size", "lr", "seeds", "status", "final_loss_mean", "final_loss_std",
              "test_accuracy_mean", "test_accuracy_std", "seconds_mean", "error"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(summary)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _plot(result: dict, out: Path) -> None:
    """Loss against samples seen (one panel per model and batch size), and
    test accuracy against batch size."""
    plt = headless_pyplot()

    cfg = result["config"]
    colors = {"none": "tab:gray", "bn": "tab:blue", "bnp": "tab:red", "fn": "tab:green", "wbnp": "tab:purple"}
    chosen = {(r["model"], r["method"], r["batch_size"]): r["lr"] for r in result["summary"]}
    models, sizes = cfg["models"], cfg["batch_sizes"]
    fig, axes = plt.subplots(len(models), len(sizes), figsize=(4 * len(sizes), 3.2 * len(models)), squeeze=False)
    for i, kind in enumerate(models):
        for j, bs in enumerate(sizes):
            ax = axes[i][j]
            for method in cfg["methods"]:
                curves = [r["losses"] for r in result["runs"] if r["model"] == kind and r["method"] == method
                          and r["batch_size"] == bs and r["lr"] == chosen.get((kind, method, bs)) and r["losses"]
                          and (r["role"] == "seed" or r["seed"] == 0)]
                if not curves:
                    continue
                n = min(len(c) for c in curves)
                mean = np.mean([c[:n] for c in curves], axis=0)
                ax.plot(np.linspace(0, cfg["epochs"], n), mean, color=colors.get(method), label=method)
            ax.set_title(f"{kind}, batch size {bs}")
            ax.set_xlabel("epochs (samples seen / training set)")
            ax.set_ylabel("training loss")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
    save(fig, out / "loss_curves.png")

    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.4), squeeze=False)
    for i, kind in enumerate(models):
        ax = axes[0][i]
        for method in cfg["methods"]:
            rows = [r for r in result["summary"] if r["model"] == kind and r["method"] == method]
            xs = [r["batch_size"] for r in rows if r["status"] in ("ok", "partial")]
            ys = [100 * r["test_accuracy_mean"] for r in rows if r["status"] in ("ok", "partial")]
            es = [100 * r["test_accuracy_std"] for r in rows if r["status"] in ("ok", "partial")]
            if xs:
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, color=colors.get(method), label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(kind)
        ax.legend(fontsize=8)
    save(fig, out / "accuracy_vs_batch_size.png")


# -- command line ----------------------------------------------------------------------
def add_parser(sub) -> None:
    d = CompareConfig()
    p = sub.add_parser("compare", help="compare none / BN / BNP / FN across batch sizes",
                       description="Train the same networks without normalization, with BN, with BNP and with FN, "
                       "picking each method's learning rate from a grid, and report loss and accuracy.")
    p.add_argument("--methods", type=words, default=d.methods,
                   help="comma list from none,bn,bnp,fn (and wbnp: whitening BNP, mlp only)")
    p.add_argument("--models", type=words, default=d.models, help="comma list from mlp,cnn")
    p.add_argument("--batch-sizes", type=ints, default=d.batch_sizes, help="comma list, e.g. 1,8,64")
    p.add_argument("--data", default=d.data, help="synthetic (built in), digits (scikit-learn), mnist or fashion")
    p.add_argument("--data-dir", default=None, help="directory with MNIST IDX files or mnist.npz (or set BNP_DATA)")
    p.add_argument("--seeds", type=int, default=d.seeds, help="seeds per setting (the first also picks the lr)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lrs", type=floats, default=d.lrs, help="learning-rate grid, comma list")
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--sorted", dest="class_sorted", action="store_true",
                   help="draw batches sorted by class (non-representative batches)")
    p.add_argument("--rho", dest="bnp_rho", type=float, default=d.bnp_rho, help="BNP running-statistics decay")
    p.add_argument("--eps", dest="bnp_eps", type=float, default=d.bnp_eps, help="BNP variance floor")
    p.add_argument("--out", default=d.out, help="output directory")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--quick", action="store_true", help="a run of seconds (tests, first look)")


def main_from_args(args: argparse.Namespace) -> int:
    fields = {k: v for k, v in vars(args).items() if k in CompareConfig.__dataclass_fields__}
    given = {k: v for k, v in fields.items() if v != getattr(CompareConfig(), k)}
    config = CompareConfig.quick_config(**given) if args.quick else CompareConfig(**fields)
    print(f"bnp compare: data={config.data} models={','.join(config.models)} batch sizes="
          f"{','.join(map(str, config.batch_sizes))} seeds={config.seeds} epochs={config.epochs}"
          f"{' class-sorted batches' if config.class_sorted else ''}")
    print(f"learning rate per (model, method, batch size): the best of {list(config.lrs)} by the final loss on the "
          "whole training set (eval mode) "
          f"on seed 0; SGD momentum {config.momentum}; BNP rho={config.bnp_rho} eps={config.bnp_eps}")
    print(HEADER)
    result = run(config)
    print(f"\nwrote {config.out}/results.json, summary.csv, loss_curves.png, accuracy_vs_batch_size.png")
    return 0 if result["summary"] else 1
