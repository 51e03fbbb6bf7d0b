"""The closed forms of THEORY.md, as plain functions on backend arrays.

Every function here is a formula from /work/shared/THEORY.md written out
directly (no autograd), so the property tests can hold the autograd Hessians
of :mod:`bnp.curvature` against them. Notation, as in THEORY.md:

* ``a``: a batch of layer inputs, shape (N, n); ``at = [a; 1]`` the extended
  input, shape (N, n+1) (one row per sample).
* ``mu`` (n,) the batch mean, ``S`` (n, n) the *biased* batch covariance
  (divided by N), ``var`` (n,) per-feature variances, ``D = diag(sqrt(var + eps))``.
* ``M = (1/N) sum_k at_k at_k^T`` the input moment matrix, (n+1, n+1).
* ``P`` the BNP transformation, ``theta = P theta_hat``.

Arrays may be NumPy or CuPy (the active backend); Tensors are accepted and
read through ``.data``. Scalars (bounds, condition numbers) come back as
Python floats.

    from bnp import theory
    mu, S = theory.batch_statistics(a)
    theory.condition_number(theory.moment_matrix(a), psd=True)
"""

from __future__ import annotations

import math
from typing import Any

from . import backend
from .autograd import Tensor

__all__ = [
    "batch_statistics", "extend", "moment_matrix", "moment_matrix_from_stats", "bnp_transform", "bnp_pp_t",
    "whitening_transform", "correlation_matrix", "standardize", "transformed_moment_matrix",
    "eigenvalues_symmetric", "kappa_from_eigenvalues", "condition_number", "gram_eigenvalues",
    "lambda_max_lower_bound", "lambda_min_upper_bound", "kappa_lower_bound_mean", "kappa_lower_bound_scales",
    "van_der_sluis_bound", "exact_neuron_block", "exact_layer_block", "effective_condition_number",
]


# --------------------------------------------------------------------------- input checking
def _arr(x: Any) -> Any:
    """A backend array from an array, a Tensor (its data) or Python numbers."""
    if isinstance(x, Tensor):
        return x.data
    return backend.asarray(x)


def _batch(a: Any, where: str) -> Any:
    a = _arr(a)
    if a.ndim != 2 or a.shape[0] < 1:
        raise ValueError(f"{where}: expected layer inputs of shape (N, n) with N >= 1, got {tuple(a.shape)}")
    return a


def _vector(v: Any, where: str, name: str, n: int | None = None) -> Any:
    v = _arr(v)
    if v.ndim != 1 or (n is not None and v.shape[0] != n):
        want = "(n,)" if n is None else f"({n},)"
        raise ValueError(f"{where}: expected {name} of shape {want}, got {tuple(v.shape)}")
    return v


def _square(A: Any, where: str, name: str = "matrix", n: int | None = None) -> Any:
    A = _arr(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or (n is not None and A.shape[0] != n):
        want = "square" if n is None else f"({n}, {n})"
        raise ValueError(f"{where}: expected a {want} {name}, got shape {tuple(A.shape)}")
    return A


def _inverse_scales(var: Any, eps: float, where: str) -> Any:
    """``1 / sqrt(var + eps)``, refusing zero variances (a constant feature has no scale)."""
    d2 = var + eps
    if bool((d2 <= 0).any()):
        j = int(backend.xp().argmin(d2))
        raise ValueError(
            f"{where}: var + eps must be positive, got {float(d2[j])} for feature {j} "
            "(a constant feature: pass eps > 0)"
        )
    return 1.0 / backend.xp().sqrt(d2)


# --------------------------------------------------------------------------- statistics and M
def batch_statistics(a: Any) -> tuple[Any, Any]:
    """Batch mean and BIASED covariance of layer inputs (THEORY section 1).

    ``mu = (1/N) sum_k a_k``, ``S = (1/N) sum_k (a_k - mu)(a_k - mu)^T``,
    computed by centring first (two passes), which keeps ``S`` accurate when
    ``|mu|`` is much larger than the spread.

    Shapes: a (N, n) -> mu (n,), S (n, n). N = 1 gives S = 0.
    """
    a = _batch(a, "batch_statistics")
    mu = a.mean(axis=0)
    centred = a - mu
    return mu, centred.T @ centred / a.shape[0]


def extend(a: Any) -> Any:
    """The extended inputs ``at_k = [a_k; 1]``: (N, n) -> (N, n+1)."""
    a = _batch(a, "extend")
    xp = backend.xp()
    return xp.concatenate([a, xp.ones((a.shape[0], 1), dtype=a.dtype)], axis=1)


def moment_matrix(a: Any) -> Any:
    """``M = (1/N) sum_k at_k at_k^T`` (THEORY section 1), straight from the data.

    Shapes: a (N, n) -> M (n+1, n+1). Its last row/column hold ``mu`` and 1.
    """
    at = extend(_batch(a, "moment_matrix"))
    return at.T @ at / at.shape[0]


def moment_matrix_from_stats(mu: Any, S: Any) -> Any:
    """The block form ``M = [[S + mu mu^T, mu], [mu^T, 1]]`` (THEORY section 1).

    Shapes: mu (n,), S (n, n) -> (n+1, n+1). With ``S`` replaced by
    ``diag(var)`` this is the ``Mt`` of the K-FAC link in section 2.
    """
    mu = _vector(mu, "moment_matrix_from_stats", "mu")
    n = mu.shape[0]
    S = _square(S, "moment_matrix_from_stats", "covariance S", n)
    xp = backend.xp()
    M = xp.empty((n + 1, n + 1), dtype=S.dtype)
    M[:n, :n] = S + xp.outer(mu, mu)
    M[:n, n] = mu
    M[n, :n] = mu
    M[n, n] = 1.0
    return M


# --------------------------------------------------------------------------- the BNP transform
def bnp_transform(mu: Any, var: Any, eps: float = 0.0) -> Any:
    """The dense BNP matrix ``P = [[D^-1, 0], [-mu^T D^-1, 1]]`` (THEORY section 2).

    ``D = diag(sqrt(var + eps))``. It satisfies ``P^T at = [D^-1 (a - mu); 1]``:
    the reparametrized neuron ``theta = P theta_hat`` sees standardized inputs.
    Built entry by entry from the formula, independently of any gradient code.

    Shapes: mu (n,), var (n,) -> P (n+1, n+1).
    """
    mu = _vector(mu, "bnp_transform", "mu")
    n = mu.shape[0]
    var = _vector(var, "bnp_transform", "var", n)
    d_inv = _inverse_scales(var, eps, "bnp_transform")
    xp = backend.xp()
    P = xp.zeros((n + 1, n + 1), dtype=d_inv.dtype)
    P[:n, :n] = xp.diag(d_inv)
    P[n, :n] = -mu * d_inv
    P[n, n] = 1.0
    return P


def bnp_pp_t(mu: Any, var: Any, eps: float = 0.0) -> Any:
    """``P P^T = [[D^-2, -D^-2 mu], [-mu^T D^-2, 1 + mu^T D^-2 mu]]`` (THEORY section 2).

    The preconditioner BNP applies to a neuron's gradient ``[g_w; g_b]``;
    written from the closed form (not as ``P @ P.T``), so a test can compare
    the two. It equals ``Mt^-1`` with ``Mt`` the moment matrix whose ``S`` is
    replaced by ``D^2``.

    Shapes: mu (n,), var (n,) -> (n+1, n+1).
    """
    mu = _vector(mu, "bnp_pp_t", "mu")
    n = mu.shape[0]
    var = _vector(var, "bnp_pp_t", "var", n)
    d_inv = _inverse_scales(var, eps, "bnp_pp_t")
    d_inv2 = d_inv * d_inv
    xp = backend.xp()
    Q = xp.zeros((n + 1, n + 1), dtype=d_inv.dtype)
    Q[:n, :n] = xp.diag(d_inv2)
    Q[:n, n] = -d_inv2 * mu
    Q[n, :n] = -d_inv2 * mu
    Q[n, n] = 1.0 + (mu * d_inv2 * mu).sum()
    return Q


def whitening_transform(mu: Any, S: Any, eps: float = 0.0) -> Any:
    """"Whitening" BNP: ``P_w = [[L^-T, 0], [-mu^T L^-T, 1]]`` with ``S + eps I = L L^T`` (THEORY section 2).

    The extension THEORY mentions: replacing ``D^2`` by the full covariance.
    Then ``P_w^T M P_w = I`` (for eps = 0) and ``P_w P_w^T`` is the inverse of
    M itself: the input-side K-FAC factor. Needs ``S + eps I`` positive definite.

    Shapes: mu (n,), S (n, n) -> (n+1, n+1).
    """
    mu = _vector(mu, "whitening_transform", "mu")
    n = mu.shape[0]
    S = _square(S, "whitening_transform", "covariance S", n)
    xp = backend.xp()
    try:
        L = xp.linalg.cholesky(S + eps * xp.eye(n, dtype=S.dtype))
    except Exception as exc:  # numpy raises LinAlgError; cupy may return NaNs instead
        raise ValueError(f"whitening_transform: S + eps I is not positive definite ({exc})") from exc
    A = xp.linalg.inv(L).T  # A^T S A = I
    if not bool(xp.isfinite(A).all()):
        raise ValueError("whitening_transform: S + eps I is not positive definite")
    P = xp.zeros((n + 1, n + 1), dtype=A.dtype)
    P[:n, :n] = A
    P[n, :n] = -(mu @ A)
    P[n, n] = 1.0
    return P


def correlation_matrix(S: Any) -> Any:
    """``R = D^-1 S D^-1`` with ``D = diag(sqrt(S_jj))`` (THEORY section 2, eps = 0).

    Shapes: S (n, n) -> R (n, n), unit diagonal. A zero variance is an error.
    """
    S = _square(S, "correlation_matrix", "covariance S")
    d_inv = _inverse_scales(backend.xp().diag(S), 0.0, "correlation_matrix")
    return S * d_inv[:, None] * d_inv[None, :]


def standardize(a: Any, mu: Any, var: Any, eps: float = 0.0) -> Any:
    """The inputs seen by the reparametrized layer: rows ``ah_k = [D^-1 (a_k - mu); 1]``.

    Equals ``at @ P`` (i.e. ``P^T at_k`` per sample). ``mu`` and ``var`` are
    whatever statistics BNP uses (batch or running): they are constants here.

    Shapes: a (N, n), mu (n,), var (n,) -> (N, n+1).
    """
    a = _batch(a, "standardize")
    n = a.shape[1]
    mu = _vector(mu, "standardize", "mu", n)
    var = _vector(var, "standardize", "var", n)
    return extend((a - mu) * _inverse_scales(var, eps, "standardize"))


def transformed_moment_matrix(a: Any, mu: Any = None, var: Any = None, eps: float = 0.0) -> Any:
    """``P^T M P = (1/N) sum_k ah_k ah_k^T`` (THEORY section 2), from standardized data.

    With the batch's own statistics (the default) and eps = 0 this is
    ``blockdiag(R, 1)``, R the correlation matrix. Computing it from the
    standardized data avoids the cancellation of forming ``P^T M P`` when
    ``|mu|`` is large.

    Shapes: a (N, n), mu (n,) and var (n,) or None (batch statistics) -> (n+1, n+1).
    """
    a = _batch(a, "transformed_moment_matrix")
    if mu is None or var is None:
        batch_mu, S = batch_statistics(a)
        mu = batch_mu if mu is None else mu
        var = backend.xp().diag(S) if var is None else var
    ah = standardize(a, mu, var, eps)
    return ah.T @ ah / ah.shape[0]


# --------------------------------------------------------------------------- condition numbers
def eigenvalues_symmetric(A: Any) -> Any:
    """Ascending eigenvalues of the symmetric part ``(A + A^T)/2``. Shapes: (n, n) -> (n,)."""
    A = _square(A, "eigenvalues_symmetric")
    return backend.xp().linalg.eigvalsh((A + A.T) / 2)


def kappa_from_eigenvalues(w: Any, psd: bool = False, rank_rtol: float = 1e-10) -> float:
    """A condition number from the eigenvalues ``w`` of a symmetric matrix.

    * ``psd=False``: ``max |lambda| / min |lambda|`` (``inf`` if some eigenvalue is exactly 0).
    * ``psd=True``: ``lambda_max / lambda_min+``, the smallest eigenvalue counted
      as nonzero being the smallest one above ``rank_rtol * lambda_max`` (the
      rank tolerance; eigenvalues below it are treated as rounding noise of
      zeros). The matrix must be PSD up to that tolerance: an eigenvalue
      below ``-rank_rtol * lambda_max`` raises ValueError. The zero matrix gives nan.

    Why a tolerance: a computed eigenvalue carries an absolute error of about
    ``n * 1e-16 * lambda_max`` (float64), so anything below that is
    indistinguishable from 0. ``1e-10`` leaves room for matrices that were
    themselves formed with rounding (Hessians, moment matrices).
    """
    xp = backend.xp()
    w = _arr(w)
    if w.size == 0:
        raise ValueError("kappa_from_eigenvalues: got no eigenvalues")
    if not psd:
        absw = xp.abs(w)
        smallest, largest = float(absw.min()), float(absw.max())
        if smallest == 0.0:
            return math.inf if largest > 0 else math.nan
        return largest / smallest
    lam_max = float(w.max())
    if lam_max <= 0.0:
        return math.nan
    cut = rank_rtol * lam_max
    lam_min = float(w.min())
    if lam_min < -cut:
        raise ValueError(
            f"kappa_from_eigenvalues: psd=True but the smallest eigenvalue {lam_min:.3e} is below "
            f"-rank_rtol * lambda_max = {-cut:.3e}; use psd=False for indefinite matrices"
        )
    return lam_max / float(w[w > cut].min())


def condition_number(A: Any, psd: bool = False, rank_rtol: float = 1e-10) -> float:
    """Condition number of a symmetric matrix (THEORY section 5's conventions).

    ``psd=False``: ``|lambda|_max / |lambda|_min`` (``inf`` for an exactly singular
    spectrum). ``psd=True``: ``lambda_max / lambda_min+`` with the rank decided by
    ``rank_rtol`` relative to ``lambda_max`` (see :func:`kappa_from_eigenvalues`).

    Float64 eigenvalues lose about 16 - log10(kappa) digits in ``lambda_min``: above
    ``kappa ~ 1e16`` the value is rounding noise; :func:`gram_eigenvalues` does
    better when the matrix is a Gram matrix of data.

    Shapes: A (n, n) -> float.
    """
    return kappa_from_eigenvalues(eigenvalues_symmetric(A), psd=psd, rank_rtol=rank_rtol)


def gram_eigenvalues(x: Any) -> Any:
    """Eigenvalues of ``(1/N) x^T x`` as squared singular values of ``x / sqrt(N)``.

    More accurate than ``eigvalsh`` of the formed product for ill-conditioned
    data: the error in ``lambda_min`` is about ``1e-16 * sqrt(lambda_min *
    lambda_max)`` instead of ``1e-16 * lambda_max``. With N < n the missing
    eigenvalues are exact zeros.

    Shapes: x (N, n) -> (n,), ascending. ``gram_eigenvalues(extend(a))`` is the
    spectrum of ``M``.
    """
    x = _batch(x, "gram_eigenvalues")
    xp = backend.xp()
    s = xp.linalg.svd(x / math.sqrt(x.shape[0]), compute_uv=False)
    lam = xp.zeros(x.shape[1], dtype=s.dtype)
    lam[: s.shape[0]] = s * s
    return xp.sort(lam)


# --------------------------------------------------------------------------- bounds of section 1
def lambda_max_lower_bound(mu: Any) -> float:
    """``lambda_max(M) >= 1 + |mu|^2`` (THEORY section 1: the Rayleigh quotient of ``v = [mu; 1]``).

    Shapes: mu (n,) -> float.
    """
    mu = _vector(mu, "lambda_max_lower_bound", "mu")
    return 1.0 + float((mu * mu).sum())


def _mean_direction(mu: Any) -> Any:
    """``m = mu / |mu|``; for ``mu = 0`` any unit vector works, and we take ``e_1``."""
    norm = math.sqrt(float((mu * mu).sum()))
    if norm == 0.0:
        m = backend.xp().zeros_like(mu)
        m[0] = 1.0
        return m
    return mu / norm


def lambda_min_upper_bound(mu: Any, S: Any) -> float:
    """``lambda_min(M) <= (m^T S m) / (1 + |mu|^2)``, ``m = mu/|mu|`` (THEORY section 1).

    The Rayleigh quotient of ``u = [m; -m^T mu]``. For ``mu = 0``, ``m = e_1``.
    Shapes: mu (n,), S (n, n) -> float.
    """
    mu = _vector(mu, "lambda_min_upper_bound", "mu")
    S = _square(S, "lambda_min_upper_bound", "covariance S", mu.shape[0])
    m = _mean_direction(mu)
    return float(m @ S @ m) / (1.0 + float((mu * mu).sum()))


def kappa_lower_bound_mean(mu: Any, S: Any) -> float:
    """``kappa(M) >= (1 + |mu|^2)^2 / (m^T S m)``, ``m = mu/|mu|`` (THEORY section 1).

    The ratio of the two Rayleigh-quotient bounds above: the condition number
    of the moment matrix grows like ``|mu|^4`` for a fixed spread. Returns
    ``inf`` when ``m^T S m = 0`` (M is then singular). For ``mu = 0``, ``m = e_1``.

    Shapes: mu (n,), S (n, n) -> float.
    """
    mu = _vector(mu, "kappa_lower_bound_mean", "mu")
    S = _square(S, "kappa_lower_bound_mean", "covariance S", mu.shape[0])
    m = _mean_direction(mu)
    spread = float(m @ S @ m)
    top = (1.0 + float((mu * mu).sum())) ** 2
    return math.inf if spread <= 0.0 else top / spread


def kappa_lower_bound_scales(S: Any) -> float:
    """``kappa(M) >= kappa(S) >= max_j S_jj / min_j S_jj`` (THEORY section 1).

    The spread of feature scales alone makes M ill-conditioned. Returns ``inf``
    if some variance is 0. Shapes: S (n, n) -> float.
    """
    S = _square(S, "kappa_lower_bound_scales", "covariance S")
    d = backend.xp().diag(S)
    smallest = float(d.min())
    return math.inf if smallest <= 0.0 else float(d.max()) / smallest


def van_der_sluis_bound(S: Any, e: Any) -> float:
    """``kappa(R) <= n kappa(E S E)`` for any positive diagonal ``E = diag(e)`` (THEORY section 2).

    Van der Sluis (1969): scaling to unit diagonal (Jacobi) is within a factor
    n of the best diagonal scaling. This returns the right-hand side
    ``n * kappa(E S E)`` (``|lambda|_max/|lambda|_min``). Note that ``kappa(R) <=
    kappa(S)`` itself can FAIL (see the tests for a 3x3 example).

    Shapes: S (n, n), e (n,) positive -> float.
    """
    S = _square(S, "van_der_sluis_bound", "covariance S")
    n = S.shape[0]
    e = _vector(e, "van_der_sluis_bound", "e (the diagonal of E)", n)
    if bool((e <= 0).any()):
        raise ValueError("van_der_sluis_bound: the diagonal scaling e must be positive")
    return n * condition_number(S * e[:, None] * e[None, :])


# --------------------------------------------------------------------------- exact Hessian blocks
def exact_neuron_block(a: Any, c: Any) -> Any:
    """``d2L/dtheta_i^2 = (1/N) sum_k c_k at_k at_k^T`` (THEORY section 1, exact for any layer).

    ``theta_i = [w_i; b_i]`` is neuron i's row of ``[W | b]``, ``c_k = d2 l_k / d h_ki^2``
    the curvature of the per-sample loss in that neuron's pre-activation, and
    ``L = (1/N) sum_k l_k``. Exact because ``h_ki`` is linear in ``theta_i``.

    Shapes: a (N, n), c (N,) -> (n+1, n+1).
    """
    at = extend(_batch(a, "exact_neuron_block"))
    c = _vector(c, "exact_neuron_block", "c", at.shape[0])
    return at.T @ (c[:, None] * at) / at.shape[0]


def exact_layer_block(a: Any, C: Any) -> Any:
    """``d2L/dtheta^2 = (1/N) sum_k C_k (x) at_k at_k^T`` for a whole layer (THEORY section 1).

    ``C_k = d2 l_k / dh_k dh_k^T`` is the (out, out) Hessian of sample k's loss
    in the layer's pre-activations. ``theta`` is neuron-major: for each neuron
    i, its n weights then its bias (``vec`` of the rows of ``[W | b]``), which
    is the ordering of the Kronecker product and of
    :func:`bnp.curvature.layer_block`.

    Shapes: a (N, n), C (N, out, out) -> (out*(n+1), out*(n+1)).
    """
    at = extend(_batch(a, "exact_layer_block"))
    C = _arr(C)
    N, n1 = at.shape
    if C.ndim != 3 or C.shape[0] != N or C.shape[1] != C.shape[2]:
        raise ValueError(f"exact_layer_block: expected C of shape ({N}, out, out), got {tuple(C.shape)}")
    out = C.shape[1]
    block = backend.xp().einsum("kij,kp,kq->ipjq", C, at, at) / N
    return block.reshape(out * n1, out * n1)


def effective_condition_number(
    H: Any, directions: Any, psd: bool = True, rank_rtol: float = 1e-10
) -> float:
    """``lambda_max / lambda_min+`` of ``H`` restricted to the complement of ``directions``.

    For weights ``w`` feeding a BN layer (eps = 0) the loss is scale invariant,
    ``H(w) w = -grad`` and, at a minimum, ``w`` spans a null direction of ``H``
    (THEORY section 3). The curvature that matters for convergence lives on
    the orthogonal complement of ``w`` *(paper, recalled)*. With ``Q`` an
    orthonormal basis of that complement this returns the condition number of
    ``Q^T H Q`` (PSD convention by default, see :func:`kappa_from_eigenvalues`;
    ``psd=False`` gives ``|lambda|_max / |lambda|_min`` for indefinite H).

    Shapes: H (n, n); directions (n,) or (k, n), the vectors to project out
    (for a BN layer's whole weight, one row per neuron, each zero outside its
    block) -> float. Invariant under ``w -> c w``, since ``H(c w) = H(w) / c^2``.
    """
    H = _square(H, "effective_condition_number", "Hessian H")
    n = H.shape[0]
    V = _arr(directions)
    V = V.reshape(1, -1) if V.ndim == 1 else V
    if V.ndim != 2 or V.shape[1] != n:
        raise ValueError(f"effective_condition_number: expected directions of shape ({n},) or (k, {n}), "
                         f"got {tuple(_arr(directions).shape)}")
    xp = backend.xp()
    _, s, vt = xp.linalg.svd(V, full_matrices=True)
    rank = int((s > s.max() * 1e-12).sum()) if s.size and float(s.max()) > 0 else 0
    if rank == n:
        raise ValueError("effective_condition_number: the directions span the whole space; nothing is left")
    Q = vt[rank:].T  # (n, n - rank): orthonormal basis of the complement
    return condition_number(Q.T @ H @ Q, psd=psd, rank_rtol=rank_rtol)
