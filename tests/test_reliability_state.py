"""Only training changes training state: the second-order tools and ``bnp.frozen_statistics``
leave every running statistic, buffer and counter as they found them; one BNP per layer."""

import contextlib

import numpy as np
import pytest

import bnp
import bnp.autograd.higher as higher
from bnp import backend, curvature
from bnp.nn import BatchNorm1d, FullNorm1d, Linear, ReLU, Sequential
from bnp.preconditioner import BNP


def _host(a):
    return backend.to_numpy(a.data if isinstance(a, bnp.Tensor) else a).copy()


def _model(norm):
    return Sequential(Linear(3, 4, rng=0), norm(4), ReLU(), Linear(4, 2, rng=1))


def _state(model, pre):
    buffers = {k: _host(v) for k, v in model.named_buffers()}
    stats = {id(m): (m_.count, _host(m_.mean), _host(m_.var)) for m in pre.layers if (m_ := pre._moments.get(id(m)))}
    return buffers, stats


def _assert_same(a, b):
    assert a[0].keys() == b[0].keys() and a[1].keys() == b[1].keys()
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k], err_msg=k)
    for k in a[1]:
        assert a[1][k][0] == b[1][k][0]
        for x, y in zip(a[1][k][1:], b[1][k][1:]):
            np.testing.assert_array_equal(x, y)


def _setup(norm):
    rng = np.random.default_rng(0)
    model = _model(norm)
    pre = BNP(model, rho=0.9)
    x, y = bnp.tensor(rng.standard_normal((6, 3)) * 2 + 1), bnp.tensor(rng.integers(0, 2, 6))
    model(x)  # one training batch: statistics exist
    params = list(model.parameters())
    return model, pre, params, lambda: bnp.functional.cross_entropy(model(x), y)


@pytest.mark.parametrize("norm", [BatchNorm1d, FullNorm1d])
def test_second_order_tools_leave_all_statistics_alone(norm):
    model, pre, params, loss_fn = _setup(norm)
    before = _state(model, pre)
    last = model[3]
    rng = np.random.default_rng(1)
    vecs = [rng.standard_normal(p.shape) for p in params]
    bnp.hessian(loss_fn, params)
    bnp.hessian(loss_fn, params, chunk_size=3)
    for _ in range(3):
        bnp.hvp(loss_fn, params, vecs)
    bnp.jacobian(lambda: model(bnp.tensor(np.ones((2, 3)))), params[:2])
    curvature.layer_block(loss_fn, last.weight, last.bias)
    curvature.neuron_block(loss_fn, last.weight, last.bias, 1)
    curvature.flat_hvp(loss_fn, params)(np.ones(sum(p.size for p in params)))
    assert model.training
    _assert_same(before, _state(model, pre))


@pytest.mark.parametrize("norm", [BatchNorm1d, FullNorm1d])
def test_frozen_hessian_is_the_training_step_hessian(norm, monkeypatch):
    """Freezing changes no number: the Hessian equals the one the unfrozen loss (a training step) has."""
    model, pre, params, loss_fn = _setup(norm)
    frozen = bnp.hessian(loss_fn, params)
    monkeypatch.setattr(higher, "frozen_statistics", contextlib.nullcontext)  # the old behaviour
    before = _state(model, pre)
    unfrozen = bnp.hessian(loss_fn, params)
    after = _state(model, pre)
    np.testing.assert_allclose(frozen, unfrozen, rtol=1e-12, atol=1e-14)
    assert int(after[0]["1.num_batches_tracked"]) == int(before[0]["1.num_batches_tracked"]) + 1  # it would move


def test_bn_training_hessian_stays_exact_under_freezing():
    """Frozen BN still differentiates through its batch statistics: compare to torch's Hessian."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3))
    w = rng.standard_normal((2, 3))
    bn = BatchNorm1d(2)
    W = bnp.Tensor(w.copy(), requires_grad=True)
    H = bnp.hessian(lambda: (bn(bnp.tensor(x) @ W.T) ** 3).sum(), W)
    xt = torch.tensor(x)

    def f(wt):
        h = xt @ wt.T
        z = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5)
        return (z**3).sum()

    Ht = torch.autograd.functional.hessian(f, torch.tensor(w)).reshape(6, 6).numpy()
    np.testing.assert_allclose(H, Ht, rtol=1e-8, atol=1e-10)
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(_host(bn.running_mean), np.zeros(2))


@pytest.mark.parametrize("norm", [BatchNorm1d, FullNorm1d])
def test_frozen_statistics_context_manager(norm):
    model, pre, params, loss_fn = _setup(norm)
    before = _state(model, pre)
    with bnp.frozen_statistics():
        assert bnp.statistics_frozen()
        with bnp.frozen_statistics():  # re-entrant
            loss = loss_fn()
        assert bnp.statistics_frozen()
        loss.backward()  # gradients still flow
    assert not bnp.statistics_frozen()
    _assert_same(before, _state(model, pre))
    assert all(p.grad is not None for p in params)

    @bnp.frozen_statistics()
    def probe():
        return loss_fn()

    probe()
    _assert_same(before, _state(model, pre))
    loss_fn()  # outside: training state moves again
    after = _state(model, pre)
    assert int(after[0]["1.num_batches_tracked"]) == int(before[0]["1.num_batches_tracked"]) + 1
    assert after[1][id(model[0])][0] == before[1][id(model[0])][0] + 1


def test_frozen_statistics_restores_on_error():
    with pytest.raises(RuntimeError), bnp.frozen_statistics():
        raise RuntimeError("boom")
    assert not bnp.statistics_frozen()


def test_fn_frozen_forward_uses_the_would_be_moments():
    rng = np.random.default_rng(3)
    a, b = FullNorm1d(2), FullNorm1d(2)
    x = bnp.tensor(rng.standard_normal((4, 2)) * 3 + 1)
    with bnp.frozen_statistics():
        ya = a(x)
    yb = b(x)
    np.testing.assert_array_equal(_host(ya), _host(yb))
    np.testing.assert_array_equal(_host(a.running_var), np.ones(2))
    assert int(a.num_batches_tracked) == 0 and int(b.num_batches_tracked) == 1


# -- one preconditioner per layer ---------------------------------------------------------
def test_a_layer_listed_twice_is_refused():
    model = bnp.nn.models.mlp([3, 4, 2])
    with pytest.raises(ValueError, match=r"layer '0' \(Linear.*listed more than once \(layers\[1\]\)"):
        BNP(model, layers=[model[0], model[0]])


def test_a_layer_outside_the_model_is_refused():
    model = bnp.nn.models.mlp([3, 4, 2])
    stranger = Linear(3, 3)
    with pytest.raises(ValueError, match=r"layers\[1\] \(Linear\(in_features=3, out_features=3.*not a layer"):
        BNP(model, layers=[model[0], stranger])


def test_a_second_bnp_on_the_same_layers_is_refused_until_remove():
    model = bnp.nn.models.mlp([3, 4, 2])
    first = BNP(model, layers=[model[0]])
    with pytest.raises(ValueError, match="already preconditioned by another BNP"):
        BNP(model)
    second = BNP(model, layers=[model[2]])  # a disjoint set is fine
    first.remove()
    third = BNP(model, layers=[model[0]])
    x = bnp.tensor(np.ones((2, 3)))
    model(x)
    third.statistics(model[0])
    second.statistics(model[2])
    with pytest.raises(KeyError):
        first.statistics(model[0])  # removed: it recorded nothing more
    second.remove()
    third.remove()
    BNP(model)  # everything released
