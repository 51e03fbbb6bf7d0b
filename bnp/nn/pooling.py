"""Pooling layers: maximum and mean over windows of each channel."""

from __future__ import annotations

from typing import Any, Callable

from .. import functional as F
from ..autograd import Tensor
from .module import Module


class _Pool2d(Module):
    """Shared by MaxPool2d and AvgPool2d; each names its functional form as ``_fn``."""

    _fn: Callable[..., Tensor]

    def __init__(self, kernel_size: Any, stride: Any = None):
        super().__init__()
        self.kernel_size, self.stride = F.pool_geometry(type(self).__name__, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        kh, kw = self.kernel_size
        if x.ndim != 4 or x.shape[2] < kh or x.shape[3] < kw:
            raise ValueError(f"{self!r}: expected input of shape (N, C, H, W) with H >= {kh}, W >= {kw}, got {x.shape}")
        return type(self)._fn(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Maximum over each ``kernel_size`` window, moved by ``stride`` (default: ``kernel_size``).

    Shapes: (N, C, H, W) -> (N, C, OH, OW), ``OH = (H - kh) // sh + 1`` (rows that do
    not fill a window are dropped, as in PyTorch).
    """

    _fn = staticmethod(F.max_pool2d)


class AvgPool2d(_Pool2d):
    """Mean over each ``kernel_size`` window, moved by ``stride`` (default: ``kernel_size``).

    Shapes: (N, C, H, W) -> (N, C, OH, OW), ``OH = (H - kh) // sh + 1``.
    """

    _fn = staticmethod(F.avg_pool2d)
