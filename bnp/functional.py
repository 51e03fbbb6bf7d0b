"""Functions of tensors used to build networks: activations, losses, layers.

Everything here is a composite of the autograd primitives (no hand-written
derivatives), so first and higher derivatives are exact.

    import bnp.functional as F
"""

from __future__ import annotations

from typing import Any

from .autograd import Tensor
from .autograd import ops
from .autograd.ops import relu, sigmoid, tanh

__all__ = ["relu", "tanh", "sigmoid", "softmax", "log_softmax", "linear", "cross_entropy", "mse_loss", "flatten"]


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``x - logsumexp(x)`` along ``axis``, shifted by the (constant) max for stability.

    The shift is detached: it cancels exactly, so it changes no derivative.
    """
    shift = Tensor(x.data.max(axis=axis, keepdims=True))
    z = x - shift
    return z - ops.log(ops.sum(ops.exp(z), axis, keepdims=True))


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Probabilities along ``axis``: ``exp(log_softmax(x))``."""
    return ops.exp(log_softmax(x, axis))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``.

    Shapes: x (N, in), weight (out, in), bias (out,) -> (N, out).
    """
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}) but weight expects "
            f"{weight.shape[-1]} (weight shape {weight.shape})"
        )
    out = x @ weight.T
    return out if bias is None else out + bias


def flatten(x: Tensor, start_dim: int = 1) -> Tensor:
    """Merge all axes from ``start_dim`` on: (N, C, H, W) -> (N, C*H*W)."""
    return ops.flatten(x, start_dim)


def _check_targets(logits: Tensor, target: Any, where: str) -> Any:
    data = target.data if isinstance(target, Tensor) else target
    if not hasattr(data, "dtype") or data.dtype.kind not in "iu":
        kind = getattr(getattr(data, "dtype", None), "name", type(data).__name__)
        raise TypeError(f"{where}: targets must be integer class indices, got {kind}")
    if logits.ndim != 2:
        raise ValueError(f"{where}: logits must have shape (N, C), got {logits.shape}")
    if data.shape != (logits.shape[0],):
        raise ValueError(f"{where}: expected targets of shape ({logits.shape[0]},) for logits {logits.shape}, got {data.shape}")
    if data.size and (int(data.min()) < 0 or int(data.max()) >= logits.shape[1]):
        raise ValueError(
            f"{where}: targets must lie in [0, {logits.shape[1] - 1}], got range [{int(data.min())}, {int(data.max())}]"
        )
    return data


def cross_entropy(logits: Tensor, target: Any) -> Tensor:
    """Mean softmax cross-entropy.

    Shapes: logits (N, C) floating; target (N,) integer class indices -> scalar.
    """
    from . import backend

    t = _check_targets(logits, target, "cross_entropy")
    logp = log_softmax(logits, axis=1)
    picked = logp[backend.xp().arange(logits.shape[0]), t]
    return -ops.mean(picked)


def mse_loss(prediction: Tensor, target: Any) -> Tensor:
    """Mean of squared differences; shapes must match exactly (no silent broadcast)."""
    target_shape = target.shape if hasattr(target, "shape") else ()
    if tuple(prediction.shape) != tuple(target_shape):
        raise ValueError(f"mse_loss: prediction shape {prediction.shape} differs from target shape {tuple(target_shape)}")
    diff = prediction - target
    return ops.mean(diff * diff)
