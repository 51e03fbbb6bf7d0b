"""Reference solution of exercise whitening (chapter 04_bnp)."""

from __future__ import annotations

import numpy as np


def whitening_transform(mean: np.ndarray, cov: np.ndarray, eps: float) -> np.ndarray:
    """P = [[A, 0], [-mean^T A, 1]] with A^T (cov + eps I) A = I. Shapes: (n,), (n, n) -> (n+1, n+1)."""
    n = mean.shape[0]
    L = np.linalg.cholesky(cov + eps * np.eye(n))
    A = np.linalg.solve(L, np.eye(n)).T  # L^-T: A^T (L L^T) A = I
    P = np.zeros((n + 1, n + 1))
    P[:n, :n] = A
    P[n, :n] = -(mean @ A)
    P[n, n] = 1.0
    return P


def whitened_update(grad_w: np.ndarray, grad_b: np.ndarray, mean: np.ndarray, cov: np.ndarray,
                    eps: float) -> tuple[np.ndarray, np.ndarray]:
    """P P^T applied to a Linear layer's gradients. Shapes: (out, n), (out,), (n,), (n, n) -> (out, n), (out,)."""
    C = cov + eps * np.eye(mean.shape[0])
    new_w = np.linalg.solve(C, (grad_w - np.outer(grad_b, mean)).T).T  # C is symmetric
    return new_w, grad_b - new_w @ mean
