# grading: fail exception "ValueError"
"""Unbiased batch variances (ddof=1): undefined for a batch of one sample, and the wrong weights otherwise."""
import numpy as np


def running_moments(batches, rho):
    mean, var = np.zeros(batches[0].shape[1]), np.zeros(batches[0].shape[1])
    for t, b in enumerate(batches, start=1):
        if len(b) < 2:
            raise ValueError("need two samples per batch")
        w = (1 - rho) / (1 - rho**t)
        m_b = b.mean(axis=0)
        new = mean + w * (m_b - mean)
        var = (1 - w) * (var + (mean - new) ** 2) + w * (b.var(axis=0, ddof=1) + (m_b - new) ** 2)
        mean = new
    return mean, var
