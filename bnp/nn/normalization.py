"""Normalization layers: BN and FN, the modules around :func:`bnp.functional.batch_norm`
and :func:`bnp.functional.full_norm`.

BN's ``momentum`` and FN's ``momentum`` are the weight of the new batch;
BNP's ``rho`` is the weight of the past: docs/THEORY.md section 4 sets them
side by side.

Arguments are checked when the layer is made (``num_features`` a positive
int, ``eps`` finite >= 0, ``momentum`` in [0, 1] for BN or None, (0, 1] for
FN). A training batch that would make the running statistics non-finite, or
has no samples, is refused with an error naming the layer, and the buffers
keep their values. Inside :class:`bnp.frozen_statistics` training mode
normalizes as usual but no buffer or counter changes.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import backend
from .. import functional as F
from ..autograd import Tensor
from ..running_moments import check_eps, check_momentum
from ..statistics_mode import statistics_frozen
from .module import Module
from .parameter import Parameter


class _Normalization(Module):
    """What BN and FN layers share: the per-channel affine parameters, the running
    moment buffers, the input shape and dtype checks and the repr. Subclasses write ``forward``."""

    _ndim = 2  # rank of the accepted input: 2 for (N, C), 4 for (N, C, H, W)
    _layout = "(N, {c})"

    def __init__(self, num_features: int, eps: float, momentum: float | None, affine: bool):
        super().__init__()
        where = type(self).__name__
        num_features = F.positive_int(where, "num_features", num_features)
        if not isinstance(affine, bool):
            raise TypeError(f"{where}: affine must be a bool, got {affine!r}")
        self.num_features, self.eps, self.momentum, self.affine = num_features, check_eps(where, eps), momentum, affine
        xp, dtype = backend.xp(), backend.get_default_dtype()
        if affine:
            self.weight = Parameter(xp.empty(num_features, dtype=dtype))
            self.bias = Parameter(xp.empty(num_features, dtype=dtype))
        else:
            self.weight = self.bias = None
        self.register_buffer("running_mean", xp.empty(num_features, dtype=dtype))
        self.register_buffer("running_var", xp.empty(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", xp.zeros((), dtype="int64"))
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batch seen (as PyTorch), in place."""
        self.running_mean[...] = 0
        self.running_var[...] = 1
        self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        """The initial state: running statistics reset, scale ``weight`` 1 and shift ``bias`` 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0
            self.weight._version += 1
            self.bias._version += 1

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != self._ndim or x.shape[1] != self.num_features:
            expected = self._layout.format(c=self.num_features)
            raise ValueError(f"{self!r}: expected input of shape {expected}, got {x.shape}")
        self._check_input_dtype(x, self.running_mean.dtype)

    def _normalize(self, fn: Callable[..., Tensor], *args: Any) -> Tensor:
        """Run ``F.batch_norm`` / ``F.full_norm``; their refusals get this layer's name in front;
        the batch counter moves only when the statistics did."""
        try:
            y = fn(*args)
        except ValueError as exc:  # NonFiniteError included: it is a ValueError too
            raise type(exc)(f"{self!r}: {exc}") from None
        if self.training and not statistics_frozen():
            self.num_batches_tracked += 1
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class _BatchNorm(_Normalization):
    """Shared by BatchNorm1d and BatchNorm2d; they differ only in the input's rank."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True):
        super().__init__(num_features, eps, check_momentum(type(self).__name__, momentum, allow_none=True), affine)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        momentum = self.momentum
        if self.training and momentum is None:  # cumulative average over all batches so far
            momentum = 1.0 / (int(self.num_batches_tracked) + 1)
        return self._normalize(F.batch_norm, x, self.running_mean, self.running_var, self.weight, self.bias,
                               self.training, momentum, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) inputs: each feature standardized over the batch.

    Args:
        num_features: C.
        eps: added to the variance before the square root.
        momentum: weight of the current batch in the running statistics
            (None: cumulative average of all batches).
        affine: learn a per-feature scale ``weight`` (ones) and shift ``bias`` (zeros).

    Training mode uses (and differentiates through) the batch statistics and
    updates the buffers ``running_mean``, ``running_var`` (unbiased) and
    ``num_batches_tracked``; eval mode uses the running statistics.
    Shapes: (N, C) -> (N, C).
    """


class BatchNorm2d(_BatchNorm):
    """Batch normalization of NCHW inputs: statistics per channel over N, H and W.

    Same arguments and modes as :class:`BatchNorm1d`. Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    _ndim = 4
    _layout = "(N, {c}, H, W)"


class _FullNorm(_Normalization):
    """Shared by FullNorm1d and FullNorm2d; they differ only in the input's rank."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        # (0, 1]: with momentum 0 the long-run weight of a batch would be 0 (and 1 - rho = 0 divides by 0)
        super().__init__(num_features, eps, check_momentum(type(self).__name__, momentum, allow_zero=False), affine)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self._normalize(F.full_norm, x, self.running_mean, self.running_var, self.weight, self.bias,
                               self.training, self.momentum, self.eps, int(self.num_batches_tracked))


class FullNorm1d(_FullNorm):
    """Full Normalization of (N, C) inputs (Lian & Liu, 2019).

    Normalizes each feature with running estimates of the mean and variance of
    the *whole data* (updated with the current batch first), while gradients
    flow through the batch moments as if they were those estimates: the
    compositional gradient of the full-data objective (see :func:`bnp.functional.full_norm`).
    Works at batch size 1 and with unrepresentative (class-sorted) batches.

    Args:
        num_features: C.
        eps: added to the variance before the square root.
        momentum: long-run weight of the current batch in the running moments;
            bias-corrected, so the t-th batch weighs ``(1-r)/(1-r^t)``,
            ``r = 1 - momentum`` (1 for the first batch).
        affine: learn a per-feature scale ``weight`` and shift ``bias``.

    Shapes: (N, C) -> (N, C). Buffers: running_mean, running_var (biased),
    num_batches_tracked. Eval mode uses the running moments as constants.
    """


class FullNorm2d(_FullNorm):
    """Full Normalization of NCHW inputs: moments per channel over N, H and W.

    Same arguments and modes as :class:`FullNorm1d`. Shapes: (N, C, H, W) -> same.
    """

    _ndim = 4
    _layout = "(N, {c}, H, W)"
