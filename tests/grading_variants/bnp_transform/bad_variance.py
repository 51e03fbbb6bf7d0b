# grading: fail wrong "standard deviation"
import numpy as np


def bnp_transform(mean, var, eps):
    n = len(mean)
    P = np.eye(n + 1)
    P[:n, :n] = np.diag(1 / (var + eps))
    P[n, :n] = -mean / (var + eps)
    return P


def transformed_hessian(H, P):
    big = np.kron(np.eye(H.shape[0] // P.shape[0]), P)
    return big.T @ H @ big
