"""max_pool2d and avg_pool2d: PyTorch as reference (ties included), finite
differences to second order, batched upstream gradients, the adjoint pairs of
window primitives behind them, and the layers' input checks.
"""

from __future__ import annotations

import numpy as np
import pytest
from grad_checks import assert_batched_equals_stacked
from hypothesis import given
from hypothesis import strategies as st

import bnp
import bnp.functional as F
from bnp import nn
from bnp.autograd.im2col import window_argmax, window_pick, window_place, window_positions, window_spread, window_sum
from bnp.testing import gradcheck, gradgradcheck

POOLS = {"max": F.max_pool2d, "avg": F.avg_pool2d}


@st.composite
def pool_geometries(draw, max_side: int = 6):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    h = draw(st.integers(kernel[0], max_side))
    w = draw(st.integers(kernel[1], max_side))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w)
    return shape, kernel, stride


def distinct_values(rng, shape):
    """All entries different by >= 0.1: finite differences never cross a tie of the max."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - 0.05 * n + rng.uniform(-0.02, 0.02, n)).reshape(shape)


seeds = st.integers(0, 2**32 - 1)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(geom=pool_geometries(), seed=seeds)
def test_pool_matches_torch(kind, geom, seed):
    torch = pytest.importorskip("torch")
    shape, kernel, stride = geom
    rng = np.random.default_rng(seed)
    x = distinct_values(rng, shape)
    ours_x = bnp.tensor(x, requires_grad=True)
    out = POOLS[kind](ours_x, kernel, stride)
    theirs_x = torch.tensor(x, requires_grad=True)
    ref = getattr(torch.nn.functional, f"{kind}_pool2d")(theirs_x, kernel, stride)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    up = rng.standard_normal(out.shape)
    (g,) = bnp.grad(out, [ours_x], grad_outputs=up)
    (r,) = torch.autograd.grad(ref, [theirs_x], grad_outputs=torch.tensor(up))
    np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(geom=pool_geometries(max_side=5), seed=seeds)
def test_pool_first_and_second_derivatives(kind, geom, seed):
    shape, kernel, stride = geom
    x = bnp.tensor(distinct_values(np.random.default_rng(seed), shape))
    pool = POOLS[kind]
    gradcheck(lambda a: pool(a, kernel, stride), [x])
    gradgradcheck(lambda a: pool(a, kernel, stride) ** 2, [x])


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(geom=pool_geometries(max_side=5), seed=seeds)
def test_pool_batched_upstream_gradients_equal_stacked_ones(kind, geom, seed):
    shape, kernel, stride = geom
    rng = np.random.default_rng(seed)
    x = bnp.tensor(distinct_values(rng, shape), requires_grad=True)
    out = POOLS[kind](x, kernel, stride)
    ups = rng.standard_normal((3, *out.shape))
    assert_batched_equals_stacked(out, [x], ups, rtol=1e-12, atol=1e-12)


@given(geom=pool_geometries(), seed=seeds)
def test_window_primitives_are_adjoint_pairs(geom, seed):
    shape, kernel, stride = geom
    stride = kernel if stride is None else stride  # the primitives take explicit pairs
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    out_hw = window_positions(shape[2:], kernel, stride)
    g = rng.standard_normal(shape[:2] + out_hw)
    which = rng.integers(0, kernel[0] * kernel[1], shape[:2] + out_hw)
    summed = window_sum(bnp.tensor(x), kernel, stride).numpy()
    spread = window_spread(bnp.tensor(g), shape[2:], kernel, stride).numpy()
    assert np.isclose(np.sum(summed * g), np.sum(x * spread), rtol=1e-12)
    picked = window_pick(bnp.tensor(x), which, kernel, stride).numpy()
    placed = window_place(bnp.tensor(g), which, shape[2:], kernel, stride).numpy()
    assert np.isclose(np.sum(picked * g), np.sum(x * placed), rtol=1e-12)
    top, arg = window_argmax(x, kernel, stride)
    np.testing.assert_array_equal(window_pick(bnp.tensor(x), arg, kernel, stride).numpy(), top)


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 1), ((2, 3), (1, 2))])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum_like_torch(kernel, stride):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).integers(0, 3, (2, 2, 6, 7)).astype(float)  # many ties
    ours = bnp.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out, ref = F.max_pool2d(ours, kernel, stride), torch.nn.functional.max_pool2d(theirs, kernel, stride)
    up = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(up)
    ref.backward(torch.tensor(up))
    np.testing.assert_array_equal(out.numpy(), ref.detach().numpy())
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool_values_and_gradient_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    xt = bnp.tensor(x, requires_grad=True)
    out = F.max_pool2d(xt, 2)
    np.testing.assert_array_equal(out.numpy(), [[[[5, 7], [13, 15]]]])
    out.backward(np.ones((1, 1, 2, 2)))
    expected = np.zeros((4, 4))
    expected[[1, 1, 3, 3], [1, 3, 1, 3]] = 1
    np.testing.assert_array_equal(xt.grad.numpy()[0, 0], expected)
    # overlapping windows (stride 1): each 3x3 window's bottom-right corner is its maximum
    out = F.max_pool2d(bnp.tensor(x), 3, 1)
    np.testing.assert_array_equal(out.numpy(), [[[[10, 11], [14, 15]]]])


def test_odd_sizes_drop_the_incomplete_window_like_torch():
    x = bnp.tensor(np.arange(25.0).reshape(1, 1, 5, 5), requires_grad=True)
    out = F.avg_pool2d(x, 2)
    assert out.shape == (1, 1, 2, 2)
    out.backward(np.ones((1, 1, 2, 2)))
    assert np.all(x.grad.numpy()[0, 0, 4, :] == 0) and np.all(x.grad.numpy()[0, 0, :, 4] == 0)
    np.testing.assert_allclose(x.grad.numpy()[0, 0, :4, :4], 0.25)


def test_pool_layers():
    x = bnp.tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)))
    for layer, fn in ((nn.MaxPool2d(2), F.max_pool2d), (nn.AvgPool2d(3, stride=1), F.avg_pool2d)):
        np.testing.assert_array_equal(layer(x).numpy(), fn(x, layer.kernel_size, layer.stride).numpy())
    assert nn.MaxPool2d(2).stride == (2, 2) and nn.AvgPool2d((2, 3), 1).stride == (1, 1)
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2))"


def test_pool_errors():
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=\(2, 2\), stride=\(2, 2\)\): expected input of "
                       r"shape \(N, C, H, W\) with H >= 2, W >= 2, got \(4, 10\)"):
        nn.MaxPool2d(2)(bnp.tensor(np.zeros((4, 10))))
    with pytest.raises(ValueError, match=r"got \(1, 1, 1, 5\)"):
        nn.AvgPool2d(2)(bnp.tensor(np.zeros((1, 1, 1, 5))))
    with pytest.raises(ValueError, match=r"max_pool2d: kernel \(3, 3\) is larger than the input's spatial size"):
        F.max_pool2d(bnp.tensor(np.zeros((1, 1, 2, 2))), 3)
    with pytest.raises(ValueError, match="must be >= 1"):
        nn.MaxPool2d(0)
