# grading: fail shape "axis"
"""Sums dgamma and dbeta over the features (axis 1) instead of the batch."""
import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).mean(axis=0) + eps)
    xh = (x - mu) / s
    return gamma * xh + beta, (xh, s, gamma)


def batchnorm_backward(dout, cache):
    xh, s, gamma = cache
    g = dout * gamma
    dx = (g - g.mean(axis=0) - xh * (g * xh).mean(axis=0)) / s
    return dx, (dout * xh).sum(axis=1), dout.sum(axis=1)
