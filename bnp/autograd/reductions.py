"""Reductions over axes: sum and max (mean, var and min are built from them),
and broadcasting, the adjoint of a sum.

``sum_to`` (sum a broadcast gradient back down to a shape) and ``broadcast_to``
are each the other's VJP, so they live together here."""

from __future__ import annotations

from typing import Any, Sequence

from .. import backend
from ._util import batch_ndim, normalize_axes
from .graph import make_node
from .shapes import reshape
from .tensor import Tensor


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _spread(g: Tensor, out: Tensor, a: Tensor, axes: tuple[int, ...]) -> Tensor:
    """Broadcast an upstream gradient of the reduced shape back to ``a``'s shape."""
    lead = g.shape[: batch_ndim(g, out)]
    return broadcast_to(reshape(g, lead + _kept_shape(a.shape, axes)), lead + a.shape)


def sum(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (an int, a tuple, or None for all axes)."""
    axes = normalize_axes(axis, a.ndim, "sum")
    out = a.data.sum(axis=axes, keepdims=keepdims)
    return make_node(out, (a,), (lambda g, out: _spread(g, out, a, axes),), "sum")


def max(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; ties share the gradient equally (a subgradient)."""
    axes = normalize_axes(axis, a.ndim, "max")
    if a.size == 0:
        raise ValueError(f"max: cannot reduce an empty tensor of shape {a.shape}")
    top = a.data.max(axis=axes, keepdims=True)
    out = top if keepdims else top.reshape(tuple(s for i, s in enumerate(a.shape) if i not in axes))

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        hits = (a.data == top).astype(g.dtype)
        share = Tensor(hits / hits.sum(axis=axes, keepdims=True))
        return _spread(g, out, a, axes) * share

    return make_node(out, (a,), (vjp,), "max")


def broadcast_to(a: Tensor, shape: Sequence[int]) -> Tensor:
    """``a`` repeated along new leading axes and along its axes of length 1."""
    shape = tuple(shape)
    if a.shape == shape:
        return a
    try:
        out = backend.xp().broadcast_to(a.data, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}") from None
    return make_node(out, (a,), (lambda g, out: sum_to(g, a.shape, out),), "broadcast_to")


def sum_to(g: Tensor, shape: tuple[int, ...], out: Tensor) -> Tensor:
    """Undo broadcasting: sum ``g`` (batch + out.shape) down to batch + ``shape``.

    This is the VJP of every broadcasting operation, written with ``sum`` and
    ``reshape`` so that it is itself differentiable.
    """
    nb = batch_ndim(g, out)
    if g.shape[nb:] == tuple(shape):
        return g
    extra = out.ndim - len(shape)
    kept = tuple(nb + extra + i for i, s in enumerate(shape) if s == 1 and out.shape[extra + i] != 1)
    if not kept:  # only leading axes to sum away: one node, no reshape (a bias's gradient)
        return sum(g, tuple(range(nb, nb + extra)))
    return reshape(sum(g, tuple(range(nb, nb + extra)) + kept, keepdims=True), g.shape[:nb] + tuple(shape))
