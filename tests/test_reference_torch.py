"""Gradients and Hessians of small MLPs against PyTorch (a test reference only), float64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bnp
import bnp.functional as F

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

ACTIVATIONS = {
    "tanh": (F.tanh, torch.tanh),
    "relu": (F.relu, torch.relu),
    "sigmoid": (F.sigmoid, torch.sigmoid),
}


def _problem(seed: int, sizes: list[int], loss: str, n: int):
    """Random weights (w, b per layer) and a batch, as host float64 arrays."""
    rng = np.random.default_rng(seed)
    params = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        params += [rng.standard_normal((d_out, d_in)) / np.sqrt(d_in), rng.standard_normal(d_out) * 0.5]
    x = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n) if loss == "ce" else rng.standard_normal((n, sizes[-1]))
    return params, x, y


def _bnp_loss(params, x, y, activation, loss):
    act = ACTIVATIONS[activation][0]
    h = F.mlp(bnp.tensor(x), params, act)
    return F.cross_entropy(h, y) if loss == "ce" else F.mse_loss(h, bnp.tensor(y))


def _torch_loss(params, x, y, activation, loss):
    act = ACTIVATIONS[activation][1]
    h = torch.as_tensor(x)
    for k in range(0, len(params), 2):
        h = torch.nn.functional.linear(h, params[k], params[k + 1])
        if k + 2 < len(params):
            h = act(h)
    if loss == "ce":
        return torch.nn.functional.cross_entropy(h, torch.as_tensor(y))
    return torch.nn.functional.mse_loss(h, torch.as_tensor(y))


def assert_rel_close(actual, expected, rtol=1e-8):
    """Relative error in the max norm: robust where single entries are near zero."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(np.abs(expected).max(), 1e-300)
    assert np.abs(actual - expected).max() <= rtol * scale


problems = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "sizes": st.lists(st.integers(1, 5), min_size=2, max_size=4),
        "activation": st.sampled_from(sorted(ACTIVATIONS)),
        "loss": st.sampled_from(["mse", "ce"]),
        "n": st.integers(1, 8),
    }
)


@given(problem=problems)
def test_mlp_gradients_match_torch(problem):
    params, x, y = _problem(problem["seed"], problem["sizes"], problem["loss"], problem["n"])
    act, loss = problem["activation"], problem["loss"]

    ours = [bnp.tensor(p, requires_grad=True) for p in params]
    value = _bnp_loss(ours, x, y, act, loss)
    value.backward()

    theirs = [torch.tensor(p, requires_grad=True) for p in params]
    reference = _torch_loss(theirs, x, y, act, loss)
    reference.backward()

    assert_rel_close(value.item(), reference.item(), 1e-12)
    for p, q in zip(ours, theirs, strict=True):
        assert_rel_close(p.grad.numpy(), q.grad.numpy())


@given(problem=problems)
def test_mlp_hessians_match_torch(problem):
    params, x, y = _problem(problem["seed"], problem["sizes"], problem["loss"], problem["n"])
    act, loss = problem["activation"], problem["loss"]

    ours = [bnp.tensor(p, requires_grad=True) for p in params]
    H = bnp.hessian(lambda: _bnp_loss(ours, x, y, act, loss), ours)

    shapes = [p.shape for p in params]
    sizes = [p.size for p in params]

    def torch_loss_of_flat(theta):
        pieces = torch.split(theta, sizes)
        return _torch_loss([t.reshape(s) for t, s in zip(pieces, shapes, strict=True)], x, y, act, loss)

    theta = torch.tensor(np.concatenate([p.ravel() for p in params]))
    H_ref = torch.func.hessian(torch_loss_of_flat)(theta).numpy()
    assert_rel_close(H, H_ref)


def test_functional_ops_match_torch():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 5)) * 3
    t = torch.as_tensor(z)
    assert_rel_close(F.softmax(bnp.tensor(z)).numpy(), torch.softmax(t, -1).numpy(), 1e-14)
    assert_rel_close(F.log_softmax(bnp.tensor(z), axis=0).numpy(), torch.log_softmax(t, 0).numpy(), 1e-14)
    target = np.array([0, 4, 2, 2])
    ce_ref = torch.nn.functional.cross_entropy(t, torch.as_tensor(target)).item()
    assert_rel_close(F.cross_entropy(bnp.tensor(z), target).item(), ce_ref, 1e-14)
    a = bnp.tensor(z)
    assert_rel_close(a.var(axis=0, correction=1).numpy(), t.var(0, correction=1).numpy(), 1e-14)
    assert_rel_close(F.sigmoid(bnp.tensor(z * 20)).numpy(), torch.sigmoid(t * 20).numpy(), 1e-14)  # no overflow
