"""bnp.curvature: layer and neuron blocks (on bnp.hessian) and H v on flat vectors."""


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
    dense = _np(bnp.hessian(loss_fn, [W, b]))
    out, n = 3, 8
    order = [k for i in range(out) for k in [*(i * n + j for j in range(n)), out * n + i]]
    block = _np(curvature.layer_block(loss_fn, W, b))
    np.testing.assert_array_equal(block, dense[np.ix_(order, order)])
    np.testing.assert_allclose(_np(curvature.neuron_block(loss_fn, W, b, 2)), block[18:, 18:], rtol=1e-12,
                               atol=1e-14 * np.abs(block).max())


def test_hessian_is_symmetric_and_matches_finite_differences_of_the_gradient():
    """THEORY section 5's checks: symmetry, and central differences of the gradient (relative error < 1e-6)."""
    params, loss_fn = _mlp(3, sizes=(3, 4, 3), loss="ce")
    H = _np(bnp.hessian(loss_fn, params))
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
    H = _np(bnp.hessian(loss_fn, params))
    v = np.random.default_rng(1).standard_normal(H.shape[0])
    np.testing.assert_allclose(_np(curvature.flat_hvp(loss_fn, params)(backend.asarray(v))), H @ v,
                               rtol=1e-11, atol=1e-13 * np.abs(H).sum())


def test_bad_input_is_named():
    params, loss_fn = _mlp(0)
    W, b = params[0], params[1]
    with pytest.raises(ValueError, match=r"layer_block: expected a bias of shape \(4,\)"):
        curvature.layer_block(loss_fn, W, params[3])
    with pytest.raises(ValueError, match="neuron_block: neuron index 9 out of range"):
        curvature.neuron_block(loss_fn, W, b, 9)
    with pytest.raises(ValueError, match=r"flat_hvp: expected a flat vector of shape \(26,\)"):
        curvature.flat_hvp(loss_fn, params)(backend.asarray(np.ones(3)))


def test_a_parameter_the_loss_ignores_has_a_zero_block():
    params, loss_fn = _mlp(1)
    unused = bnp.tensor(np.ones((2, 3)), requires_grad=True)
    np.testing.assert_array_equal(_np(curvature.neuron_block(loss_fn, unused, None, 0)), np.zeros((3, 3)))
    # a loss linear in the parameter: gradient constant, Hessian zero
    x = bnp.tensor(np.arange(6.0).reshape(2, 3))
    W = bnp.tensor(np.ones((2, 3)), requires_grad=True)
    np.testing.assert_array_equal(_np(curvature.neuron_block(lambda: (x @ W.T).sum(), W, None, 1)), 0.0)
