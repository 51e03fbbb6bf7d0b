"""2-D convolution layer (NCHW)."""

from __future__ import annotations

from typing import Any

from .. import backend
from .. import functional as F
from ..autograd import Tensor
from ..autograd.im2col import window_positions
from . import init
from .module import Module
from .parameter import Parameter


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in PyTorch) over NCHW images.

    Args:
        in_channels, out_channels: channels of input and output.
        kernel_size, stride, padding: ints or (h, w) pairs; zero padding.
        bias: learn a per-output-channel bias (default True).
        rng: seed or ``numpy.random.Generator`` for the initial values.

    Shapes: input (N, in_channels, H, W) -> output (N, out_channels, OH, OW)
    with ``OH = (H + 2*ph - kh) // sh + 1`` (same for W). weight
    (out_channels, in_channels, kh, kw), bias (out_channels,).
    Initialization: :func:`bnp.nn.init.default_init_` with fan_in = in_channels*kh*kw.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        bias: bool = True,
        rng: Any = None,
    ):
        super().__init__()
        self.in_channels = F.positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = F.positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size, self.stride, self.padding = F.conv_geometry("Conv2d", kernel_size, stride, padding)
        if not isinstance(bias, bool):
            raise TypeError(f"Conv2d: bias must be a bool, got {bias!r}")
        dtype = backend.get_default_dtype()
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(backend.xp().empty(shape, dtype=dtype))
        self.bias = Parameter(backend.xp().empty((self.out_channels,), dtype=dtype)) if bias else None
        init.default_init_(self.weight, self.bias, rng)

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        """(OH, OW) for an input of spatial size (height, width)."""
        return window_positions((height, width), self.kernel_size, self.stride, self.padding)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), got {x.shape}")
        self._check_input_dtype(x, self.weight.dtype)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise ValueError(
                f"{self!r}: input of shape {x.shape} is smaller than the kernel {self.kernel_size} "
                f"(even with padding {self.padding})"
            )
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.bias is None:
            text += ", bias=False"
        return text
