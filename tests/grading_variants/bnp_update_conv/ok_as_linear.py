# grading: pass
"""Correct, another form: the Linear update on the flattened patch vector, statistics repeated kh*kw times."""
import numpy as np


def bnp_update_conv(grad_w, grad_b, mean, var, eps):
    out, c, kh, kw = grad_w.shape
    g = grad_w.reshape(out, -1)
    mu, v = np.repeat(mean, kh * kw), np.repeat(var, kh * kw)
    new = (g - np.outer(grad_b, mu)) / (v + eps)
    return new.reshape(grad_w.shape), grad_b - new @ mu
