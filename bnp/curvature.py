"""Hessians of small networks, their per-layer blocks, spectra and condition numbers.

(Named ``curvature`` because ``bnp.hessian`` is already the dense-Hessian function.)

Every function takes a ``loss_fn``: a zero-argument closure returning a scalar
Tensor built from the parameters. **Which statistics are in the graph is up to
that closure**, and it changes the Hessian:

* a network with BN in training mode normalizes with *batch* statistics, which
  are functions of the weights; they are differentiated through (the Hessian
  of the loss BN actually trains on);
* in eval mode BN uses its running statistics, which are constants;
* BNP keeps its statistics in the optimizer, never in the loss, so they never
  enter a Hessian: the Hessian is that of the plain network.

Parameter ordering: :func:`dense_hessian` flattens ``params`` in order, each
row-major (C order). :func:`layer_block` reorders one layer neuron-major, for
each neuron i its n weights then its bias, which is the ordering of THEORY's
Kronecker form (:func:`bnp.theory.exact_layer_block`).

Matrix-free tools (:func:`lanczos`, :func:`hutchinson_trace`) take a function
``hvp_fn(v) -> H v`` on flat vectors; :func:`flat_hvp` makes one from a loss.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

from . import backend
from .autograd import Tensor, grad, hessian, hvp
from .autograd.shapes import concatenate, reshape
from .theory import eigenvalues_symmetric, kappa_from_eigenvalues

__all__ = [
    "dense_hessian", "layer_permutation", "layer_block", "neuron_block", "flat_hvp", "eigenvalues", "lanczos",
    "hutchinson_trace", "TraceEstimate", "condition_numbers", "ConditionNumbers",
]

LossFn = Callable[[], Tensor]


def dense_hessian(loss_fn: LossFn, params: Tensor | Sequence[Tensor], chunk_size: int | None = None) -> Any:
    """The dense Hessian of ``loss_fn()`` over ``params`` (a thin wrapper of :func:`bnp.hessian`).

    Ordering: the params in the order given, each flattened row-major; for a
    Linear layer ``[weight (out, n), bias (out,)]`` that is all weights row by
    row, then all biases. Whatever ``loss_fn`` computes (batch or running
    statistics, see the module docstring) is what is differentiated.

    Returns an (n, n) backend array, n the total number of entries.
    """
    return hessian(loss_fn, params, chunk_size=chunk_size)


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

    Costs n+1 Hessian rows (one batched backward pass), not the whole layer.
    The statistics in the graph are whatever ``loss_fn`` uses (batch statistics
    for BN in training mode, running ones in eval mode).

    Shapes: weight (out, n) (or conv (out, C, kh, kw)), bias (out,) or None ->
    (n+1, n+1) (or (n, n) without a bias).
    """
    params, out, n = _layer_params(weight, bias, "neuron_block")
    if not 0 <= i < out:
        raise ValueError(f"neuron_block: neuron index {i} out of range for a layer of {out} neurons")
    xp = backend.xp()
    m = n + (bias is not None)
    loss = loss_fn()
    grads = grad(loss, params, create_graph=True, allow_unused=True)
    if grads[0] is None:
        return xp.zeros((m, m), dtype=weight.dtype)
    parts = [reshape(grads[0][i], (n,))]
    if bias is not None:
        gb = grads[1] if grads[1] is not None else Tensor(xp.zeros(out, dtype=weight.dtype))
        parts.append(reshape(gb[i], (1,)))
    row = concatenate(parts) if len(parts) > 1 else parts[0]
    if not row.requires_grad:  # the gradient does not depend on the parameters: zero curvature
        return xp.zeros((m, m), dtype=weight.dtype)
    eye = xp.eye(m, dtype=row.dtype)
    second = grad(row, params, grad_outputs=eye, allow_unused=True, is_grads_batched=True)
    hw = xp.zeros((m, n), dtype=row.dtype) if second[0] is None else second[0].data.reshape(m, out, n)[:, i, :]
    if bias is None:
        return hw
    hb = xp.zeros(m, dtype=row.dtype) if second[1] is None else second[1].data[:, i]
    return xp.concatenate([hw, hb[:, None]], axis=1)


def flat_hvp(loss_fn: LossFn, params: Tensor | Sequence[Tensor]) -> Callable[[Any], Any]:
    """``v -> H v`` on flat vectors (ordering of :func:`dense_hessian`), for the matrix-free tools.

    Each call runs one forward and a double backward pass (:func:`bnp.hvp`).
    """
    params = [params] if isinstance(params, Tensor) else list(params)
    sizes = [p.size for p in params]
    xp = backend.xp()

    def apply(v: Any) -> Any:
        v = backend.asarray(v)
        pieces, start = [], 0
        for p, size in zip(params, sizes):
            pieces.append(v[start : start + size].reshape(p.shape).astype(p.dtype))
            start += size
        return xp.concatenate([h.data.reshape(-1) for h in hvp(loss_fn, params, pieces)])

    return apply


def eigenvalues(H: Any) -> Any:
    """Ascending eigenvalues of the symmetric part of ``H``. Shapes: (n, n) -> (n,).

    Symmetrizing removes the rounding asymmetry of an autograd Hessian.
    """
    return eigenvalues_symmetric(H)


def lanczos(hvp_fn: Callable[[Any], Any], n: int, k: int, seed: int = 0) -> Any:
    """Ritz values of ``H`` from k Lanczos steps, with full reorthogonalization.

    Matrix-free: only ``hvp_fn(v) -> H v`` on flat (n,) vectors is needed. The
    extreme Ritz values converge first: ``ritz[0]`` estimates ``lambda_min`` from
    above and ``ritz[-1]`` estimates ``lambda_max`` from below (Cauchy interlacing).
    Every new Lanczos vector is orthogonalized against all previous ones (twice),
    which stops the spurious copies of converged eigenvalues that plain Lanczos
    produces in floating point. With ``k = n`` the Ritz values are all the
    eigenvalues (up to rounding). Stops early if the Krylov space is invariant.

    Args:
        hvp_fn: (n,) backend array -> (n,) backend array, symmetric linear map.
        n: the dimension; k: number of steps (1 <= k <= n); seed: start vector.

    Returns:
        the Ritz values, ascending, shape (m,) with m <= k the steps taken.
    """
    if not 1 <= k <= n:
        raise ValueError(f"lanczos: need 1 <= k <= n, got k={k}, n={n}")
    xp = backend.xp()
    q = xp.random.RandomState(seed).standard_normal(n).astype(backend.get_default_dtype())
    q = q / xp.linalg.norm(q)
    basis = xp.zeros((k, n), dtype=q.dtype)
    alphas, betas = [], []
    scale = 0.0
    for j in range(k):
        basis[j] = q
        w = backend.asarray(hvp_fn(q)).reshape(n).astype(q.dtype)
        alpha = float(q @ w)
        alphas.append(alpha)
        scale = max(scale, abs(alpha), float(xp.linalg.norm(w)))
        for _ in range(2):  # "twice is enough" (Kahan-Parlett)
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(xp.linalg.norm(w))
        if j == k - 1 or beta <= n * 1e-14 * scale:
            break  # done, or the Krylov space is invariant: the Ritz values are exact eigenvalues
        betas.append(beta)
        q = w / beta
    m = len(alphas)
    T = xp.diag(xp.asarray(alphas, dtype=q.dtype))
    if m > 1:
        off = xp.asarray(betas[: m - 1], dtype=q.dtype)
        T = T + xp.diag(off, 1) + xp.diag(off, -1)
    return xp.linalg.eigvalsh(T)


class TraceEstimate(NamedTuple):
    """Hutchinson's estimate: ``mean`` of ``v^T H v`` over samples and its standard error."""

    mean: float
    stderr: float
    samples: int


def hutchinson_trace(hvp_fn: Callable[[Any], Any], n: int, samples: int, seed: int = 0) -> TraceEstimate:
    """Unbiased estimate of ``trace(H)`` as the average of ``v^T H v``, v Rademacher (+-1 entries).

    ``E[v v^T] = I`` makes each term unbiased; Rademacher vectors have the
    smallest variance among such distributions, ``2 sum_{i != j} H_ij^2`` per
    sample (exact for a diagonal H). ``stderr`` is the sample standard
    deviation over ``sqrt(samples)`` (0 for a single sample).

    Args:
        hvp_fn: (n,) -> (n,) backend arrays; n: dimension; samples >= 1; seed.
    """
    if samples < 1:
        raise ValueError(f"hutchinson_trace: need samples >= 1, got {samples}")
    xp = backend.xp()
    rng = xp.random.RandomState(seed)
    values = []
    for _ in range(samples):
        v = (2 * rng.randint(0, 2, size=n) - 1).astype(backend.get_default_dtype())
        values.append(float(v @ backend.asarray(hvp_fn(v)).reshape(n)))
    mean = sum(values) / samples
    if samples == 1:
        return TraceEstimate(mean, 0.0, 1)
    var = sum((x - mean) ** 2 for x in values) / (samples - 1)
    return TraceEstimate(mean, math.sqrt(var / samples), samples)


class ConditionNumbers(NamedTuple):
    """Both conventions of THEORY section 5, with what they were computed from.

    kappa_abs: ``|lambda|_max / |lambda|_min`` (inf if an eigenvalue is exactly 0).
    kappa_psd: ``lambda_max / lambda_min+`` over the eigenvalues above
        ``rank_rtol * lambda_max``; nan when the matrix is not PSD within that tolerance.
    rank: number of eigenvalues above ``rank_rtol * lambda_max`` in absolute value.
    """

    kappa_abs: float
    kappa_psd: float
    rank: int
    lambda_min: float
    lambda_max: float
    is_psd: bool
    rank_rtol: float


def condition_numbers(H: Any, rank_rtol: float = 1e-10) -> ConditionNumbers:
    """Condition numbers of a symmetric (Hessian) matrix in both conventions.

    ``is_psd`` is decided with the same tolerance: no eigenvalue below
    ``-rank_rtol * max|lambda|``. The tolerance is explicit because an autograd
    Hessian's eigenvalues carry an absolute error of roughly ``n * 1e-16 *
    max|lambda|`` in float64: below that a zero and a tiny eigenvalue look alike.

    Shapes: H (n, n) -> ConditionNumbers.
    """
    w = eigenvalues(H)
    xp = backend.xp()
    top = float(xp.abs(w).max())
    cut = rank_rtol * top
    is_psd = float(w.min()) >= -cut
    return ConditionNumbers(
        kappa_abs=kappa_from_eigenvalues(w, psd=False),
        kappa_psd=kappa_from_eigenvalues(w, psd=True, rank_rtol=rank_rtol) if is_psd else math.nan,
        rank=int((xp.abs(w) > cut).sum()),
        lambda_min=float(w.min()),
        lambda_max=float(w.max()),
        is_psd=is_psd,
        rank_rtol=rank_rtol,
    )
