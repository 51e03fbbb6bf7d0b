"""Numerical spectra: eigenvalues, condition numbers, Lanczos and Hutchinson, on backend arrays.

The one home of the linear algebra the project runs on its matrices (Hessian
blocks, moment matrices, covariances); :mod:`bnp.theory` holds the closed
forms and :mod:`bnp.curvature` builds the Hessian blocks these are applied to.

A condition number is a :class:`ConditionNumber`: a ``float`` (so it compares
and formats like one) that also keeps the eigenvalues it came from, so a
caller that needs the spectrum, the rank, the other convention or a flag for
indefiniteness never decomposes the matrix again. The two conventions (THEORY
section 5):

* ``"psd"``: ``lambda_max / lambda_min+``, ``lambda_min+`` the smallest eigenvalue
  above ``rank_rtol * lambda_max`` (the positive part, up to rounding);
* ``"abs"``: ``|lambda|_max / |lambda|_min`` over all eigenvalues (``inf`` for an
  exactly singular spectrum); :meth:`ConditionNumber.on_range` restricts it to
  the eigenvalues above the rank tolerance, ``|lambda|_max / |lambda|_min+``.

Matrix-free tools (:func:`lanczos`, :func:`hutchinson_trace`) take a function
``hvp_fn(v) -> H v`` on flat vectors (:func:`bnp.curvature.flat_hvp` makes one
from a loss).

    from bnp import spectra
    k = spectra.condition_number(M, psd=True)   # a float ...
    k.eigenvalues, k.rank, k.indefinite          # ... from one eigendecomposition
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

from . import backend
from .autograd import Tensor

__all__ = [
    "eigenvalues", "ConditionNumber", "kappa_from_eigenvalues", "condition_number", "gram_eigenvalues",
    "effective_condition_number", "lanczos", "hutchinson_trace", "TraceEstimate",
]

CONVENTIONS = ("psd", "abs")


# --------------------------------------------------------------------------- input checking (shared with theory)
def _arr(x: Any) -> Any:
    """A backend array from an array, a Tensor (its data) or Python numbers."""
    if isinstance(x, Tensor):
        return x.data
    return backend.asarray(x)


def _square(A: Any, where: str, name: str = "matrix", n: int | None = None) -> Any:
    A = _arr(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or (n is not None and A.shape[0] != n):
        want = "square" if n is None else f"({n}, {n})"
        raise ValueError(f"{where}: expected a {want} {name}, got shape {tuple(A.shape)}")
    return A


# --------------------------------------------------------------------------- eigenvalues
def eigenvalues(A: Any) -> Any:
    """Ascending eigenvalues of the symmetric part ``(A + A^T)/2``. Shapes: (n, n) -> (n,).

    Symmetrizing removes the rounding asymmetry of an autograd Hessian.
    """
    A = _square(A, "eigenvalues")
    return backend.xp().linalg.eigvalsh((A + A.T) / 2)


def gram_eigenvalues(x: Any) -> Any:
    """Eigenvalues of ``(1/N) x^T x`` as squared singular values of ``x / sqrt(N)``.

    More accurate than ``eigvalsh`` of the formed product for ill-conditioned
    data: the error in ``lambda_min`` is about ``1e-16 * sqrt(lambda_min *
    lambda_max)`` instead of ``1e-16 * lambda_max``. With N < n the missing
    eigenvalues are exact zeros.

    Shapes: x (N, n) -> (n,), ascending. ``gram_eigenvalues(theory.extend(a))``
    is the spectrum of the moment matrix ``M``.
    """
    x = _arr(x)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"gram_eigenvalues: expected layer inputs of shape (N, n) with N >= 1, got {tuple(x.shape)}")
    xp = backend.xp()
    s = xp.linalg.svd(x / math.sqrt(x.shape[0]), compute_uv=False)
    lam = xp.zeros(x.shape[1], dtype=s.dtype)
    lam[: s.shape[0]] = s * s
    return xp.sort(lam)


# --------------------------------------------------------------------------- condition numbers
def _kappa_abs(w: Any) -> float:
    absw = backend.xp().abs(w)
    smallest, largest = float(absw.min()), float(absw.max())
    if smallest == 0.0:
        return math.inf if largest > 0 else math.nan
    return largest / smallest


def _kappa_psd(w: Any, rank_rtol: float, where: str) -> float:
    lam_max = float(w.max())
    if lam_max <= 0.0:
        return math.nan
    cut = rank_rtol * lam_max
    lam_min = float(w.min())
    if lam_min < -cut:
        raise ValueError(
            f"{where}: psd=True but the smallest eigenvalue {lam_min:.3e} is below "
            f"-rank_rtol * lambda_max = {-cut:.3e}; use psd=False for indefinite matrices"
        )
    return lam_max / float(w[w > cut].min())


class ConditionNumber(float):
    """A condition number (a ``float``) with the eigenvalues it was computed from.

    Attributes:
        eigenvalues: the (m,) backend array of eigenvalues, ascending.
        convention: ``"psd"`` (``lambda_max / lambda_min+``) or ``"abs"``
            (``|lambda|_max / |lambda|_min``); see the module docstring.
        rank_rtol: the rank tolerance, relative to the largest eigenvalue.
        indefinite: an eigenvalue lies below ``-rank_rtol * max|lambda|`` (a
            negative eigenvalue that is not rounding noise of a zero).
        rank: the number of eigenvalues with ``|lambda| > rank_rtol * max|lambda|``.
        lambda_min, lambda_max: the extreme eigenvalues (signed).

    Arithmetic on it gives plain floats. Build one with :func:`condition_number`
    or :func:`kappa_from_eigenvalues`.
    """

    eigenvalues: Any
    convention: str
    rank_rtol: float

    def __new__(cls, value: float, eigenvalues: Any, convention: str, rank_rtol: float) -> ConditionNumber:
        if convention not in CONVENTIONS:
            raise ValueError(f"ConditionNumber: convention must be one of {CONVENTIONS}, got {convention!r}")
        self = super().__new__(cls, value)
        self.eigenvalues = eigenvalues
        self.convention = convention
        self.rank_rtol = float(rank_rtol)
        return self

    def __str__(self) -> str:  # print() and f"{k}" show the number, as for a float
        return float.__repr__(self)

    def __repr__(self) -> str:
        return (f"ConditionNumber({float(self)!r}, convention={self.convention!r}, rank={self.rank}, "
                f"indefinite={self.indefinite})")

    @property
    def _cut(self) -> float:
        return self.rank_rtol * float(backend.xp().abs(self.eigenvalues).max())

    @property
    def indefinite(self) -> bool:
        return float(self.eigenvalues.min()) < -self._cut

    @property
    def rank(self) -> int:
        return int((backend.xp().abs(self.eigenvalues) > self._cut).sum())

    @property
    def lambda_min(self) -> float:
        return float(self.eigenvalues.min())

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues.max())

    def in_convention(self, convention: str) -> ConditionNumber:
        """The same spectrum's condition number in ``convention`` (no new decomposition).

        ``"psd"`` of an indefinite spectrum is ``nan`` here (not an error, as in
        :func:`condition_number`): the caller asked for both and can read
        :attr:`indefinite`.
        """
        if convention not in CONVENTIONS:
            raise ValueError(f"in_convention: convention must be one of {CONVENTIONS}, got {convention!r}")
        if convention == "psd" and self.indefinite:
            return ConditionNumber(math.nan, self.eigenvalues, "psd", self.rank_rtol)
        return kappa_from_eigenvalues(self.eigenvalues, psd=convention == "psd", rank_rtol=self.rank_rtol)

    def on_range(self) -> ConditionNumber:
        """The condition number restricted to the numerical range, in the same convention.

        Keeps the eigenvalues with ``|lambda| > rank_rtol * max|lambda|`` (the
        others are zeros up to rounding) and recomputes from them; for
        ``"abs"`` that is ``|lambda|_max / |lambda|_min+``, finite for a singular
        matrix. The returned :attr:`eigenvalues` are the kept ones. ``nan`` if
        none is kept (the zero matrix).
        """
        w = self.eigenvalues[backend.xp().abs(self.eigenvalues) > self._cut]
        if w.size == 0:
            return ConditionNumber(math.nan, w, self.convention, self.rank_rtol)
        if self.convention == "psd" and self.indefinite:
            return ConditionNumber(math.nan, w, "psd", self.rank_rtol)
        return kappa_from_eigenvalues(w, psd=self.convention == "psd", rank_rtol=self.rank_rtol)


def kappa_from_eigenvalues(w: Any, psd: bool = False, rank_rtol: float = 1e-10) -> ConditionNumber:
    """A condition number from the eigenvalues ``w`` of a symmetric matrix.

    * ``psd=False`` (convention ``"abs"``): ``max |lambda| / min |lambda|``
      (``inf`` if some eigenvalue is exactly 0).
    * ``psd=True`` (convention ``"psd"``): ``lambda_max / lambda_min+``, the
      smallest eigenvalue counted as nonzero being the smallest one above
      ``rank_rtol * lambda_max`` (the rank tolerance; eigenvalues below it are
      treated as rounding noise of zeros). The matrix must be PSD up to that
      tolerance: an eigenvalue below ``-rank_rtol * lambda_max`` raises
      ValueError. The zero matrix gives nan.

    Why a tolerance: a computed eigenvalue carries an absolute error of about
    ``n * 1e-16 * lambda_max`` (float64), so anything below that is
    indistinguishable from 0. ``1e-10`` leaves room for matrices that were
    themselves formed with rounding (Hessians, moment matrices).

    Shapes: w (n,) -> ConditionNumber (keeping ``w`` as its ``eigenvalues``).
    """
    w = _arr(w)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"kappa_from_eigenvalues: expected a non-empty (n,) array of eigenvalues, "
                         f"got shape {tuple(w.shape)}")
    if psd:
        value = _kappa_psd(w, rank_rtol, "kappa_from_eigenvalues")
    else:
        value = _kappa_abs(w)
    return ConditionNumber(value, w, "psd" if psd else "abs", rank_rtol)


def condition_number(A: Any, psd: bool = False, rank_rtol: float = 1e-10) -> ConditionNumber:
    """Condition number of a symmetric matrix (THEORY section 5's conventions), from one eigendecomposition.

    ``psd=False``: ``|lambda|_max / |lambda|_min`` (``inf`` for an exactly singular
    spectrum). ``psd=True``: ``lambda_max / lambda_min+`` with the rank decided by
    ``rank_rtol`` relative to ``lambda_max`` (see :func:`kappa_from_eigenvalues`);
    an indefinite matrix then raises ValueError. The result also carries the
    eigenvalues, rank and indefiniteness (:class:`ConditionNumber`).

    Float64 eigenvalues lose about 16 - log10(kappa) digits in ``lambda_min``: above
    ``kappa ~ 1e16`` the value is rounding noise; :func:`gram_eigenvalues` does
    better when the matrix is a Gram matrix of data.

    Shapes: A (n, n) -> ConditionNumber.
    """
    A = _square(A, "condition_number")
    return kappa_from_eigenvalues(eigenvalues(A), psd=psd, rank_rtol=rank_rtol)


def effective_condition_number(
    H: Any, directions: Any, psd: bool = True, rank_rtol: float = 1e-10
) -> ConditionNumber:
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
    block) -> ConditionNumber. Invariant under ``w -> c w``, since ``H(c w) = H(w) / c^2``.
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


# --------------------------------------------------------------------------- matrix-free
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
