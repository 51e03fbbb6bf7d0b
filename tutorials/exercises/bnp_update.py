"""Exercise bnp_update: BNP's gradient rewrite for one Linear layer.

Prepared by chapter 04_bnp (the reparametrization and the update). Grade it with::

    bnp grade bnp_update tutorials/exercises/bnp_update.py

Task. BNP runs gradient descent on a network whose layer sees standardized
inputs D^-1 (a - mu); in the original parameters that is the update
theta <- theta - lr P P^T grad. For one Linear layer (weight (out, n), bias (out,))
write

    bnp_update(grad_w, grad_b, mean, var, eps) -> (new_grad_w, new_grad_b)
        grad_w: (out, n), grad_b: (out,): the layer's gradients.
        mean, var: (n,): the statistics of the layer's input. eps: float.
        new_grad_w = (grad_w - grad_b mean^T) D^-2,   D^2 = diag(var + eps)
        new_grad_b = grad_b - new_grad_w mean
    NumPy arrays in and out, same shapes as grad_w and grad_b.

The grader refuses bnp.preconditioner (precondition, BNP.step) and
bnp.theory's P: it compares you with them.

Hints.
- Broadcasting: grad_b[:, None] * mean[None, :] is the (out, n) outer product.
- new_grad_b uses the NEW weight gradient.
- D^-2 divides by the variance (plus eps), not by the standard deviation.
"""

from __future__ import annotations

import numpy as np


def bnp_update(grad_w: np.ndarray, grad_b: np.ndarray, mean: np.ndarray, var: np.ndarray,
               eps: float) -> tuple[np.ndarray, np.ndarray]:
    """P P^T applied to a Linear layer's gradients. Shapes: (out, n), (out,), (n,), (n,) -> (out, n), (out,)."""
    raise NotImplementedError("write bnp_update")
