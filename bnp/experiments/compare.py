"""``bnp compare``: no normalization, BN, BNP and FN side by side.

For every model, method and batch size, the learning rate is the best of a
grid by the final training loss reached with seed 0 (the loss over the whole
training set at the final weights, in eval mode; diverged runs lose); when the
best is at an end of the grid, the grid is extended past it (the rule and its
limits: ``bnp.experiments.lr_grid``). The chosen rate is then run with every
seed. All runs see the same number of samples (epochs), so batch size 1 means
many more, noisier steps: the online-learning regime in which BN cannot train
and BNP is meant to.

Runs are independent and go to ``--jobs`` worker processes; every run is a
function of its arguments alone (seeded initialization and batch order, BLAS
on one thread), so the results are the same, bit for bit, for any number of
jobs (the timings aside). The schedule keeps the workers busy: first the
seed-0 trials of the given grid for every row, then each row's grid
extensions and other seeds as soon as its earlier results allow.

Outputs (in ``--out``), rewritten atomically after each finished row, so that
a failure or Ctrl-C later keeps them: ``results.json`` (every run, with its
loss curve; standard JSON: a value that is not a finite number, such as the
loss of a diverged run, is written as ``null``), ``summary.csv`` (one row per
model, method and batch size) and ``table.md`` (the table in Markdown without the
timings, the command that made it on its first line: a rerun writes the same
text); at the end the plots
``loss_curves.png`` and ``accuracy_vs_batch_size.png``.

A run's ``status`` is ``ok``, ``diverged`` (a non-finite loss: a result of
the learning-rate search) or ``failed``. A failure the experiment exists to
show (BN with one value per channel at batch size 1) has
``expected_failure: true`` and is a reported result; any other failure makes
the command's exit status 1.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import shlex
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np  # host-side summaries of results only

from .. import backend
from .. import data as bdata
from ..data import DataLoader
from ..nn import init, models
from ..optim import SGD
from ..plotting import headless_pyplot, save
from ..preconditioner import BNP
from ..train import evaluate, fit
from .arguments import (
    choices,
    float_in,
    list_of,
    nonnegative_int,
    positive_float,
    positive_int,
    writable_dir,
)
from .lr_grid import LrSearch
from .outputs import json_text, write_atomically
from .workers import PoolRunner, SerialRunner

METHODS = ("none", "bn", "bnp", "fn")
# also available, not in the default run: "wbnp", BNP with the full input covariance
# (whitening, the K-FAC-like extension; Linear layers only, so MLP only)
EXTRA_METHODS = ("wbnp",)
MODELS = ("mlp", "cnn")
DATA_SETS = ("synthetic", "digits", "mnist", "fashion", "mnist1d")


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
    lr_extensions: int = 3
    lr_max: float = 3.0
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
        """A run of seconds, for tests and a first look (on every data set: n_train/n_test subset it)."""
        base = dict(
            batch_sizes=(1, 16), seeds=1, epochs=1, lrs=(0.1, 0.01), n_train=200, n_test=100,
            hidden=(16,), image_size=8,
        )
        base.update(overrides)
        return cls(**base)

    def validate(self) -> None:
        """Raise ValueError naming the first field (or combination) that cannot run."""
        for name, allowed in (("methods", METHODS + EXTRA_METHODS), ("models", MODELS)):
            values = getattr(self, name)
            if not values or any(v not in allowed for v in values):
                raise ValueError(f"{name} must be a non-empty list from {','.join(allowed)}, got {values}")
        if self.data not in DATA_SETS:
            raise ValueError(f"unknown data {self.data!r}; choose from {','.join(DATA_SETS)}")
        if "wbnp" in self.methods and "cnn" in self.models:
            raise ValueError("method 'wbnp' (whitening BNP) supports Linear layers only: use it with --models mlp")
        for name in ("batch_sizes", "hidden"):
            if not getattr(self, name) or any(int(v) < 1 for v in getattr(self, name)):
                raise ValueError(f"{name} must be a non-empty list of integers >= 1, got {getattr(self, name)}")
        for name in ("seeds", "epochs", "n_train", "n_test", "image_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr_extensions < 0:
            raise ValueError(f"lr_extensions must be >= 0, got {self.lr_extensions}")
        if not self.lrs or len(set(self.lrs)) != len(self.lrs) or \
                not all(math.isfinite(v) and v > 0 for v in self.lrs):
            raise ValueError(f"lrs must be distinct finite positive learning rates, got {self.lrs}")
        if not (self.lr_max >= max(self.lrs)):
            raise ValueError(f"lr_max (--lr-max {self.lr_max:g}) is below the largest rate of the grid "
                             f"(--lrs: {max(self.lrs):g})")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        if not (math.isfinite(self.bnp_rho) and 0 <= self.bnp_rho < 1):
            raise ValueError(f"BNP's rho must lie in [0, 1), got {self.bnp_rho}")
        if not (math.isfinite(self.bnp_eps) and self.bnp_eps >= 0):
            raise ValueError(f"BNP's eps must be a finite number >= 0, got {self.bnp_eps}")


# -- building blocks ---------------------------------------------------------------
def load_data(config: CompareConfig, image: bool):
    """The data set as host arrays (X_train, y_train, X_test, y_test, n_classes);
    images (N, C, H, W) for the convnet, flat vectors for the MLP."""
    if config.data == "synthetic":
        shape = (config.image_size, config.image_size) if image else None
        ds = bdata.synthetic(n_train=config.n_train, n_test=config.n_test, seed=1234, image_shape=shape)
    elif config.data == "digits":
        ds = bdata.digits(seed=1234).subset(config.n_train, config.n_test)  # all of it unless --quick
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
    """Train one network; returns losses, accuracy, time and a status (``ok``, ``diverged``, ``failed``)."""
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
        return _no_result(record, "diverged", str(exc), time.perf_counter() - start)
    except ValueError as exc:  # e.g. BN with one value per channel at batch size 1
        expected = method == "bn" and "value per channel" in str(exc)
        return _no_result(record, "failed", str(exc), time.perf_counter() - start, expected=expected)
    seconds = time.perf_counter() - start
    # The final loss is the training objective at the final weights over the whole
    # training set, in eval mode (the network one would deploy). The running
    # mini-batch loss would mislead with class-sorted batches: a network that
    # just predicts the current batch's class scores well on it.
    train_metrics = evaluate(model, DataLoader((X_tr, y_tr), batch_size=256, shuffle=False))
    if not math.isfinite(train_metrics["loss"]):
        return _no_result(record, "diverged", "non-finite training loss at the final weights", seconds)
    metrics = evaluate(model, test_loader)
    losses = np.asarray(history.step_losses, dtype=float)
    return {**record, "status": "ok", "expected_failure": False, "error": "",
            "final_loss": float(train_metrics["loss"]), "train_accuracy": float(train_metrics["accuracy"]),
            "test_accuracy": float(metrics["accuracy"]), "seconds": seconds, "losses": _downsample(losses, 200)}


def _no_result(record: dict, status: str, error: str, seconds: float, expected: bool = False, **extra) -> dict:
    """A run without final numbers: loss +inf if it diverged, else NaN (null in results.json), accuracies NaN."""
    loss = math.inf if status == "diverged" else math.nan
    return {**record, "status": status, "expected_failure": expected, "error": error, "final_loss": loss,
            "train_accuracy": math.nan, "test_accuracy": math.nan, "seconds": seconds, "losses": [], **extra}


def _guarded_run(kind: str, method: str, batch_size: int, lr: float, seed: int, arrays, config: CompareConfig) -> dict:
    """``run_one``, with any exception it lets through (a bug, a broken input) recorded as an unexpected failure,
    so that one broken run neither loses the others nor goes unnoticed."""
    start = time.perf_counter()
    try:
        return run_one(kind, method, batch_size, lr, seed, arrays, config)
    except Exception as exc:  # noqa: BLE001 - recorded with its traceback, and the exit status says so
        record = dict(model=kind, method=method, batch_size=batch_size, lr=lr, seed=seed)
        return _no_result(record, "failed", f"{type(exc).__name__}: {exc}", time.perf_counter() - start,
                          traceback=traceback.format_exc())


def _downsample(x: np.ndarray, points: int) -> list[float]:
    """Mean of equal chunks: a smoothed curve of at most ``points`` values."""
    if len(x) <= points:
        return [float(v) for v in x]
    chunks = np.array_split(x, points)
    return [float(c.mean()) for c in chunks]


def _score(run: dict) -> float:
    return run["final_loss"] if run["status"] == "ok" else math.inf


# -- worker processes ----------------------------------------------------------------
_worker: dict[str, Any] = {}


def _worker_init(backend_name: str, dtype: str, data: dict, config: CompareConfig) -> None:
    backend.set_backend(backend_name)
    backend.set_default_dtype(dtype)
    _worker.update(data=data, config=config)


def _worker_run(_: int, kind: str, method: str, batch_size: int, lr: float, seed: int) -> dict:
    """One task (row index first) in a worker, on the data and config its initializer stored."""
    return _guarded_run(kind, method, batch_size, lr, seed, _worker["data"][kind], _worker["config"])


def default_jobs() -> int:
    """One worker per core (``os.cpu_count()``) on the CPU; one process on the GPU (its runs share one device)."""
    return 1 if backend.get_backend() == "cupy" else (os.cpu_count() or 1)


# -- the experiment ----------------------------------------------------------------
class _Row:
    """One (model, method, batch size): its learning-rate search on seed 0, then the other seeds."""

    def __init__(self, index: int, kind: str, method: str, batch_size: int, config: CompareConfig):
        self.index, self.kind, self.method, self.batch_size, self.config = index, kind, method, batch_size, config
        self.search = LrSearch(config.lrs, config.lr_extensions, config.lr_max)
        self.trials: dict[float, dict] = {}
        self.seed_runs: dict[int, dict] = {}
        self.best: float | None = None
        self.done = False

    def task(self, lr: float, seed: int) -> tuple:
        return (self.index, self.kind, self.method, self.batch_size, lr, seed)

    def first_tasks(self) -> list[tuple]:
        return [self.task(lr, 0) for lr in self.search.tried]

    def add(self, record: dict) -> list[tuple]:
        """Take one finished run; returns the tasks it makes ready (a grid extension or the other seeds)."""
        if record["role"] == "lr_search":
            self.trials[record["lr"]] = record
            self.search.record(record["lr"], _score(record), diverged=record["status"] == "diverged")
            if not self.search.complete:
                return []
            lr = self.search.next_lr()
            if lr is not None:
                return [self.task(lr, 0)]
            self.best = self.search.best
            if self.best is None:  # nothing trained at any rate (BN at batch size 1): no seeds to add
                self.done = True
                return []
            seeds = [self.task(self.best, seed) for seed in range(1, self.config.seeds)]
            self.done = not seeds
            return seeds
        self.seed_runs[record["seed"]] = record
        self.done = len(self.seed_runs) == self.config.seeds - 1
        return []

    def runs(self) -> list[dict]:
        return [self.trials[lr] for lr in self.search.tried] + [self.seed_runs[s] for s in sorted(self.seed_runs)]

    def summary(self) -> dict:
        trials = [self.trials[lr] for lr in self.search.tried]
        chosen = [self.trials[self.best]] + [self.seed_runs[s] for s in sorted(self.seed_runs)] \
            if self.best is not None else []
        ok = [r for r in chosen if r["status"] == "ok"]
        if not chosen:
            status = "diverged" if all(t["status"] == "diverged" for t in trials) else "failed"
        else:
            status = "ok" if len(ok) == len(chosen) else "partial"
        failed = [r for r in (chosen or trials) if r["status"] != "ok"]
        unexpected = [r for r in self.runs() if r["status"] == "failed" and not r["expected_failure"]]
        first_error = (unexpected or failed)[0]["error"] if unexpected or failed else ""
        losses = [r["final_loss"] for r in ok]
        accs = [r["test_accuracy"] for r in ok]
        return dict(
            model=self.kind, method=self.method, batch_size=self.batch_size, lr=self.best,
            seeds=len(chosen), seeds_ok=len(ok),
            status=status, unexpected_failures=len(unexpected),
            expected_failure=status == "failed" and not unexpected and any(r["expected_failure"] for r in failed),
            final_loss_mean=_mean(losses), final_loss_std=_std(losses),
            test_accuracy_mean=_mean(accs), test_accuracy_std=_std(accs),
            seconds_mean=float(np.mean([r["seconds"] for r in (chosen or trials)])),
            lrs_tried=list(self.search.tried), lr_at_edge=self.search.at_edge,
            error=first_error,
        )


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _std(values: list[float]) -> float | None:
    return float(np.std(values)) if values else None


def load_all(config: CompareConfig) -> dict[str, tuple]:
    """The data of every model in ``config``, loaded before any training (a missing file fails here)."""
    return {kind: load_data(config, image=(kind == "cnn")) for kind in config.models}


def run(config: CompareConfig, log: Callable[[str], Any] = print, jobs: int = 1, data: dict | None = None,
        command: str = "") -> dict:
    """Run the whole comparison; returns ``{"config", "runs", "summary", ...}`` and writes the outputs.

    Args:
        config: the experiment (validated here).
        log: takes each line of the table, in row order, as soon as its row is done.
        jobs: worker processes (1: in this process, where a test can monkeypatch ``run_one``).
        data: ``load_all(config)``, if already loaded.
        command: the command line, for ``table.md``'s first line.
    """
    config.validate()
    if jobs < 1:
        raise ValueError(f"compare: jobs must be >= 1, got {jobs}")
    data = load_all(config) if data is None else data
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = [(k, m, b) for k in config.models for b in config.batch_sizes for m in config.methods]
    rows = [_Row(i, *key, config) for i, key in enumerate(keys)]
    result = {"config": asdict(config), "backend": backend.get_backend(),
              "dtype": str(backend.get_default_dtype()), "command": command, "complete": False,
              "runs": [], "summary": [], "execution": {"jobs": jobs}}
    start = time.perf_counter()
    runner = None
    try:
        runner = _runner(jobs, data, config)
        _schedule(rows, runner, result, out, log, start)
    finally:
        if runner is not None:
            runner.close()
    result["complete"] = True
    result["execution"]["wall_seconds"] = time.perf_counter() - start
    _write_outputs(result, out)
    _plot(result, out)
    return result


def _runner(jobs: int, data: dict, config: CompareConfig) -> SerialRunner | PoolRunner:
    if jobs == 1:
        # row by row: each row's line as early as possible (the order does not change any result)
        return SerialRunner(lambda _, *task: _guarded_run(*task, data[task[0]], config), priority=lambda t: t[0])
    return PoolRunner(_worker_run, jobs, _worker_init,
                      (backend.get_backend(), str(backend.get_default_dtype()), data, config))


def _schedule(rows: list[_Row], runner, result: dict, out: Path, log: Callable[[str], Any], start: float) -> None:
    """Submit the first tasks of every row, then each row's next tasks as its results come in; write the
    outputs after each finished row and log the rows' lines in row order."""
    for row in rows:
        for task in row.first_tasks():
            runner.submit(task)
    logged = 0
    while runner.pending:
        task, record = runner.next_done()
        row = rows[task[0]]
        record["role"] = "lr_search" if record["seed"] == 0 else "seed"
        if record["status"] == "failed" and not record["expected_failure"]:
            print(f"bnp compare: run {task[1:]} failed unexpectedly: {record['error']}\n"
                  f"{record.get('traceback', '')}", file=sys.stderr, flush=True)
        for new in row.add(record):
            runner.submit(new)
        if row.done:
            finished = [r for r in rows if r.done]
            result["runs"] = [run for r in finished for run in r.runs()]
            result["summary"] = [r.summary() for r in finished]
            result["execution"]["wall_seconds"] = time.perf_counter() - start
            _write_outputs(result, out)
            while logged < len(rows) and rows[logged].done:
                log(_format_row(rows[logged].summary()))
                logged += 1


def unexpected_failures(result: dict) -> list[dict]:
    """The runs that failed for a reason the experiment does not exist to show."""
    return [r for r in result["runs"] if r["status"] == "failed" and not r["expected_failure"]]


# -- outputs -----------------------------------------------------------------------------
def _write_outputs(result: dict, out: Path) -> None:
    write_atomically(out / "results.json", json_text(result))
    write_atomically(out / "summary.csv", _csv_text(result["summary"]))
    write_atomically(out / "table.md", markdown_table(result))


CSV_FIELDS = ("model", "method", "batch_size", "lr", "lr_at_edge", "lrs_tried", "seeds", "seeds_ok", "status",
              "expected_failure", "unexpected_failures", "final_loss_mean", "final_loss_std",
              "test_accuracy_mean", "test_accuracy_std", "seconds_mean", "error")


def _csv_text(summary: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in summary:
        writer.writerow({**row, "lrs_tried": " ".join(f"{lr:g}" for lr in row["lrs_tried"])})
    return buffer.getvalue()


# -- the table -----------------------------------------------------------------------------
COLUMNS = ("model", "method", "batch", "lr", "final loss", "test acc", "s/run", "note")
_WIDTHS = (5, 6, -5, -8, -17, -15, -6, 0)  # negative: right-aligned
EDGE_MARK = "*"


def _cells(row: dict) -> list[str]:
    """The table's cells of one summary row."""
    lr = "-" if row["lr"] is None else f"{row['lr']:g}"
    lr += EDGE_MARK if row["lr_at_edge"] else ""
    if row["status"] in ("ok", "partial"):
        loss = f"{row['final_loss_mean']:.4f} ± {row['final_loss_std']:.4f}"
        acc = f"{100 * row['test_accuracy_mean']:.1f} ± {100 * row['test_accuracy_std']:.1f} %"
    else:
        loss = acc = "-"
    if row["status"] == "ok":
        note = f"FAILED (unexpected) in {row['unexpected_failures']} lr-search run(s): {row['error']}" \
            if row["unexpected_failures"] else ""
    elif row["status"] == "diverged":
        note = f"diverged at every rate tried ({min(row['lrs_tried']):g} to {max(row['lrs_tried']):g})"
    elif row["status"] == "partial":
        what = "FAILED (unexpected)" if row["unexpected_failures"] else "did not train"
        note = f"{what} in {row['seeds'] - row['seeds_ok']} of {row['seeds']} seeds: {row['error']}"
    else:
        note = ("failed (expected): " if row["expected_failure"] else "FAILED (unexpected): ") + row["error"]
    return [row["model"], row["method"], str(row["batch_size"]), lr, loss, acc, f"{row['seconds_mean']:.1f}", note]


def _fixed_width(cells: list[str] | tuple[str, ...]) -> str:
    parts = [c.rjust(-w) if w < 0 else c.ljust(w) for c, w in zip(cells, _WIDTHS)]
    return " ".join(parts[:-1]) + ("  " + parts[-1] if parts[-1] else "")


HEADER = _fixed_width(COLUMNS)


def _format_row(row: dict) -> str:
    return _fixed_width(_cells(row))


def format_table(summary: list[dict]) -> str:
    """The printed table of ``bnp compare`` for a list of summary rows (header included)."""
    return "\n".join([HEADER, "-" * len(HEADER)] + [_format_row(r) for r in summary])


def _footnotes(result: dict) -> list[str]:
    cfg, summary = result["config"], result["summary"]
    notes = []
    if any(r["lr_at_edge"] for r in summary):
        notes.append(f"{EDGE_MARK} the best rate is at the edge of the searched grid: the search stopped at its "
                     f"limit (at most {cfg['lr_extensions']} rates added per side, none above {cfg['lr_max']:g}).")
    if any(r["status"] == "failed" and r["expected_failure"] for r in summary):
        notes.append("failed (expected): BN cannot normalize one value per channel (batch size 1 in the MLP); "
                     "a result the experiment exists to show, not an error.")
    total = len(cfg["models"]) * len(cfg["methods"]) * len(cfg["batch_sizes"])
    if not result["complete"]:
        notes.append(f"incomplete: {len(summary)} of {total} rows finished.")
    return notes


def markdown_table(result: dict) -> str:
    """The table in Markdown; its first line is the command that made it. Without the timings, so that a rerun
    of the command writes the same text (the runs are bit-reproducible): a quoted copy cannot drift."""
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|").replace("*", "\\*") for c in cells) + " |"

    seconds = COLUMNS.index("s/run")  # left out: timings change from run to run, the other cells do not

    def drop(cells):
        return [c for i, c in enumerate(cells) if i != seconds]

    lines = [f"`{result['command'] or 'bnp compare'}`", "", line(drop(COLUMNS)), "|:--|:--|--:|--:|--:|--:|:--|"]
    lines += [line(drop(_cells(row))) for row in result["summary"]]
    notes = _footnotes(result)
    if notes:
        lines += [""] + [n.replace(EDGE_MARK, "\\" + EDGE_MARK, 1) if n.startswith(EDGE_MARK) else n for n in notes]
    return "\n".join(lines) + "\n"


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
            if ax.lines:
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
        if ax.lines:
            ax.legend(fontsize=8)
    save(fig, out / "accuracy_vs_batch_size.png")


# -- command line ----------------------------------------------------------------------
# (dest, flag) of the options that change the numbers, in the order of --help: table.md's command line.
# --out, --jobs and --progress are left out of it: they do not change the results.
_RESULT_OPTIONS: list[tuple[str, str]] = []


def add_parser(sub) -> None:
    d = CompareConfig()
    q = CompareConfig.quick_config()
    p = sub.add_parser("compare", help="compare none / BN / BNP / FN across batch sizes",
                       argument_default=argparse.SUPPRESS,
                       description="Train the same networks without normalization, with BN, with BNP and with FN, "
                       "picking each method's learning rate from a grid (extended past its edges where the best "
                       "rate is there), and report loss and accuracy. Every argument is checked before any "
                       "training; --quick changes only the defaults of options not given.")
    _RESULT_OPTIONS.clear()

    def option(flag: str, dest: str, **kwargs) -> None:
        p.add_argument(flag, dest=dest, **kwargs)
        _RESULT_OPTIONS.append((dest, flag))

    def both(name: str) -> str:
        full, quick = getattr(d, name), getattr(q, name)
        show = (lambda v: ",".join(map(str, v))) if isinstance(full, tuple) else str
        return f"default {show(full)}" + (f"; --quick: {show(quick)}" if quick != full else "")

    option("--quick", "quick", action="store_true", help="a run of seconds (tests, first look)")
    option("--methods", "methods", type=choices(METHODS + EXTRA_METHODS, "method"),
           help=f"comma list from none,bn,bnp,fn and wbnp (whitening BNP, mlp only); {both('methods')}")
    option("--models", "models", type=choices(MODELS, "model"), help=f"comma list from mlp,cnn; {both('models')}")
    option("--batch-sizes", "batch_sizes", type=list_of(positive_int, "batch sizes >= 1", distinct=True),
           help=f"comma list; {both('batch_sizes')}")
    option("--data", "data", type=str, choices=DATA_SETS,
           help="synthetic (built in), digits (scikit-learn), mnist or fashion (IDX files), mnist1d (generated); "
           "default synthetic")
    option("--data-dir", "data_dir", help="directory with MNIST IDX files or mnist.npz, or the mnist1d cache "
           "(or set BNP_DATA)")
    option("--seeds", "seeds", type=positive_int, help=f"seeds per setting (the first picks the lr); {both('seeds')}")
    option("--epochs", "epochs", type=positive_int, help=both("epochs"))
    option("--lrs", "lrs", type=list_of(positive_float, "positive learning rates", distinct=True),
           help=f"learning-rate grid, comma list; {both('lrs')}")
    option("--lr-extensions", "lr_extensions", type=nonnegative_int,
           help=f"most rates added past each end of the grid when the best is there; {both('lr_extensions')}")
    option("--lr-max", "lr_max", type=positive_float, help=f"no rate above this is tried; {both('lr_max')}")
    option("--momentum", "momentum", type=float_in(0, 1, high_open=True), help="SGD momentum in [0, 1); default 0")
    option("--sorted", "class_sorted", action="store_true",
           help="draw batches sorted by class (non-representative batches)")
    option("--rho", "bnp_rho", type=float_in(0, 1, high_open=True), metavar="RHO",
           help=f"BNP running-statistics decay in [0, 1); default {d.bnp_rho}")
    option("--eps", "bnp_eps", type=float_in(0, math.inf, high_open=True), metavar="EPS",
           help=f"BNP variance floor, >= 0; default {d.bnp_eps}")
    p.add_argument("--out", type=writable_dir, help=f"output directory; default {d.out}")
    p.add_argument("--jobs", type=positive_int,
                   help="worker processes; default: the number of cores (1 with --progress or on the GPU); "
                   "the results do not depend on it")
    p.add_argument("--progress", action="store_true", help="show progress bars (one process: --jobs 1)")
    p.set_defaults(usage_error=p.error)


def _command_line(given: dict) -> str:
    """``bnp compare`` with the options in ``given`` that change the results, in --help order."""
    def show(v: Any) -> str:
        if isinstance(v, (tuple, list)):
            return ",".join(show(x) for x in v)
        return repr(v) if isinstance(v, float) else shlex.quote(str(v))

    parts = ["bnp compare"]
    for dest, flag in _RESULT_OPTIONS:
        if dest in given:
            parts.append(flag if given[dest] is True else f"{flag} {show(given[dest])}")
    return " ".join(parts)


def main_from_args(args: argparse.Namespace) -> int:
    given = {k: v for k, v in vars(args).items() if k in CompareConfig.__dataclass_fields__ or k == "quick"}
    quick = given.pop("quick", False)
    jobs = getattr(args, "jobs", None)
    if given.get("progress") and jobs not in (None, 1):
        args.usage_error("--progress draws one run's bars at a time: use it with --jobs 1")
    config = CompareConfig.quick_config(**given) if quick else CompareConfig(**given)
    try:
        config.validate()
        data = load_all(config)  # before any training: a missing data set or a mismatch is a usage error
    except (ValueError, FileNotFoundError, ImportError) as exc:
        args.usage_error(str(exc))
    jobs = jobs or (1 if config.progress else default_jobs())
    command = _command_line({**given, **({"quick": True} if quick else {})})
    say = _printer()
    say(f"{command}: data={config.data} models={','.join(config.models)} batch sizes="
        f"{','.join(map(str, config.batch_sizes))} seeds={config.seeds} epochs={config.epochs}"
        f"{' class-sorted batches' if config.class_sorted else ''}; {jobs} process{'es' if jobs > 1 else ''}")
    say(f"learning rate per (model, method, batch size): the best of {list(config.lrs)} by the final loss on the "
        f"whole training set (eval mode) on seed 0, the grid extended past an end where the best is (at most "
        f"{config.lr_extensions} rates per side, none above {config.lr_max:g}); SGD momentum {config.momentum}; "
        f"BNP rho={config.bnp_rho} eps={config.bnp_eps}")
    say(HEADER)
    say("-" * len(HEADER))
    try:
        result = run(config, log=say, jobs=jobs, data=data, command=command)
    except KeyboardInterrupt:
        print(f"\nbnp compare: interrupted; the rows finished so far are in {config.out}/results.json, summary.csv "
              "and table.md", file=sys.stderr)
        return 130
    for note in _footnotes(result):
        say(note)
    say(f"\nwrote {config.out}/results.json, summary.csv, table.md, loss_curves.png, accuracy_vs_batch_size.png")
    failures = unexpected_failures(result)
    if failures:
        print(f"bnp compare: {len(failures)} run(s) failed unexpectedly (tracebacks above; 'error' and 'traceback' "
              f"in {config.out}/results.json)", file=sys.stderr)
        return 1
    return 0


def _printer() -> Callable[[str], None]:
    """print, flushed at once: each row shows up when it is done, also through a pipe (``| tee``)."""
    def say(line: str = "") -> None:
        print(line, flush=True)

    return say
