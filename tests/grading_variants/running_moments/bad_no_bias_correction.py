# grading: fail wrong "bias correction"
import numpy as np


def running_moments(batches, rho):
    mean, var = np.zeros(batches[0].shape[1]), np.zeros(batches[0].shape[1])
    for b in batches:
        w = 1 - rho
        m_b = b.mean(axis=0)
        new = mean + w * (m_b - mean)
        var = (1 - w) * (var + (mean - new) ** 2) + w * (((b - m_b) ** 2).mean(axis=0) + (m_b - new) ** 2)
        mean = new
    return mean, var
