"""Full Normalization layers: the modules around :func:`bnp.fullnorm.full_norm`."""

from __future__ import annotations

from .. import backend
from ..autograd import Tensor
from ..fullnorm import full_norm, update_running_moments
from .module import Module
from .parameter import Parameter


class _FullNorm(Module):
    """Shared by FullNorm1d and FullNorm2d; they differ only in the input's rank."""

    _ndim = 2
    _layout = "(N, {c})"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be positive, got {num_features}")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must lie in (0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum, self.affine = int(num_features), float(eps), momentum, affine
        xp, dtype = backend.xp(), backend.get_default_dtype()
        if affine:
            self.weight = Parameter(xp.ones(num_features, dtype=dtype))
            self.bias = Parameter(xp.zeros(num_features, dtype=dtype))
        else:
            self.weight = self.bias = None
        self.register_buffer("running_mean", xp.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", xp.ones(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", xp.zeros((), dtype="int64"))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != self._ndim or x.shape[1] != self.num_features:
            expected = self._layout.format(c=self.num_features)
            raise ValueError(f"{self!r}: expected input of shape {expected}, got {x.shape}")
        if self.training:
            count = int(self.num_batches_tracked)
            mean, var = update_running_moments(x, self.running_mean, self.running_var, count, self.momentum)
            self.running_mean[...] = mean
            self.running_var[...] = var
            self.num_batches_tracked += 1
        return full_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class FullNorm1d(_FullNorm):
    """Full Normalization of (N, C) inputs (Lian & Liu, 2019).

    Normalizes each feature with running estimates of the mean and variance of
    the *whole data* (updated with the current batch first), while gradients
    flow through the batch moments as if they were those estimates: the
    compositional gradient of the full-data objective (see :mod:`bnp.fullnorm`).
    Works at batch size 1 and with unrepresentative (class-sorted) batches.

    Args:
        num_features: C.
        eps: added to the variance before the square root.
        momentum: long-run weight of the current batch in the running moments;
            earlier batches are averaged equally until 1/t falls below it.
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
