"""Reference solution of exercise bnp_update_conv (chapter 06_convnets)."""

from __future__ import annotations

import numpy as np


def bnp_update_conv(grad_w: np.ndarray, grad_b: np.ndarray, mean: np.ndarray, var: np.ndarray,
                    eps: float) -> tuple[np.ndarray, np.ndarray]:
    """P P^T for a Conv2d layer. Shapes: (out, C, kh, kw), (out,), (C,), (C,) -> (out, C, kh, kw), (out,)."""
    mu = mean.reshape(1, -1, 1, 1)
    new_w = (grad_w - grad_b.reshape(-1, 1, 1, 1) * mu) / (var + eps).reshape(1, -1, 1, 1)
    return new_w, grad_b - (new_w * mu).sum(axis=(1, 2, 3))
