"""Flatten: merge the trailing axes of each sample into one."""

from __future__ import annotations

from .. import functional as F
from ..autograd import Tensor
from .module import Module


class Flatten(Module):
    """Merge all axes from ``start_dim`` on: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1):
        super().__init__()
        self.start_dim = int(start_dim)

    def forward(self, x: Tensor) -> Tensor:
        if not -x.ndim <= self.start_dim < x.ndim:
            raise ValueError(f"{self!r}: input of shape {x.shape} has no axis {self.start_dim}")
        return F.flatten(x, self.start_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"
