"""bnp.curvature: layer and neuron blocks, matrix-free spectra, traces and condition numbers."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bnp
import bnp.functional as F
from bnp import backend, curvature


def _np(x):
    return backend.to_numpy(x)


def _mlp(seed, sizes=(3, 4, 2), loss="ce", batch=6):
    """A tanh MLP; returns (params [W1, b1, W2, b2, ...], loss_fn)."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append(bnp.tensor(rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in), requires_grad=True))
        params.append(bnp.tensor(0.5 * rng.standard_normal(fan_out), requires_grad=True))
    x = bnp.tensor(rng.standard_normal((batch, sizes[0])) * 2 + 1)
    if loss == "ce":
        y = backend.asarray(rng.integers(0, sizes[-1], batch))
    else:
        y = bnp.tensor(rng.standard_normal((batch, sizes[-1])))

    def loss_fn():
        h = F.mlp(x, params, F.tanh)
        return F.cross_entropy(h, y) if loss == "ce" else F.mse_loss(h, y)

    return params, loss_fn


@given(st.integers(0, 2**16), st.sampled_from(["ce", "mse"]), st.integers(0, 1))
def test_layer_block_is_the_permuted_dense_hessian(seed, loss, layer):
    params, loss_fn = _mlp(seed, loss=loss)
    W, b = params[2 * layer], params[2 * layer + 1]
    out, n = W.shape
    dense = _np(bnp.hessian(loss_fn, [W, b]))  # [W row-major, then b]
    # neuron-major theta: neuron i's weights (dense index i*n + j), then its bias (dense index out*n + i)
    order = [k for i in range(out) for k in [*(i * n + j for j in range(n)), out * n + i]]
    block = _np(curvature.layer_block(loss_fn, W, b))
    np.testing.assert_array_equal(block, dense[np.ix_(order, order)])
    np.testing.assert_array_equal(_np(curvature.layer_block(loss_fn, W)), dense[: out * n, : out * n])


@given(st.integers(0, 2**16), st.sampled_from(["ce", "mse"]), st.integers(0, 1))
def test_neuron_block_is_a_diagonal_block_of_the_layer(seed, loss, layer):
    params, loss_fn = _mlp(seed, loss=loss)
    W, b = params[2 * layer], params[2 * layer + 1]
    out, n = W.shape
    block = _np(curvature.layer_block(loss_fn, W, b))
    scale = np.abs(block).max()
    for i in range(out):
        sl = slice(i * (n + 1), (i + 1) * (n + 1))
        np.testing.assert_allclose(_np(curvature.neuron_block(loss_fn, W, b, i)), block[sl, sl],
                                   rtol=1e-12, atol=1e-14 * scale)
        np.testing.assert_allclose(_np(curvature.neuron_block(loss_fn, W, None, i)), block[sl, sl][:n, :n],
                                   rtol=1e-12, atol=1e-14 * scale)


def test_conv_layer_block_treats_each_output_channel_as_a_neuron():
    rng = np.random.default_rng(0)
    x = bnp.tensor(rng.standard_normal((2, 2, 4, 4)))
    W = bnp.tensor(rng.standard_normal((3, 2, 2, 2)) * 0.5, requires_grad=True)
    b = bnp.tensor(rng.standard_normal(3) * 0.1, requires_grad=True)
    target = bnp.tensor(rng.standard_normal((2, 3 * 3 * 3)))
    loss_fn = lambda: F.mse_loss(F.flatten(F.tanh(F.conv2d(x, W, b))), target)
    dense = _np(curvature.dense_hessian(loss_fn, [W, b]))
    out, n = 3, 8
    order = [k for i in range(out) for k in [*(i * n + j for j in range(n)), out * n + i]]
    block = _np(curvature.layer_block(loss_fn, W, b))
    np.testing.assert_array_equal(block, dense[np.ix_(order, order)])
    np.testing.assert_allclose(_np(curvature.neuron_block(loss_fn, W, b, 2)), block[18:, 18:], rtol=1e-12,
                               atol=1e-14 * np.abs(block).max())


def test_dense_hessian_is_symmetric_and_matches_finite_differences_of_the_gradient():
    """THEORY section 5's checks: symmetry, and central differences of the gradient (relative error < 1e-6)."""
    params, loss_fn = _mlp(3, sizes=(3, 4, 3), loss="ce")
    H = _np(curvature.dense_hessian(loss_fn, params))
    scale = np.abs(H).max()
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-13 * scale)

    def flat_grad():
        return np.concatenate([_np(g.data).ravel() for g in bnp.grad(loss_fn(), params)])

    step = 1e-5
    columns = []
    for p in params:
        for idx in np.ndindex(p.shape):
            original = p.data[idx]
            p.data[idx] = original + step
            plus = flat_grad()
            p.data[idx] = original - step
            minus = flat_grad()
            p.data[idx] = original
            columns.append((plus - minus) / (2 * step))
    fd = np.stack(columns, axis=1)
    assert np.abs(fd - H).max() / scale < 1e-6


def test_flat_hvp_is_the_dense_hessian_times_a_vector():
    params, loss_fn = _mlp(5)
    H = _np(curvature.dense_hessian(loss_fn, params))
    v = np.random.default_rng(1).standard_normal(H.shape[0])
    np.testing.assert_allclose(_np(curvature.flat_hvp(loss_fn, params)(backend.asarray(v))), H @ v,
                               rtol=1e-11, atol=1e-13 * np.abs(H).sum())


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
    ritz = _np(curvature.lanczos(apply, n, 30, seed=seed))
    # isolated extremes converge fast (in 30 steps to ~1e-12 over 300 seeds tried); the bulk need not
    assert abs(ritz[-1] - w[-1]) <= 1e-10 * w[-1]
    assert abs(ritz[-2] - w[-2]) <= 1e-10 * w[-1]
    assert abs(ritz[0] - w[0]) <= 1e-9 * w[-1]
    # Cauchy interlacing: every Ritz value lies inside the spectrum
    assert ritz[0] >= w[0] - 1e-12 * w[-1] and ritz[-1] <= w[-1] * (1 + 1e-12)
    # with k = n the Ritz values are the whole spectrum
    np.testing.assert_allclose(_np(curvature.lanczos(apply, n, n, seed=seed)), w, rtol=0, atol=1e-10 * w[-1])


@given(st.integers(0, 2**16), st.sampled_from(["ce", "mse"]))
def test_lanczos_on_a_network_hessian(seed, loss):
    params, loss_fn = _mlp(seed, sizes=(3, 5, 3), loss=loss)
    H = _np(curvature.dense_hessian(loss_fn, params))
    w = np.linalg.eigvalsh((H + H.T) / 2)
    n = H.shape[0]
    hvp_fn = curvature.flat_hvp(loss_fn, params)
    scale = np.abs(w).max()
    full = _np(curvature.lanczos(hvp_fn, n, n, seed=seed))
    np.testing.assert_allclose(full, w[: len(full)] if len(full) == n else full, rtol=0, atol=1e-9 * scale)
    assert abs(full[0] - w[0]) <= 1e-9 * scale and abs(full[-1] - w[-1]) <= 1e-9 * scale
    part = _np(curvature.lanczos(hvp_fn, n, n // 2, seed=seed))
    assert part[0] >= w[0] - 1e-10 * scale and part[-1] <= w[-1] + 1e-10 * scale  # interlacing
    assert abs(part[-1] - w[-1]) <= 1e-3 * scale  # the largest converges in n/2 steps


def test_hutchinson_is_exact_for_a_diagonal_matrix():
    d = np.array([3.0, -1.0, 0.5, 7.0])
    est = curvature.hutchinson_trace(lambda v: backend.asarray(d) * v, 4, samples=5, seed=1)
    assert est.mean == pytest.approx(d.sum(), rel=1e-15) and est.stderr == 0.0 and est.samples == 5


@given(st.integers(0, 2**16))
def test_hutchinson_is_unbiased_with_the_rademacher_variance(seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((12, 12))
    A = A + A.T
    samples = 2000
    est = curvature.hutchinson_trace(lambda v: backend.asarray(A) @ v, 12, samples, seed=seed)
    # Var(v^T A v) = 2 sum_{i != j} A_ij^2 for Rademacher v
    sd = math.sqrt(2 * (np.sum(A * A) - np.sum(np.diag(A) ** 2)))
    assert abs(est.stderr * math.sqrt(samples) / sd - 1) < 0.15
    assert abs(est.mean - np.trace(A)) <= 5 * sd / math.sqrt(samples)


def test_hutchinson_on_a_network_hessian_within_a_few_standard_errors():
    params, loss_fn = _mlp(7, sizes=(3, 5, 3))
    H = _np(curvature.dense_hessian(loss_fn, params))
    hits = 0
    for seed in range(4):
        est = curvature.hutchinson_trace(curvature.flat_hvp(loss_fn, params), H.shape[0], 60, seed=seed)
        assert est.stderr > 0
        hits += abs(est.mean - np.trace(H)) <= 2 * est.stderr
        assert abs(est.mean - np.trace(H)) <= 5 * est.stderr
    assert hits >= 2  # about 95% should fall within 2 standard errors


def test_condition_numbers_in_both_conventions():
    H = backend.asarray(np.diag([4.0, 2.0, 1e-13, 0.0]))
    c = curvature.condition_numbers(H, rank_rtol=1e-10)
    assert c.kappa_abs == math.inf and c.kappa_psd == 2.0 and c.rank == 2 and c.is_psd
    assert (c.lambda_min, c.lambda_max, c.rank_rtol) == (0.0, 4.0, 1e-10)
    c = curvature.condition_numbers(backend.asarray(np.diag([4.0, 2.0, 1e-13])), rank_rtol=1e-15)
    assert c.kappa_abs == pytest.approx(4e13) and c.kappa_psd == pytest.approx(4e13) and c.rank == 3
    c = curvature.condition_numbers(backend.asarray(np.diag([3.0, -1.0, 0.5])))
    assert c.kappa_abs == 6.0 and not c.is_psd and math.isnan(c.kappa_psd) and c.rank == 3
    # a rotation does not change them; the symmetric part is used
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    A = Q @ np.diag([3.0, 1.5, 0.5]) @ Q.T + 1e-14 * np.triu(np.ones((3, 3)), 1)
    assert curvature.condition_numbers(backend.asarray(A)).kappa_psd == pytest.approx(6.0, rel=1e-12)
    np.testing.assert_allclose(_np(curvature.eigenvalues(backend.asarray(A))), [0.5, 1.5, 3.0], rtol=1e-12)


def test_bad_input_is_named():
    params, loss_fn = _mlp(0)
    W, b = params[0], params[1]
    with pytest.raises(ValueError, match=r"layer_block: expected a bias of shape \(4,\)"):
        curvature.layer_block(loss_fn, W, params[3])
    with pytest.raises(ValueError, match="neuron_block: neuron index 9 out of range"):
        curvature.neuron_block(loss_fn, W, b, 9)
    with pytest.raises(ValueError, match="lanczos"):
        curvature.lanczos(lambda v: v, 3, 4)
    with pytest.raises(ValueError, match="hutchinson_trace"):
        curvature.hutchinson_trace(lambda v: v, 3, 0)


def test_a_parameter_the_loss_ignores_has_a_zero_block():
    params, loss_fn = _mlp(1)
    unused = bnp.tensor(np.ones((2, 3)), requires_grad=True)
    np.testing.assert_array_equal(_np(curvature.neuron_block(loss_fn, unused, None, 0)), np.zeros((3, 3)))
    # a loss linear in the parameter: gradient constant, Hessian zero
    x = bnp.tensor(np.arange(6.0).reshape(2, 3))
    W = bnp.tensor(np.ones((2, 3)), requires_grad=True)
    np.testing.assert_array_equal(_np(curvature.neuron_block(lambda: (x @ W.T).sum(), W, None, 1)), 0.0)
