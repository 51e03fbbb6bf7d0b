# grading: fail wrong "transposed"
import numpy as np


def bnp_transform(mean, var, eps):
    n = len(mean)
    P = np.eye(n + 1)
    P[:n, :n] = np.diag(1 / np.sqrt(var + eps))
    P[:n, n] = -mean / np.sqrt(var + eps)
    return P


def transformed_hessian(H, P):
    big = np.kron(np.eye(H.shape[0] // P.shape[0]), P)
    return big.T @ H @ big
