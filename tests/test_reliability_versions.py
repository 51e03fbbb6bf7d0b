"""A graph refuses to be differentiated at weights that have changed (version counters)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bnp
import bnp.functional as F
from bnp.nn import BatchNorm1d, Conv2d, Flatten, Linear, ReLU, Sequential

STALE = r"modified in place after the graph was recorded \(version \d+, recorded at version \d+"


def _data(rng, conv):
    x = rng.standard_normal((3, 1, 4, 4) if conv else (3, 4))
    return bnp.tensor(x), bnp.tensor(rng.integers(0, 2, 3))


def _model(conv):
    if conv:
        return Sequential(Conv2d(1, 2, 3, rng=0), ReLU(), Flatten(), Linear(8, 2, rng=1))
    return Sequential(Linear(4, 3, rng=0), BatchNorm1d(3), ReLU(), Linear(3, 2, rng=1))


@given(conv=st.booleans(), opt=st.sampled_from(["sgd", "adam"]), call=st.sampled_from(["backward", "grad"]),
       seed=st.integers(0, 100))
def test_backward_after_an_optimizer_step_is_refused(conv, opt, call, seed):
    rng = np.random.default_rng(seed)
    model = _model(conv)
    params = list(model.parameters())
    optimizer = bnp.optim.SGD(params, lr=0.1, momentum=0.9) if opt == "sgd" else bnp.optim.Adam(params)
    x, y = _data(rng, conv)
    loss = F.cross_entropy(model(x), y)
    loss.backward(retain_graph=True)
    optimizer.step()
    with pytest.raises(RuntimeError, match=STALE):
        if call == "backward":
            loss.backward()
        else:
            bnp.grad(loss, params[-1])
    # a loss recomputed from the current weights differentiates fine
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    assert all(p.grad is not None for p in params)


def test_the_error_names_the_op_shape_and_versions():
    layer = Linear(3, 2, rng=0)
    opt = bnp.optim.SGD(layer.parameters(), lr=0.1)
    loss = layer(bnp.tensor(np.ones((4, 3)))).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match=r"'linear' \(output shape \(4, 2\)\): its input 1 \(shape \(2, 3\), dtype "
                                           r"float64\) was modified in place .*version 2, recorded at version 1"):
        loss.backward()


def test_load_state_dict_invalidates_older_graphs():
    model = _model(conv=True)
    rng = np.random.default_rng(1)
    loss = F.cross_entropy(model(_data(rng, True)[0]), bnp.tensor(np.array([0, 1, 0])))
    model.load_state_dict(model.state_dict())  # same values, but new arrays: the graph's inputs were replaced
    with pytest.raises(RuntimeError, match=STALE):
        loss.backward()


def test_an_input_that_is_not_a_target_still_counts():
    """grad with respect to x only: the VJP for x reads W, which the step changed."""
    layer = Linear(3, 2, rng=0)
    x = bnp.Tensor(np.ones((2, 3)), requires_grad=True)
    loss = (layer(x) ** 2).sum()
    layer.weight.grad = bnp.Tensor(np.ones((2, 3)))
    bnp.optim.SGD([layer.weight], lr=0.1).step()
    with pytest.raises(RuntimeError, match=STALE):
        bnp.grad(loss, x, retain_graph=True)


def test_zero_grad_in_place_bumps_the_gradient_version():
    layer = Linear(2, 2, rng=0)
    opt = bnp.optim.SGD(layer.parameters(), lr=0.1)
    layer(bnp.tensor(np.ones((1, 2)))).sum().backward()
    g = layer.weight.grad
    before = g._version
    opt.zero_grad(set_to_none=False)
    assert layer.weight.grad is g and g._version == before + 1
    np.testing.assert_array_equal(g.data, 0)


def test_versions_do_not_change_results():
    """Recording versions changes no number: a fresh graph after each step trains as before."""
    rng = np.random.default_rng(2)
    model = _model(conv=False)
    opt = bnp.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(rng, False)
    for _ in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    h = bnp.hessian(lambda: F.cross_entropy(model(x), y), list(model.parameters()))
    assert np.isfinite(h).all() and np.allclose(h, h.T, atol=1e-10)


def test_hand_writes_to_data_are_not_guarded():
    """Documented limit (as PyTorch's .data): bnp cannot see a write by hand, unless the version is bumped."""
    w = bnp.Tensor(np.ones(3), requires_grad=True)
    loss = (w * w).sum()
    w.data[...] = 2.0
    (g,) = bnp.grad(loss, w, retain_graph=True)
    np.testing.assert_array_equal(g.data, 4.0)  # uses the new values: the unguarded case
    w._version += 1  # what a careful hand-written update does
    with pytest.raises(RuntimeError, match=STALE):
        bnp.grad(loss, w)
