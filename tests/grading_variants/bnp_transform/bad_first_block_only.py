# grading: fail wrong "several neurons"
import numpy as np


def bnp_transform(mean, var, eps):
    n = len(mean)
    P = np.eye(n + 1)
    P[:n, :n] = np.diag(1 / np.sqrt(var + eps))
    P[n, :n] = -mean / np.sqrt(var + eps)
    return P


def transformed_hessian(H, P):
    k = P.shape[0]
    out = H.copy()
    out[:k, :k] = P.T @ H[:k, :k] @ P
    return out
