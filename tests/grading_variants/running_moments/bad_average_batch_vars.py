# grading: fail wrong "averaged the batch variances"
import numpy as np


def running_moments(batches, rho):
    mean, var = np.zeros(batches[0].shape[1]), np.zeros(batches[0].shape[1])
    for t, b in enumerate(batches, start=1):
        w = (1 - rho) / (1 - rho**t)
        mean = mean + w * (b.mean(axis=0) - mean)
        var = var + w * (b.var(axis=0) - var)
    return mean, var
