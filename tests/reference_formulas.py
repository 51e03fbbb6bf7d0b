"""Formulas written out independently of the package, for tests to compare against."""

import numpy as np


def dense_p(mean, var, eps):
    """THEORY.md's P = [[D^-1, 0], [-mu^T D^-1, 1]], D = diag(sqrt(var + eps)), entry by entry."""
    n = len(mean)
    d_inv = np.diag(1.0 / np.sqrt(var + eps))
    P = np.zeros((n + 1, n + 1))
    P[:n, :n] = d_inv
    P[n, :n] = -mean @ d_inv
    P[n, n] = 1.0
    return P
