"""Exercise bnp_update_conv: BNP's gradient rewrite for a Conv2d layer with bias.

Prepared by chapter 06_convnets (BN and BNP for convolutions). Grade it with::

    bnp grade bnp_update_conv tutorials/exercises/bnp_update_conv.py

Task. BNP keeps, for a convolution, one mean and one variance per INPUT
CHANNEL (pooled over the batch and all positions, BN's convention); every
kernel offset of channel c sees inputs with those statistics. Write

    bnp_update_conv(grad_w, grad_b, mean, var, eps) -> (new_grad_w, new_grad_b)
        grad_w: (out, C, kh, kw), grad_b: (out,): the layer's gradients.
        mean, var: (C,) per input channel, repeated over the kernel offsets;
        eps: float, added to the variance.
        new_grad_w[o, c, i, j] = (grad_w[o, c, i, j] - grad_b[o] mean[c]) / (var[c] + eps)
        new_grad_b[o] = grad_b[o] - sum over c, i, j of new_grad_w[o, c, i, j] mean[c]
    NumPy arrays in and out, same shapes as grad_w and grad_b.

The grader refuses bnp.preconditioner (it compares you with bnp.BNP's conv update).

Hints.
- It is the Linear update of exercise bnp_update with the patch vector
  (C*kh*kw entries) as the input, and the statistics repeated kh*kw times.
- Broadcast mean and var as (1, C, 1, 1). The bias update sums over three axes.
"""

from __future__ import annotations

import numpy as np


def bnp_update_conv(grad_w: np.ndarray, grad_b: np.ndarray, mean: np.ndarray, var: np.ndarray,
                    eps: float) -> tuple[np.ndarray, np.ndarray]:
    """P P^T for a Conv2d layer. Shapes: (out, C, kh, kw), (out,), (C,), (C,) -> (out, C, kh, kw), (out,)."""
    raise NotImplementedError("write bnp_update_conv")
