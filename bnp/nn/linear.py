"""Linear (fully connected) layer: ``y = x W^T + b``."""

from __future__ import annotations

from typing import Any

from .. import backend
from .. import functional as F
from ..autograd import Tensor
from . import init
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """``y = x @ weight.T + bias``.

    Args:
        in_features, out_features: sizes of each input and output sample.
        bias: learn an additive bias (default True).
        rng: seed or ``numpy.random.Generator`` for the initial values
            (default: the generator of :mod:`bnp.nn.init`).

    Shapes: input (N, in_features) -> output (N, out_features); extra leading
    axes are allowed, as in PyTorch. weight (out_features, in_features), bias
    (out_features,). Initialization: :func:`bnp.nn.init.default_init_`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng: Any = None):
        super().__init__()
        self.in_features = F.positive_int("Linear", "in_features", in_features)
        self.out_features = F.positive_int("Linear", "out_features", out_features)
        if not isinstance(bias, bool):
            raise TypeError(f"Linear: bias must be a bool, got {bias!r}")
        dtype = backend.get_default_dtype()
        self.weight = Parameter(backend.xp().empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(backend.xp().empty((self.out_features,), dtype=dtype)) if bias else None
        init.default_init_(self.weight, self.bias, rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_features}), got {x.shape}")
        self._check_input_dtype(x, self.weight.dtype)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
