"""im2col (unfold / fold) and conv2d: adjointness, finite differences to second
order, batched upstream gradients, and PyTorch as a reference.

Shapes, strides and paddings are drawn by hypothesis (tiny: finite differences
of second order cost two gradients per input entry).
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
from bnp.autograd.im2col import fold, unfold, window_positions
from bnp.testing import gradcheck, gradgradcheck


@st.composite
def geometries(draw, max_side: int = 5, max_channels: int = 2, max_batch: int = 2):
    """(N, C, H, W), kernel, stride, padding with at least one window position."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), max_side))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), max_side))
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), h, w)
    return shape, kernel, stride, padding


seeds = st.integers(0, 2**32 - 1)


def t(a, requires_grad=False):
    return bnp.tensor(a, requires_grad=requires_grad)


# -- unfold / fold ------------------------------------------------------------------
@given(geometries(), seeds)
def test_unfold_matches_torch_and_fold_is_its_adjoint(geom, seed):
    torch = pytest.importorskip("torch")
    shape, kernel, stride, padding = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = unfold(t(x), kernel, stride, padding).numpy()
    expected = torch.nn.functional.unfold(torch.tensor(x), kernel, padding=padding, stride=stride).numpy()
    np.testing.assert_allclose(cols, expected, rtol=0, atol=0)
    c = rng.standard_normal(cols.shape)
    back = fold(t(c), shape[2:], kernel, stride, padding).numpy()
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12, atol=1e-12)  # <Ux, c> = <x, U^T c>
    ref = torch.nn.functional.fold(torch.tensor(c), shape[2:], kernel, padding=padding, stride=stride).numpy()
    np.testing.assert_allclose(back, ref, rtol=1e-12, atol=1e-12)


def test_unfold_adjointness_without_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5))
    cols = unfold(t(x), (3, 2), (2, 1), (1, 0)).numpy()
    assert cols.shape == (2, 3 * 3 * 2, 3 * 4)
    # row c*kh*kw + i*kw + j, column oh*OW + ow holds padded[c, oh*sh + i, ow*sw + j]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    assert cols[1, 2 * 6 + 1 * 2 + 1, 2 * 4 + 3] == padded[1, 2, 2 * 2 + 1, 3 * 1 + 1]
    c = rng.standard_normal(cols.shape)
    back = fold(t(c), (6, 5), (3, 2), (2, 1), (1, 0)).numpy()
    assert np.isclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)


@given(geometries(max_side=4), seeds)
def test_unfold_and_fold_derivatives(geom, seed):
    shape, kernel, stride, padding = geom
    rng = np.random.default_rng(seed)
    x = t(rng.standard_normal(shape))
    gradcheck(lambda a: unfold(a, kernel, stride, padding), [x])
    gradgradcheck(lambda a: unfold(a, kernel, stride, padding) ** 2, [x])  # squared: a non-zero second derivative
    oh, ow = window_positions(shape[2:], kernel, stride, padding)
    c = t(rng.standard_normal((shape[0], shape[1] * kernel[0] * kernel[1], oh * ow)))
    gradcheck(lambda a: fold(a, shape[2:], kernel, stride, padding), [c])
    gradgradcheck(lambda a: fold(a, shape[2:], kernel, stride, padding) ** 2, [c])


def test_unfold_keeps_extra_leading_axes():
    x = np.random.default_rng(1).standard_normal((2, 3, 2, 5, 4))
    many = unfold(t(x), (2, 2), (1, 1), (1, 1)).numpy()
    one = np.stack([unfold(t(x[k]), (2, 2), (1, 1), (1, 1)).numpy() for k in range(2)])
    np.testing.assert_array_equal(many, one)


def test_unfold_errors():
    with pytest.raises(ValueError, match=r"unfold: kernel \(4, 4\) is larger than the padded input \(3, 3\)"):
        unfold(t(np.zeros((1, 1, 3, 3))), (4, 4))
    with pytest.raises(ValueError, match=r"unfold: expected input of shape \(N, C, H, W\), got \(3, 3\)"):
        unfold(t(np.zeros((3, 3))), (2, 2))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        unfold(t(np.zeros((1, 1, 3, 3))), (2, 2), stride=(0, 1))
    with pytest.raises(ValueError, match="fold: input of shape"):
        fold(t(np.zeros((1, 5, 4))), (3, 3), (2, 2))
    # the primitives take parsed (h, w) pairs; parsing user arguments is F.conv2d's job
    with pytest.raises(TypeError, match=r"unfold: kernel_size must be a pair of ints \(h, w\), got 2"):
        unfold(t(np.zeros((1, 1, 3, 3))), 2)


# -- conv2d ---------------------------------------------------------------------------
def _conv_case(geom, seed, out_channels=2, bias=True):
    shape, kernel, stride, padding = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((out_channels, shape[1], *kernel))
    b = rng.standard_normal(out_channels) if bias else None
    return x, w, b, stride, padding


@given(geometries(), seeds, st.booleans())
def test_conv2d_matches_torch(geom, seed, bias):
    torch = pytest.importorskip("torch")
    x, w, b, stride, padding = _conv_case(geom, seed, bias=bias)
    xs = [t(a, True) for a in (x, w) + ((b,) if bias else ())]
    out = F.conv2d(xs[0], xs[1], xs[2] if bias else None, stride, padding)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w) + ((b,) if bias else ())]
    ref = torch.nn.functional.conv2d(ts[0], ts[1], ts[2] if bias else None, stride, padding)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    up = np.random.default_rng(seed + 1).standard_normal(out.shape)
    ours = bnp.grad(out, xs, grad_outputs=up)
    theirs = torch.autograd.grad(ref, ts, grad_outputs=torch.tensor(up))
    for a, r in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-10, atol=1e-12)


@given(geometries(max_side=4, max_batch=1), seeds)
def test_conv2d_first_and_second_derivatives(geom, seed):
    x, w, b, stride, padding = _conv_case(geom, seed)

    def conv(a, wt, bias):
        return F.conv2d(a, wt, bias, stride, padding)

    inputs = [t(x), t(w), t(b)]
    gradcheck(conv, inputs)
    # conv is bilinear in (x, w): its second derivatives are the cross terms
    gradgradcheck(conv, inputs)
    gradgradcheck(lambda a, wt, bias: conv(a, wt, bias) ** 2, inputs)


@given(geometries(max_side=4), seeds)
def test_conv2d_batched_upstream_gradients_equal_stacked_ones(geom, seed):
    x, w, b, stride, padding = _conv_case(geom, seed)
    xs = [t(x, True), t(w, True), t(b, True)]
    out = F.conv2d(*xs, stride=stride, padding=padding)
    ups = np.random.default_rng(seed + 7).standard_normal((3, *out.shape))
    assert_batched_equals_stacked(out, xs, ups, rtol=1e-12, atol=1e-12)


def test_conv2d_hessian_of_a_small_loss_matches_finite_differences():
    """bnp.hessian pushes a batch of upstream gradients through unfold/fold twice."""
    rng = np.random.default_rng(3)
    x = t(rng.standard_normal((2, 1, 4, 4)))
    w = t(rng.standard_normal((2, 1, 2, 2)), True)

    def loss():
        return (F.conv2d(x, w, stride=1, padding=1).tanh() ** 2).sum()

    H = np.asarray(bnp.hessian(loss, [w]))
    assert np.allclose(H, H.T, atol=1e-10)
    g0 = w.data.copy()
    eps = 1e-5
    numeric = np.zeros((w.size, w.size))
    for k in range(w.size):
        for sign in (1, -1):
            w.data = g0.copy()
            w.data.reshape(-1)[k] += sign * eps
            (gk,) = bnp.grad(loss(), [w])
            numeric[:, k] += sign * gk.numpy().reshape(-1) / (2 * eps)
    w.data = g0
    np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-7)


def test_conv2d_keeps_float32():
    x = bnp.tensor(np.ones((2, 3, 5, 5)), requires_grad=True, dtype="float32")
    w = bnp.tensor(np.ones((4, 3, 3, 3)), requires_grad=True, dtype="float32")
    out = F.conv2d(x, w, bnp.tensor(np.zeros(4), dtype="float32"), padding=1)
    out.sum().backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32
    assert out.numpy()[0, 0, 2, 2] == 27 and out.numpy()[0, 0, 0, 0] == 12


def test_conv2d_errors():
    x = t(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels .* expects 4"):
        F.conv2d(x, t(np.zeros((2, 4, 3, 3))))
    with pytest.raises(ValueError, match=r"conv2d: expected input of shape \(N, C, H, W\), got \(2, 75\)"):
        F.conv2d(t(np.zeros((2, 75))), t(np.zeros((2, 3, 3, 3))))
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(2,\)"):
        F.conv2d(x, t(np.zeros((2, 3, 3, 3))), t(np.zeros(3)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(x, t(np.zeros((2, 3, 7, 7))))


def test_functional_conv_and_pool_validate_like_the_layers():
    x = t(np.zeros((1, 1, 4, 4)))
    w = t(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"conv2d: kernel_size and stride must be >= 1 and padding >= 0"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: .*padding=\(-1, -1\)"):
        F.conv2d(x, w, padding=-1)
    with pytest.raises(TypeError, match=r"conv2d: stride must be an int or a pair of ints, got \(1\.5, 1\)"):
        F.conv2d(x, w, stride=(1.5, 1))
    with pytest.raises(TypeError, match=r"Conv2d: kernel_size must be an int or a pair of ints, got \(3\.0, 3\.0\)"):
        nn.Conv2d(1, 1, (3.0, 3.0))  # refused, not truncated
    with pytest.raises(TypeError, match=r"max_pool2d: kernel_size must be an int or a pair of ints, got True"):
        F.max_pool2d(x, True)
    with pytest.raises(ValueError, match=r"avg_pool2d: kernel_size and stride must be >= 1"):
        F.avg_pool2d(x, 2, stride=0)


def test_functional_unfold_and_fold_parse_their_arguments_like_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 5))
    cols = F.unfold(t(x), 3, stride=2, padding=1).numpy()
    np.testing.assert_allclose(cols, torch.nn.functional.unfold(torch.tensor(x), 3, padding=1, stride=2).numpy())
    back = F.fold(t(cols), (6, 5), 3, stride=2, padding=1).numpy()
    ref = torch.nn.functional.fold(torch.tensor(cols), (6, 5), 3, padding=1, stride=2).numpy()
    np.testing.assert_allclose(back, ref, rtol=1e-12)
    with pytest.raises(TypeError, match=r"unfold: kernel_size must be an int or a pair of ints, got 2\.5"):
        F.unfold(t(x), 2.5)
