"""Full Normalization layers: the modules around :func:`bnp.fullnorm.full_norm`."""

from __future__ import annotations

from ..autograd import Tensor
from ..fullnorm import full_norm, update_running_moments
from .batchnorm import _Normalization


class _FullNorm(_Normalization):
    """Shared by FullNorm1d and FullNorm2d; they differ only in the input's rank."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must lie in (0, 1], got {momentum}")
        super().__init__(num_features, eps, momentum, affine)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if self.training:
            count = int(self.num_batches_tracked)
            mean, var = update_running_moments(x, self.running_mean, self.running_var, count, self.momentum)
            self.running_mean[...] = mean
            self.running_var[...] = var
            self.num_batches_tracked += 1
        return full_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training, self.eps)


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
