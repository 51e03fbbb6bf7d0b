"""Exercise fn_gradient: Full Normalization's compositional gradient.

Prepared by chapter 05_small_batches (FN and class-sorted batches). Grade it with::

    bnp grade fn_gradient tutorials/exercises/fn_gradient.py

Task. In training, FN (Lian & Liu, 2019) normalizes a batch with running
estimates (m, v) of the full-data moments, out = gamma * (x - m) / sqrt(v + eps) + beta,
but differentiates the BATCH moments m1 = mean(x), m2 = mean(x^2) as if their
values were the running ones (bnp.functional.full_norm: S_used = S_hat + S_B - stop_gradient(S_B)),
with the variance v = m2 - m1^2. Write the resulting gradient:

    fn_gradient(x, dout, running_mean, running_var, gamma, eps) -> (dx, dgamma, dbeta)
        x, dout: (N, D) NumPy arrays (dout = dL/dout); N may be 1.
        running_mean, running_var, gamma: (D,); eps: float.
        dx: (N, D), dgamma, dbeta: (D,).

NumPy only: the grader refuses bnp.functional.full_norm, bnp.nn.FullNorm1d/2d and
bnp's autograd.

Hints.
- The mean used has derivative d m1 = dx / N; the variance used has derivative
  d m2 - 2 m d m1 (m its value, the running mean) = 2 (x - m) dx / N.
- Work it out with s = sqrt(v + eps), xh = (x - m) / s, g = dout * gamma; compare
  with the batch-norm backward of chapter 2.
"""

from __future__ import annotations

import numpy as np


def fn_gradient(x: np.ndarray, dout: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray,
                gamma: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FN's training gradient. Shapes: x, dout (N, D); running_mean, running_var, gamma (D,) -> (N, D), (D,), (D,)."""
    raise NotImplementedError("write fn_gradient")
