# grading: fail wrong "N - 1"
"""The unbiased variance (np.var with ddof=1), as in eval-mode running statistics."""
import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0)
    var = x.var(axis=0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1])
    s = np.sqrt(var + eps)
    xh = (x - mu) / s
    return gamma * xh + beta, (xh, s, gamma)


def batchnorm_backward(dout, cache):
    xh, s, gamma = cache
    g = dout * gamma
    n = dout.shape[0]
    c = n / (n - 1) if n > 1 else 1.0
    return (g - g.mean(axis=0) - c * xh * (g * xh).mean(axis=0)) / s, (dout * xh).sum(axis=0), dout.sum(axis=0)
