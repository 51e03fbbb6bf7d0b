"""Full Normalization: forward with running moments, compositional gradients."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bnp
from bnp import backend
from bnp.autograd import ops
from bnp.nn import FullNorm1d, FullNorm2d
from bnp.testing import gradcheck, gradgradcheck


def _host(t):
    return backend.to_numpy(t.data if isinstance(t, bnp.Tensor) else t)


@pytest.mark.parametrize("cls,shape", [(FullNorm1d, (6, 3)), (FullNorm2d, (2, 3, 2, 2))])
def test_forward_uses_the_updated_running_moments(cls, shape):
    rng = np.random.default_rng(0)
    layer = cls(3, momentum=0.3)
    layer.weight.data[...] = backend.asarray(rng.uniform(0.5, 2, 3))
    layer.bias.data[...] = backend.asarray(rng.standard_normal(3))
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    view = (1, 3) + (1,) * (len(shape) - 2)
    for step in range(4):
        x = rng.standard_normal(shape) * 4 + 10
        y = layer(bnp.tensor(x))
        mean, var = _host(layer.running_mean), _host(layer.running_var)
        if step == 0:  # the first batch's own (biased) moments
            np.testing.assert_allclose(mean, x.mean(axis=axes), rtol=1e-12)
            np.testing.assert_allclose(var, x.var(axis=axes), rtol=1e-12)
        expected = (x - mean.reshape(view)) / np.sqrt(var.reshape(view) + layer.eps)
        expected = expected * _host(layer.weight).reshape(view) + _host(layer.bias).reshape(view)
        np.testing.assert_allclose(_host(y), expected, rtol=1e-10, atol=1e-12)
    layer.eval()
    before = _host(layer.running_mean).copy()
    layer(bnp.tensor(rng.standard_normal(shape)))
    np.testing.assert_array_equal(_host(layer.running_mean), before)


@given(n=st.integers(1, 6), shift=st.sampled_from([0.0, 5.0, 100.0]), steps=st.integers(0, 3),
       seed=st.integers(0, 2**16))
def test_gradient_is_the_compositional_gradient(n, shift, steps, seed):
    """d loss/dx through FN equals  dg/dx + dg/dm1 . dm1_B/dx + dg/dm2 . dm2_B/dx,
    with g(x, m1, m2) the normalization by leaf moments m1, m2 = var_hat + m1^2 at the
    running values: the gradient of the full-data objective's stochastic estimate."""
    rng = np.random.default_rng(seed)
    layer = FullNorm1d(3, momentum=0.2)
    for _ in range(steps):  # make the running moments differ from the batch's
        layer(bnp.tensor(rng.standard_normal((4, 3)) * 3 + shift))
    x = bnp.tensor(rng.standard_normal((n, 3)) + shift, requires_grad=True)
    upstream = bnp.tensor(rng.standard_normal((n, 3)))
    (layer(x) * upstream).sum().backward()

    m1 = bnp.tensor(_host(layer.running_mean), requires_grad=True)
    m2 = bnp.tensor(_host(layer.running_var) + _host(layer.running_mean) ** 2, requires_grad=True)
    x2 = bnp.tensor(_host(x), requires_grad=True)
    z = (x2 - m1) / ops.sqrt(m2 - m1 * m1 + layer.eps) * layer.weight.detach() + layer.bias.detach()
    gx, g1, g2 = bnp.grad((z * upstream).sum(), [x2, m1, m2])
    xs = _host(x)
    expected = _host(gx) + _host(g1)[None, :] / n + _host(g2)[None, :] * 2 * xs / n
    np.testing.assert_allclose(_host(x.grad), expected, rtol=1e-7, atol=1e-9)


def test_derivatives_against_finite_differences():
    """Eval mode is an ordinary smooth function: first and second order match finite
    differences. In training mode the *value* ignores the batch moments while the
    gradient does not (by design: the compositional gradient), so finite differences
    of the value must disagree with it; the compositional test above checks it instead."""
    from bnp.functional import full_norm

    rng = np.random.default_rng(1)
    mean, var = backend.asarray(rng.standard_normal(2)), backend.asarray(rng.uniform(0.5, 2, 2))
    x = bnp.tensor(rng.standard_normal((3, 2, 2, 2)))
    w, b = bnp.tensor(rng.uniform(0.5, 2, 2)), bnp.tensor(rng.standard_normal(2))
    evaluation = lambda t, w, b: full_norm(t, mean, var, w, b, training=False)
    assert gradcheck(evaluation, [x, w, b])
    assert gradgradcheck(evaluation, [x, w, b])
    # fresh copies of the running moments for every evaluation (training updates them in place);
    # after 5 batches the new one weighs 1/6 in the value but fully in the gradient
    training = lambda t: full_norm(t, mean.copy(), var.copy(), w, b, training=True, num_batches=5)
    assert not gradcheck(training, [x], raise_exception=False)


def test_batch_size_one_trains_where_bn_cannot():
    rng = np.random.default_rng(2)
    layer = FullNorm1d(2)
    y = layer(bnp.tensor(rng.standard_normal((1, 2))))
    assert np.all(np.isfinite(_host(y)))
    bn = bnp.nn.BatchNorm1d(2)
    with pytest.raises(ValueError, match="one value per channel|more than 1 value"):
        bn(bnp.tensor(rng.standard_normal((1, 2))))


def test_wrong_input_shape_names_the_layer():
    with pytest.raises(ValueError, match=r"FullNorm2d\(4.*expected input of shape \(N, 4, H, W\), got \(2, 4\)"):
        FullNorm2d(4)(bnp.tensor(np.zeros((2, 4))))


def test_momentum_zero_keeps_the_running_moments_as_given():
    from bnp.functional import full_norm

    rng = np.random.default_rng(4)
    mean, var = backend.asarray(rng.standard_normal(3)), backend.asarray(rng.uniform(0.5, 2, 3))
    kept_mean, kept_var = mean.copy(), var.copy()
    x = bnp.tensor(rng.standard_normal((4, 3)) + 5)
    y = full_norm(x, mean, var, training=True, momentum=0.0, num_batches=3)
    np.testing.assert_array_equal(_host(mean), _host(kept_mean))
    np.testing.assert_array_equal(_host(var), _host(kept_var))
    np.testing.assert_allclose(_host(y), (_host(x) - _host(mean)) / np.sqrt(_host(var) + 1e-5), rtol=1e-12)
