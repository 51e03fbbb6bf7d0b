# grading: fail shape "axis"
import numpy as np


def fn_gradient(x, dout, running_mean, running_var, gamma, eps):
    s = np.sqrt(running_var + eps)
    xh = (x - running_mean) / s
    g = dout * gamma
    dx = (g - g.mean(axis=0) - xh * (g * xh).mean(axis=0)) / s
    return dx, (dout * xh).sum(axis=1), dout.sum(axis=1)
