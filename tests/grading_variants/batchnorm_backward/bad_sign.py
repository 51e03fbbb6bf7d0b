# grading: fail wrong "dx"
"""A sign error in the variance term of dx."""
import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).mean(axis=0) + eps)
    xh = (x - mu) / s
    return gamma * xh + beta, (xh, s, gamma)


def batchnorm_backward(dout, cache):
    xh, s, gamma = cache
    g = dout * gamma
    return (g - g.mean(axis=0) + xh * (g * xh).mean(axis=0)) / s, (dout * xh).sum(axis=0), dout.sum(axis=0)
