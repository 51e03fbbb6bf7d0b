"""Functions of tensors used to build networks: activations, losses, layers.

Everything here is a composite of the autograd primitives (no hand-written
derivatives; ``linear`` is itself a primitive), so first and higher
derivatives are exact.

    import bnp.functional as F
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from . import backend
from .autograd import Tensor, ops
from .autograd.im2col import output_size, pair, pool_geometry, unfold, window_max, window_sum
from .autograd.ops import relu, sigmoid, tanh

__all__ = ["relu", "tanh", "sigmoid", "softmax", "log_softmax", "linear", "cross_entropy", "mse_loss", "flatten",
           "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "mlp"]


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

    Shapes: x (..., in), weight (out, in), bias (out,) -> (..., out).
    One autograd primitive (``ops.linear``), tested against the composite.
    """
    return ops.linear(x, weight, bias)


def mlp(x: Tensor, params: Sequence[Tensor], activation: Callable[[Tensor], Tensor] = relu) -> Tensor:
    """A fully connected network written as a function of its parameters.

    ``params`` is the flat list ``[W1, b1, W2, b2, ...]`` (weights (out, in),
    biases (out,)); ``activation`` is applied between layers, not after the
    last. Handy when the parameters are the leaves to differentiate (Hessians).

    Shapes: x (N, in) -> (N, out of the last layer).
    """
    if len(params) % 2:
        raise ValueError(f"mlp: params must alternate weight, bias; got {len(params)} tensors")
    h = x
    for k in range(0, len(params), 2):
        h = linear(h, params[k], params[k + 1])
        if k + 2 < len(params):
            h = activation(h)
    return h


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
        raise ValueError(
            f"{where}: expected targets of shape ({logits.shape[0]},) for logits {logits.shape}, got {data.shape}"
        )
    if data.size and (int(data.min()) < 0 or int(data.max()) >= logits.shape[1]):
        raise ValueError(
            f"{where}: targets must lie in [0, {logits.shape[1] - 1}], got range [{int(data.min())}, {int(data.max())}]"
        )
    return data


def cross_entropy(logits: Tensor, target: Any) -> Tensor:
    """Mean softmax cross-entropy.

    Shapes: logits (N, C) floating; target (N,) integer class indices -> scalar.
    """
    t = _check_targets(logits, target, "cross_entropy")
    logp = log_softmax(logits, axis=1)
    picked = logp[backend.xp().arange(logits.shape[0]), t]
    return ops.sum(picked) * (-1.0 / max(logits.shape[0], 1))


def mse_loss(prediction: Tensor, target: Any) -> Tensor:
    """Mean of squared differences; shapes must match exactly (no silent broadcast)."""
    target_shape = target.shape if hasattr(target, "shape") else ()
    if tuple(prediction.shape) != tuple(target_shape):
        raise ValueError(
            f"mse_loss: prediction shape {prediction.shape} differs from target shape {tuple(target_shape)}"
        )
    diff = prediction - target
    return ops.mean(diff * diff)


# -- convolution, pooling and batch normalization ----------------------------------
def _check_image(x: Tensor, where: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{where}: expected input of shape (N, C, H, W), got {x.shape}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0) -> Tensor:
    """2-D convolution (cross-correlation, as in PyTorch) by im2col and one matrix product.

    Shapes: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None ->
    (N, O, OH, OW) with ``OH = (H + 2*ph - kh) // sh + 1`` (same for W).

    Layout: ``weight (O, C*kh*kw) @ unfold(x) (N, C*kh*kw, OH*OW)`` broadcasts over N
    and yields (N, O, OH*OW), already in NCHW order: no transpose, and the
    reshape to (N, O, OH, OW) is free. (Measured on small_cnn's layers: one big
    product over columns laid out (C*kh*kw, N*L) takes the same time as these N
    small ones, but its (O, N, ...) result needs a copy to NCHW each way.)
    """
    _check_image(x, "conv2d")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must have shape (O, C, kh, kw), got {weight.shape}")
    out_c, in_c, kh, kw = weight.shape
    if x.shape[1] != in_c:
        raise ValueError(
            f"conv2d: input has {x.shape[1]} channels (shape {x.shape}) but weight {weight.shape} expects {in_c}"
        )
    if bias is not None and bias.shape != (out_c,):
        raise ValueError(f"conv2d: bias must have shape ({out_c},), got {bias.shape}")
    stride, padding = pair(stride, "conv2d: stride"), pair(padding, "conv2d: padding")
    n, _, h, w = x.shape
    oh, ow = output_size((h, w), (kh, kw), stride, padding)
    cols = unfold(x, (kh, kw), stride, padding)  # (N, C*kh*kw, L)
    out = ops.reshape(ops.reshape(weight, (out_c, in_c * kh * kw)) @ cols, (n, out_c, oh, ow))
    return out if bias is None else out + ops.reshape(bias, (out_c, 1, 1))


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    """Maximum over each ``kernel_size`` window; ``stride`` defaults to ``kernel_size``.

    Shapes: (N, C, H, W) -> (N, C, OH, OW), ``OH = (H - kh) // sh + 1`` (rows and
    columns that do not fill a window are dropped, as in PyTorch). The gradient
    flows to the maximum of each window (the first one on ties, as in PyTorch).
    """
    _check_image(x, "max_pool2d")
    kernel, stride, _ = pool_geometry("max_pool2d", x.shape, kernel_size, stride)
    return window_max(x, kernel, stride)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    """Mean over each ``kernel_size`` window; ``stride`` defaults to ``kernel_size``.

    Shapes: (N, C, H, W) -> (N, C, OH, OW), ``OH = (H - kh) // sh + 1``.
    """
    _check_image(x, "avg_pool2d")
    kernel, stride, _ = pool_geometry("avg_pool2d", x.shape, kernel_size, stride)
    return window_sum(x, kernel, stride) * (1.0 / (kernel[0] * kernel[1]))


def per_channel_layout(x: Tensor, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Axes that per-channel statistics reduce over, and the shape that broadcasts
    a (C,) vector against ``x``: (0,), (1, C) for (N, C); (0, 2, 3), (1, C, 1, 1) for NCHW."""
    if x.ndim not in (2, 4):
        raise ValueError(f"{where}: expected input of shape (N, C) or (N, C, H, W), got {x.shape}")
    return ((0,), (1, x.shape[1])) if x.ndim == 2 else ((0, 2, 3), (1, x.shape[1], 1, 1))


def _channel_vector(a: Any, channels: int, name: str) -> Any:
    """A per-channel argument as a raw backend array of shape (C,), or None."""
    if a is None:
        return None
    data = a.data if isinstance(a, Tensor) else a
    if tuple(data.shape) != (channels,):
        raise ValueError(f"batch_norm: {name} must have shape ({channels},), got {tuple(data.shape)}")
    return data


def batch_norm(
    x: Tensor,
    running_mean: Any,
    running_var: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization per channel, with PyTorch's conventions.

    Training: normalize with the batch mean and the *biased* batch variance
    (both in the graph, so derivatives of every order flow through them), and
    update the running statistics in place, outside the graph::

        running_mean = (1 - momentum) * running_mean + momentum * batch_mean
        running_var  = (1 - momentum) * running_var  + momentum * unbiased_batch_var

    Eval: normalize with the running statistics (constants).

    Shapes: x (N, C) or (N, C, H, W), statistics per channel over N (and H, W);
    running_mean, running_var (C,) backend arrays (or None in training: no
    update); weight, bias (C,) or None -> same shape as x.
    """
    axes, shape = per_channel_layout(x, "batch_norm")
    c = x.shape[1]
    running_mean = _channel_vector(running_mean, c, "running_mean")
    running_var = _channel_vector(running_var, c, "running_var")
    if training:
        count = x.size // c
        if count <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input of shape {x.shape}"
            )
        mean = ops.mean(x, axes, keepdims=True)
        centred = x - mean
        var = ops.mean(centred * centred, axes, keepdims=True)
        y = centred * (var + eps) ** -0.5
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean.data.reshape(c).astype(running_mean.dtype)
        if running_var is not None:
            unbiased = var.data.reshape(c) * (count / (count - 1))
            running_var *= 1 - momentum
            running_var += momentum * unbiased.astype(running_var.dtype)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: eval mode (training=False) needs running_mean and running_var")
        inv_std = 1.0 / backend.xp().sqrt(running_var.astype(x.dtype) + eps)
        y = (x - Tensor(running_mean.astype(x.dtype).reshape(shape))) * Tensor(inv_std.reshape(shape))
    if weight is not None:
        y = y * ops.reshape(weight, shape)
    if bias is not None:
        y = y + ops.reshape(bias, shape)
    return y
