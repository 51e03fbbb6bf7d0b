# grading: pass
"""Correct, another form: the explicit weights c_t of every batch, then a two-pass weighted mean and variance."""
import numpy as np


def running_moments(batches, rho):
    T = len(batches)
    c = np.array([(1 - rho) * rho ** (T - t) for t in range(1, T + 1)]) / (1 - rho**T)
    mean = sum(ct * b.mean(axis=0) for ct, b in zip(c, batches))
    var = sum(ct * ((b - mean) ** 2).mean(axis=0) for ct, b in zip(c, batches))
    return mean, var
