# grading: pass
"""Correct, another form: CS231n's staged backward, node by node through the graph."""
import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    n = x.shape[0]
    mu = np.sum(x, axis=0) / n
    xc = x - mu
    var = np.sum(xc**2, axis=0) / n
    std = np.sqrt(var + eps)
    inv = 1.0 / std
    xh = xc * inv
    return gamma * xh + beta, (xc, std, inv, xh, gamma, n)


def batchnorm_backward(dout, cache):
    xc, std, inv, xh, gamma, n = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xh).sum(axis=0)
    dxh = dout * gamma
    dinv = (dxh * xc).sum(axis=0)
    dxc = dxh * inv
    dstd = -dinv / std**2
    dvar = 0.5 * dstd / std
    dxc += 2.0 * xc * dvar / n
    dmu = -dxc.sum(axis=0)
    dx = dxc + dmu / n
    return dx, dgamma, dbeta
