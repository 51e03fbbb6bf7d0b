"""The autograd checks again under CuPy (``pytest -m gpu``; skipped without a GPU).

Each test runs with the ``cupy`` backend active and restores NumPy afterwards,
so the rest of the suite is unaffected.
"""

from __future__ import annotations

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp.autograd import ops
from bnp.testing import gradcheck, gradgradcheck

pytestmark = pytest.mark.gpu


def _mlp(rng, sizes=(3, 4, 2)):
    arrays = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        arrays += [rng.standard_normal((d_out, d_in)) / np.sqrt(d_in), rng.standard_normal(d_out) * 0.1]
    return arrays, rng.standard_normal((5, sizes[0])), rng.integers(0, sizes[-1], 5)


def _loss(params, x, y):
    h = F.tanh(F.linear(bnp.tensor(x), params[0], params[1]))
    return F.cross_entropy(F.linear(h, params[2], params[3]), y)


def test_tensors_live_on_the_gpu(cupy_backend):
    t = bnp.tensor([1.0, 2.0], requires_grad=True)
    assert bnp.backend.array_backend(t.data) == "cupy" and t.dtype == np.float64
    (t * t).sum().backward()
    assert bnp.backend.array_backend(t.grad.data) == "cupy"
    np.testing.assert_allclose(t.grad.numpy(), [2.0, 4.0])
    assert isinstance(t.numpy(), np.ndarray) and t.sum().item() == 3.0


@pytest.mark.parametrize(
    "name, fn, shapes",
    [
        ("mul broadcast", lambda a, b: a * b, [(3, 1), (4,)]),
        ("div", lambda a, b: a / (b * b + 1.0), [(2, 3), (2, 3)]),
        ("matmul batched", lambda a, b: a @ b, [(2, 3, 4), (4, 2)]),
        ("tanh", ops.tanh, [(3, 2)]),
        ("log_softmax", lambda a: F.log_softmax(a, axis=0), [(3, 4)]),
        ("var keepdims", lambda a: a.var(axis=1, keepdims=True), [(3, 4)]),
        ("getitem repeated picks", lambda a: a[np.array([0, 2, 0]), 1:], [(3, 4)]),
        ("cross_entropy", lambda a: F.cross_entropy(a, np.array([1, 0, 1])), [(3, 2)]),
    ],
)
def test_gradcheck_on_gpu(cupy_backend, name, fn, shapes):
    rng = np.random.default_rng(0)
    inputs = [bnp.tensor(rng.standard_normal(s)) for s in shapes]
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_hessian_on_gpu_matches_the_numpy_backend(cupy_backend):
    arrays, x, y = _mlp(np.random.default_rng(1))
    params = [bnp.tensor(a, requires_grad=True) for a in arrays]
    H_gpu = bnp.hessian(lambda: _loss(params, x, y), params)
    assert bnp.backend.array_backend(H_gpu) == "cupy"
    H_gpu = bnp.backend.to_numpy(H_gpu)

    bnp.set_backend("numpy")  # the fixture restores it anyway
    params = [bnp.tensor(a, requires_grad=True) for a in arrays]
    H_cpu = bnp.hessian(lambda: _loss(params, x, y), params)
    assert isinstance(H_cpu, np.ndarray)
    np.testing.assert_allclose(H_gpu, H_cpu, rtol=1e-10, atol=1e-12)


def test_hvp_and_float32_on_gpu(cupy_backend):
    arrays, x, y = _mlp(np.random.default_rng(2))
    params = [bnp.tensor(a, requires_grad=True) for a in arrays]
    H = bnp.backend.to_numpy(bnp.hessian(lambda: _loss(params, x, y), params))
    v = [np.ones(p.shape) for p in params]
    Hv = np.concatenate([bnp.backend.to_numpy(h).ravel() for h in bnp.hvp(lambda: _loss(params, x, y), params, v)])
    np.testing.assert_allclose(Hv, H @ np.ones(H.shape[0]), rtol=1e-10, atol=1e-12)

    bnp.set_default_dtype("float32")  # conftest restores float64
    params32 = [bnp.tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    loss = _loss(params32, x.astype(np.float32), y)
    loss.backward()
    assert loss.dtype == np.float32 and all(p.grad.dtype == np.float32 for p in params32)


def test_mixing_a_numpy_array_into_a_cupy_tensor_raises(cupy_backend):
    t = bnp.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match=r"numpy.*cupy"):
        t + np.ones(2)
    with pytest.raises(TypeError, match=r"numpy.*cupy"):
        np.ones((2, 2)) @ t
    bnp.set_backend("numpy")
    host = bnp.tensor([1.0, 2.0])
    bnp.set_backend("cupy")
    with pytest.raises(TypeError, match=r"numpy.*cupy|cupy.*numpy"):
        t * host
