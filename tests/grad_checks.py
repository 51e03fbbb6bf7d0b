"""Checks on gradients shared by several test files."""

import numpy as np

import bnp


def assert_batched_equals_stacked(out, inputs, upstream, rtol=1e-12, atol=1e-12):
    """One pass with a batch of upstream gradients (``is_grads_batched``) gives,
    row by row, what one pass per upstream gradient gives.

    Shapes: upstream (B, *out.shape); each batched gradient (B, *input.shape).
    """
    batched = bnp.grad(out, inputs, grad_outputs=upstream, is_grads_batched=True, retain_graph=True)
    for k in range(upstream.shape[0]):
        single = bnp.grad(out, inputs, grad_outputs=upstream[k], retain_graph=True)
        for bg, sg in zip(batched, single, strict=True):
            assert bg.shape == (upstream.shape[0], *sg.shape)
            np.testing.assert_allclose(bg.numpy()[k], sg.numpy(), rtol=rtol, atol=atol)
