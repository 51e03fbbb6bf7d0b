"""Primitives that move data without arithmetic: reshape, transpose,
indexing, concatenation, dtype casts (broadcasting, the adjoint of a sum,
lives with ``sum`` in ``reductions.py``).

Every VJP here is again one of these linear maps, so derivatives of any order
are exact. Upstream gradients may carry leading batch axes; the rules keep
those in front (``nb`` below counts them).
"""

from __future__ import annotations

import builtins
from typing import Any, Sequence

from .. import backend
from ._util import as_tensor, batch_ndim, check_same_backend
from .graph import make_node
from .tensor import Tensor


def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    """``a`` with a new shape of the same size (one entry may be -1)."""
    shape = tuple(int(s) for s in shape)
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} into {shape}") from None
    if out.shape == a.data.shape:
        return a

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        return reshape(g, g.shape[: batch_ndim(g, out)] + a.shape)

    return make_node(out, (a,), (vjp,), "reshape")


def transpose(a: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    """Permute the axes (reverse them when ``axes`` is None)."""
    if axes is None:  # the reversal: a permutation, and its own inverse
        axes = inverse = tuple(range(a.ndim - 1, -1, -1))
    else:
        axes = tuple(ax % a.ndim for ax in axes)
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"transpose: {axes} is not a permutation of the axes of a tensor of shape {a.shape}")
        inverse = tuple(sorted(range(a.ndim), key=lambda i: axes[i]))

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        nb = batch_ndim(g, out)
        return transpose(g, tuple(range(nb)) + tuple(nb + i for i in inverse))

    return make_node(a.data.transpose(axes), (a,), (vjp,), "transpose")


def _raw_index(idx: Any) -> tuple:
    """Index as a tuple of ints, slices, Ellipsis, None and backend integer arrays."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for k in idx:
        if isinstance(k, Tensor):
            k = k.data
        if isinstance(k, list) or (backend.is_array(k) and backend.array_backend(k) != backend.get_backend()):
            # Index arrays are small host data (labels, picks): moving them is cheap
            # and expected (PyTorch too accepts CPU indices for CUDA tensors).
            k = backend.asarray(k)
        if backend.is_array(k) and k.dtype.kind == "b":
            out.extend(k.nonzero())  # boolean masks become integer picks
            continue
        if backend.is_array(k) and k.dtype.kind not in "iu":
            raise IndexError(f"indexing: index arrays must be integer or boolean, got dtype {k.dtype}")
        out.append(k)
    return tuple(out)


def _expand_ellipsis(idx: tuple, ndim: int) -> tuple:
    """Replace ``...`` by full slices, so the index names every axis it touches.

    Needed because batched VJPs append axes at the end (see ``_batch_last``);
    an ``...`` would otherwise swallow them.
    """
    if not any(k is Ellipsis for k in idx):
        return idx
    used = builtins.sum(1 for k in idx if k is not None and k is not Ellipsis)
    at = next(i for i, k in enumerate(idx) if k is Ellipsis)
    rest = tuple(k for k in idx[at + 1 :] if k is not Ellipsis)
    return idx[:at] + (slice(None),) * (ndim - used) + rest


def _is_advanced(idx: tuple) -> bool:
    return any(backend.is_array(k) for k in idx)


# Batched upstream gradients carry their batch axes in front. NumPy moves the
# axes of *separated* integer-array indices (``x[i, :, j]``) to the front of the
# result, which would mix them with the batch axes; axes at the end that the
# index does not reach never move. So batched indexing puts the batch axes last.
def _batch_last(t: Tensor, nb: int) -> Tensor:
    return transpose(t, tuple(range(nb, t.ndim)) + tuple(range(nb)))


def _batch_first(t: Tensor, nb: int) -> Tensor:
    return transpose(t, tuple(range(t.ndim - nb, t.ndim)) + tuple(range(t.ndim - nb)))


def getitem(a: Tensor, idx: Any) -> Tensor:
    """``a[idx]`` with ints, slices, ``...``, None and integer (or boolean) arrays."""
    idx = _expand_ellipsis(_raw_index(idx), a.ndim)
    try:
        out = a.data[idx]
    except IndexError as exc:
        raise IndexError(f"indexing a tensor of shape {a.shape}: {exc}") from None

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        nb = batch_ndim(g, out)
        if nb == 0:
            return scatter(g, idx, a.shape)
        return _batch_first(scatter(_batch_last(g, nb), idx, a.shape + g.shape[:nb]), nb)

    return make_node(out, (a,), (vjp,), "getitem")


def scatter(values: Tensor, idx: Any, shape: tuple[int, ...]) -> Tensor:
    """A zero tensor of ``shape`` with ``values`` added at ``idx`` (repeats accumulate).

    The adjoint of indexing: ``scatter(v, idx, x.shape)`` is the gradient of
    ``x[idx]`` for the upstream gradient ``v``. Its own VJP is indexing again.
    """
    shape = tuple(shape)
    idx = _expand_ellipsis(_raw_index(idx), len(shape))
    xp = backend.xp()
    out = xp.zeros(shape, dtype=values.dtype)
    if _is_advanced(idx):
        backend.add_at(out, idx, values.data)
    else:
        out[idx] = values.data

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        nb = batch_ndim(g, out)
        if nb == 0:
            return getitem(g, idx)
        return _batch_first(getitem(_batch_last(g, nb), idx), nb)

    return make_node(out, (values,), (vjp,), "scatter")


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = [as_tensor(t, None, "concatenate") for t in tensors]
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    check_same_backend("concatenate", *tensors)
    ndim = tensors[0].ndim
    axis = axis % ndim
    try:
        out = backend.xp().concatenate([t.data for t in tensors], axis=axis)
    except ValueError:
        raise ValueError(
            f"concatenate: shapes {[t.shape for t in tensors]} do not match outside axis {axis}"
        ) from None
    bounds = [0]
    for t in tensors:
        bounds.append(bounds[-1] + t.shape[axis])
    tail = (slice(None),) * (ndim - 1 - axis)

    def piece(k: int):
        return lambda g, out: getitem(g, (Ellipsis, slice(bounds[k], bounds[k + 1])) + tail)

    return make_node(out, tensors, [piece(k) for k in range(len(tensors))], "concatenate")


def astype(a: Tensor, dtype: Any) -> Tensor:
    """Cast to another dtype; between floating dtypes gradients are cast back.

    A cast to an integer or boolean dtype ends the graph (such tensors have no gradient).
    """
    if a.dtype == dtype:
        return a
    data = a.data.astype(dtype)
    if data.dtype.kind != "f":
        return Tensor(data)
    source = a.dtype
    return make_node(data, (a,), (lambda g, out: astype(g, source),), "astype")
