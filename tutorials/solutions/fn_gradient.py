"""Reference solution of exercise fn_gradient (chapter 05_small_batches).

The chain rule through the mean and variance used (values m, v; derivatives
those of the batch moments) gives BN's backward formula at the running moments.
"""

from __future__ import annotations

import numpy as np


def fn_gradient(x: np.ndarray, dout: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray,
                gamma: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FN's training gradient. Shapes: x, dout (N, D); running_mean, running_var, gamma (D,) -> (N, D), (D,), (D,)."""
    s = np.sqrt(running_var + eps)
    xh = (x - running_mean) / s
    g = dout * gamma
    dx = (g - g.mean(axis=0) - xh * (g * xh).mean(axis=0)) / s
    return dx, (dout * xh).sum(axis=0), dout.sum(axis=0)
