"""BNP for PyTorch models: the algorithm of ``bnp.BNP`` on ``torch.nn`` layers.

    import bnp.torch
    pre = bnp.torch.BNP(model)                 # hooks on every nn.Linear and nn.Conv2d
    loss.backward(); pre.step(); optimizer.step()

Same algorithm, conventions and defaults as the NumPy reference
(``bnp/preconditioner.py``, ``bnp/running_moments.py``, THEORY.md section 2):
running mean and variance of each layer's input (the variance about the
running mean, bias-corrected weights ``(1-rho)/(1-rho**t)``), the update
``G_W' = (G_W - g_b mu^T) D^-2``, ``g_b' = g_b - G_W' mu`` with
``D^2 = s^2 + eps``; layers without a (trainable) bias get the Jacobi scaling
``D0^2 = s^2 + mu^2 + eps``; convolutions keep per-channel statistics
(``"channel"``) or statistics of every im2col patch entry (``"patch"``);
``whiten=True`` uses the full input covariance of Linear layers.

PyTorch specifics:

* Statistics are kept in float32 (float64 for float64 layers), whatever the
  input dtype, so they are safe under ``torch.autocast``; the forward hooks
  run only in training mode and under ``torch.no_grad()``.
* ``step()`` rewrites ``.grad`` in place (the same tensors), so it composes
  with any optimizer, with DDP's gradient buckets and with ``GradScaler``
  (the map is linear: scaling before or after it is the same).
* Data parallel: when ``torch.distributed`` is initialized (or a
  ``process_group`` is given) each process keeps its batch statistics
  (count, mean, centred sum of squares) until ``step()``, which gathers all
  layers' statistics in ONE collective and merges them exactly (Chan, Golub
  & LeVeque), weighted by each process's number of rows. The running moments
  then equal those of one process on the concatenated batch. Several forward
  passes between two steps count as one batch in this mode (in the
  single-process mode each forward pass is one update, as in the reference).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import weakref
from typing import Any, Iterable

try:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch import nn
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "bnp.torch needs PyTorch, which is not installed; install the pinned CPU build with "
        "pip install -e '.[torch]'"
    ) from error

from .running_moments import batch_weight

__all__ = ["BNP"]

CONV_STATISTICS = ("channel", "patch")

# layer -> the BNP whose hooks are on it (a weak reference, so a dropped BNP frees its layers)
_owners: weakref.WeakKeyDictionary[nn.Module, weakref.ReferenceType[BNP]] = weakref.WeakKeyDictionary()


def _stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 layers, float32 otherwise (half, bfloat16, float32)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Statistics in full precision even inside an autocast region."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def _full_precision() -> contextlib.ExitStack:
    """The update in full precision even if ``step()`` is called inside an autocast region."""
    stack = contextlib.ExitStack()
    for device_type in ("cpu", "cuda"):
        if torch.is_autocast_enabled(device_type):
            stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
    return stack


def _var_mean(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Biased variance and mean over ``dims``, both stable (centred) algorithms.

    On CPU ``torch.var_mean`` (Welford) is ~30x slower than two passes (mean,
    then the mean of the centred squares), so the CPU takes two passes.
    """
    if x.device.type != "cpu":
        return torch.var_mean(x, dim=dims, correction=0)
    mean = x.mean(dim=dims, keepdim=True)
    return (x - mean).square_().mean(dim=dims), mean.reshape(-1)


class _Moments:
    """Running mean (n,) and variance (n,) or covariance (n, n) of one layer, updated in place."""

    __slots__ = ("mean", "var", "count")

    def __init__(self, mean: torch.Tensor, var: torch.Tensor, count: int = 0):
        self.mean, self.var, self.count = mean, var, count

    def update(self, batch_mean: torch.Tensor, batch_var: torch.Tensor | None, rho: float,
               bias_correction: bool) -> None:
        """Fold in one batch (the reference's ``combine``, rearranged to act in place).

        With ``d = m_B - m`` and ``m' = m + w d`` the reference's
        ``(1-w)(v + (m-m')^2) + w (v_B + (m_B-m')^2)`` is ``(1-w) v + w v_B + w (1-w) d d^T``:
        the same non-negative terms, no cancellation.
        """
        w = batch_weight(self.count, rho, bias_correction)
        d = batch_mean - self.mean
        self.mean.add_(d, alpha=w)
        self.var.mul_(1.0 - w)  # then + w v_B; not lerp_: on CPU it is ~10x slower
        if batch_var is not None:  # None: a single sample, v_B = 0
            self.var.add_(batch_var, alpha=w)
        if self.var.dim() == 2:
            self.var.addr_(d, d, alpha=w * (1.0 - w))
        else:
            self.var.addcmul_(d, d, value=w * (1.0 - w))
        self.count += 1


class BNP:
    """Batch Normalization Preconditioning for the ``nn.Linear`` and ``nn.Conv2d`` layers of a model.

    Args:
        model: a ``torch.nn.Module``; its Linear and Conv2d layers are preconditioned.
        rho: decay of the running statistics in [0, 1) (0 = this batch's statistics only).
        eps: added to the variances, >= 0.
        bias_correction: correct the start-up bias of the running averages.
        layers: an explicit subset of the model's Linear/Conv2d layers (default: all).
        conv_statistics: ``"channel"`` (per input channel, default) or ``"patch"``
            (per im2col patch entry, zero padding included).
        whiten: use the full input covariance (Linear layers only).
        process_group: the group to merge statistics over (default: the world
            group when ``torch.distributed`` is initialized, else none).

    Shapes: a Linear layer with weight (out, n) has statistics (n,) (covariance
    (n, n) with ``whiten``); a Conv2d with weight (out, C, kh, kw) has (C,)
    (``"channel"``) or (C*kh*kw,) (``"patch"``).
    """

    def __init__(
        self,
        model: nn.Module,
        rho: float = 0.99,
        eps: float = 1e-3,
        bias_correction: bool = True,
        layers: Iterable[nn.Module] | None = None,
        conv_statistics: str = "channel",
        whiten: bool = False,
        process_group: Any = None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"BNP: model must be a torch.nn.Module, got {type(model).__name__}")
        self.rho = _check_real("rho", rho)
        if not 0.0 <= self.rho < 1.0:
            raise ValueError(f"BNP: rho must lie in [0, 1), got {rho!r}")
        self.eps = _check_real("eps", eps)
        if self.eps < 0:
            raise ValueError(f"BNP: eps must be >= 0, got {eps!r}")
        if conv_statistics not in CONV_STATISTICS:
            raise ValueError(f"BNP: conv_statistics must be 'channel' or 'patch', got {conv_statistics!r}")
        if process_group is not None and not (dist.is_available() and isinstance(process_group, dist.ProcessGroup)):
            raise TypeError(f"BNP: process_group must be a torch.distributed.ProcessGroup, got {process_group!r}")
        self.bias_correction, self.whiten = bool(bias_correction), bool(whiten)
        self.conv_statistics, self.process_group = conv_statistics, process_group
        self._names = {m: name for name, m in model.named_modules()}
        self.layers = self._choose(model, layers)
        self._moments: dict[nn.Module, _Moments] = {}
        self._pending: dict[nn.Module, tuple[int, torch.Tensor, torch.Tensor]] = {}  # data parallel only
        for layer in self.layers:
            _owners[layer] = weakref.ref(self)
        self._handles = [layer.register_forward_hook(self._observe) for layer in self.layers]

    # -- construction ------------------------------------------------------------
    def _name(self, layer: nn.Module) -> str:
        return f"'{self._names.get(layer, '?')}' ({layer!r})"

    def _choose(self, model: nn.Module, layers: Iterable[nn.Module] | None) -> list[nn.Module]:
        if layers is None:
            chosen = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            if not chosen:
                raise ValueError(f"BNP: the model {type(model).__name__} has no nn.Linear or nn.Conv2d layer")
        else:
            chosen = list(layers)
            if not chosen:
                raise ValueError("BNP: layers is empty; pass None to precondition every Linear and Conv2d layer")
        seen: set[nn.Module] = set()
        for m in chosen:
            if not isinstance(m, (nn.Linear, nn.Conv2d)):
                raise TypeError(f"BNP: can only precondition nn.Linear and nn.Conv2d layers, got {type(m).__name__}")
            if m not in self._names:
                raise ValueError(f"BNP: layer {m!r} is not a sub-module of the model")
            if m in seen:
                raise ValueError(f"BNP: layer {self._name(m)} is listed twice in layers")
            seen.add(m)
            owner = _owners.get(m)
            if owner is not None and owner() is not None:
                raise ValueError(
                    f"BNP: layer {self._name(m)} is already preconditioned by another BNP; call its remove() first"
                )
            if isinstance(m, nn.Conv2d):
                self._check_conv(m)
        return chosen

    def _check_conv(self, m: nn.Conv2d) -> None:
        if self.whiten:
            raise ValueError(f"BNP: whiten=True supports nn.Linear layers only; {self._name(m)} is a Conv2d")
        if m.groups != 1:
            raise ValueError(f"BNP: Conv2d with groups={m.groups} is not supported (groups=1 only): {self._name(m)}")
        if self.conv_statistics == "patch" and (isinstance(m.padding, str) and m.padding != "valid"
                                                or m.padding_mode != "zeros"):
            raise ValueError(
                f"BNP: conv_statistics='patch' needs explicit zero padding (padding_mode='zeros', numeric or "
                f"'valid' padding); {self._name(m)} has padding={m.padding!r}, padding_mode={m.padding_mode!r}"
            )

    def _features(self, layer: nn.Module) -> tuple[int, int]:
        """(number of statistics n, kernel offsets sharing each statistic)."""
        if isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            if self.conv_statistics == "patch":
                return layer.in_channels * kh * kw, 1
            return layer.in_channels, kh * kw
        return layer.in_features, 1

    # -- statistics ----------------------------------------------------------------
    def _group(self) -> Any:
        if self.process_group is not None:
            return self.process_group
        if dist.is_available() and dist.is_initialized():
            return dist.group.WORLD
        return None

    def _observe(self, layer: nn.Module, inputs: tuple, output: Any) -> None:
        if not layer.training or not inputs:
            return
        a = inputs[0]
        if a.numel() == 0:  # an empty batch carries no statistics (in DDP: a process without samples)
            return
        with torch.no_grad(), _no_autocast(a.device.type):
            dtype = _stats_dtype(layer.weight.dtype)
            if a.dtype != dtype:
                a = a.to(dtype)
            rows, mean, var = self._batch_moments(layer, a)
            if self._group() is None:
                self._moments_of(layer, a.device, a.dtype).update(mean, var, self.rho, self.bias_correction)
            else:
                self._hold(layer, rows, mean, var)

    def _batch_moments(self, layer: nn.Module, a: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor | None]:
        """(rows, mean (n,), biased variance (n,) or covariance (n, n)) of the layer's input rows.

        The variance is None for a single row (it is zero).
        """
        if isinstance(layer, nn.Conv2d):
            if a.dim() == 3:  # an unbatched (C, H, W) image
                a = a.unsqueeze(0)
            if self.conv_statistics == "patch":
                padding = 0 if layer.padding == "valid" else layer.padding
                a = F.unfold(a, layer.kernel_size, layer.dilation, padding, layer.stride)  # (N, C*kh*kw, L)
            var, mean = _var_mean(a, (0, 2) if a.dim() == 3 else (0, 2, 3))
            return a.numel() // a.shape[1], mean, var
        rows = a.reshape(-1, layer.in_features)
        if rows.shape[0] == 1:  # batch size 1: the sample itself, zero spread (None: nothing to add)
            return 1, rows[0], None
        if self.whiten:
            mean = rows.mean(dim=0)
            centred = rows - mean
            return rows.shape[0], mean, (centred.T @ centred).div_(rows.shape[0])
        var, mean = _var_mean(rows, (0,))
        return rows.shape[0], mean, var

    def _moments_of(self, layer: nn.Module, device: torch.device, dtype: torch.dtype) -> _Moments:
        moments = self._moments.get(layer)
        if moments is None:
            n, _ = self._features(layer)
            shape = (n, n) if self.whiten else (n,)
            zeros = torch.zeros(n, device=device, dtype=dtype)
            moments = _Moments(zeros, torch.zeros(shape, device=device, dtype=dtype))
            self._moments[layer] = moments
        elif moments.mean.device != device or moments.mean.dtype != dtype:  # the model was moved or cast
            moments.mean, moments.var = moments.mean.to(device, dtype), moments.var.to(device, dtype)
        return moments

    def _hold(self, layer: nn.Module, rows: int, mean: torch.Tensor, var: torch.Tensor) -> None:
        """Data parallel: keep (rows, mean, centred sum of squares) until ``step()``, pooling forward passes."""
        if var is None:  # one row: zero spread
            n = mean.shape[0]
            spread, mean = mean.new_zeros((n, n) if self.whiten else (n,)), mean.clone()
        else:
            spread = var * rows
        held = self._pending.get(layer)
        if held is not None:  # a second forward pass before the step: merge (Chan et al.)
            rows0, mean0, spread0 = held
            total = rows0 + rows
            d = mean - mean0
            outer = torch.outer(d, d) if spread.dim() == 2 else d * d
            mean, spread, rows = mean0 + d * (rows / total), spread0 + spread + outer * (rows0 * rows / total), total
        self._pending[layer] = (rows, mean, spread)

    def _merge_pending(self, group: Any) -> None:
        """Gather every layer's held statistics in ONE collective and fold the exact merge into the moments."""
        device = next((held[1].device for held in self._pending.values()), self.layers[0].weight.device)
        sizes, buffers = [], []
        for layer in self.layers:
            n, _ = self._features(layer)
            size = n * n if self.whiten else n
            sizes.append((n, size))
            held = self._pending.get(layer)
            if held is None:  # this process saw no input for the layer: zero rows
                buffers.append(torch.zeros(1 + n + size, device=device, dtype=torch.float64))
            else:
                rows, mean, spread = held
                buffers += [torch.full((1,), rows, device=device, dtype=torch.float64),
                            mean.to(device, torch.float64), spread.to(device, torch.float64).reshape(-1)]
        local = torch.cat(buffers)
        world = dist.get_world_size(group)
        gathered = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(gathered, local, group=group)
        table = torch.stack(gathered)  # (processes, buffer)
        offsets, start = [], 0
        for n, size in sizes:
            offsets.append(start)
            start += 1 + n + size
        counts = table[:, offsets].cpu()  # one small device-to-host copy: which layers saw rows anywhere
        self._pending.clear()
        for j, (layer, (n, size), start) in enumerate(zip(self.layers, sizes, offsets, strict=True)):
            total = float(counts[:, j].sum())
            if total == 0:
                continue
            c = table[:, start]
            means = table[:, start + 1:start + 1 + n]
            spreads = table[:, start + 1 + n:start + 1 + n + size]
            mean = (c[:, None] * means).sum(dim=0) / total
            d = means - mean  # (processes, n)
            if self.whiten:
                spread = spreads.sum(dim=0).reshape(n, n) + (d.T * c) @ d
            else:
                spread = spreads.sum(dim=0) + (c[:, None] * d * d).sum(dim=0)
            dtype = _stats_dtype(layer.weight.dtype)
            moments = self._moments_of(layer, layer.weight.device, dtype)
            moments.update(mean.to(dtype), (spread / total).to(dtype), self.rho, self.bias_correction)

    def statistics(self, layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of the current (mean, variance) estimates of ``layer`` (the covariance with ``whiten``)."""
        if layer in self._pending:
            raise RuntimeError(
                f"BNP.statistics(): layer {self._name(layer)} has batch statistics not yet merged across "
                "processes; call step() on every process first"
            )
        moments = self._moments.get(layer)
        if moments is None:
            raise KeyError(f"BNP: no statistics yet for layer {self._name(layer)}; run a forward pass in training mode")
        return moments.mean.clone(), moments.var.clone()

    # -- the update ----------------------------------------------------------------
    def step(self) -> None:
        """Rewrite ``.grad`` of every preconditioned weight and bias in place.

        Data parallel: first merges the statistics held since the last step
        across the group (a collective: call it on every process).
        """
        group = self._group()
        if group is not None:
            self._merge_pending(group)
        work = []
        for layer in self.layers:
            w, b = layer.weight, layer.bias
            if w.grad is None:
                continue
            moments = self._moments.get(layer)
            if moments is None:
                raise RuntimeError(
                    f"BNP.step(): no input statistics for layer {self._name(layer)}; "
                    "run a forward pass in training mode (model.train()) before step()"
                )
            work.append((layer, w.grad, None if b is None or b.grad is None else b.grad, moments))
        with torch.no_grad(), _full_precision():
            if self.whiten:
                for _, gw, gb, moments in work:
                    self._precondition_whitened(gw, gb, moments)
            else:
                self._precondition_centred([job for job in work if job[2] is not None])
                self._precondition_scaled([job for job in work if job[2] is None])

    def _precondition_centred(self, work: list) -> None:
        """``G' = G D^-2 - g_b (D^-2 mu)^T``, ``g_b' = g_b - G' mu`` on the (out, n * offsets) view of G.

        Two passes over G (scale, rank-1 update) and one read (``G' mu``); the rest is per-feature vectors.
        """
        for layer, gw, gb, moments in work:
            mean, offsets = moments.mean, self._features(layer)[1]
            inv = torch.add(moments.var, self.eps).reciprocal_()
            scaled_mean = inv * mean
            if offsets > 1:  # channel statistics, shared by the kernel offsets
                mean, inv, scaled_mean = (t.repeat_interleave(offsets) for t in (mean, inv, scaled_mean))
            g = self._work_view(gw, mean.dtype)
            g.mul_(inv)
            g.addr_(gb if gb.dtype == g.dtype else gb.to(g.dtype), scaled_mean, alpha=-1.0)
            correction = torch.mv(g, mean)
            gb.sub_(correction if correction.dtype == gb.dtype else correction.to(gb.dtype))
            self._write_back(gw, g)

    def _precondition_scaled(self, work: list) -> None:
        """Layers without a (trainable) bias: ``G' = G D0^-2``, ``D0^2 = s^2 + mu^2 + eps``."""
        for layer, gw, _, moments in work:
            offsets = self._features(layer)[1]
            inv = torch.addcmul(moments.var, moments.mean, moments.mean).add_(self.eps).reciprocal_()
            g = self._work_view(gw, inv.dtype)
            g.mul_(inv.repeat_interleave(offsets) if offsets > 1 else inv)
            self._write_back(gw, g)

    @staticmethod
    def _write_back(gw: torch.Tensor, g: torch.Tensor) -> None:
        """Copy the result into ``.grad`` unless ``g`` already is a view of it."""
        if g.dtype != gw.dtype or g.data_ptr() != gw.data_ptr():
            gw.copy_(g.reshape(gw.shape))

    def _precondition_whitened(self, gw: torch.Tensor, gb: torch.Tensor | None, moments: _Moments) -> None:
        """``G' = (G - g_b mu^T)(S + eps I)^-1`` (uncentred ``S + mu mu^T`` without a bias), ``g_b' = g_b - G' mu``."""
        mean, cov = moments.mean, moments.var
        a = cov + self.eps * torch.eye(mean.shape[0], device=cov.device, dtype=cov.dtype)
        g = gw.to(mean.dtype)
        if gb is None:
            gw.copy_(torch.linalg.solve(a.addr_(mean, mean), g, left=False))
            return
        g = torch.linalg.solve(a, torch.addr(g, gb.to(g.dtype), mean, alpha=-1.0), left=False)
        gw.copy_(g)
        gb.sub_(torch.mv(g, mean).to(gb.dtype))

    @staticmethod
    def _work_view(gw: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(out, rest) view of the gradient to rewrite in place, or a copy in the statistics' dtype."""
        if gw.dtype == dtype and gw.is_contiguous():
            return gw.view(gw.shape[0], -1)
        return gw.reshape(gw.shape[0], -1).to(dtype, copy=True)

    def remove(self) -> None:
        """Detach the forward hooks: statistics stop updating; the layers may get another BNP."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for layer in self.layers:
            owner = _owners.get(layer)
            if owner is not None and owner() is self:
                del _owners[layer]

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Statistics by layer name, the reference's keys (``"<layer>.mean"``, ``.var``, ``.count``).

        Tensors only: ``torch.save`` and ``torch.load(weights_only=True)`` handle it. Data parallel:
        statistics not yet merged by ``step()`` are not included.
        """
        state: dict[str, torch.Tensor] = {}
        for layer in self.layers:
            moments = self._moments.get(layer)
            if moments is not None:
                name = self._names[layer]
                state[f"{name}.mean"] = moments.mean.clone()
                state[f"{name}.var"] = moments.var.clone()
                state[f"{name}.count"] = torch.tensor(moments.count, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore statistics saved by ``state_dict()`` (this class's or the NumPy reference's).

        Layers absent from ``state`` keep no statistics (as after construction); a key that
        names no preconditioned layer, or a layer with some of its three entries, is an error.
        """
        names = {self._names[layer]: layer for layer in self.layers}
        unexpected = sorted(key for key in state if key.rpartition(".")[0] not in names
                            or key.rpartition(".")[2] not in ("mean", "var", "count"))
        if unexpected:
            raise ValueError(f"BNP.load_state_dict(): unexpected keys {unexpected}; expected '<layer>.mean|var|count'"
                             f" for the layers {sorted(names)}")
        loaded: dict[nn.Module, _Moments] = {}
        for name, layer in names.items():
            keys = [f"{name}.{k}" for k in ("mean", "var", "count")]
            present = [k in state for k in keys]
            if not any(present):
                continue
            if not all(present):
                raise ValueError(f"BNP.load_state_dict(): layer '{name}' needs all of {keys}, got only "
                                 f"{[k for k, p in zip(keys, present, strict=True) if p]}")
            n, _ = self._features(layer)
            shape = (n, n) if self.whiten else (n,)
            w = layer.weight
            mean = torch.as_tensor(state[keys[0]]).to(w.device, _stats_dtype(w.dtype))
            var = torch.as_tensor(state[keys[1]]).to(w.device, _stats_dtype(w.dtype))
            if tuple(mean.shape) != (n,) or tuple(var.shape) != shape:
                raise ValueError(f"BNP.load_state_dict(): layer '{name}' expects mean {(n,)} and variance {shape}, "
                                 f"got {tuple(mean.shape)} and {tuple(var.shape)}")
            count = int(torch.as_tensor(state[keys[2]]))
            if count < 0:
                raise ValueError(f"BNP.load_state_dict(): layer '{name}' has count {count} < 0")
            loaded[layer] = _Moments(mean.clone(), var.clone(), count)
        self._moments = loaded
        self._pending.clear()


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"BNP: {name} must be a finite real number, got {value!r}")
    return float(value)
