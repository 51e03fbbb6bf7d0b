"""Batch normalization: PyTorch conventions (biased variance to normalize,
unbiased in the running average), both modes, (N, C) and NCHW inputs, finite
differences to second order with a random upstream gradient (the gradient of a
sum through BN is exactly zero, so a sum would prove nothing), and the layers.
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
from bnp.testing import gradcheck, gradgradcheck

seeds = st.integers(0, 2**32 - 1)
# (N, C) or (N, C, H, W), with at least two values per channel (training needs them)
bn_shapes = st.one_of(
    st.tuples(st.integers(2, 4), st.integers(1, 3)),
    st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3)).filter(
        lambda s: s[0] * s[2] * s[3] >= 2
    ),
)


def _data(shape, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape) * rng.uniform(0.5, 2.0) + rng.uniform(-1, 1)
    return x, rng.uniform(0.5, 1.5, c), rng.standard_normal(c), rng.standard_normal(c), rng.uniform(0.5, 2.0, c)


@given(bn_shapes, seeds, st.booleans())
def test_batch_norm_matches_torch_in_both_modes(shape, seed, training):
    torch = pytest.importorskip("torch")
    x, w, b, rm, rv = _data(shape, seed)
    ours = [bnp.tensor(a, requires_grad=True) for a in (x, w, b)]
    our_rm, our_rv = rm.copy(), rv.copy()
    out = F.batch_norm(ours[0], our_rm, our_rv, ours[1], ours[2], training=training, momentum=0.3, eps=1e-3)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    ref = torch.nn.functional.batch_norm(theirs[0], t_rm, t_rv, theirs[1], theirs[2], training, 0.3, 1e-3)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(our_rm, t_rm.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(our_rv, t_rv.numpy(), rtol=1e-12, atol=1e-12)
    up = np.random.default_rng(seed + 1).standard_normal(shape)
    expected = torch.autograd.grad(ref, theirs, torch.tensor(up))
    for g, r in zip(bnp.grad(out, ours, grad_outputs=up), expected, strict=True):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-8, atol=1e-9)


def test_running_statistics_by_hand():
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 13.0]])
    rm, rv = np.zeros(2), np.ones(2)
    F.batch_norm(bnp.tensor(x), rm, rv, training=True, momentum=0.25)
    np.testing.assert_allclose(rm, 0.25 * x.mean(axis=0))
    np.testing.assert_allclose(rv, 0.75 + 0.25 * x.var(axis=0, ddof=1))  # unbiased: [4, 3]
    np.testing.assert_allclose(rv, [1.75, 1.5])


def test_training_normalizes_with_the_biased_batch_variance():
    x = np.random.default_rng(0).standard_normal((5, 3, 2, 2)) * 3 + 2
    y = F.batch_norm(bnp.tensor(x), None, None, training=True, eps=0.0).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-12)  # ddof=0


def test_eval_uses_running_statistics_and_changes_nothing():
    x = np.random.default_rng(1).standard_normal((4, 3))
    rm, rv = np.array([1.0, -1.0, 0.5]), np.array([4.0, 1.0, 0.25])
    y = F.batch_norm(bnp.tensor(x), rm, rv, eps=0.0).numpy()
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv))
    np.testing.assert_array_equal(rm, [1.0, -1.0, 0.5])
    # one sample is fine in eval mode
    assert F.batch_norm(bnp.tensor(x[:1]), rm, rv).shape == (1, 3)


@given(bn_shapes, seeds)
def test_training_mode_first_and_second_derivatives(shape, seed):
    x, w, b, _, _ = _data(shape, seed)

    def bn(a, weight, bias):  # no running statistics: repeated calls must not change anything
        return F.batch_norm(a, None, None, weight, bias, training=True, eps=1e-3)

    inputs = [bnp.tensor(a) for a in (x, w, b)]
    gradcheck(bn, inputs, atol=1e-6)
    gradgradcheck(bn, inputs, atol=1e-5)


@given(bn_shapes, seeds)
def test_eval_mode_first_and_second_derivatives(shape, seed):
    x, w, b, rm, rv = _data(shape, seed)

    def bn(a, weight, bias):
        return F.batch_norm(a, rm, rv, weight, bias, training=False) ** 2

    inputs = [bnp.tensor(a) for a in (x, w, b)]
    gradcheck(bn, inputs)
    gradgradcheck(bn, inputs)


@given(bn_shapes, seeds)
def test_batched_upstream_gradients_equal_stacked_ones(shape, seed):
    x, w, b, _, _ = _data(shape, seed)
    xs = [bnp.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.batch_norm(xs[0], None, None, xs[1], xs[2], training=True)
    ups = np.random.default_rng(seed + 3).standard_normal((3, *shape))
    assert_batched_equals_stacked(out, xs, ups, rtol=1e-10, atol=1e-12)


def test_gradient_of_a_sum_through_training_bn_is_zero():
    """Why the checks above use a random upstream gradient."""
    x = bnp.tensor(np.random.default_rng(2).standard_normal((6, 2)), requires_grad=True)
    F.batch_norm(x, None, None, training=True).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 0, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 3), (1, 2, 1, 1)])
def test_one_value_per_channel_in_training_raises(shape):
    with pytest.raises(ValueError, match=r"more than 1 value per channel .* shape \(" + ", ".join(map(str, shape))):
        F.batch_norm(bnp.tensor(np.zeros(shape)), np.zeros(shape[1]), np.ones(shape[1]), training=True)


def test_functional_errors():
    bad_rank = r"batch_norm: expected input of shape \(N, C\) or \(N, C, H, W\), got \(2, 3, 4\)"
    with pytest.raises(ValueError, match=bad_rank):
        F.batch_norm(bnp.tensor(np.zeros((2, 3, 4))), None, None, training=True)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\), got \(4,\)"):
        F.batch_norm(bnp.tensor(np.zeros((2, 3))), np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="eval mode"):
        F.batch_norm(bnp.tensor(np.zeros((2, 3))), None, None)


# -- the layers ---------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_module_tracks_statistics_like_torch(momentum):
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm2d(3, momentum=momentum)
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum).double()
    rng = np.random.default_rng(4)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 2, 2)) * 2 + 1
        np.testing.assert_allclose(ours(bnp.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-10)
    assert int(ours.num_batches_tracked) == 3 == int(theirs.num_batches_tracked)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), atol=1e-12)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(ours(bnp.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-10)
    assert int(ours.num_batches_tracked) == 3  # eval does not count


def test_batchnorm1d_module():
    bn = nn.BatchNorm1d(4)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(bn.weight.numpy(), 1)
    np.testing.assert_array_equal(bn.bias.numpy(), 0)
    x = bnp.tensor(np.random.default_rng(5).standard_normal((8, 4)))
    y = bn(x).numpy()
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    assert not np.allclose(bn.running_mean, 0)
    plain = nn.BatchNorm1d(4, affine=False)
    assert list(plain.parameters()) == [] and plain.weight is None
    np.testing.assert_allclose(plain(x).numpy(), y)


def test_failed_forward_does_not_count_a_batch():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(bnp.tensor(np.zeros((1, 3))))
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(bn.running_var, 1)


def test_batchnorm_layer_errors():
    with pytest.raises(ValueError, match=r"BatchNorm1d\(256, eps=1e-05, momentum=0.1, affine=True\): expected input "
                       r"of shape \(N, 256\), got \(32, 100\)"):
        nn.BatchNorm1d(256)(bnp.tensor(np.zeros((32, 100))))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(8, .*\): expected input of shape \(N, 8, H, W\), got \(2, 4,"):
        nn.BatchNorm2d(8)(bnp.tensor(np.zeros((2, 4, 5, 5))))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 8, H, W\), got \(2, 8\)"):
        nn.BatchNorm2d(8)(bnp.tensor(np.zeros((2, 8))))


def test_float32_statistics_stay_float32():
    bnp.set_default_dtype("float32")
    bn = nn.BatchNorm2d(2)
    x = bnp.tensor(np.random.default_rng(6).standard_normal((3, 2, 2, 2)))  # float64 data
    bn(x.astype("float32"))
    assert bn.running_mean.dtype == np.float32 and bn.running_var.dtype == np.float32
    assert bn.weight.dtype == np.float32


@pytest.mark.parametrize("layer", [nn.BatchNorm1d(3), nn.FullNorm1d(3)], ids=["bn", "fn"])
def test_reset_parameters_restores_the_initial_state_in_place(layer):
    running_mean, weight = layer.running_mean, layer.weight.data
    x = bnp.tensor(np.random.default_rng(0).standard_normal((5, 3)) * 4 + 2)
    layer(x).sum().backward()
    layer.weight.data -= 0.5 * layer.weight.grad.data
    assert int(layer.num_batches_tracked) == 1 and not np.allclose(bnp.backend.to_numpy(layer.running_mean), 0)
    layer.reset_parameters()
    assert layer.running_mean is running_mean and layer.weight.data is weight  # the same arrays, reset in place
    np.testing.assert_array_equal(bnp.backend.to_numpy(layer.running_mean), 0)
    np.testing.assert_array_equal(bnp.backend.to_numpy(layer.running_var), 1)
    np.testing.assert_array_equal(bnp.backend.to_numpy(layer.weight.data), 1)
    np.testing.assert_array_equal(bnp.backend.to_numpy(layer.bias.data), 0)
    assert int(layer.num_batches_tracked) == 0
