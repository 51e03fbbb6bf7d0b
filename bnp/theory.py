"""The closed forms of THEORY.md, as plain functions on backend arrays.

Every function here is a formula from the repository's docs/THEORY.md written
out directly (no autograd), so the property tests can hold the autograd
Hessians of :mod:`bnp.curvature` against them. Eigenvalues and condition
numbers live in :mod:`bnp.spectra`. Notation, as in THEORY.md:

* ``a``: a batch of layer inputs, shape (N, n); ``at = [a; 1]`` the extended
  input, shape (N, n+1) (one row per sample).
* ``mu`` (n,) the batch mean, ``S`` (n, n) the *biased* batch covariance
  (divided by N), ``var`` (n,) per-feature variances, ``D = diag(sqrt(var + eps))``.
* ``M = (1/N) sum_k at_k at_k^T`` the input moment matrix, (n+1, n+1).
* ``P`` the BNP transformation, ``theta = P theta_hat``.

Arrays may be NumPy or CuPy (the active backend); Tensors are accepted and
read through ``.data``. Scalars (bounds) come back as Python floats.

    from bnp import spectra, theory
    mu, S = theory.batch_statistics(a)
    spectra.condition_number(theory.moment_matrix(a), psd=True)
"""

from __future__ import annotations

import math
from typing import Any

from . import backend
from .spectra import _arr, _square, condition_number

__all__ = [
    "batch_statistics", "extend", "moment_matrix", "moment_matrix_from_stats", "bnp_transform", "bnp_pp_t",
    "whitening_transform", "correlation_matrix", "standardize", "transformed_moment_matrix",
    "lambda_max_lower_bound", "lambda_min_upper_bound", "kappa_lower_bound_mean", "kappa_lower_bound_scales",
    "van_der_sluis_bound", "exact_neuron_block", "exact_layer_block",
]


# --------------------------------------------------------------------------- input checking
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
