"""Exercise running_moments: the running mean and variance of a stream of batches, as BNP keeps them.

Prepared by chapter 05_small_batches (why a running variance and not an average
of batch variances). Grade it with::

    bnp grade running_moments tutorials/exercises/running_moments.py

Task. Write

    running_moments(batches, rho) -> (mean, var)
        batches: a list of T NumPy arrays, batch t of shape (N_t, D); N_t may be 1.
        rho: float in [0, 1), the weight of the past, as in bnp.BNP:
            m <- rho m + (1 - rho) m_batch, corrected by 1 / (1 - rho^t) after t batches
            (rho = 0 keeps only the last batch).
        mean, var: (D,), per feature: the bias-corrected exponentially weighted
        mean, and the variance of ALL samples seen under those weights (each
        sample of batch t weighs c_t / N_t, c_t the weight of batch t), i.e.
        the spread about the running mean, not an average of batch variances.

The grader refuses bnp.running_moments and bnp.BNP's statistics (it compares you with them).

Hints.
- The bias-corrected average is the same as updating with the weight
  w_t = (1 - rho) / (1 - rho^t) for batch t: m <- m + w_t (m_B - m).
- Fold in each batch's mean m_B and BIASED variance v_B (divide by N_t) with
  the parallel-variance rule, v <- (1 - w)(v + (m - m')^2) + w (v_B + (m_B - m')^2),
  m' the new mean. A batch of one sample has v_B = 0, yet adds spread.
- Centre before squaring: the grader's means reach a million standard deviations.
"""

from __future__ import annotations

import numpy as np


def running_moments(batches: list[np.ndarray], rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected running mean and variance. Shapes: [(N_t, D)] -> (D,), (D,)."""
    raise NotImplementedError("write running_moments")
