# grading: fail wrong "diagonal"
"""Ordinary BNP (the diagonal of the covariance) instead of whitening."""
import numpy as np


def whitening_transform(mean, cov, eps):
    n = len(mean)
    d_inv = 1 / np.sqrt(np.diag(cov) + eps)
    P = np.eye(n + 1)
    P[:n, :n] = np.diag(d_inv)
    P[n, :n] = -mean * d_inv
    return P


def whitened_update(grad_w, grad_b, mean, cov, eps):
    new_w = (grad_w - np.outer(grad_b, mean)) / (np.diag(cov) + eps)
    return new_w, grad_b - new_w @ mean
