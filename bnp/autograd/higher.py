"""Second-order tools as functions: Hessian-vector products, dense Hessians, Jacobians.

All of them are reverse over reverse: one backward pass with
``create_graph=True`` records the gradient as a graph, and a second backward
pass over that graph gives products with the Hessian. ``hessian`` feeds the
whole identity matrix through the second pass at once (a batched upstream
gradient), so an n-parameter Hessian costs one pass over arrays n times wider,
not n passes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .. import backend
from .graph import grad
from .shapes import concatenate, reshape
from .tensor import Tensor


def _params(params: Tensor | Sequence[Tensor]) -> list[Tensor]:
    params = [params] if isinstance(params, Tensor) else list(params)
    for k, p in enumerate(params):
        if not p.requires_grad:
            raise ValueError(f"params[{k}] (shape {p.shape}) does not require grad")
    return params


def _flat_gradient(loss_fn: Callable[[], Tensor], params: list[Tensor]) -> Tensor:
    loss = loss_fn()
    if not isinstance(loss, Tensor) or loss.size != 1:
        shape = getattr(loss, "shape", type(loss).__name__)
        raise ValueError(f"loss_fn must return a one-element Tensor, got {shape}")
    grads = grad(loss, params, create_graph=True, allow_unused=True)
    parts = [
        reshape(g, (-1,)) if g is not None else Tensor(backend.xp().zeros(p.size, dtype=p.dtype))
        for g, p in zip(grads, params, strict=True)
    ]
    return concatenate(parts) if len(parts) > 1 else parts[0]


def hvp(loss_fn: Callable[[], Tensor], params: Tensor | Sequence[Tensor], vectors: Any) -> list[Tensor]:
    """Hessian-vector product ``H v`` without forming ``H``.

    Args:
        loss_fn: takes no arguments, returns a scalar Tensor built from ``params``.
        params: the tensors to differentiate with respect to (a subset of the leaves is fine).
        vectors: one array or Tensor per param, of the param's shape.

    Returns:
        a list like ``params``: the blocks of ``H v``.
    """
    params = _params(params)
    vectors = [vectors] if isinstance(vectors, Tensor) or backend.is_array(vectors) else list(vectors)
    if len(vectors) != len(params):
        raise ValueError(f"hvp: got {len(vectors)} vectors for {len(params)} params")
    loss = loss_fn()
    grads = grad(loss, params, create_graph=True, allow_unused=True)
    # A gradient with no graph is constant in params: its block of H is zero.
    used = [(g, v) for g, v in zip(grads, vectors, strict=True) if g is not None and g.requires_grad]
    if not used:
        return [Tensor(backend.xp().zeros_like(p.data)) for p in params]
    out = grad([g for g, _ in used], params, grad_outputs=[v for _, v in used], allow_unused=True)
    return [Tensor(backend.xp().zeros_like(p.data)) if h is None else h for h, p in zip(out, params, strict=True)]


def hessian(loss_fn: Callable[[], Tensor], params: Tensor | Sequence[Tensor], chunk_size: int | None = None):
    """The dense Hessian of ``loss_fn()`` over ``params`` flattened in order.

    Args:
        loss_fn: takes no arguments, returns a scalar Tensor built from ``params``
            (a closure, e.g. over a model and a batch). Whatever statistics the
            loss computes inside (BN batch statistics, say) are differentiated.
        params: tensors that require grad; a subset of the leaves is fine.
        chunk_size: how many Hessian rows to compute per backward pass
            (default: all at once; smaller values bound the memory).

    Returns:
        an (n, n) backend array, n the total number of entries of ``params``.
    """
    params = _params(params)
    flat = _flat_gradient(loss_fn, params)
    n = flat.size
    xp = backend.xp()
    if not flat.requires_grad:  # the gradient is constant: the loss is at most linear in params
        return xp.zeros((n, n), dtype=flat.dtype)
    eye = xp.eye(n, dtype=flat.dtype)
    step = n if chunk_size is None else max(1, int(chunk_size))
    rows = []
    for start in range(0, n, step):
        block = grad(
            flat,
            params,
            grad_outputs=eye[start : start + step],
            retain_graph=start + step < n,
            allow_unused=True,
            is_grads_batched=True,
        )
        rows.append(_side_by_side(block, params, min(step, n - start), flat.dtype))
    return xp.concatenate(rows, axis=0) if len(rows) > 1 else rows[0]


def _side_by_side(block: Sequence[Tensor | None], params: list[Tensor], b: int, dtype: Any):
    """Batched gradients (b, *param.shape) per param as one (b, n) array (None: zeros)."""
    xp = backend.xp()
    cols = [
        xp.zeros((b, p.size), dtype=dtype) if h is None else h.data.reshape(b, p.size)
        for h, p in zip(block, params, strict=True)
    ]
    return xp.concatenate(cols, axis=1) if len(cols) > 1 else cols[0]


def jacobian(fn: Callable[[], Tensor], inputs: Tensor | Sequence[Tensor]):
    """The Jacobian of ``fn()`` (any shape) with respect to ``inputs``.

    Returns an array of shape ``fn().shape + (n,)`` with n the total number of
    input entries, inputs flattened in order.
    """
    inputs = _params(inputs)
    out = fn()
    m = out.size
    xp = backend.xp()
    if not out.requires_grad:  # fn() does not depend on the inputs
        return xp.zeros(out.shape + (sum(p.size for p in inputs),), dtype=out.dtype)
    eye = xp.eye(m, dtype=out.dtype).reshape((m,) + out.shape)
    block = grad(out, inputs, grad_outputs=eye, allow_unused=True, is_grads_batched=True)
    return _side_by_side(block, inputs, m, out.dtype).reshape(out.shape + (-1,))
