"""The training loop: ``fit`` runs epochs of steps, ``evaluate`` measures loss and accuracy.

One step, in the order every part of ``bnp`` expects::

    model.train(); loss = loss_fn(model(x), y)
    optimizer.zero_grad(); loss.backward()
    preconditioner.step()      # BNP (or any object with .step()) rewrites .grad in place
    optimizer.step()

Keeping the GPU busy: a Python number made from a device array (``float()``,
``.item()``) waits for all queued GPU work. The loop therefore keeps each
step's loss as a 0-d backend array and copies a whole epoch's losses to the
host at once. The one exception is the divergence check: two booleans per
step, one read before ``backward()`` (is the loss finite? a NaN is never
back-propagated) and one after it and the preconditioner, before
``optimizer.step()`` (is every gradient finite?). A NaN/inf stops training at the step where it appears, naming the
step, epoch, batch and the first parameter concerned, and the parameters and
the optimizer state are left as they were before that step. A layer that
refuses a batch (BN, FN and BNP refuse non-finite statistics) is reported
with the same step, epoch and batch.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from . import backend
from .autograd import Tensor, no_grad
from .errors import NonFiniteError
from .functional import cross_entropy

LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class History:
    """What ``fit`` recorded.

    Attributes:
        step_losses: training loss of every step, in order.
        epoch_losses: per epoch, the mean training loss over its samples.
        train_accuracy: per epoch, the share of training samples classified
            right at the step that saw them (NaN when outputs are not (N, C) class scores).
        eval_loss, eval_accuracy: per epoch, on ``eval_loader`` (empty without one).
        epoch_times: seconds per epoch (evaluation included).
        wall_time: seconds for the whole run.
        steps: number of optimizer steps taken.
        stopped_early: a callback asked to stop.
    """

    step_losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    epoch_times: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    steps: int = 0
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.epoch_losses)


@dataclass
class StepInfo:
    """Passed to ``fit``'s callback after every step (counts start at 1).

    ``loss`` is the step's loss Tensor: reading its value (``loss.item()``)
    waits for the GPU, so a callback should do it only when it needs it.
    """

    step: int
    epoch: int
    batch: int
    loss: Tensor
    model: Any
    optimizer: Any


def fit(
    model: Any,
    loader: Any,
    optimizer: Any,
    epochs: int = 1,
    steps: int | None = None,
    loss_fn: LossFn = cross_entropy,
    preconditioner: Any = None,
    progress: bool | None = None,
    eval_loader: Any = None,
    callback: Callable[[StepInfo], Any] | None = None,
) -> History:
    """Train ``model`` on the batches of ``loader``.

    Args:
        model: a ``bnp.nn.Module`` mapping a batch x to outputs.
        loader: yields ``(x, y)`` Tensor batches (a ``bnp.data.DataLoader``); ``len()`` gives batches per epoch.
        optimizer: has ``zero_grad()`` and ``step()`` (``bnp.optim.SGD``, ``Adam``).
        epochs: number of passes over ``loader``.
        steps: if given, stop after exactly this many steps, however many epochs
            that takes (``epochs`` is then ignored; the last epoch may be partial).
        loss_fn: ``loss_fn(outputs, y)`` -> scalar Tensor (default: cross-entropy).
        preconditioner: ``preconditioner.step()`` is called between ``backward()``
            and ``optimizer.step()`` (e.g. ``bnp.BNP(model)``).
        progress: a tqdm progress bar; None (default) shows it only when stderr is a terminal.
        eval_loader: if given, ``evaluate`` on it after every epoch.
        callback: ``callback(StepInfo)`` after every step; returning True stops training.

    Returns:
        a History.

    Raises:
        FloatingPointError: (a :class:`bnp.NonFiniteError`) the loss or a
            gradient became NaN or infinite, or a layer refused non-finite
            statistics; the message names the step, epoch and batch (counted
            from 1) and the first parameter concerned. The parameters and the
            optimizer state are those before that step's update.
        ValueError: the loader yields no batches (in some epoch).
    """
    if steps is None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"fit: epochs must be an integer >= 1, got {epochs!r}")
    elif isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"fit: steps must be an integer >= 1 or None, got {steps!r}")
    per_epoch = len(loader)
    if per_epoch < 1:
        raise ValueError("fit: the loader yields no batches")
    names = _parameter_names(model, optimizer)
    total = steps if steps is not None else epochs * per_epoch
    history = History()
    bar = _progress_bar(total, progress)
    start = time.perf_counter()
    try:
        epoch = 0
        while history.steps < total and not history.stopped_early:
            epoch += 1
            epoch_start = time.perf_counter()
            record = _EpochRecord()
            batch = 0
            for batch, (x, y) in enumerate(loader, start=1):
                where = f"step {history.steps + 1} (epoch {epoch}, batch {batch})"
                model.train()
                with _reported_at(where):
                    outputs = model(x)
                    loss = loss_fn(outputs, y)
                _check_loss(loss, where)
                with _reported_at(where):
                    optimizer.zero_grad()
                    loss.backward()
                    if preconditioner is not None:
                        preconditioner.step()
                _check_finite_step(loss, names, where)
                optimizer.step()
                history.steps += 1
                record.add(loss, outputs, y)
                bar.update(1)
                if callback is not None and callback(StepInfo(history.steps, epoch, batch, loss, model, optimizer)):
                    history.stopped_early = True
                if history.steps >= total or history.stopped_early:
                    break
            if batch == 0:
                raise ValueError(f"fit: the loader yielded no batches in epoch {epoch} (its len() is {per_epoch})")
            record.finish(history)
            if eval_loader is not None:
                metrics = evaluate(model, eval_loader, loss_fn)
                history.eval_loss.append(metrics["loss"])
                history.eval_accuracy.append(metrics["accuracy"])
            history.epoch_times.append(time.perf_counter() - epoch_start)
            bar.set_postfix(epoch=epoch, loss=f"{history.epoch_losses[-1]:.4g}", refresh=False)
    finally:
        bar.close()
    backend.synchronize()
    history.wall_time = time.perf_counter() - start
    return history


def evaluate(model: Any, loader: Any, loss_fn: LossFn = cross_entropy) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over all batches of ``loader``.

    Runs in evaluation mode (BN uses its running statistics) without recording
    a graph, and puts the model back in the mode it was in.

    Returns:
        ``{"loss": ..., "accuracy": ..., "samples": N}``; accuracy is NaN when
        the outputs are not (N, C) class scores.
    """
    was_training = model.training
    model.eval()
    try:
        total_loss, correct, count = None, None, 0
        with no_grad():
            for x, y in loader:
                outputs = model(x)
                weighted = loss_fn(outputs, y).data * len(x)  # stays on the device: no sync per batch
                total_loss = weighted if total_loss is None else total_loss + weighted
                correct = _add_correct(correct, outputs, y)
                count += len(x)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yields no batches")
    accuracy = math.nan if correct is None else float(correct) / count
    return {"loss": float(total_loss) / count, "accuracy": accuracy, "samples": count}


# -- helpers ---------------------------------------------------------------------------
class _EpochRecord:
    """One epoch's losses, batch sizes and correct counts, kept on the device until ``finish``."""

    def __init__(self) -> None:
        self.losses: list[Any] = []
        self.sizes: list[int] = []
        self.correct: Any = None
        self.classified = True

    def add(self, loss: Tensor, outputs: Tensor, y: Tensor) -> None:
        self.losses.append(loss.data.reshape(()))
        self.sizes.append(len(y))
        if self.classified:
            self.correct = _add_correct(self.correct, outputs, y)
            self.classified = self.correct is not None

    def finish(self, history: History) -> None:
        losses = backend.to_numpy(backend.xp().stack(self.losses)).tolist()  # one copy per epoch
        history.step_losses.extend(losses)
        n = sum(self.sizes)
        history.epoch_losses.append(sum(v * s for v, s in zip(losses, self.sizes, strict=True)) / n)
        history.train_accuracy.append(float(self.correct) / n if self.classified else math.nan)


def _add_correct(correct: Any, outputs: Tensor, y: Any) -> Any:
    """``correct`` plus the number of right argmax predictions (a 0-d device array), or None
    when this is not classification (outputs not (N, C), or targets not integer labels)."""
    labels = y.data if isinstance(y, Tensor) else y
    if outputs.ndim != 2 or getattr(labels, "ndim", 0) != 1 or labels.dtype.kind not in "iu":
        return None
    hits = (outputs.data.argmax(axis=1) == labels).sum()
    return hits if correct is None else correct + hits


@contextlib.contextmanager
def _reported_at(where: str) -> Iterator[None]:
    """A layer that refuses a batch (non-finite statistics) is reported with the step it happened at."""
    try:
        yield
    except NonFiniteError as exc:
        raise NonFiniteError(f"fit: at {where}: {exc}") from exc


def _check_loss(loss: Any, where: str) -> None:
    """A one-element Tensor with a finite value (a device sync: see the module doc)."""
    if not isinstance(loss, Tensor) or loss.size != 1:
        shape = loss.shape if isinstance(loss, Tensor) else type(loss).__name__
        raise TypeError(f"fit: loss_fn must return a scalar Tensor, got {shape}")
    if not bool(backend.xp().isfinite(loss.data).all()):
        raise NonFiniteError(f"fit: loss became {loss.item()} at {where}; the parameters were left as they were before "
                             "this step")


def _parameter_names(model: Any, optimizer: Any) -> list[tuple[str, Tensor]]:
    """The optimizer's parameters with the model's names for them (in the optimizer's order)."""
    by_id = {id(p): name for name, p in model.named_parameters()} if hasattr(model, "named_parameters") else {}
    params = getattr(optimizer, "params", None)
    if params is None:
        params = [p for _, p in model.named_parameters()] if by_id else []
    return [(by_id.get(id(p), f"optimizer parameter {i} (shape {p.shape})"), p) for i, p in enumerate(params)]


def _check_finite_step(loss: Tensor, names: list[tuple[str, Tensor]], where: str) -> None:
    """Raise NonFiniteError if a gradient is not finite: one device sync for all of them (module doc)."""
    xp = backend.xp()
    grads = [(name, _grad_data(p)) for name, p in names if p.grad is not None]
    if not grads:
        return
    ok = xp.isfinite(grads[0][1]).all()
    for _, g in grads[1:]:
        ok = ok & xp.isfinite(g).all()
    if bool(ok):
        return
    for name, g in grads:
        bad = int((~xp.isfinite(g)).sum())
        if bad:
            raise NonFiniteError(
                f"fit: the gradient of '{name}' has {bad} non-finite of {g.size} entries at {where} (the loss, "
                f"{loss.item():.6g}, is finite); the optimizer step was skipped: the parameters were left at their "
                "last finite values. Lower the learning rate, or normalize the inputs"
            )


def _grad_data(p: Tensor) -> Any:
    g = p.grad
    return g.data if isinstance(g, Tensor) else backend.asarray(g)


def _progress_bar(total: int, progress: bool | None) -> Any:
    """A tqdm bar, or a do-nothing stand-in when switched off."""
    enabled = _is_terminal(sys.stderr) if progress is None else bool(progress)
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="step", leave=False, dynamic_ncols=True)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False
