# grading: pass
"""Correct, another form: the block form [[S + mu mu^T, mu], [mu^T, 1]] from centred statistics."""
import numpy as np


def moment_matrix(a):
    n, d = a.shape
    mu = a.mean(axis=0)
    c = a - mu
    M = np.empty((d + 1, d + 1))
    M[:d, :d] = c.T @ c / n + np.outer(mu, mu)
    M[:d, d] = M[d, :d] = mu
    M[d, d] = 1.0
    return M
