"""Exercise effective_condition_number: the condition number that matters for a scale-invariant loss.

Prepared by chapter 07_scale_invariance. Grade it with::

    bnp grade effective_condition_number tutorials/exercises/effective_condition_number.py

Task. For weights w feeding a BN layer the loss is scale invariant, L(c w) = L(w):
then g . w = 0, H w = -g, H(c w) = H(w) / c^2, and at a minimum w spans a null
direction of H, so kappa(H) itself is infinite or meaningless. The curvature
that matters lives on the complement of w. Write

    effective_condition_number(H, w) -> kappa
        H: (n, n) symmetric NumPy array, the Hessian at w (not necessarily at a
           minimum: H w may be nonzero).
        w: (n,) the weights.
        kappa: a float, lambda_max / lambda_min+ of Q^T H Q, Q (n, n-1) an
           orthonormal basis of the complement of w; eigenvalues below
           1e-10 * lambda_max count as zero (so lambda_min+ is the smallest above).

NumPy only: the grader refuses bnp.theory's (and bnp.spectra's) condition numbers.

Hints.
- An orthonormal basis of w's complement: the last n-1 columns of the Q of a QR
  decomposition of a matrix whose first column is w (or of the SVD of w[None, :]).
- The answer must not change when w -> c w and H -> H / c^2 (the grader tries
  c = 1e-3 and 1e3): the rank tolerance must be relative.
- Dropping the smallest eigenvalue of H is right only when H w = 0.
"""

from __future__ import annotations

import numpy as np


def effective_condition_number(H: np.ndarray, w: np.ndarray) -> float:
    """lambda_max / lambda_min+ of H on the complement of w. Shapes: H (n, n), w (n,) -> float."""
    raise NotImplementedError("write effective_condition_number")
