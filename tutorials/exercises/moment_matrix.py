"""Exercise moment_matrix: the input moment matrix of a layer.

Prepared by chapter 03_conditioning (why inputs hurt conditioning). Grade it with::

    bnp grade moment_matrix tutorials/exercises/moment_matrix.py

Task. A neuron's weights and bias theta = [w; b] see the extended inputs
at_k = [a_k; 1]. Write

    moment_matrix(a) -> M
        a: (N, n) NumPy array, a batch of N layer inputs with n features.
        M: (n+1, n+1) = (1/N) sum_k at_k at_k^T, the constant 1 LAST, so that
        M = [[S + mu mu^T, mu], [mu^T, 1]] with the batch mean mu and the
        biased covariance S.

Build it from the array yourself: the grader refuses bnp.theory.moment_matrix
(and its helpers), which is what it compares you with.

Hints.
- Append a column of ones, then average the outer products: one matrix product.
- Divide by N (a plain average), not N - 1, and do not subtract the mean.
- The grader tries N = 1, means far from 0 and feature scales over six decades,
  and compares every entry relative to its own size.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (for your solution)


def moment_matrix(a: np.ndarray) -> np.ndarray:
    """M = (1/N) sum_k [a_k; 1][a_k; 1]^T. Shapes: a (N, n) -> M (n+1, n+1)."""
    raise NotImplementedError("write moment_matrix")
