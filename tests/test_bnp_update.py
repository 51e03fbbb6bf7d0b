"""The BNP gradient rewrite against a dense P P^T built from THEORY.md section 2."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from reference_formulas import dense_p

from bnp import backend
from bnp.preconditioner import precondition, precondition_whitened


def _stats(rng, n, big_mean):
    mean = rng.standard_normal(n) * (100.0 if big_mean else 1.0)
    var = 10.0 ** rng.uniform(-3, 3, n)
    return mean, var


@given(out=st.integers(1, 4), n=st.integers(1, 6), big=st.booleans(), eps=st.sampled_from([0.0, 1e-3]),
       seed=st.integers(0, 2**16))
def test_linear_with_bias_equals_dense_ppt(out, n, big, eps, seed):
    rng = np.random.default_rng(seed)
    mean, var = _stats(rng, n, big)
    gw, gb = rng.standard_normal((out, n)), rng.standard_normal(out)
    new_w, new_b = precondition(backend.asarray(gw), backend.asarray(gb), backend.asarray(mean),
                                backend.asarray(var), eps)
    P = dense_p(mean, var, eps)
    theta = np.concatenate([gw, gb[:, None]], axis=1)  # rows are neurons [g_w; g_b]
    expected = theta @ (P @ P.T).T
    got = np.concatenate([backend.to_numpy(new_w), backend.to_numpy(new_b)[:, None]], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


@given(out=st.integers(1, 3), c=st.integers(1, 3), k=st.sampled_from([(1, 1), (2, 3), (3, 3)]),
       big=st.booleans(), seed=st.integers(0, 2**16))
def test_conv_with_channel_statistics_equals_dense_ppt(out, c, k, big, seed):
    rng = np.random.default_rng(seed)
    mean, var = _stats(rng, c, big)
    gw, gb = rng.standard_normal((out, c) + k), rng.standard_normal(out)
    new_w, new_b = precondition(backend.asarray(gw), backend.asarray(gb), backend.asarray(mean),
                                backend.asarray(var), 1e-3)
    reps = k[0] * k[1]
    P = dense_p(np.repeat(mean, reps), np.repeat(var, reps), 1e-3)  # channel stats repeated over offsets
    theta = np.concatenate([gw.reshape(out, -1), gb[:, None]], axis=1)
    expected = theta @ (P @ P.T).T
    got = np.concatenate([backend.to_numpy(new_w).reshape(out, -1), backend.to_numpy(new_b)[:, None]], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_without_bias_scales_by_uncentred_second_moment():
    rng = np.random.default_rng(0)
    mean, var = _stats(rng, 5, True)
    gw = rng.standard_normal((3, 5))
    new_w, new_b = precondition(backend.asarray(gw), None, backend.asarray(mean), backend.asarray(var), 1e-3)
    assert new_b is None
    np.testing.assert_allclose(backend.to_numpy(new_w), gw / (var + mean**2 + 1e-3), rtol=1e-12)


def test_update_is_the_inverse_of_the_diagonalised_moment_matrix():
    """THEORY.md: P P^T = Mt^-1, Mt the moment matrix with S replaced by diag(S): BNP's
    update of the neuron rows [g_w; g_b] solves Mt x = [g_w; g_b] (Mt symmetric)."""
    rng = np.random.default_rng(1)
    mean, var = _stats(rng, 4, False)  # a moderate mean: Mt is solved densely here, in float64
    gw, gb = rng.standard_normal((3, 4)), rng.standard_normal(3)
    new_w, new_b = precondition(backend.asarray(gw), backend.asarray(gb), backend.asarray(mean),
                                backend.asarray(var), 0.0)
    Mt = np.block([[np.diag(var) + np.outer(mean, mean), mean[:, None]], [mean[None, :], np.ones((1, 1))]])
    expected = np.linalg.solve(Mt, np.concatenate([gw, gb[:, None]], axis=1).T).T
    got = np.concatenate([backend.to_numpy(new_w), backend.to_numpy(new_b)[:, None]], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max())


@given(shape=st.sampled_from([(3, 5), (2, 3, 2, 2)]), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_overwrite_gives_the_same_bits_and_only_then_reuses_the_inputs(shape, bias, seed):
    rng = np.random.default_rng(seed)
    mean, var = _stats(rng, shape[1], True)
    gw, gb = rng.standard_normal(shape), rng.standard_normal(shape[0]) if bias else None
    args = (backend.asarray(mean), backend.asarray(var), 1e-3)
    kept_w, kept_b = backend.asarray(gw), None if gb is None else backend.asarray(gb)
    pure = precondition(kept_w, kept_b, *args)
    np.testing.assert_array_equal(backend.to_numpy(kept_w), gw)  # overwrite=False leaves the inputs alone
    fresh = lambda a: None if a is None else backend.asarray(a.copy())  # overwrite=True may write into these
    fast = precondition(fresh(gw), fresh(gb), *args, overwrite=True)
    np.testing.assert_array_equal(backend.to_numpy(fast[0]), backend.to_numpy(pure[0]))
    if bias:
        np.testing.assert_array_equal(backend.to_numpy(fast[1]), backend.to_numpy(pure[1]))
    # a non-contiguous gradient cannot be reused in place: the result is still right
    wide = backend.asarray(np.repeat(gw, 2, axis=0))[::2]
    np.testing.assert_array_equal(backend.to_numpy(precondition(wide, fresh(gb), *args, overwrite=True)[0]),
                                  backend.to_numpy(pure[0]))


def test_whitened_update_uses_full_covariance():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 3)) + 4.0
    mean, cov = a.mean(0), np.cov(a.T, bias=True)
    gw, gb = rng.standard_normal((2, 3)), rng.standard_normal(2)
    new_w, new_b = precondition_whitened(backend.asarray(gw), backend.asarray(gb), backend.asarray(mean),
                                         backend.asarray(cov), 0.0)
    M = np.block([[cov + np.outer(mean, mean), mean[:, None]], [mean[None, :], np.ones((1, 1))]])
    expected = np.concatenate([gw, gb[:, None]], axis=1) @ np.linalg.inv(M)  # M symmetric
    got = np.concatenate([backend.to_numpy(new_w), backend.to_numpy(new_b)[:, None]], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
