# grading: fail wrong "D^2"
import numpy as np


def bnp_update_conv(grad_w, grad_b, mean, var, eps):
    mu = mean.reshape(1, -1, 1, 1)
    new = (grad_w - grad_b.reshape(-1, 1, 1, 1) * mu) / np.sqrt(var + eps).reshape(1, -1, 1, 1)
    return new, grad_b - (new * mu).sum(axis=(1, 2, 3))
