"""Full Normalization (FN; Lian & Liu, AISTATS 2019): normalize with estimates
of the *full-data* moments, not the batch's.

BN's training objective depends on how batches are drawn: each sample is
normalized by the statistics of whatever batch it landed in. FN instead targets
the objective in which every sample is normalized by the moments of the whole
data set, a stochastic compositional problem. The forward pass normalizes with
running estimates ``S_hat`` of the moments; the backward pass differentiates
the batch moments ``S_B`` *as if they were* ``S_hat``. In autograd terms::

    S_used = S_hat + (S_B - stop_gradient(S_B))

whose value is ``S_hat`` and whose derivative is that of ``S_B``: the
compositional gradient ``(d loss / d S)(S_hat) . (d S_B / d theta)``.

Choices the seed paper's abstract leaves open, made here:

* The moments are the mean ``m1`` and the second moment ``m2 = E[x^2]``; the
  variance is ``m2 - m1^2``. (Averaging batch *variances* would make FN fail at
  batch size 1, where every batch variance is 0.) The value of the variance is
  the running estimate itself, computed without cancellation
  (``bnp.running_moments``); its derivative is ``d m2_B - 2 m1 d m1_B``.
* Running estimates use the bias-corrected average of ``bnp.running_moments``
  with weight ``momentum`` (so the first batches are averaged equally, then the
  weight settles at ``momentum``): the estimate includes the current batch
  before it is used.
* In eval mode the running estimates are used and nothing is updated, as in BN.
"""

from __future__ import annotations

from typing import Any

from .autograd import Tensor, no_grad, ops
from .functional import per_channel_layout
from .running_moments import batch_weight, combine


def full_norm(
    x: Tensor,
    running_mean: Any,
    running_var: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize ``x`` per channel with the given (running) moments.

    In training mode the batch moments stay in the graph with the values of the
    running ones (module doc); in eval mode the running moments are constants.
    Pass running moments that already include the current batch.

    Shapes: x (N, C) or (N, C, H, W); running_mean, running_var (C,);
    weight, bias (C,) or None -> same shape as x.
    """
    axes, shape = per_channel_layout(x, "full_norm")
    mean_hat = Tensor(running_mean.reshape(shape))
    var_hat = Tensor(running_var.reshape(shape))
    if training:
        m1 = ops.mean(x, axes, keepdims=True)
        m2 = ops.mean(x * x, axes, keepdims=True)
        mean_used = mean_hat + (m1 - m1.detach())
        square = mean_used * mean_used
        var_used = var_hat + (m2 - m2.detach()) - (square - square.detach())
    else:
        mean_used, var_used = mean_hat, var_hat
    y = (x - mean_used) / ops.sqrt(var_used + eps)
    if weight is not None:
        y = y * ops.reshape(weight, shape)
    if bias is not None:
        y = y + ops.reshape(bias, shape)
    return y


def update_running_moments(
    x: Tensor, running_mean: Any, running_var: Any, count: int, momentum: float
) -> tuple[Any, Any]:
    """Fold the batch moments of ``x`` into the running ones; returns the new (mean, var).

    Shapes: x (N, C) or (N, C, H, W); running_mean, running_var (C,) -> two (C,)
    arrays in the running moments' dtype. ``count`` is the number of batches
    already folded in (it sets the bias-corrected weight of this one).
    """
    axes, shape = per_channel_layout(x, "update_running_moments")
    with no_grad():
        data = x.data
        batch_mean = data.mean(axis=axes)
        centred = data - batch_mean.reshape(shape)
        batch_var = (centred * centred).mean(axis=axes)  # biased: combine() needs each batch's own spread
    w = batch_weight(count, 1.0 - momentum)
    dtype = running_mean.dtype
    return combine(running_mean, running_var, batch_mean.astype(dtype), batch_var.astype(dtype), w)


__all__ = ["full_norm", "update_running_moments"]
