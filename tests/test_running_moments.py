"""Running moments: the statistics behind BNP and FN."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from bnp import backend
from bnp.running_moments import RunningMoments, batch_weight


def _naive(batches, rho, bias_correction=True):
    """THEORY.md's recipe: average the first and second raw moments, then subtract."""
    m1 = np.zeros(batches[0].shape[1])
    m2 = np.zeros_like(m1)
    for t, b in enumerate(batches, start=1):
        m1 = rho * m1 + (1 - rho) * b.mean(axis=0)
        m2 = rho * m2 + (1 - rho) * (b * b).mean(axis=0)
        c = 1 - rho**t if bias_correction else 1.0
    return m1 / c, m2 / c - (m1 / c) ** 2


@given(
    rho=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    batch=st.integers(1, 5),
    steps=st.integers(1, 12),
    shift=st.sampled_from([0.0, 3.0, 50.0]),
    bias_correction=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_raw_moment_recipe(rho, batch, steps, shift, bias_correction, seed):
    rng = np.random.default_rng(seed)
    batches = [rng.standard_normal((batch, 3)) * [1.0, 0.1, 10.0] + shift for _ in range(steps)]
    rm = RunningMoments(3, rho, bias_correction)
    for b in batches:
        rm.update(backend.asarray(b.mean(axis=0)), backend.asarray(b.var(axis=0)))
    mean, var = _naive(batches, rho, bias_correction)
    np.testing.assert_allclose(backend.to_numpy(rm.mean), mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(rm.var), var, rtol=1e-7, atol=1e-9 * (1 + shift**2))


def test_rho_zero_is_the_last_batch():
    rng = np.random.default_rng(0)
    rm = RunningMoments(4, 0.0)
    for _ in range(3):
        b = rng.standard_normal((7, 4))
        rm.update(backend.asarray(b.mean(0)), backend.asarray(b.var(0)))
    np.testing.assert_allclose(backend.to_numpy(rm.mean), b.mean(0), rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(rm.var), b.var(0), rtol=1e-12)


def test_first_step_uses_the_batch_with_bias_correction():
    assert batch_weight(0, 0.99) == 1.0
    assert abs(batch_weight(1, 0.9) - 0.1 / 0.19) < 1e-15


def test_batch_size_one_stream_converges_to_true_moments():
    rng = np.random.default_rng(1)
    mean, std = np.array([5.0, -200.0, 0.01]), np.array([2.0, 0.5, 1e-3])
    rm = RunningMoments(3, 0.999)
    for _ in range(20000):
        x = rng.standard_normal(3) * std + mean
        rm.update(backend.asarray(x), backend.asarray(np.zeros(3)))
    assert np.all(np.abs(backend.to_numpy(rm.mean) - mean) < 0.2 * std)
    np.testing.assert_allclose(backend.to_numpy(rm.var), std**2, rtol=0.15)


def test_no_cancellation_in_float32_for_large_means():
    """E[a^2] - E[a]^2 loses everything in float32 when |mean| >> std; the combined form does not."""
    rng = np.random.default_rng(2)
    rm = RunningMoments(1, 0.9, dtype="float32")
    data = (1e4 + 1e-2 * rng.standard_normal((200, 1))).astype("float32")
    m1 = m2 = np.float32(0)
    for x in data:
        rm.update(backend.asarray(x), backend.asarray(np.zeros(1, "float32")))
        m1 = np.float32(0.9) * m1 + np.float32(0.1) * x[0]
        m2 = np.float32(0.9) * m2 + np.float32(0.1) * x[0] * x[0]
    c = np.float32(1 - 0.9 ** len(data))
    naive = m2 / c - (m1 / c) ** 2
    exact = _naive([d[None].astype(float) for d in data], 0.9)[1][0]
    assert abs(float(backend.to_numpy(rm.var)[0]) - exact) < 0.05 * exact
    assert abs(naive - exact) > 10 * exact  # the naive recipe is useless here


def test_full_covariance_matches_numpy():
    rng = np.random.default_rng(3)
    rm = RunningMoments(3, 0.0, full=True)
    b = rng.standard_normal((10, 3))
    rm.update(backend.asarray(b.mean(0)), backend.asarray(np.cov(b.T, bias=True)))
    np.testing.assert_allclose(backend.to_numpy(rm.var), np.cov(b.T, bias=True), rtol=1e-12)
    rm2 = RunningMoments(3, 0.5, full=True)
    for _ in range(3):
        b = rng.standard_normal((4, 3)) + 2
        rm2.update(backend.asarray(b.mean(0)), backend.asarray(np.cov(b.T, bias=True)))
    var_diag = RunningMoments(3, 0.5)
    rng = np.random.default_rng(3)
    rng.standard_normal((10, 3))
    for _ in range(3):
        b = rng.standard_normal((4, 3)) + 2
        var_diag.update(backend.asarray(b.mean(0)), backend.asarray(b.var(0)))
    np.testing.assert_allclose(np.diag(backend.to_numpy(rm2.var)), backend.to_numpy(var_diag.var), rtol=1e-12)


def test_rejects_bad_rho():
    import pytest

    with pytest.raises(ValueError, match="rho"):
        RunningMoments(2, 1.0)
