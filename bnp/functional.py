"""Functions of tensors used to build networks: activations, losses, layers.

Everything here is a composite of the autograd primitives (no hand-written
derivatives; ``linear`` is itself a primitive), so first and higher
derivatives are exact.

    import bnp.functional as F
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Sequence

from . import backend
from .autograd import Tensor, im2col, ops
from .autograd.im2col import window_max, window_positions, window_sum
from .autograd.ops import relu, sigmoid, tanh
from .running_moments import batch_moments, batch_weight, check_eps, check_finite, check_momentum, combine
from .statistics_mode import statistics_frozen

__all__ = ["relu", "tanh", "sigmoid", "softmax", "log_softmax", "linear", "cross_entropy", "mse_loss", "flatten",
           "conv2d", "unfold", "fold", "max_pool2d", "avg_pool2d", "batch_norm", "full_norm", "mlp", "positive_int"]


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
Pair = tuple[int, int]


def pair(value: Any, name: str) -> Pair:
    """A size argument as an (h, w) pair: ``3 -> (3, 3)``, ``(3, 2)`` stays; anything but ints is refused."""
    values = (value, value) if isinstance(value, int) or not hasattr(value, "__len__") else tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return (int(values[0]), int(values[1]))


def positive_int(where: str, name: str, value: Any) -> int:
    """A size argument (features, channels) as an int >= 1; floats, bools and non-positive values are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be a positive integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def conv_geometry(where: str, kernel_size: Any, stride: Any, padding: Any) -> tuple[Pair, Pair, Pair]:
    """Checked (kernel, stride, padding) pairs of a convolution: kernel and stride >= 1, padding >= 0."""
    kernel = pair(kernel_size, f"{where}: kernel_size")
    stride, padding = pair(stride, f"{where}: stride"), pair(padding, f"{where}: padding")
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"{where}: kernel_size and stride must be >= 1 and padding >= 0, got kernel_size={kernel}, "
                         f"stride={stride}, padding={padding}")
    return kernel, stride, padding


def pool_geometry(where: str, kernel_size: Any, stride: Any = None) -> tuple[Pair, Pair]:
    """Checked (kernel, stride) pairs of a pooling window; ``stride=None`` means the kernel size."""
    kernel, stride, _ = conv_geometry(where, kernel_size, kernel_size if stride is None else stride, 0)
    return kernel, stride


def _check_image(x: Tensor, where: str, kernel: Pair | None = None) -> None:
    if x.ndim != 4:
        raise ValueError(f"{where}: expected input of shape (N, C, H, W), got {x.shape}")
    if kernel is not None and (x.shape[2] < kernel[0] or x.shape[3] < kernel[1]):
        raise ValueError(
            f"{where}: kernel {kernel} is larger than the input's spatial size {x.shape[2:]} (input {x.shape})"
        )


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
    _, stride, padding = conv_geometry("conv2d", (kh, kw), stride, padding)
    n, _, h, w = x.shape
    oh, ow = window_positions((h, w), (kh, kw), stride, padding)
    cols = im2col.unfold(x, (kh, kw), stride, padding)  # (N, C*kh*kw, L)
    out = ops.reshape(ops.reshape(weight, (out_c, in_c * kh * kw)) @ cols, (n, out_c, oh, ow))
    return out if bias is None else out + ops.reshape(bias, (out_c, 1, 1))


def unfold(x: Tensor, kernel_size: Any, stride: Any = 1, padding: Any = 0) -> Tensor:
    """Sliding windows as columns (im2col), with PyTorch's ``F.unfold`` layout.

    Shapes: x (N, C, H, W) -> (N, C*kh*kw, L), ``L = OH*OW``; kernel_size,
    stride, padding are ints or (h, w) pairs. Its VJP is :func:`fold`.
    """
    kernel, stride, padding = conv_geometry("unfold", kernel_size, stride, padding)
    return im2col.unfold(x, kernel, stride, padding)


def fold(cols: Tensor, output_size: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0) -> Tensor:
    """The adjoint of :func:`unfold` (PyTorch's ``F.fold``): columns added back onto their windows.

    Shapes: cols (N, C*kh*kw, L) -> (N, C, H, W) with ``output_size = (H, W)``.
    """
    kernel, stride, padding = conv_geometry("fold", kernel_size, stride, padding)
    return im2col.fold(cols, pair(output_size, "fold: output_size"), kernel, stride, padding)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    """Maximum over each ``kernel_size`` window; ``stride`` defaults to ``kernel_size``.

    Shapes: (N, C, H, W) -> (N, C, OH, OW), ``OH = (H - kh) // sh + 1`` (rows and
    columns that do not fill a window are dropped, as in PyTorch). The gradient
    flows to the maximum of each window (the first one on ties, as in PyTorch).
    """
    kernel, stride = pool_geometry("max_pool2d", kernel_size, stride)
    _check_image(x, "max_pool2d", kernel)
    return window_max(x, kernel, stride)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    """Mean over each ``kernel_size`` window; ``stride`` defaults to ``kernel_size``.

    Shapes: (N, C, H, W) -> (N, C, OH, OW), ``OH = (H - kh) // sh + 1``.
    """
    kernel, stride = pool_geometry("avg_pool2d", kernel_size, stride)
    _check_image(x, "avg_pool2d", kernel)
    return window_sum(x, kernel, stride) * (1.0 / (kernel[0] * kernel[1]))


def per_channel_layout(x: Tensor, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Axes that per-channel statistics reduce over, and the shape that broadcasts
    a (C,) vector against ``x``: (0,), (1, C) for (N, C); (0, 2, 3), (1, C, 1, 1) for NCHW."""
    if x.ndim not in (2, 4):
        raise ValueError(f"{where}: expected input of shape (N, C) or (N, C, H, W), got {x.shape}")
    if x.shape[1] < 1:
        raise ValueError(f"{where}: expected at least one channel, got input of shape {x.shape}")
    return ((0,), (1, x.shape[1])) if x.ndim == 2 else ((0, 2, 3), (1, x.shape[1], 1, 1))


def _channel_vector(a: Any, channels: int, name: str, where: str) -> Any:
    """A per-channel argument as a raw backend array of shape (C,), or None."""
    if a is None:
        return None
    data = a.data if isinstance(a, Tensor) else a
    if tuple(data.shape) != (channels,):
        raise ValueError(f"{where}: {name} must have shape ({channels},), got {tuple(data.shape)}")
    return data


def _normalization_args(where: str, x: Tensor, running_mean: Any, running_var: Any, eps: float):
    """What BN and FN check first: the input's layout (reduced axes, broadcast shape), the running
    statistics as (C,) backend arrays (or None), and ``eps``."""
    axes, shape = per_channel_layout(x, where)
    c = x.shape[1]
    running_mean = _channel_vector(running_mean, c, "running_mean", where)
    running_var = _channel_vector(running_var, c, "running_var", where)
    return axes, shape, running_mean, running_var, check_eps(where, eps)


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
    Inside :class:`bnp.frozen_statistics` the running statistics are not updated.
    A batch whose statistics (or the updated running ones) are not finite is
    refused with NonFiniteError before anything is written.

    Shapes: x (N, C) or (N, C, H, W), statistics per channel over N (and H, W);
    running_mean, running_var (C,) backend arrays (or None in training: no
    update); weight, bias (C,) or None -> same shape as x.
    """
    axes, shape, running_mean, running_var, eps = _normalization_args("batch_norm", x, running_mean, running_var, eps)
    c = x.shape[1]
    if training:
        count = x.size // c
        if count <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input of shape {x.shape}"
            )
        with backend.quiet_float_errors():  # checked just below, with a clear message
            mean = ops.mean(x, axes, keepdims=True)
            centred = x - mean
            var = ops.mean(centred * centred, axes, keepdims=True)
        update = (running_mean is not None or running_var is not None) and not statistics_frozen()
        if update:
            momentum = check_momentum("batch_norm", momentum)
        _check_and_update(running_mean if update else None, running_var if update else None,
                          mean.data.reshape(c), var.data.reshape(c), count, momentum)
        y = centred * (var + eps) ** -0.5
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: eval mode (training=False) needs running_mean and running_var")
        inv_std = 1.0 / backend.xp().sqrt(running_var.astype(x.dtype) + eps)
        y = (x - Tensor(running_mean.astype(x.dtype).reshape(shape))) * Tensor(inv_std.reshape(shape))
    return _affine(y, weight, bias, shape)


def _check_and_update(running_mean: Any, running_var: Any, mean: Any, var: Any, count: int, momentum: Any) -> None:
    """BN's guard and buffer update: refuse non-finite batch statistics (or updated buffers),
    then ``r = (1 - momentum) r + momentum * batch`` in place (the variance unbiased)."""
    values = {"batch_mean": mean, "batch_var": var}
    with backend.quiet_float_errors():
        if running_mean is not None:
            values["running_mean"] = (1 - momentum) * running_mean + momentum * mean.astype(running_mean.dtype)
        if running_var is not None:
            unbiased = (var * (count / (count - 1))).astype(running_var.dtype)
            values["running_var"] = (1 - momentum) * running_var + momentum * unbiased
    check_finite("batch_norm", **values)
    if running_mean is not None:
        running_mean[...] = values["running_mean"]
    if running_var is not None:
        running_var[...] = values["running_var"]


def _affine(y: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    """The per-channel scale and shift that BN and FN apply after normalizing."""
    if weight is not None:
        y = y * ops.reshape(weight, shape)
    if bias is not None:
        y = y + ops.reshape(bias, shape)
    return y


def full_norm(
    x: Tensor,
    running_mean: Any,
    running_var: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    num_batches: int = 0,
) -> Tensor:
    """Full Normalization (FN; Lian & Liu, AISTATS 2019) per channel.

    FN normalizes every sample with estimates of the moments of the *whole
    data*, not of its batch. The forward pass uses running estimates ``S_hat``
    that already include the current batch; the backward pass differentiates
    the batch moments ``S_B`` as if they were ``S_hat``::

        S_used = S_hat + (S_B - stop_gradient(S_B))

    whose value is ``S_hat`` and whose derivative is that of ``S_B``: the
    compositional gradient ``(dL/dS)(S_hat) . dS_B/dtheta``.

    Training: fold the batch's mean and variance into ``running_mean`` and
    ``running_var`` in place (the bias-corrected average of
    :mod:`bnp.running_moments`: after ``num_batches = t`` earlier batches the
    new one weighs ``(1-r)/(1-r^(t+1))`` with ``r = 1 - momentum``; with
    ``momentum = 0`` they are kept as given), then normalize with them.
    The moments are the mean ``m1`` and the second moment ``m2``; averaging
    batch *variances* instead would fail at batch size 1, where each is 0. The
    variance's value is the running estimate (computed without cancellation),
    its derivative ``d m2_B - 2 m1 d m1_B``.
    Eval: the running moments are constants and nothing is updated. Inside
    :class:`bnp.frozen_statistics` training mode normalizes with the moments as
    they would be after this batch, but writes nothing. An empty batch, or one
    that would make the moments non-finite, is refused before anything is written.

    Shapes: x (N, C) or (N, C, H, W), statistics per channel over N (and H, W);
    running_mean, running_var (C,) backend arrays; weight, bias (C,) or None
    -> same shape as x.
    """
    if running_mean is None or running_var is None:
        raise ValueError("full_norm: needs running_mean and running_var (FN normalizes with them in both modes)")
    axes, shape, running_mean, running_var, eps = _normalization_args("full_norm", x, running_mean, running_var, eps)
    if training:
        momentum = check_momentum("full_norm", momentum)
        if isinstance(num_batches, bool) or int(num_batches) != num_batches or num_batches < 0:
            raise ValueError(f"full_norm: num_batches must be an integer >= 0, got {num_batches!r}")
    if training and momentum > 0:  # momentum 0: the running moments are kept as given
        new_mean, new_var = _fold_batch_moments(x.data, running_mean, running_var, axes,
                                                batch_weight(int(num_batches), 1.0 - momentum))
        if not statistics_frozen():
            running_mean[...] = new_mean
            running_var[...] = new_var
    else:
        new_mean, new_var = running_mean, running_var
    mean_hat = Tensor(new_mean.astype(x.dtype).reshape(shape))
    var_hat = Tensor(new_var.astype(x.dtype).reshape(shape))
    if training:
        m1 = ops.mean(x, axes, keepdims=True)
        m2 = ops.mean(x * x, axes, keepdims=True)
        mean_used = mean_hat + (m1 - m1.detach())
        square = mean_used * mean_used
        var_used = var_hat + (m2 - m2.detach()) - (square - square.detach())
    else:
        mean_used, var_used = mean_hat, var_hat
    y = (x - mean_used) / ops.sqrt(var_used + eps)
    return _affine(y, weight, bias, shape)


def _fold_batch_moments(data: Any, running_mean: Any, running_var: Any, axes, w: float) -> tuple[Any, Any]:
    """FN's state update: the batch's mean and (biased) variance combined with weight ``w`` into
    new (mean, var) arrays, checked finite; the caller writes them into the buffers."""
    batch_mean, batch_var = batch_moments(data, axes, "full_norm")  # biased: combine() needs each batch's spread
    dtype = running_mean.dtype
    with backend.quiet_float_errors():
        mean, var = combine(running_mean, running_var, batch_mean.astype(dtype), batch_var.astype(dtype), w)
    check_finite("full_norm", running_mean=mean, running_var=var)
    return mean, var
