# grading: pass
"""Correct, another whitening: the symmetric inverse square root (ZCA), and the update through P P^T."""
import numpy as np


def whitening_transform(mean, cov, eps):
    n = len(mean)
    w, V = np.linalg.eigh(cov + eps * np.eye(n))
    A = (V / np.sqrt(w)) @ V.T
    P = np.eye(n + 1)
    P[:n, :n] = A
    P[n, :n] = -mean @ A
    return P


def whitened_update(grad_w, grad_b, mean, cov, eps):
    n = len(mean)
    L = np.linalg.cholesky(cov + eps * np.eye(n))
    rhs = (grad_w - np.outer(grad_b, mean)).T
    new_w = np.linalg.solve(L.T, np.linalg.solve(L, rhs)).T
    return new_w, grad_b - new_w @ mean
