"""THEORY section 2: the BNP transformation P, the transformed moment matrix, van der Sluis, P P^T.

Tolerances. Identities between matrices are checked componentwise against
the standard bound for rounding in products, ``|fl(A B) - A B| <= k eps |A| |B|``:
forming ``P^T M P`` from a moment matrix with ``|mu| = 1e3`` and scales ``1e-3``
cancels entries of size 1e12 down to size 1, so its error is honestly about
1e-4 there, while the same matrix computed from standardized data is good to
1e-13. Eigenvalue statements use the slack of ``eig_slack``.
"""

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from test_theory_strategies import EPS, eig_slack, host_stats, layer_inputs

from bnp import backend, spectra, theory


def _np(x):
    return backend.to_numpy(x)


def _b(x):
    return backend.asarray(x)



def _kappa_interval(w, slack):
    lmin, lmax = w[0], w[-1]
    slack = max(slack, 1e-300)
    return lmax / (lmin + slack), (lmax / (lmin - slack) if lmin > slack else math.inf)


def _product_bound(*factors):
    """|A1| |A2| ... : the componentwise scale of rounding in the product A1 A2 ..."""
    out = np.abs(factors[0])
    for f in factors[1:]:
        out = out @ np.abs(f)
    return out


eps_values = st.sampled_from([0.0, 1e-3, 1.0])


@given(layer_inputs(), eps_values)
def test_bnp_transform_is_built_from_its_formula(a, eps):
    mu, S = host_stats(a)
    var = np.diag(S)
    if eps == 0 and var.min() <= 0:
        eps = 1e-3  # a batch of one has no spread: THEORY's P needs eps > 0 then
    n = len(mu)
    P = _np(theory.bnp_transform(_b(mu), _b(var), eps))
    d = np.sqrt(var + eps)
    assert np.all(P[:n, :n] == np.diag(1 / d))
    assert np.all(P[:n, n] == 0) and P[n, n] == 1.0
    np.testing.assert_allclose(P[n, :n], -mu / d, rtol=4 * EPS, atol=0)
    # P^T at = [D^-1 (a - mu); 1], i.e. standardize(a) = at @ P
    at = np.concatenate([a, np.ones((a.shape[0], 1))], axis=1)
    ah = _np(theory.standardize(_b(a), _b(mu), _b(var), eps))
    assert np.all(np.abs(ah - at @ P) <= 10 * (n + 1) * EPS * _product_bound(at, P))
    np.testing.assert_array_equal(ah[:, n], 1.0)


@given(layer_inputs(min_batch=2), eps_values)
def test_transformed_moment_matrix_is_blockdiag_of_scaled_covariance(a, eps):
    N, n = a.shape
    mu, S = host_stats(a)
    var = np.diag(S)
    d = np.sqrt(var + eps)
    T = _np(theory.transformed_moment_matrix(_b(a), _b(mu), _b(var), eps))
    expected = np.eye(n + 1)
    expected[:n, :n] = S / np.outer(d, d)
    # from standardized data: accurate relative to sqrt(T_pp T_qq); the mean's own rounding (about
    # N eps |a| / d after scaling) shows in the last row and column
    t = np.sqrt(np.diag(T))
    offset = 100 * N * EPS * np.append(np.abs(a).max(axis=0) / d, 0.0)
    tol = 100 * (N + n) * EPS * np.outer(t, t) + np.outer(offset, t) + np.outer(t, offset)
    assert np.all(np.abs(T - expected) <= tol)
    # the same identity through the dense P^T M P, with the honest (large) cancellation bound
    P = _np(theory.bnp_transform(_b(mu), _b(var), eps))
    M = _np(theory.moment_matrix(_b(a)))
    at = np.concatenate([a, np.ones((N, 1))], axis=1)
    M_abs = np.abs(at).T @ np.abs(at) / N
    PtMP = P.T @ M @ P
    assert np.all(np.abs(PtMP - expected) <= 100 * (N + n) * EPS * _product_bound(P.T, M_abs, P) + 1e-300)


@given(layer_inputs(min_batch=2), st.floats(-3, 3), st.floats(-1e3, 1e3), st.integers(0, 2**16))
def test_transformed_moments_do_not_depend_on_means_or_scales(a, log_scale, shift, seed):
    """Rescaling each feature and shifting all of them leaves P^T M P unchanged (batch statistics, eps = 0)."""
    N, n = a.shape
    rng = np.random.default_rng(seed)
    scales = 10.0 ** (log_scale + rng.uniform(-1, 1, n))
    b = a * scales + shift * rng.standard_normal(n)
    Ta = _np(theory.transformed_moment_matrix(_b(a)))
    Tb = _np(theory.transformed_moment_matrix(_b(b)))
    # centring error of each input, relative to its own spread, bounds the difference
    rel = lambda x: 100 * N * EPS * (np.abs(x).max(axis=0) / x.std(axis=0))
    r = np.append(rel(a) + rel(b), 0.0) + 100 * (N + n) * EPS
    assert np.all(np.abs(Ta - Tb) <= np.add.outer(r, r))


@given(layer_inputs(min_batch=2))
def test_kappa_of_transformed_moments_equals_kappa_of_correlation(a):
    N, n = a.shape
    mu, S = host_stats(a)
    R = _np(theory.correlation_matrix(_b(S)))
    np.testing.assert_allclose(np.diag(R), 1.0, rtol=4 * EPS)
    wR = np.linalg.eigvalsh(R)
    slack = eig_slack(R, N)
    # unit diagonal: lambda_min(R) <= 1 <= lambda_max(R), so adding the eigenvalue 1 changes neither end
    assert wR[0] <= 1 + slack and wR[-1] >= 1 - slack
    T = _np(theory.transformed_moment_matrix(_b(a)))
    wT = np.linalg.eigvalsh(T)
    # T = blockdiag(R, 1) up to rounding, and up to the standardized mean's rounding in its last
    # row and column (about N eps |a| / std per feature: large when |mu| >> spread)
    offset = 100 * N * EPS * np.linalg.norm(np.abs(a).max(axis=0) / a.std(axis=0))
    tol = 2 * slack + eig_slack(T, N) + 2 * offset
    np.testing.assert_allclose(wT, np.sort(np.append(wR, 1.0)), rtol=0, atol=tol)
    kR_low, kR_up = _kappa_interval(wR, slack)
    kT_low, kT_up = _kappa_interval(wT, tol)
    assert kT_low <= kR_up * (1 + 1e-12) and kR_low <= kT_up * (1 + 1e-12)
    if wR[0] > 1e6 * tol:  # both measured to about 1e-6: the library's values agree
        assert spectra.condition_number(T) == pytest.approx(spectra.condition_number(R), rel=1e-5)


@given(layer_inputs(min_n=2, min_batch=2), st.sampled_from(["random", "identity", "near_jacobi"]),
       st.integers(0, 2**16))
def test_van_der_sluis_jacobi_scaling_is_within_n_of_the_best(a, kind, seed):
    N, n = a.shape
    _, S = host_stats(a)
    rng = np.random.default_rng(seed)
    if kind == "random":
        e = 10.0 ** rng.uniform(-3, 3, n)
    elif kind == "identity":
        e = np.ones(n)
    else:
        e = 10.0 ** rng.uniform(-0.3, 0.3, n) / np.sqrt(np.diag(S))
    R = _np(theory.correlation_matrix(_b(S)))
    ESE = S * np.outer(e, e)
    # interval arithmetic: the smallest kappa(R) compatible with rounding against the largest kappa(ESE)
    kR_low, _ = _kappa_interval(np.linalg.eigvalsh(R), eig_slack(R, N))
    _, kE_up = _kappa_interval(np.linalg.eigvalsh(ESE), eig_slack(ESE, N))
    assert kR_low <= n * kE_up * (1 + 1e-12)
    # the library's right-hand side is n kappa(E S E)
    wE = np.linalg.eigvalsh(ESE)
    if wE[0] > 1e6 * eig_slack(ESE, N):  # kappa(ESE) measured to about 1e-6
        assert theory.van_der_sluis_bound(_b(S), _b(e)) == pytest.approx(n * wE[-1] / wE[0], rel=1e-5)
    # "in particular kappa(R) <= n kappa(M)"
    M = _np(theory.moment_matrix(_b(a)))
    _, kM_up = _kappa_interval(np.linalg.eigvalsh(M), eig_slack(M, N))
    assert kR_low <= n * kM_up * (1 + 1e-12)


COUNTEREXAMPLE = np.array([[2.0, 1.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]])


def test_jacobi_scaling_can_make_the_condition_number_worse():
    """kappa(R) <= kappa(S) is FALSE in general: only the factor-n van der Sluis bound holds.

    For this S the spectrum is {(7 - sqrt 17)/2, 1, (7 + sqrt 17)/2}, kappa(S) = (7 + sqrt 17)/2 ~ 5.56,
    while R = D^-1 S D^-1 has spectrum {1/3, 2/3, 2}, kappa(R) = 6.
    """
    S = COUNTEREXAMPLE
    kS = spectra.condition_number(_b(S))
    R = _np(theory.correlation_matrix(_b(S)))
    kR = spectra.condition_number(_b(R))
    assert kS == pytest.approx((7 + math.sqrt(17)) / 2, rel=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(R), [1 / 3, 2 / 3, 2.0], rtol=1e-12)
    assert kR == pytest.approx(6.0, rel=1e-12)
    assert kR > kS * 1.07
    assert kR <= theory.van_der_sluis_bound(_b(S), _b(np.ones(3)))


def test_counterexample_is_the_covariance_of_an_actual_batch():
    """The same happens to a layer: a batch whose (biased) covariance is exactly that S."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((10, 3))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / 10)).T  # now exactly white
    a = 500.0 + z @ np.linalg.cholesky(COUNTEREXAMPLE).T
    mu, S = host_stats(a)
    np.testing.assert_allclose(S, COUNTEREXAMPLE, rtol=1e-9)
    T = theory.transformed_moment_matrix(_b(a))
    assert spectra.condition_number(T) == pytest.approx(6.0, rel=1e-8)
    assert spectra.condition_number(_b(S)) < 5.6


@given(layer_inputs(), eps_values)
def test_pp_t_closed_form_and_inverse_of_diagonal_moment_matrix(a, eps):
    mu, S = host_stats(a)
    var = np.diag(S)
    if eps == 0 and var.min() <= 0:
        eps = 1e-3
    n = len(mu)
    P = _np(theory.bnp_transform(_b(mu), _b(var), eps))
    Q = _np(theory.bnp_pp_t(_b(mu), _b(var), eps))
    assert np.all(np.abs(Q - P @ P.T) <= 10 * (n + 1) * EPS * _product_bound(P, P.T))
    # P P^T = Mt^-1, Mt = M with S replaced by D^2 = diag(var + eps)
    Mt = _np(theory.moment_matrix_from_stats(_b(mu), _b(np.diag(var + eps))))
    eye = np.eye(n + 1)
    assert np.all(np.abs(Q @ Mt - eye) <= 100 * (n + 1) * EPS * _product_bound(Q, Mt))
    assert np.all(np.abs(Mt @ Q - eye) <= 100 * (n + 1) * EPS * _product_bound(Mt, Q))


# A well-conditioned batch (mean offset, unequal scales): the whitening checks below skip
# numerically singular covariances, and this example makes sure they always assert at least once.
_WELL_CONDITIONED = np.array([[1.0, 20.0], [3.0, 14.0], [0.5, 31.0], [2.0, 22.0], [4.0, 9.0]])


@given(layer_inputs(min_batch=2))
@example(_WELL_CONDITIONED)
def test_whitening_transform_makes_the_moments_the_identity(a):
    N, n = a.shape
    mu, S = host_stats(a)
    w = np.linalg.eigvalsh(S)
    kappa = w[-1] / w[0] if w[0] > eig_slack(S, N) else math.inf
    if not kappa < 1e12:  # numerically singular S: its Cholesky factor means nothing
        return
    P = _np(theory.whitening_transform(_b(mu), _b(S)))
    at = np.concatenate([a, np.ones((N, 1))], axis=1)
    ah = at @ P
    # errors: the inverse Cholesky factor carries relative error ~ eps kappa(S)
    np.testing.assert_allclose(ah.T @ ah / N, np.eye(n + 1), rtol=0, atol=1e3 * (N + n) * EPS * kappa
                               + 100 * N * EPS * np.abs(_product_bound(at, P)).max())


def test_kappa_identity_needs_the_plain_convention_when_R_is_singular():
    """kappa(P^T M P) = kappa(R) holds for |lambda|max / |lambda|min (both inf when R is singular), but
    not for lambda_max / lambda_min+: R = [[1, 1], [1, 1]] (two identical features) has spectrum {0, 2},
    kappa+ = 1, while blockdiag(R, 1) has {0, 1, 2}, kappa+ = 2."""
    a = np.array([[1.0, 3.0], [2.0, 5.0], [4.0, 9.0]])  # second feature = 2 * first + 1: correlation 1
    T = theory.transformed_moment_matrix(_b(a))
    _, S = host_stats(a)
    R = theory.correlation_matrix(_b(S))
    np.testing.assert_allclose(_np(R), np.ones((2, 2)), atol=1e-15)
    assert spectra.condition_number(R, psd=True) == pytest.approx(1.0)
    assert spectra.condition_number(T, psd=True) == pytest.approx(2.0)
    assert spectra.condition_number(R) > 1e14 and spectra.condition_number(T) > 1e14  # inf up to rounding


@given(layer_inputs(min_batch=2))
@example(_WELL_CONDITIONED)
def test_whitening_pp_t_is_the_inverse_of_M(a):
    """With the full covariance, P_w P_w^T = M^-1: BNP becomes the input-side K-FAC factor."""
    N, n = a.shape
    mu, S = host_stats(a)
    w = np.linalg.eigvalsh(S)
    if not w[0] > 1e-6 * w[-1]:  # keep to covariances whose Cholesky factor is accurate to ~1e-10
        return
    P = _np(theory.whitening_transform(_b(mu), _b(S)))
    M = _np(theory.moment_matrix_from_stats(_b(mu), _b(S)))
    Q = P @ P.T
    tol = 1e3 * (N + n) * EPS * (w[-1] / w[0]) * _product_bound(P, P.T, M)
    assert np.all(np.abs(Q @ M - np.eye(n + 1)) <= tol)
