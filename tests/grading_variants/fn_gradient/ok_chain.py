# grading: pass
"""Correct, another form: the chain rule through the mean and variance used, term by term."""
import numpy as np


def fn_gradient(x, dout, running_mean, running_var, gamma, eps):
    n = x.shape[0]
    s = np.sqrt(running_var + eps)
    xc = x - running_mean
    g = dout * gamma
    dL_dmean = -g.sum(axis=0) / s
    dL_dvar = -(g * xc).sum(axis=0) / (2 * s**3)
    dx = g / s + dL_dmean / n + dL_dvar * 2 * xc / n
    return dx, (dout * xc / s).sum(axis=0), dout.sum(axis=0)
