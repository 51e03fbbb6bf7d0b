# grading: fail wrong "last column"
import numpy as np


def whitening_transform(mean, cov, eps):
    n = len(mean)
    A = np.linalg.inv(np.linalg.cholesky(cov + eps * np.eye(n))).T
    P = np.eye(n + 1)
    P[:n, :n] = A
    P[:n, n] = -A.T @ mean
    return P


def whitened_update(grad_w, grad_b, mean, cov, eps):
    new_w = np.linalg.solve(cov + eps * np.eye(len(mean)), (grad_w - np.outer(grad_b, mean)).T).T
    return new_w, grad_b - new_w @ mean
