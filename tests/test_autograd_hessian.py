"""Second-order tools: ``bnp.hessian``, ``bnp.hvp`` and ``bnp.jacobian`` against
closed forms and central finite differences of the gradient, in float64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bnp
import bnp.functional as F


def _mlp(rng, sizes, activation="tanh", loss="mse", n=6):
    """Leaf parameters (w, b per layer) and a loss closure of a small MLP."""
    params = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        params.append(bnp.tensor(rng.standard_normal((d_out, d_in)) / np.sqrt(d_in), requires_grad=True))
        params.append(bnp.tensor(rng.standard_normal(d_out) * 0.1, requires_grad=True))
    x = bnp.tensor(rng.standard_normal((n, sizes[0])))
    act = {"tanh": F.tanh, "sigmoid": F.sigmoid, "relu": F.relu}[activation]
    y = rng.integers(0, sizes[-1], n) if loss == "ce" else bnp.tensor(rng.standard_normal((n, sizes[-1])))

    def loss_fn():
        h = F.mlp(x, params, act)
        return F.cross_entropy(h, y) if loss == "ce" else F.mse_loss(h, y)

    return params, loss_fn


def _flat_grad(loss_fn, params) -> np.ndarray:
    return np.concatenate([g.numpy().ravel() for g in bnp.grad(loss_fn(), params)])


def _finite_difference_hessian(loss_fn, params, eps=1e-5) -> np.ndarray:
    """Column j: central difference of the gradient along parameter entry j."""
    columns = []
    for p in params:
        for j in range(p.size):
            flat = p.data.reshape(-1)  # a view: perturb in place, then restore
            saved = flat[j]
            flat[j] = saved + eps
            plus = _flat_grad(loss_fn, params)
            flat[j] = saved - eps
            minus = _flat_grad(loss_fn, params)
            flat[j] = saved
            columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=1)


@given(
    seed=st.integers(0, 2**32 - 1),
    hidden=st.lists(st.integers(1, 4), min_size=0, max_size=2),
    activation=st.sampled_from(["tanh", "sigmoid", "relu"]),
    loss=st.sampled_from(["mse", "ce"]),
)
def test_hessian_is_symmetric(seed, hidden, activation, loss):
    params, loss_fn = _mlp(np.random.default_rng(seed), [3, *hidden, 2], activation, loss)
    H = bnp.hessian(loss_fn, params)
    n = sum(p.size for p in params)
    assert H.shape == (n, n)
    np.testing.assert_allclose(H, H.T, atol=1e-12 * max(1.0, np.abs(H).max()))


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6))
def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose(seed, n):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    x = bnp.tensor(rng.standard_normal(n), requires_grad=True)
    H = bnp.hessian(lambda: x @ (bnp.tensor(A) @ x), x)
    np.testing.assert_allclose(H, A + A.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "sizes, activation, loss",
    [([3, 4, 2], "tanh", "mse"), ([2, 3, 3, 3], "sigmoid", "ce"), ([4, 5, 3], "relu", "ce"), ([1, 1], "tanh", "mse")],
)
def test_hessian_equals_finite_differences_of_the_gradient(sizes, activation, loss):
    params, loss_fn = _mlp(np.random.default_rng(7), sizes, activation, loss)
    H = bnp.hessian(loss_fn, params)
    H_fd = _finite_difference_hessian(loss_fn, params)
    assert np.linalg.norm(H - H_fd) <= 1e-6 * np.linalg.norm(H)


def test_hvp_agrees_with_the_dense_hessian():
    rng = np.random.default_rng(3)
    params, loss_fn = _mlp(rng, [3, 4, 2], "tanh", "ce")
    H = bnp.hessian(loss_fn, params)
    vs = [rng.standard_normal(p.shape) for p in params]
    Hv = bnp.hvp(loss_fn, params, vs)
    # results of differentiation are backend arrays shaped like the params, as bnp.hessian's
    assert all(bnp.backend.is_array(h) for h in Hv) and [h.shape for h in Hv] == [p.shape for p in params]
    flat_v = np.concatenate([v.ravel() for v in vs])
    np.testing.assert_allclose(np.concatenate([h.ravel() for h in Hv]), H @ flat_v, rtol=1e-10, atol=1e-12)
    single = bnp.hvp(loss_fn, params[0], bnp.tensor(vs[0]))  # one param, one Tensor vector
    H00 = bnp.hessian(loss_fn, params[0])
    np.testing.assert_allclose(single[0].ravel(), H00 @ vs[0].ravel(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000])
def test_chunk_size_gives_the_same_matrix(chunk_size):
    params, loss_fn = _mlp(np.random.default_rng(5), [3, 3, 2], "sigmoid", "mse")
    np.testing.assert_allclose(bnp.hessian(loss_fn, params, chunk_size=chunk_size), bnp.hessian(loss_fn, params))


def test_hessian_of_a_subset_of_the_leaves_is_the_matching_block():
    params, loss_fn = _mlp(np.random.default_rng(11), [3, 4, 2], "tanh", "ce")
    full = bnp.hessian(loss_fn, params)
    start = params[0].size + params[1].size
    stop = start + params[2].size + params[3].size
    np.testing.assert_allclose(bnp.hessian(loss_fn, params[2:]), full[start:stop, start:stop], rtol=1e-12, atol=1e-14)


def test_a_param_unused_by_the_loss_gives_zero_rows_and_columns():
    params, loss_fn = _mlp(np.random.default_rng(2), [3, 2, 1], "tanh", "mse")
    unused = bnp.tensor(np.ones((2, 2)), requires_grad=True)
    H = bnp.hessian(loss_fn, [params[0], unused, params[1]])
    k = params[0].size
    assert np.all(H[k : k + 4] == 0) and np.all(H[:, k : k + 4] == 0)
    assert np.abs(H[:k, :k]).max() > 0
    Hv = bnp.hvp(loss_fn, [unused, params[0]], [np.ones((2, 2)), np.ones(params[0].shape)])
    assert np.all(Hv[0] == 0) and np.abs(Hv[1]).max() > 0


def test_a_loss_linear_in_the_params_has_a_zero_hessian():
    w = bnp.tensor([1.0, -2.0, 0.5], requires_grad=True)
    x = bnp.tensor([0.3, 0.1, 2.0])

    def loss_fn():
        return (w * x).sum() + 4.0

    np.testing.assert_array_equal(bnp.hessian(loss_fn, w), np.zeros((3, 3)))
    np.testing.assert_array_equal(bnp.hvp(loss_fn, w, np.ones(3))[0], np.zeros(3))


def test_jacobian_against_finite_differences():
    rng = np.random.default_rng(4)
    a = bnp.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = bnp.tensor(rng.standard_normal(3), requires_grad=True)

    def fn():
        return F.tanh(a * b) @ b.exp()  # shape (2,)

    J = bnp.jacobian(fn, [a, b])
    assert J.shape == (2, 9)
    eps, columns = 1e-6, []
    for p in (a, b):
        flat = p.data.reshape(-1)
        for j in range(p.size):
            saved = flat[j]
            flat[j] = saved + eps
            plus = fn().numpy()
            flat[j] = saved - eps
            minus = fn().numpy()
            flat[j] = saved
            columns.append((plus - minus) / (2 * eps))
    np.testing.assert_allclose(J, np.stack(columns, axis=-1), rtol=1e-7, atol=1e-9)
    M = bnp.jacobian(lambda: a * 2.0, a)  # a matrix-valued function: shape out.shape + (n,)
    np.testing.assert_allclose(M, 2.0 * np.eye(6).reshape(2, 3, 6))
    np.testing.assert_array_equal(bnp.jacobian(lambda: bnp.tensor([1.0, 2.0]), a), np.zeros((2, 6)))


def test_second_order_tools_reject_bad_input():
    w = bnp.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="one-element Tensor"):
        bnp.hessian(lambda: w * w, w)
    with pytest.raises(ValueError, match=r"params\[0\].*does not require grad"):
        bnp.hessian(lambda: (w * w).sum(), bnp.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="2 vectors for 1 params"):
        bnp.hvp(lambda: (w * w).sum(), [w], [np.ones(2), np.ones(2)])
    with pytest.raises(ValueError, match=r"hvp: loss_fn must return a one-element Tensor, got \(2,\)"):
        bnp.hvp(lambda: w * w, w, np.ones(2))
    with pytest.raises(ValueError, match=r"hvp: params\[0\].*does not require grad"):
        bnp.hvp(lambda: (w * w).sum(), bnp.tensor([1.0, 2.0]), np.ones(2))
    with pytest.raises(ValueError, match=r"hvp: expected vectors\[0\] of the shape of params\[0\], \(2,\), got \(3,\)"):
        bnp.hvp(lambda: (w * w).sum(), w, np.ones(3))
    with pytest.raises(ValueError, match=r"hessian: expected params\[1\] to be a Tensor, got ndarray"):
        bnp.hessian(lambda: (w * w).sum(), [w, np.ones(2)])
    with pytest.raises(ValueError, match="hessian: expected at least one Tensor in params"):
        bnp.hessian(lambda: (w * w).sum(), [])
    with pytest.raises(ValueError, match=r"hessian: expected rows .* in \[0, 2\), got \[2\]"):
        bnp.hessian(lambda: (w * w).sum(), w, rows=[2])
    with pytest.raises(ValueError, match=r"jacobian: inputs\[0\].*does not require grad"):
        bnp.jacobian(lambda: w * 2.0, bnp.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="jacobian: fn must return a Tensor, got float"):
        bnp.jacobian(lambda: 1.0, w)


@given(st.integers(0, 2**16), st.integers(1, 6))
def test_selected_hessian_rows_are_those_of_the_dense_hessian(seed, count):
    rng = np.random.default_rng(seed)
    params, loss_fn = _mlp(rng, [3, 2, 2], "tanh", "ce")
    full = bnp.hessian(loss_fn, params)
    rows = rng.choice(full.shape[0], size=count, replace=False)
    np.testing.assert_array_equal(bnp.hessian(loss_fn, params, rows=rows), full[rows])
    np.testing.assert_array_equal(bnp.hessian(loss_fn, params, chunk_size=2, rows=rows), full[rows])
