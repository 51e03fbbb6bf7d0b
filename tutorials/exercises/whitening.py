"""Exercise whitening: whitening BNP, with the full input covariance instead of its diagonal.

Prepared by chapter 04_bnp (the K-FAC link and whitening BNP). Grade it with::

    bnp grade whitening tutorials/exercises/whitening.py

Task. Replace D^2 = diag(var) by the full covariance S (plus eps I). Write

    whitening_transform(mean, cov, eps) -> P
        mean: (n,), cov: (n, n) symmetric PSD, eps: float.
        P: (n+1, n+1) = [[A, 0], [-mean^T A, 1]] for any A with
        A^T (cov + eps I) A = I (Cholesky: A = L^-T with cov + eps I = L L^T;
        or the symmetric inverse square root). Then P^T M P = I for the
        moment matrix M built with cov + eps I: the inputs are whitened.

    whitened_update(grad_w, grad_b, mean, cov, eps) -> (new_grad_w, new_grad_b)
        grad_w (out, n), grad_b (out,): a Linear layer's gradients.
        new_grad_w = (grad_w - grad_b mean^T) (cov + eps I)^-1
        new_grad_b = grad_b - new_grad_w mean        (that is P P^T applied)

NumPy arrays in and out. The grader refuses bnp.theory.whitening_transform and
bnp.preconditioner's updates.

Hints.
- np.linalg.cholesky, then solve triangular systems (or np.linalg.solve): never
  invert a product. The grader's covariances reach condition numbers of 1e8 and
  sizes from 1e-3 to 1e3; it measures errors in units of that condition number.
- The last column of P stays [0, ..., 0, 1]: the bias remains a bias.
"""

from __future__ import annotations

import numpy as np


def whitening_transform(mean: np.ndarray, cov: np.ndarray, eps: float) -> np.ndarray:
    """P = [[A, 0], [-mean^T A, 1]] with A^T (cov + eps I) A = I. Shapes: (n,), (n, n) -> (n+1, n+1)."""
    raise NotImplementedError("write whitening_transform")


def whitened_update(grad_w: np.ndarray, grad_b: np.ndarray, mean: np.ndarray, cov: np.ndarray,
                    eps: float) -> tuple[np.ndarray, np.ndarray]:
    """P P^T applied to a Linear layer's gradients. Shapes: (out, n), (out,), (n,), (n, n) -> (out, n), (out,)."""
    raise NotImplementedError("write whitened_update")
