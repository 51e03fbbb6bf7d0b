"""Reference solution of exercise bnp_transform (chapter 04_bnp)."""

from __future__ import annotations

import numpy as np


def bnp_transform(mean: np.ndarray, var: np.ndarray, eps: float) -> np.ndarray:
    """P = [[D^-1, 0], [-mean^T D^-1, 1]]. Shapes: (n,), (n,) -> (n+1, n+1)."""
    n = mean.shape[0]
    d_inv = 1.0 / np.sqrt(var + eps)
    P = np.zeros((n + 1, n + 1))
    P[:n, :n] = np.diag(d_inv)
    P[n, :n] = -mean * d_inv
    P[n, n] = 1.0
    return P


def transformed_hessian(H: np.ndarray, P: np.ndarray) -> np.ndarray:
    """(I kron P)^T H (I kron P). Shapes: H (out*(n+1), out*(n+1)), P (n+1, n+1) -> like H."""
    big = np.kron(np.eye(H.shape[0] // P.shape[0]), P)
    return big.T @ H @ big
