# grading: fail wrong "RUNNING"
"""BN's backward: normalizes with the batch's own moments."""
import numpy as np


def fn_gradient(x, dout, running_mean, running_var, gamma, eps):
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).mean(axis=0) + eps)
    xh = (x - mu) / s
    g = dout * gamma
    return (g - g.mean(axis=0) - xh * (g * xh).mean(axis=0)) / s, (dout * xh).sum(axis=0), dout.sum(axis=0)
