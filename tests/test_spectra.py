"""bnp.spectra: eigenvalues, condition numbers (ConditionNumber), Gram spectra, Lanczos and Hutchinson."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_curvature import _mlp
from test_theory_strategies import EPS, eig_slack, host_stats, layer_inputs

import bnp
from bnp import backend, curvature, spectra, theory


def _np(x):
    return backend.to_numpy(x)


def _b(x):
    return backend.asarray(x)



# --------------------------------------------------------------------------- condition numbers
def test_condition_numbers_in_both_conventions():
    H = backend.asarray(np.diag([4.0, 2.0, 1e-13, 0.0]))
    c = spectra.condition_number(H, rank_rtol=1e-10)
    assert c == math.inf and c.in_convention("psd") == 2.0 and c.rank == 2 and not c.indefinite
    assert (c.lambda_min, c.lambda_max, c.rank_rtol) == (0.0, 4.0, 1e-10)
    assert c.convention == "abs" and c.in_convention("psd").convention == "psd"
    c = spectra.condition_number(backend.asarray(np.diag([4.0, 2.0, 1e-13])), rank_rtol=1e-15)
    assert c == pytest.approx(4e13) and c.in_convention("psd") == pytest.approx(4e13) and c.rank == 3
    c = spectra.condition_number(backend.asarray(np.diag([3.0, -1.0, 0.5])))
    assert c == 6.0 and c.indefinite and math.isnan(c.in_convention("psd")) and c.rank == 3
    # a rotation does not change them; the symmetric part is used
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    A = Q @ np.diag([3.0, 1.5, 0.5]) @ Q.T + 1e-14 * np.triu(np.ones((3, 3)), 1)
    assert spectra.condition_number(backend.asarray(A), psd=True) == pytest.approx(6.0, rel=1e-12)
    np.testing.assert_allclose(_np(spectra.eigenvalues(backend.asarray(A))), [0.5, 1.5, 3.0], rtol=1e-12)


def test_a_condition_number_is_a_float_that_keeps_its_spectrum():
    w = np.array([0.5, 2.0, 8.0])
    c = spectra.condition_number(backend.asarray(np.diag(w[::-1])), psd=True)
    assert isinstance(c, float) and c == 16.0 and f"{c:.3g}" == "16" and c < 17 and float(c) + 1 == 17.0
    np.testing.assert_array_equal(_np(c.eigenvalues), w)  # ascending: the decomposition, kept
    assert (c.convention, c.rank, c.indefinite, c.lambda_min, c.lambda_max) == ("psd", 3, False, 0.5, 8.0)
    assert type(-c) is float and -c == -16.0  # arithmetic gives plain floats
    assert "convention='psd'" in repr(c) and str(c) == f"{c}" == "16.0"  # printed as the float it is
    same = c.in_convention("abs")  # the other convention from the stored eigenvalues
    assert same == 16.0 and same.eigenvalues is c.eigenvalues


def test_psd_convention_refuses_an_indefinite_matrix_and_ignores_rounding_negatives():
    with pytest.raises(ValueError, match=r"condition_number|kappa_from_eigenvalues.*psd=True"):
        spectra.condition_number(backend.asarray(np.diag([3.0, -1.0, 0.5])), psd=True)
    # a negative eigenvalue within the rank tolerance is a zero up to rounding: not indefinite
    c = spectra.kappa_from_eigenvalues(backend.asarray([-1e-12, 0.5, 2.0]), psd=True, rank_rtol=1e-10)
    assert c == 4.0 and not c.indefinite and c.rank == 2
    assert math.isnan(spectra.kappa_from_eigenvalues(backend.asarray([0.0, 0.0]), psd=True))
    assert math.isnan(spectra.kappa_from_eigenvalues(backend.asarray([0.0, 0.0])))


def test_on_range_drops_the_zeros_up_to_rounding_in_either_convention():
    c = spectra.condition_number(backend.asarray(np.diag([4.0, 2.0, 1e-13, 0.0])), rank_rtol=1e-10)
    r = c.on_range()
    assert c == math.inf and r == 2.0 and r.convention == "abs"
    np.testing.assert_array_equal(_np(r.eigenvalues), [2.0, 4.0])
    # indefinite: |lambda|_max / |lambda|_min+ over the eigenvalues above the tolerance
    c = spectra.condition_number(backend.asarray(np.diag([3.0, -0.25, 1e-14, 0.0])), rank_rtol=1e-10)
    assert c.indefinite and c == math.inf and c.on_range() == 12.0 and c.rank == 2
    assert math.isnan(c.in_convention("psd")) and math.isnan(c.in_convention("psd").on_range())
    psd = spectra.condition_number(backend.asarray(np.diag([4.0, 2.0, 1e-13, 0.0])), psd=True)
    assert psd == 2.0 and psd.on_range() == 2.0
    assert math.isnan(spectra.condition_number(backend.asarray(np.zeros((2, 2)))).on_range())


@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.floats(0.0, 8.0))
def test_condition_number_matches_numpy_cond_for_symmetric_matrices(seed, n, log_kappa):
    """|lambda|_max / |lambda|_min is the 2-norm condition number of a symmetric matrix (numpy: via the SVD).

    Both lose ``lambda_min`` to an absolute error of about ``n eps lambda_max``: kappa agrees to ``n eps kappa``.
    """
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    w = 10.0 ** rng.uniform(0.0, log_kappa, n) * rng.choice([-1.0, 1.0], n)
    A = (Q * w) @ Q.T
    A = (A + A.T) / 2
    c = spectra.condition_number(backend.asarray(A))
    kappa = float(np.linalg.cond(A))
    assert c == pytest.approx(kappa, rel=1e3 * n * EPS * kappa + 1e-13)
    assert c.indefinite == bool(w.min() < -1e-10 * np.abs(w).max()) and c.rank == n
    if not c.indefinite:
        assert c.in_convention("psd") == pytest.approx(float(c), rel=1e-12)


def test_bad_spectra_input_is_named():
    with pytest.raises(ValueError, match=r"condition_number: expected a square matrix, got shape \(2, 3\)"):
        spectra.condition_number(backend.asarray(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"kappa_from_eigenvalues: expected a non-empty \(n,\) array"):
        spectra.kappa_from_eigenvalues(backend.asarray(np.ones((2, 2))))
    with pytest.raises(ValueError, match="kappa_from_eigenvalues"):
        spectra.kappa_from_eigenvalues(backend.asarray([]))
    with pytest.raises(ValueError, match="convention must be one of"):
        spectra.condition_number(backend.asarray(np.eye(2))).in_convention("2-norm")
    with pytest.raises(ValueError, match=r"gram_eigenvalues: expected layer inputs of shape \(N, n\)"):
        spectra.gram_eigenvalues(backend.asarray(np.ones(3)))
    with pytest.raises(ValueError, match="lanczos"):
        spectra.lanczos(lambda v: v, 3, 4)
    with pytest.raises(ValueError, match="hutchinson_trace"):
        spectra.hutchinson_trace(lambda v: v, 3, 0)


# --------------------------------------------------------------------------- spectra of Gram matrices
@given(layer_inputs())
def test_gram_eigenvalues_are_the_spectrum_of_M_and_more_accurate(a):
    """Squared singular values of at / sqrt(N): the spectrum of M, with error ~ eps sqrt(lambda lambda_max)."""
    N, n = a.shape
    at = np.concatenate([a, np.ones((N, 1))], axis=1)
    w = _np(spectra.gram_eigenvalues(_b(at)))
    M = _np(theory.moment_matrix(_b(a)))
    assert w.shape == (n + 1,) and np.all(np.diff(w) >= 0) and np.all(w >= 0)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(M), rtol=0, atol=eig_slack(M, N))
    if N < n + 1:  # rank at most N: the missing eigenvalues are exact zeros
        assert np.all(w[: n + 1 - N] == 0)
    assert np.sum(w) == pytest.approx(np.trace(M), rel=1e-12)


def test_gram_eigenvalues_resolve_what_eigvalsh_of_M_cannot():
    """|mu| = 1e5, spread 1e-3: kappa(M) ~ 1e26; eigvalsh of the formed M gets lambda_min wrong by > 100%."""
    rng = np.random.default_rng(0)
    a = 1e5 + 1e-3 * rng.standard_normal((50, 1))
    at = np.concatenate([a, np.ones((50, 1))], axis=1)
    w = _np(spectra.gram_eigenvalues(_b(at)))
    mu, S = host_stats(a)
    # for n = 1 the spectrum is known in closed form: det M = S, trace M = S + mu^2 + 1
    det, tr = S[0, 0], S[0, 0] + mu[0] ** 2 + 1
    lam_min = det / (tr / 2 + np.sqrt(tr * tr / 4 - det))
    assert w[0] == pytest.approx(lam_min, rel=1e-7)
    assert abs(np.linalg.eigvalsh(_np(theory.moment_matrix(_b(a))))[0] - lam_min) > lam_min


def test_effective_condition_number_ignores_the_null_direction():
    """H with w as a 0-eigenvector (as at a minimum of a scale-invariant loss): kappa+ over the complement."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    w = Q[:, 0] * 3.0
    H = Q @ np.diag([0.0, 0.5, 1.0, 2.0, 10.0]) @ Q.T
    assert spectra.effective_condition_number(backend.asarray(H), backend.asarray(w)) == pytest.approx(20.0)
    assert spectra.condition_number(backend.asarray(H)) == math.inf or spectra.condition_number(H) > 1e12
    with pytest.raises(ValueError, match="effective_condition_number"):
        spectra.effective_condition_number(backend.asarray(H), backend.asarray(np.eye(5)))


# --------------------------------------------------------------------------- matrix-free: Lanczos and Hutchinson
def _spd_with_outliers(rng, n):
    """A random SPD matrix whose extreme eigenvalues are well separated from the bulk."""
    w = np.concatenate([[1e-2], rng.uniform(1.0, 10.0, n - 3), [100.0, 300.0]])
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * w) @ Q.T, np.sort(w)


@given(st.integers(0, 2**16))
def test_lanczos_finds_the_extreme_eigenvalues_of_an_spd_matrix(seed):
    rng = np.random.default_rng(seed)
    n = 60
    A, w = _spd_with_outliers(rng, n)
    apply = lambda v: backend.asarray(A) @ v
    ritz = _np(spectra.lanczos(apply, n, 30, seed=seed))
    # isolated extremes converge fast (in 30 steps to ~1e-12 over 300 seeds tried); the bulk need not
    assert abs(ritz[-1] - w[-1]) <= 1e-10 * w[-1]
    assert abs(ritz[-2] - w[-2]) <= 1e-10 * w[-1]
    assert abs(ritz[0] - w[0]) <= 1e-9 * w[-1]
    # Cauchy interlacing: every Ritz value lies inside the spectrum
    assert ritz[0] >= w[0] - 1e-12 * w[-1] and ritz[-1] <= w[-1] * (1 + 1e-12)
    # with k = n the Ritz values are the whole spectrum
    np.testing.assert_allclose(_np(spectra.lanczos(apply, n, n, seed=seed)), w, rtol=0, atol=1e-10 * w[-1])


@given(st.integers(0, 2**16), st.sampled_from(["ce", "mse"]))
def test_lanczos_on_a_network_hessian(seed, loss):
    params, loss_fn = _mlp(seed, sizes=(3, 5, 3), loss=loss)
    H = _np(bnp.hessian(loss_fn, params))
    w = np.linalg.eigvalsh((H + H.T) / 2)
    n = H.shape[0]
    hvp_fn = curvature.flat_hvp(loss_fn, params)
    scale = np.abs(w).max()
    full = _np(spectra.lanczos(hvp_fn, n, n, seed=seed))
    np.testing.assert_allclose(full, w[: len(full)] if len(full) == n else full, rtol=0, atol=1e-9 * scale)
    assert abs(full[0] - w[0]) <= 1e-9 * scale and abs(full[-1] - w[-1]) <= 1e-9 * scale
    part = _np(spectra.lanczos(hvp_fn, n, n // 2, seed=seed))
    assert part[0] >= w[0] - 1e-10 * scale and part[-1] <= w[-1] + 1e-10 * scale  # interlacing
    # The largest Ritz value converges monotonically: the Krylov spaces of one start vector are nested, so
    # it never decreases with the number of steps and reaches lambda_max at n. (How fast depends on the
    # eigenvalue gap: an earlier "within 1e-3 after n/2 steps" was false for some drawn networks.)
    tops = [_np(spectra.lanczos(hvp_fn, n, k, seed=seed))[-1] for k in (n // 4, n // 2, 3 * n // 4, n)]
    assert all(a <= b + 1e-10 * scale for a, b in zip(tops, tops[1:])), tops
    assert abs(tops[1] - part[-1]) <= 1e-12 * scale and abs(tops[-1] - w[-1]) <= 1e-9 * scale


def test_hutchinson_is_exact_for_a_diagonal_matrix():
    d = np.array([3.0, -1.0, 0.5, 7.0])
    est = spectra.hutchinson_trace(lambda v: backend.asarray(d) * v, 4, samples=5, seed=1)
    assert est.mean == pytest.approx(d.sum(), rel=1e-15) and est.stderr == 0.0 and est.samples == 5


@given(st.integers(0, 2**16))
def test_hutchinson_is_unbiased_with_the_rademacher_variance(seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((12, 12))
    A = A + A.T
    samples = 2000
    est = spectra.hutchinson_trace(lambda v: backend.asarray(A) @ v, 12, samples, seed=seed)
    # Var(v^T A v) = 2 sum_{i != j} A_ij^2 for Rademacher v
    sd = math.sqrt(2 * (np.sum(A * A) - np.sum(np.diag(A) ** 2)))
    assert abs(est.stderr * math.sqrt(samples) / sd - 1) < 0.15
    assert abs(est.mean - np.trace(A)) <= 5 * sd / math.sqrt(samples)


def test_hutchinson_on_a_network_hessian_within_a_few_standard_errors():
    params, loss_fn = _mlp(7, sizes=(3, 5, 3))
    H = _np(bnp.hessian(loss_fn, params))
    hits = 0
    for seed in range(4):
        est = spectra.hutchinson_trace(curvature.flat_hvp(loss_fn, params), H.shape[0], 60, seed=seed)
        assert est.stderr > 0
        hits += abs(est.mean - np.trace(H)) <= 2 * est.stderr
        assert abs(est.mean - np.trace(H)) <= 5 * est.stderr
    assert hits >= 2  # about 95% should fall within 2 standard errors


@pytest.mark.gpu
def test_spectra_and_neuron_blocks_on_gpu_match_the_numpy_backend(cupy_backend):
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    A = Q @ np.diag([3.0, -0.25, 1e-14, 0.0]) @ Q.T  # rank 2 and indefinite, up to rounding
    c = spectra.condition_number(backend.asarray(A), rank_rtol=1e-10)
    assert backend.array_backend(c.eigenvalues) == "cupy"
    gpu = (float(c.on_range()), c.rank, c.indefinite)
    params, loss_fn = _mlp(4)
    block_gpu = _np(curvature.neuron_block(loss_fn, params[0], params[1], 1))
    bnp.set_backend("numpy")  # the fixture restores it anyway
    c = spectra.condition_number(backend.asarray(A), rank_rtol=1e-10)
    assert gpu[1:] == (c.rank, c.indefinite) == (2, True)
    assert gpu[0] == pytest.approx(float(c.on_range()), rel=1e-10) and gpu[0] == pytest.approx(12.0, rel=1e-10)
    params, loss_fn = _mlp(4)
    np.testing.assert_allclose(block_gpu, _np(curvature.neuron_block(loss_fn, params[0], params[1], 1)),
                               rtol=1e-10, atol=1e-12)
