# grading: fail wrong "weight c_t"
"""Weighs every SAMPLE equally within the stream's weights of batches scaled by N_t."""
import numpy as np


def running_moments(batches, rho):
    T = len(batches)
    c = np.array([(1 - rho) * rho ** (T - t) * len(b) for t, b in enumerate(batches, start=1)])
    c = c / c.sum()
    mean = sum(ct * b.mean(axis=0) for ct, b in zip(c, batches))
    var = sum(ct * ((b - mean) ** 2).mean(axis=0) for ct, b in zip(c, batches))
    return mean, var
