# grading: fail wrong "constants"
"""dx as if the batch mean and variance did not depend on x."""
import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).mean(axis=0) + eps)
    xh = (x - mu) / s
    return gamma * xh + beta, (xh, s, gamma)


def batchnorm_backward(dout, cache):
    xh, s, gamma = cache
    return dout * gamma / s, (dout * xh).sum(axis=0), dout.sum(axis=0)
