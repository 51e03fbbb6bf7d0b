"""Reference solution of exercise moment_matrix (chapter 03_conditioning)."""

from __future__ import annotations

import numpy as np


def moment_matrix(a: np.ndarray) -> np.ndarray:
    """M = (1/N) sum_k [a_k; 1][a_k; 1]^T. Shapes: a (N, n) -> M (n+1, n+1)."""
    at = np.concatenate([a, np.ones((a.shape[0], 1))], axis=1)
    return at.T @ at / a.shape[0]
