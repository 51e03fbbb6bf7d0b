# grading: fail wrong "constants"
import numpy as np


def fn_gradient(x, dout, running_mean, running_var, gamma, eps):
    s = np.sqrt(running_var + eps)
    xh = (x - running_mean) / s
    return dout * gamma / s, (dout * xh).sum(axis=0), dout.sum(axis=0)
