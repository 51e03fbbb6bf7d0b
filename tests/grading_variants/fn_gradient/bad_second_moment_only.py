# grading: fail wrong "2 (x - m) / N"
"""Differentiates the variance as m2 alone (forgets -2 m d m1)."""
import numpy as np


def fn_gradient(x, dout, running_mean, running_var, gamma, eps):
    n = x.shape[0]
    s = np.sqrt(running_var + eps)
    xh = (x - running_mean) / s
    g = dout * gamma
    dL_dvar = -(g * xh).sum(axis=0) / (2 * s**2)
    dx = (g - g.mean(axis=0)) / s + dL_dvar * 2 * x / n
    return dx, (dout * xh).sum(axis=0), dout.sum(axis=0)
