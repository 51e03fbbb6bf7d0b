# grading: fail wrong "D^2"
import numpy as np


def bnp_update(grad_w, grad_b, mean, var, eps):
    new_w = (grad_w - grad_b[:, None] * mean[None, :]) / np.sqrt(var + eps)
    return new_w, grad_b - new_w @ mean
