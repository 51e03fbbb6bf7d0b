"""Reference solution of exercise effective_condition_number (chapter 07_scale_invariance)."""

from __future__ import annotations

import numpy as np

RANK_RTOL = 1e-10


def effective_condition_number(H: np.ndarray, w: np.ndarray) -> float:
    """lambda_max / lambda_min+ of H on the complement of w. Shapes: H (n, n), w (n,) -> float."""
    _, _, vt = np.linalg.svd(w[None, :])  # rows 1.. span the complement of w
    Q = vt[1:].T
    lam = np.linalg.eigvalsh(Q.T @ H @ Q)
    return float(lam.max() / lam[lam > RANK_RTOL * lam.max()].min())
