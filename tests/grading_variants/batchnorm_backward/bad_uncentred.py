# grading: fail wrong "centre"
"""The variance as E[x^2] - E[x]^2: right in exact arithmetic, cancels when the mean is large."""
import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0)
    var = np.maximum((x * x).mean(axis=0) - mu * mu, 0.0)
    s = np.sqrt(var + eps)
    xh = (x - mu) / s
    return gamma * xh + beta, (xh, s, gamma)


def batchnorm_backward(dout, cache):
    xh, s, gamma = cache
    g = dout * gamma
    return (g - g.mean(axis=0) - xh * (g * xh).mean(axis=0)) / s, (dout * xh).sum(axis=0), dout.sum(axis=0)
