"""Training never leaves the model broken: fit checks loss and gradients before each step,
refuses a loader that yields nothing, and zero_grad does not keep create_graph graphs alive."""

import gc
import os
import weakref

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp import backend
from bnp.errors import NonFiniteError


def _host(a):
    return backend.to_numpy(a.data if isinstance(a, bnp.Tensor) else a).copy()


def _data(seed=0, n=64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)), rng.integers(0, 3, n)


# the divergence itself overflows inside the ops (NumPy warns); what is tested is that fit stops cleanly
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("lr", [1e6, 1e12])
def test_a_diverging_bn_model_keeps_finite_parameters(opt, lr):
    model = bnp.nn.models.mlp([5, 16, 3], norm="bn", rng=0)
    optimizer = bnp.optim.SGD(model.parameters(), lr=lr) if opt == "sgd" else bnp.optim.Adam(model.parameters(), lr=lr)
    loader = bnp.data.DataLoader(_data(), batch_size=16)
    snapshots = []
    try:
        bnp.fit(model, loader, optimizer, epochs=20,
                callback=lambda info: snapshots.append([_host(p) for p in info.model.parameters()]))
    except FloatingPointError as exc:
        assert isinstance(exc, NonFiniteError)
        assert "step " in str(exc) and "epoch " in str(exc) and "batch " in str(exc)
        # the parameters are those after the last completed step
        for a, b in zip(snapshots[-1], model.parameters()):
            np.testing.assert_array_equal(a, _host(b))
    for p in model.parameters():
        assert np.isfinite(_host(p)).all()


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")  # sqrt at 0
def test_a_non_finite_gradient_is_named_and_skipped():
    model = bnp.nn.models.mlp([5, 4, 3], rng=0)
    optimizer = bnp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = [_host(p) for p in model.parameters()]

    b = model[2].bias

    def loss_fn(out, y):  # finite loss, a NaN derivative for one entry of the last bias only: sqrt at 0
        return F.cross_entropy(out, y) + ((b[1] - b[1].detach()) ** 2) ** 0.5

    with pytest.raises(FloatingPointError, match=r"gradient of '2.bias' has 1 non-finite of 3 entries at step 1 "
                                                 r"\(epoch 1, batch 1\) \(the loss, .*, is finite\)"):
        bnp.fit(model, bnp.data.DataLoader(_data(), batch_size=8), optimizer, epochs=1, loss_fn=loss_fn)
    for a, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(a, _host(p))
    assert all(not s for s in optimizer.state)  # no momentum buffer was made either


def test_a_non_finite_loss_is_reported_before_backward_changes_anything():
    X, y = _data()
    X[20, 2] = np.nan
    model = bnp.nn.models.mlp([5, 4, 3], rng=0)
    optimizer = bnp.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 3 \(epoch 1, batch 3\)"):
        bnp.fit(model, bnp.data.DataLoader((X, y), batch_size=8, shuffle=False), optimizer, epochs=1)
    assert all(np.isfinite(_host(p)).all() for p in model.parameters())


def test_a_layer_refusing_a_batch_is_reported_with_its_step():
    X, y = _data()
    X[40, 0] = np.inf
    model = bnp.nn.models.mlp([5, 4, 3], rng=0)
    pre = bnp.BNP(model)
    with pytest.raises(NonFiniteError, match=r"fit: at step 6 \(epoch 1, batch 6\): BNP, layer '0'"):
        bnp.fit(model, bnp.data.DataLoader((X, y), batch_size=8, shuffle=False),
                bnp.optim.SGD(model.parameters(), lr=0.1), epochs=1, preconditioner=pre)


class _Liar:
    """A loader whose len() promises batches it never yields."""

    def __init__(self, promised, real=()):
        self.promised, self.real = promised, list(real)

    def __len__(self):
        return self.promised

    def __iter__(self):
        return iter(self.real)


def test_a_loader_that_yields_nothing_is_a_clear_error():
    model = bnp.nn.models.mlp([5, 3], rng=0)
    opt = bnp.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"yielded no batches in epoch 1 \(its len\(\) is 4\)"):
        bnp.fit(model, _Liar(4), opt, epochs=2)
    with pytest.raises(ValueError, match="yields no batches"):
        bnp.fit(model, _Liar(0), opt)
    X, y = _data(n=8)

    class _Once(_Liar):  # a generator-like loader: batches only the first time
        def __iter__(self):
            real, self.real = self.real, []
            return iter(real)

    once = _Once(1, [(bnp.tensor(X), bnp.tensor(y))])
    with pytest.raises(ValueError, match="no batches in epoch 2"):
        bnp.fit(model, once, opt, epochs=3)


# -- create_graph gradients and zero_grad(set_to_none=False) ------------------------------
def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.parametrize("who", ["optimizer", "module"])
def test_zero_grad_drops_create_graph_graphs(who):
    model = bnp.nn.models.mlp([20, 32, 5], rng=0)
    opt = bnp.optim.SGD(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x, y = bnp.tensor(rng.standard_normal((16, 20))), bnp.tensor(np.arange(16) % 5)
    zero = opt.zero_grad if who == "optimizer" else model.zero_grad
    refs = []

    def step():
        zero(set_to_none=False)
        loss = F.cross_entropy(model(x), y)
        loss.backward(create_graph=True)
        refs.append(weakref.ref(loss))
        opt.step()

    for _ in range(30):
        step()
    gc.collect()
    assert sum(r() is not None for r in refs[:-1]) == 0  # every earlier step's graph is gone
    start = _rss_mb()
    for _ in range(400):  # ~23 MB growth before the fix
        step()
    gc.collect()
    assert _rss_mb() - start < 5.0
