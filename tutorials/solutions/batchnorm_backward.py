"""Reference solution of exercise batchnorm_backward (chapter 02_batch_normalization).

The backward pass, simplified on paper: with xh = (x - mu) / s, s = sqrt(var + eps)
and g = dout * gamma, the terms through the mean and the variance collapse to

    dx = (g - mean(g) - xh * mean(g * xh)) / s        (means over the batch axis)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> tuple[np.ndarray, Any]:
    """Training-mode batch normalization. Shapes: x (N, D), gamma, beta (D,) -> out (N, D), cache."""
    mu = x.mean(axis=0)
    xc = x - mu  # centre first: the variance of x - mu does not cancel when |mu| >> std
    var = (xc * xc).mean(axis=0)  # biased: divide by N
    s = np.sqrt(var + eps)
    xh = xc / s
    return gamma * xh + beta, (xh, s, gamma)


def batchnorm_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the loss. Shapes: dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,)."""
    xh, s, gamma = cache
    g = dout * gamma
    dx = (g - g.mean(axis=0) - xh * (g * xh).mean(axis=0)) / s
    return dx, (dout * xh).sum(axis=0), dout.sum(axis=0)
