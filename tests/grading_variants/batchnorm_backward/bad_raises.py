# grading: fail exception "IndexError"
"""Indexes past the batch: raises."""
import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).mean(axis=0) + eps)
    return gamma * (x - mu) / s + beta, (x[x.shape[0]], s)


def batchnorm_backward(dout, cache):
    return dout, dout.sum(axis=0), dout.sum(axis=0)
