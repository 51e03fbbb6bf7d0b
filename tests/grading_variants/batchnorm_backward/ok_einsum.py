# grading: pass
"""Correct, with the dx formula written through einsum and N in the numerator (the other common simplification)."""
import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    mu = np.einsum("nd->d", x) / x.shape[0]
    xc = x - mu
    var = np.einsum("nd,nd->d", xc, xc) / x.shape[0]
    inv = 1.0 / np.sqrt(var + eps)
    xh = xc * inv
    return xh * gamma + beta, (xh, inv, gamma)


def batchnorm_backward(dout, cache):
    xh, inv, gamma = cache
    n = dout.shape[0]
    dxh = dout * gamma
    dx = inv / n * (n * dxh - np.einsum("nd->d", dxh) - xh * np.einsum("nd,nd->d", dxh, xh))
    return dx, np.einsum("nd,nd->d", dout, xh), np.einsum("nd->d", dout)
