"""bnp.nn and the convolution / pooling / batch-norm functions under CuPy
(``pytest -m gpu``; skipped without a GPU): the same numbers as on NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp import nn
from bnp.testing import gradcheck, gradgradcheck

pytestmark = pytest.mark.gpu


def _loss_and_grads(norm, x, y, state=None):
    model = nn.small_cnn(norm=norm, image_size=8, channels=(2, 3), rng=0)
    if state is not None:
        model.load_state_dict(state)
    loss = F.cross_entropy(model(bnp.tensor(x)), bnp.backend.asarray(y))
    loss.backward()
    grads = [bnp.backend.to_numpy(p.grad.data) for p in model.parameters()]
    buffers = {k: bnp.backend.to_numpy(v) for k, v in model.state_dict().items()}
    return loss.item(), grads, buffers


@pytest.mark.parametrize("norm", [None, "bn"])
def test_small_cnn_step_matches_numpy(norm):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 1, 8, 8)), rng.integers(0, 10, 4)
    ref_loss, ref_grads, ref_state = _loss_and_grads(norm, x, y)
    bnp.set_backend("cupy")
    try:
        loss, grads, state = _loss_and_grads(norm, x, y)
        assert all(type(p.data).__module__.startswith("cupy") for p in nn.Linear(2, 2).parameters())
    finally:
        bnp.set_backend("numpy")
    assert np.isclose(loss, ref_loss, rtol=1e-10)
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-8, atol=1e-10)
    for key in ref_state:
        np.testing.assert_allclose(state[key], ref_state[key], rtol=1e-10, atol=1e-12)


def test_functions_first_and_second_order_on_gpu(cupy_backend):
    rng = np.random.default_rng(1)
    x = bnp.tensor(rng.standard_normal((2, 2, 5, 5)))
    w = bnp.tensor(rng.standard_normal((3, 2, 3, 3)))
    b = bnp.tensor(rng.standard_normal(3))
    gradcheck(lambda a, k, c: F.conv2d(a, k, c, stride=2, padding=1), [x, w, b])
    gradgradcheck(lambda a, k, c: F.conv2d(a, k, c, stride=1, padding=1) ** 2, [x, w, b])
    gradcheck(lambda a: F.max_pool2d(a, 3, 1), [x])
    gradgradcheck(lambda a: F.avg_pool2d(a, 2) ** 2, [x])
    gamma, beta = bnp.tensor(rng.uniform(0.5, 1.5, 2)), bnp.tensor(rng.standard_normal(2))
    gradgradcheck(lambda a, g_, b_: F.batch_norm(a, None, None, g_, b_, training=True), [x, gamma, beta])


def test_state_dict_moves_between_backends():
    host = nn.mlp([3, 4, 2], norm="bn", rng=0)
    host_state = host.state_dict()
    bnp.set_backend("cupy")
    try:
        device_model = nn.mlp([3, 4, 2], norm="bn", rng=5)
        device_model.load_state_dict(host_state)  # NumPy arrays into a CuPy model
        back = {k: bnp.backend.to_numpy(v) for k, v in device_model.state_dict().items()}
        device_state = device_model.state_dict()
    finally:
        bnp.set_backend("numpy")
    for key, value in host_state.items():
        np.testing.assert_array_equal(back[key], value)
    fresh = nn.mlp([3, 4, 2], norm="bn", rng=9)
    fresh.load_state_dict(device_state)  # CuPy arrays into a NumPy model
    assert all(isinstance(v, np.ndarray) for v in fresh.state_dict().values())
