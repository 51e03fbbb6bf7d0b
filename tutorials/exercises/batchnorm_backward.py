"""Exercise batchnorm_backward: batch normalization, forward and backward, by hand in NumPy.

Prepared by chapter 02_batch_normalization (the backward pass derived step by
step). Grade it with::

    bnp grade batchnorm_backward tutorials/exercises/batchnorm_backward.py

Task. Write batch normalization in training mode and its backward pass,
with CS231n's interface:

    batchnorm_forward(x, gamma, beta, eps) -> (out, cache)
        x: (N, D) NumPy array, a batch of N samples with D features.
        gamma, beta: (D,) scale and shift. eps: float, added to the variance.
        out: (N, D) = gamma * (x - mu) / sqrt(var + eps) + beta, with the BATCH
        mean mu (D,) and the BIASED batch variance var (D,) (divide by N).
        cache: anything your backward pass needs.

    batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta)
        dout: (N, D), the upstream gradient dL/dout.
        dx: (N, D); dgamma, dbeta: (D,). Remember that mu and var depend on x.

Use NumPy only: the grader refuses bnp.functional.batch_norm, bnp.nn.BatchNorm1d/2d
and bnp's autograd (that is what it compares you with).

Hints.
- Write xh = (x - mu) / s with s = sqrt(var + eps). Then out = gamma * xh + beta,
  dbeta = sum of dout over the batch, dgamma = sum of dout * xh.
- For dx, go through the graph node by node (x -> mu, var -> xh -> out), or
  simplify on paper to one line in xh, s and g = dout * gamma.
- The grader tries batch size 1, features whose mean is a million standard
  deviations from 0, and scales spread over six decades: centre before squaring.
"""

from __future__ import annotations

from typing import Any

import numpy as np  # noqa: F401  (for your solution)


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> tuple[np.ndarray, Any]:
    """Training-mode batch normalization. Shapes: x (N, D), gamma, beta (D,) -> out (N, D), cache."""
    raise NotImplementedError("write batchnorm_forward")


def batchnorm_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the loss. Shapes: dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,)."""
    raise NotImplementedError("write batchnorm_backward")
