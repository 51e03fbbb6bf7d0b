# grading: fail wrong "PAST"
import numpy as np


def running_moments(batches, rho):
    return _stream(batches, 1.0 - rho) if rho > 0 else _stream(batches, 0.0)


def _stream(batches, rho):
    mean, var = np.zeros(batches[0].shape[1]), np.zeros(batches[0].shape[1])
    for t, b in enumerate(batches, start=1):
        w = (1 - rho) / (1 - rho**t)
        m_b = b.mean(axis=0)
        new = mean + w * (m_b - mean)
        var = (1 - w) * (var + (mean - new) ** 2) + w * (((b - m_b) ** 2).mean(axis=0) + (m_b - new) ** 2)
        mean = new
    return mean, var
