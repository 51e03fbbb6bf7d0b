"""Hessian blocks of small networks: a layer's, a neuron's, and ``H v`` on flat vectors.

(Named ``curvature`` because ``bnp.hessian`` is already the dense-Hessian function.)
Everything here is built on :func:`bnp.hessian` and :func:`bnp.hvp`; the
spectra and condition numbers of these blocks are :mod:`bnp.spectra`'s.

Every function takes a ``loss_fn``: a zero-argument closure returning a scalar
Tensor built from the parameters. **Which statistics are in the graph is up to
that closure**, and it changes the Hessian:

* a network with BN in training mode normalizes with *batch* statistics, which
  are functions of the weights; they are differentiated through (the Hessian
  of the loss BN actually trains on);
* in eval mode BN uses its running statistics, which are constants;
* BNP keeps its statistics in the optimizer, never in the loss, so they never
  enter a Hessian: the Hessian is that of the plain network.

Whatever the mode, these tools (through :func:`bnp.hessian` and
:func:`bnp.hvp`) run ``loss_fn`` inside :class:`bnp.frozen_statistics`: no
running statistic, buffer or counter of BN, FN or BNP changes.

Parameter ordering: :func:`bnp.hessian` flattens ``params`` in order, each
row-major (C order): for a Linear layer ``[weight (out, n), bias (out,)]``
that is all weights row by row, then all biases. :func:`layer_block` reorders
one layer neuron-major, for each neuron i its n weights then its bias, which
is the ordering of THEORY's Kronecker form (:func:`bnp.theory.exact_layer_block`).

:func:`flat_hvp` turns a loss into the ``hvp_fn(v) -> H v`` on flat vectors
that :func:`bnp.spectra.lanczos` and :func:`bnp.spectra.hutchinson_trace` take.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from . import backend
from .autograd import Tensor, hessian, hvp

__all__ = ["layer_permutation", "layer_block", "neuron_block", "flat_hvp"]

LossFn = Callable[[], Tensor]


def _layer_params(weight: Tensor, bias: Tensor | None, where: str) -> tuple[list[Tensor], int, int]:
    if not isinstance(weight, Tensor) or weight.ndim < 2:
        raise ValueError(f"{where}: expected a weight Tensor of shape (out, n) or (out, C, kh, kw), "
                         f"got {getattr(weight, 'shape', type(weight).__name__)}")
    out = weight.shape[0]
    n = weight.size // out
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (out,)):
        raise ValueError(f"{where}: expected a bias of shape ({out},) for weight {weight.shape}, "
                         f"got {getattr(bias, 'shape', type(bias).__name__)}")
    return ([weight] if bias is None else [weight, bias]), out, n


def layer_permutation(out: int, n: int, has_bias: bool = True) -> Any:
    """Index array taking ``[vec(W) row-major, b]`` order to neuron-major ``[w_1; b_1; w_2; b_2; ...]``.

    ``H_theta = H[perm][:, perm]``. Shapes -> (out * (n + has_bias),) integers.
    """
    xp = backend.xp()
    weights = xp.arange(out * n).reshape(out, n)
    if not has_bias:
        return weights.reshape(-1)
    biases = out * n + xp.arange(out).reshape(out, 1)
    return xp.concatenate([weights, biases], axis=1).reshape(-1)


def layer_block(loss_fn: LossFn, weight: Tensor, bias: Tensor | None = None, chunk_size: int | None = None) -> Any:
    """The Hessian block of one layer over ``theta = vec`` of the rows ``[w_i; b_i]``.

    Neuron-major: index ``i*(n+1) + j`` is weight j of neuron i, ``i*(n+1) + n``
    its bias (without a bias: ``i*n + j``). This matches THEORY's Kronecker form
    ``(1/N) sum_k C_k (x) at_k at_k^T`` (:func:`bnp.theory.exact_layer_block`).
    Conv weights (out, C, kh, kw) are treated as (out, C*kh*kw) rows. The other
    parameters of the network are held fixed; the statistics in the graph are
    whatever ``loss_fn`` uses (batch statistics for BN in training mode).

    Returns an (out*(n+1), out*(n+1)) backend array.
    """
    params, out, n = _layer_params(weight, bias, "layer_block")
    H = hessian(loss_fn, params, chunk_size=chunk_size)
    perm = layer_permutation(out, n, bias is not None)
    return H[perm][:, perm]


def neuron_block(loss_fn: LossFn, weight: Tensor, bias: Tensor | None, i: int) -> Any:
    """The Hessian over one neuron's ``theta_i = [w_i; b_i]`` (THEORY section 1).

    Costs n+1 Hessian rows (``bnp.hessian(..., rows=...)``, one batched
    backward pass), not the whole layer. The statistics in the graph are
    whatever ``loss_fn`` uses (batch statistics for BN in training mode,
    running ones in eval mode).

    Shapes: weight (out, n) (or conv (out, C, kh, kw)), bias (out,) or None ->
    (n+1, n+1) (or (n, n) without a bias).
    """
    params, out, n = _layer_params(weight, bias, "neuron_block")
    if not 0 <= i < out:
        raise ValueError(f"neuron_block: neuron index {i} out of range for a layer of {out} neurons")
    m = n + (bias is not None)
    index = layer_permutation(out, n, bias is not None)[i * m : (i + 1) * m]  # neuron i's entries
    return hessian(loss_fn, params, rows=index)[:, index]


def flat_hvp(loss_fn: LossFn, params: Tensor | Sequence[Tensor]) -> Callable[[Any], Any]:
    """``v -> H v`` on flat vectors (ordering of :func:`bnp.hessian`), for the matrix-free tools.

    Each call runs one forward and a double backward pass (:func:`bnp.hvp`).
    Shapes: v (n,) -> (n,) backend array, n the total number of entries of ``params``.
    """
    params = [params] if isinstance(params, Tensor) else list(params)
    sizes = [p.size for p in params]
    total = sum(sizes)
    xp = backend.xp()

    def apply(v: Any) -> Any:
        v = backend.asarray(v)
        if v.shape != (total,):
            raise ValueError(f"flat_hvp: expected a flat vector of shape ({total},) (all params), got {v.shape}")
        pieces, start = [], 0
        for p, size in zip(params, sizes):
            pieces.append(v[start : start + size].reshape(p.shape).astype(p.dtype))
            start += size
        return xp.concatenate([h.reshape(-1) for h in hvp(loss_fn, params, pieces)])

    return apply
