"""The fused Linear primitive (bnp/nn/fused.py) against the composite F.linear:
same values, same first and second derivatives, batched upstream gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bnp
import bnp.functional as F
from bnp.nn.fused import linear
from bnp.testing import gradcheck, gradgradcheck

seeds = st.integers(0, 2**32 - 1)
leads = st.sampled_from([(3,), (1,), (2, 3), ()])


def _case(lead, seed, n_in=3, n_out=2):
    rng = np.random.default_rng(seed)
    return [bnp.tensor(rng.standard_normal(s)) for s in (lead + (n_in,), (n_out, n_in), (n_out,))]


@given(leads, seeds, st.booleans())
def test_fused_linear_equals_the_composite(lead, seed, bias):
    x, w, b = (bnp.tensor(t.data, requires_grad=True) for t in _case(lead, seed))
    b = b if bias else None
    ours, ref = linear(x, w, b), F.linear(x, w, b)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
    up = np.random.default_rng(seed + 1).standard_normal(ours.shape)
    inputs = [x, w] + ([b] if bias else [])
    for g, r in zip(bnp.grad(ours, inputs, up), bnp.grad(ref, inputs, up), strict=True):
        assert g.shape == r.shape
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-12, atol=1e-12)


@given(leads, seeds)
def test_fused_linear_first_and_second_derivatives(lead, seed):
    gradcheck(linear, _case(lead, seed))
    gradgradcheck(linear, _case(lead, seed))
    gradgradcheck(lambda x, w, b: linear(x, w, b).tanh(), _case(lead, seed))


@given(leads, seeds)
def test_fused_linear_batched_upstream_gradients(lead, seed):
    xs = [bnp.tensor(t.data, requires_grad=True) for t in _case(lead, seed)]
    out = linear(*xs)
    ups = np.random.default_rng(seed + 2).standard_normal((4, *out.shape))
    batched = bnp.grad(out, xs, grad_outputs=ups, is_grads_batched=True, retain_graph=True)
    for k in range(4):
        for bg, sg in zip(batched, bnp.grad(out, xs, grad_outputs=ups[k], retain_graph=True), strict=True):
            np.testing.assert_allclose(bg.numpy()[k], sg.numpy(), rtol=1e-12, atol=1e-12)


def test_fused_linear_hessian_matches_the_composite():
    x, w, b = _case((4,), 0)
    w.requires_grad = b.requires_grad = True
    target = np.random.default_rng(1).standard_normal((4, 2))

    def loss(fn):
        return lambda: ((fn(x, w, b).tanh() - bnp.tensor(target)) ** 2).sum()

    np.testing.assert_allclose(
        np.asarray(bnp.hessian(loss(linear), [w, b])), np.asarray(bnp.hessian(loss(F.linear), [w, b])), atol=1e-12
    )


def test_weight_gradient_is_laid_out_like_the_weight():
    """The point of fusing: no transposed view, so no copy when it becomes .grad."""
    x, w, b = (bnp.tensor(t.data, requires_grad=True) for t in _case((5,), 0))
    linear(x, w, b).backward(np.ones((5, 2)))
    assert w.grad.data.flags.c_contiguous and w.grad.shape == (2, 3)


def test_fused_linear_errors():
    x, w, b = _case((4,), 0)
    with pytest.raises(ValueError, match=r"linear: input of shape \(4, 2\) does not match weight of shape \(2, 3\)"):
        linear(bnp.tensor(np.zeros((4, 2))), w)
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(2,\), got \(3,\)"):
        linear(x, w, bnp.tensor(np.zeros(3)))
