# grading: pass
"""Correct, with explicit loops over features and samples (slow but right)."""
import math

import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    n, d = x.shape
    out = np.empty_like(x)
    xh = np.empty_like(x)
    s = np.empty(d)
    for j in range(d):
        mu = sum(x[k, j] for k in range(n)) / n
        var = sum((x[k, j] - mu) ** 2 for k in range(n)) / n
        s[j] = math.sqrt(var + eps)
        for k in range(n):
            xh[k, j] = (x[k, j] - mu) / s[j]
            out[k, j] = gamma[j] * xh[k, j] + beta[j]
    return out, (xh, s, gamma)


def batchnorm_backward(dout, cache):
    xh, s, gamma = cache
    n, d = dout.shape
    dx = np.empty_like(dout)
    dgamma, dbeta = np.zeros(d), np.zeros(d)
    for j in range(d):
        g = [dout[k, j] * gamma[j] for k in range(n)]
        mg = sum(g) / n
        mgx = sum(g[k] * xh[k, j] for k in range(n)) / n
        for k in range(n):
            dx[k, j] = (g[k] - mg - xh[k, j] * mgx) / s[j]
            dgamma[j] += dout[k, j] * xh[k, j]
            dbeta[j] += dout[k, j]
    return dx, dgamma, dbeta
