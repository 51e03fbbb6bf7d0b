"""Second-order tools as functions: Hessian-vector products, dense Hessians, Jacobians.

All of them are reverse over reverse: one backward pass with
``create_graph=True`` records the gradient as a graph, and a second backward
pass over that graph gives products with the Hessian. ``hessian`` feeds the
whole identity matrix through the second pass at once (a batched upstream
gradient), so an n-parameter Hessian costs one pass over arrays n times wider,
not n passes.

All three return backend arrays (``hvp`` a list of them, shaped like the
params), not Tensors: they are results of differentiation, not nodes of a
graph to differentiate further (as in JAX's ``hessian`` / ``jvp``). All three
check their input alike: params that require grad, a one-element loss, vectors
of the params' shapes.

Only training changes training state: all three run the function they are
given inside :class:`bnp.frozen_statistics`, so a model in training mode is
differentiated through the batch statistics its BN/FN layers compute, but no
running statistic, buffer or counter (BN, FN, BNP) moves.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .. import backend
from ..statistics_mode import frozen_statistics
from .graph import grad
from .shapes import concatenate, reshape
from .tensor import Tensor


def _params(params: Tensor | Sequence[Tensor], where: str, name: str = "params") -> list[Tensor]:
    params = [params] if isinstance(params, Tensor) else list(params)
    if not params:
        raise ValueError(f"{where}: expected at least one Tensor in {name}, got none")
    for k, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise ValueError(f"{where}: expected {name}[{k}] to be a Tensor, got {type(p).__name__}")
        if not p.requires_grad:
            raise ValueError(f"{where}: {name}[{k}] (shape {p.shape}) does not require grad")
    return params


def _scalar_loss(loss_fn: Callable[[], Tensor], where: str) -> Tensor:
    with frozen_statistics():
        loss = loss_fn()
    if not isinstance(loss, Tensor) or loss.size != 1:
        shape = getattr(loss, "shape", type(loss).__name__)
        raise ValueError(f"{where}: loss_fn must return a one-element Tensor, got {shape}")
    return loss


def _vectors(vectors: Any, params: list[Tensor], where: str) -> list[Any]:
    """One backend array per param, each of the param's shape."""
    vectors = [vectors] if isinstance(vectors, Tensor) or backend.is_array(vectors) else list(vectors)
    if len(vectors) != len(params):
        raise ValueError(f"{where}: got {len(vectors)} vectors for {len(params)} params")
    arrays = []
    for k, (v, p) in enumerate(zip(vectors, params, strict=True)):
        v = v.data if isinstance(v, Tensor) else backend.asarray(v)
        if v.shape != p.shape:
            raise ValueError(f"{where}: expected vectors[{k}] of the shape of params[{k}], {p.shape}, got {v.shape}")
        arrays.append(v)
    return arrays


def _flat_gradient(loss_fn: Callable[[], Tensor], params: list[Tensor], where: str) -> Tensor:
    grads = grad(_scalar_loss(loss_fn, where), params, create_graph=True, allow_unused=True)
    parts = [
        reshape(g, (-1,)) if g is not None else Tensor(backend.xp().zeros(p.size, dtype=p.dtype))
        for g, p in zip(grads, params, strict=True)
    ]
    return concatenate(parts) if len(parts) > 1 else parts[0]


def hvp(loss_fn: Callable[[], Tensor], params: Tensor | Sequence[Tensor], vectors: Any) -> list[Any]:
    """Hessian-vector product ``H v`` without forming ``H``.

    Args:
        loss_fn: takes no arguments, returns a one-element Tensor built from ``params``.
        params: tensors that require grad (a subset of the leaves is fine).
        vectors: one array or Tensor per param, of the param's shape (a single
            one for a single param).

    Returns:
        a list of backend arrays (not Tensors), one per param and of its shape:
        the blocks of ``H v``. Like :func:`hessian` and :func:`jacobian`, the
        result of differentiation is a value, not a node of a graph (as in
        JAX): nothing is recorded to differentiate it further.
    """
    params = _params(params, "hvp")
    vectors = _vectors(vectors, params, "hvp")
    xp = backend.xp()
    grads = grad(_scalar_loss(loss_fn, "hvp"), params, create_graph=True, allow_unused=True)
    # A gradient with no graph is constant in params: its block of H is zero.
    used = [(g, v) for g, v in zip(grads, vectors, strict=True) if g is not None and g.requires_grad]
    if not used:
        return [xp.zeros_like(p.data) for p in params]
    out = grad([g for g, _ in used], params, grad_outputs=[v for _, v in used], allow_unused=True)
    return [xp.zeros_like(p.data) if h is None else h.data for h, p in zip(out, params, strict=True)]


def hessian(
    loss_fn: Callable[[], Tensor],
    params: Tensor | Sequence[Tensor],
    chunk_size: int | None = None,
    rows: Any = None,
) -> Any:
    """The dense Hessian of ``loss_fn()`` over ``params`` flattened in order (or some of its rows).

    Args:
        loss_fn: takes no arguments, returns a one-element Tensor built from ``params``
            (a closure, e.g. over a model and a batch). Whatever statistics the
            loss computes inside (BN batch statistics, say) are differentiated.
        params: tensors that require grad; a subset of the leaves is fine.
        chunk_size: how many Hessian rows to compute per backward pass
            (default: all at once; smaller values bound the memory).
        rows: indices (m,) of the rows to compute, in the flattened order
            (default: all n). Each row costs one column of the batched second pass.

    Returns:
        an (n, n) backend array (or (m, n) for ``rows``), n the total number of
        entries of ``params``: a value, not a Tensor (see :func:`hvp`).
    """
    params = _params(params, "hessian")
    flat = _flat_gradient(loss_fn, params, "hessian")
    n = flat.size
    xp = backend.xp()
    seeds = xp.eye(n, dtype=flat.dtype)
    if rows is not None:
        index = backend.asarray(rows).reshape(-1)
        if index.size == 0 or index.dtype.kind not in "iu" or int(index.min()) < 0 or int(index.max()) >= n:
            raise ValueError(f"hessian: expected rows as a non-empty array of integer indices in [0, {n}), "
                             f"got {backend.to_numpy(index).tolist()}")
        seeds = seeds[index]
    m = seeds.shape[0]
    if not flat.requires_grad:  # the gradient is constant: the loss is at most linear in params
        return xp.zeros((m, n), dtype=flat.dtype)
    step = m if chunk_size is None else max(1, int(chunk_size))
    blocks = []
    for start in range(0, m, step):
        block = grad(
            flat,
            params,
            grad_outputs=seeds[start : start + step],
            retain_graph=start + step < m,
            allow_unused=True,
            is_grads_batched=True,
        )
        blocks.append(_side_by_side(block, params, min(step, m - start), flat.dtype))
    return xp.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]


def _side_by_side(block: Sequence[Tensor | None], params: list[Tensor], b: int, dtype: Any):
    """Batched gradients (b, *param.shape) per param as one (b, n) array (None: zeros)."""
    xp = backend.xp()
    cols = [
        xp.zeros((b, p.size), dtype=dtype) if h is None else h.data.reshape(b, p.size)
        for h, p in zip(block, params, strict=True)
    ]
    return xp.concatenate(cols, axis=1) if len(cols) > 1 else cols[0]


def jacobian(fn: Callable[[], Tensor], inputs: Tensor | Sequence[Tensor]) -> Any:
    """The Jacobian of ``fn()`` (a Tensor of any shape) with respect to ``inputs``.

    Args:
        fn: takes no arguments, returns a Tensor built from ``inputs``.
        inputs: tensors that require grad, flattened in order.

    Returns:
        a backend array (not a Tensor; see :func:`hvp`) of shape
        ``fn().shape + (n,)``, n the total number of input entries.
    """
    inputs = _params(inputs, "jacobian", "inputs")
    with frozen_statistics():
        out = fn()
    if not isinstance(out, Tensor):
        raise ValueError(f"jacobian: fn must return a Tensor, got {type(out).__name__}")
    m = out.size
    xp = backend.xp()
    if not out.requires_grad:  # fn() does not depend on the inputs
        return xp.zeros(out.shape + (sum(p.size for p in inputs),), dtype=out.dtype)
    eye = xp.eye(m, dtype=out.dtype).reshape((m,) + out.shape)
    block = grad(out, inputs, grad_outputs=eye, allow_unused=True, is_grads_batched=True)
    return _side_by_side(block, inputs, m, out.dtype).reshape(out.shape + (-1,))
