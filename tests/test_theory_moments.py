"""THEORY section 1: the input moment matrix M and why means and scales make it ill-conditioned.

Inequalities between eigenvalues are asserted up to the rounding slack of
``eig_slack`` (see tests/test_theory_strategies.py): a check is never
spurious, and it is as strong as float64 allows. Condition-number statements
are asserted on intervals: the true kappa of a computed matrix lies between
``lmax / (lmin + slack)`` and ``lmax / (lmin - slack)`` (inf if ``lmin <= slack``).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from test_theory_strategies import EPS, eig_slack, host_stats, layer_inputs

from bnp import backend, spectra, theory


def _np(x):
    return backend.to_numpy(x)


def _b(x):
    return backend.asarray(x)



def _kappa_interval(w, slack):
    """(lower, upper) bounds on the true kappa = lmax/lmin of a PSD matrix whose eigenvalues are w +- slack."""
    lmin, lmax = w[0], w[-1]
    slack = max(slack, 1e-300)
    upper = lmax / (lmin - slack) if lmin > slack else math.inf
    return lmax / (lmin + slack), upper


@given(layer_inputs())
def test_batch_statistics_are_mean_and_biased_covariance(a):
    mu, S = host_stats(a)
    N, n = a.shape
    ref = np.atleast_2d(np.cov(a, rowvar=False, bias=True))
    np.testing.assert_allclose(mu, a.mean(axis=0), rtol=1e-13, atol=0)
    # entries of S are accurate relative to sqrt(S_ii S_jj) (Cauchy-Schwarz on the centred sums); the
    # error of the computed mean, about eps*|a|, enters S only at second order (the centred data sum to ~0)
    d = np.sqrt(np.diag(ref)) + EPS * np.abs(a).max(axis=0)
    scale = np.outer(d, d)
    assert np.all(np.abs(S - ref) <= 100 * (N + n) * EPS * scale + 1e-300)
    assert np.allclose(S, S.T, rtol=0, atol=0)


@given(layer_inputs())
def test_moment_matrix_has_the_block_form(a):
    N, n = a.shape
    M = _np(theory.moment_matrix(backend.asarray(a)))
    mu, S = host_stats(a)
    B = _np(theory.moment_matrix_from_stats(backend.asarray(mu), backend.asarray(S)))
    # |sum_k at_kp at_kq| <= N sqrt(M_pp M_qq): rounding is relative to that, componentwise
    d = np.sqrt(np.diag(M))
    assert np.all(np.abs(M - B) <= 100 * (N + n) * EPS * np.outer(d, d))
    assert M[n, n] == 1.0 and B[n, n] == 1.0
    assert np.all(np.abs(M[:n, n] - mu) <= 100 * N * EPS * d[:n])


@given(layer_inputs())
def test_lambda_max_of_M_is_at_least_one_plus_mean_squared(a):
    M = _np(theory.moment_matrix(backend.asarray(a)))
    mu, _ = host_stats(a)
    w = np.linalg.eigvalsh(M)
    bound = theory.lambda_max_lower_bound(backend.asarray(mu))
    # the same sum in another order: equal up to rounding, not bit for bit
    assert math.isclose(bound, 1.0 + mu @ mu, rel_tol=1e-12)
    assert w[-1] >= bound - eig_slack(M, a.shape[0])


@given(layer_inputs())
def test_lambda_min_of_M_is_at_most_spread_along_the_mean(a):
    M = _np(theory.moment_matrix(backend.asarray(a)))
    mu, S = host_stats(a)
    bound = theory.lambda_min_upper_bound(backend.asarray(mu), backend.asarray(S))
    w = np.linalg.eigvalsh(M)
    assert w[0] <= bound + eig_slack(M, a.shape[0])
    # the bound is the Rayleigh quotient of u = [m; -m^T mu]
    norm = np.linalg.norm(mu)
    m = mu / norm if norm > 0 else np.eye(len(mu))[0]
    u = np.append(m, -m @ mu)
    assert abs(u @ M @ u / (u @ u) - bound) <= eig_slack(M, a.shape[0])


@given(layer_inputs())
def test_kappa_of_M_grows_like_the_fourth_power_of_the_mean(a):
    N = a.shape[0]
    M = _np(theory.moment_matrix(backend.asarray(a)))
    mu, S = host_stats(a)
    bound = theory.kappa_lower_bound_mean(backend.asarray(mu), backend.asarray(S))
    norm = np.linalg.norm(mu)
    m = mu / norm if norm > 0 else np.eye(len(mu))[0]
    spread = m @ S @ m
    expected = math.inf if spread <= 0 else (1 + mu @ mu) ** 2 / spread
    assert bound == expected or math.isclose(bound, expected, rel_tol=1e-10)
    # the spread is itself computed: lower the bound by its rounding slack before comparing
    denominator = spread + eig_slack(S, N)
    safe_bound = (1 + mu @ mu) ** 2 / denominator if denominator > 0 else math.inf
    lower, upper = _kappa_interval(np.linalg.eigvalsh(M), eig_slack(M, N))
    assert upper >= safe_bound * (1 - 1e-12)
    if lower > 0 and upper < 1e3 * lower:  # kappa measured to 3 digits or better: the library's value too
        assert spectra.condition_number(M) >= safe_bound * lower / upper * (1 - 1e-12)


@given(layer_inputs())
def test_kappa_of_M_at_least_kappa_of_S_at_least_ratio_of_variances(a):
    N = a.shape[0]
    M = _np(theory.moment_matrix(backend.asarray(a)))
    _, S = host_stats(a)
    wM, wS = np.linalg.eigvalsh(M), np.linalg.eigvalsh(S)
    sM, sS = eig_slack(M, N), eig_slack(S, N)
    # the eigenvalue statements of the derivation
    assert wM[-1] >= wS[-1] - sM - sS
    assert wM[0] <= wS[0] + sM + sS
    assert wS[-1] >= S.diagonal().max() - sS
    assert wS[0] <= S.diagonal().min() + sS
    # and the condition numbers, on intervals
    kM_low, kM_up = _kappa_interval(wM, sM + sS)
    kS_low, kS_up = _kappa_interval(wS, sS)
    assert kM_up >= kS_low * (1 - 1e-12)
    ratio = theory.kappa_lower_bound_scales(backend.asarray(S))
    d = S.diagonal()
    assert ratio == (math.inf if d.min() <= 0 else d.max() / d.min())
    assert kS_up >= (d.max() - sS) / (d.min() + sS + 1e-300) * (1 - 1e-12)


def test_mean_bound_is_sharp_for_isotropic_inputs():
    """S = I, |mu| = t: kappa(M) = lambda_+^2 with lambda_+ ~ 2 + t^2, so the (1+t^2)^2 bound is tight."""
    for t in [1.0, 10.0, 100.0]:
        mu, S = np.array([t, 0.0, 0.0]), np.eye(3)
        M = _np(theory.moment_matrix_from_stats(backend.asarray(mu), backend.asarray(S)))
        kappa = spectra.condition_number(M)
        bound = theory.kappa_lower_bound_mean(backend.asarray(mu), backend.asarray(S))
        assert bound <= kappa <= bound * (1 + 4 / (1 + t * t))


def test_batch_of_one_gives_zero_covariance_and_infinite_bounds():
    a = np.array([[3.0, -1.0, 2.0]])
    mu, S = host_stats(a)
    assert np.all(S == 0) and np.all(mu == a[0])
    assert theory.kappa_lower_bound_mean(backend.asarray(mu), backend.asarray(S)) == math.inf
    assert theory.kappa_lower_bound_scales(backend.asarray(S)) == math.inf
    M = _np(theory.moment_matrix(backend.asarray(a)))
    assert np.linalg.matrix_rank(M) == 1


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"moment_matrix.*\(N, n\)"):
        theory.moment_matrix(backend.asarray(np.ones(3)))
    with pytest.raises(ValueError, match=r"moment_matrix_from_stats.*\(2, 2\)"):
        theory.moment_matrix_from_stats(backend.asarray(np.ones(2)), backend.asarray(np.eye(3)))
    with pytest.raises(ValueError, match="kappa_lower_bound_mean"):
        theory.kappa_lower_bound_mean(backend.asarray(np.ones(2)), backend.asarray(np.eye(3)))
