# grading: pass
"""Correct, another form: rows [g_w, g_b] times the dense P P^T built from P."""
import numpy as np


def bnp_update(grad_w, grad_b, mean, var, eps):
    n = mean.shape[0]
    d_inv = 1.0 / np.sqrt(var + eps)
    P = np.zeros((n + 1, n + 1))
    P[:n, :n] = np.diag(d_inv)
    P[n, :n] = -mean * d_inv
    P[n, n] = 1.0
    rows = np.concatenate([grad_w, grad_b[:, None]], axis=1) @ (P @ P.T)
    return rows[:, :n], rows[:, n]
