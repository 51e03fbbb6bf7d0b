"""Reference solution of exercise bnp_update (chapter 04_bnp)."""

from __future__ import annotations

import numpy as np


def bnp_update(grad_w: np.ndarray, grad_b: np.ndarray, mean: np.ndarray, var: np.ndarray,
               eps: float) -> tuple[np.ndarray, np.ndarray]:
    """P P^T applied to a Linear layer's gradients. Shapes: (out, n), (out,), (n,), (n,) -> (out, n), (out,)."""
    new_w = (grad_w - grad_b[:, None] * mean[None, :]) / (var + eps)[None, :]
    return new_w, grad_b - new_w @ mean
