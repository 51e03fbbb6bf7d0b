"""bnp.BNP on real layers: the update, the reparametrization identity, statistics, hooks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_formulas import dense_p

import bnp
import bnp.functional as F
from bnp import backend
from bnp.autograd import Tensor
from bnp.autograd.im2col import unfold
from bnp.nn import Conv2d, Linear, Sequential, Tanh, init
from bnp.preconditioner import BNP
from bnp.running_moments import _column_means, _minus_row


def _host(t):
    return backend.to_numpy(t.data if isinstance(t, Tensor) else t)


def _channel_stats(x):
    """Per-feature (2-D input) or per-channel (NCHW) mean and biased variance, computed directly."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    return x.mean(axis=axes), x.var(axis=axes)


@given(
    kind=st.sampled_from(["linear", "conv"]), bias=st.booleans(), stride=st.integers(1, 2),
    padding=st.integers(0, 1), n=st.integers(1, 5), big=st.booleans(), seed=st.integers(0, 2**16),
)
def test_rho_zero_step_equals_dense_ppt(kind, bias, stride, padding, n, big, seed):
    rng = np.random.default_rng(seed)
    shift = 50.0 if big else 0.5
    if kind == "linear":
        layer = Linear(3, 2, bias=bias, rng=seed)
        x = rng.standard_normal((n, 3)) * [1.0, 10.0, 0.1] + shift
    else:
        layer = Conv2d(2, 3, 3, stride=stride, padding=padding, bias=bias, rng=seed)
        x = rng.standard_normal((n, 2, 4, 5)) * np.array([1.0, 5.0])[None, :, None, None] + shift
    eps = 1e-3
    pre = BNP(layer, rho=0.0, eps=eps)
    out = layer(bnp.tensor(x))
    upstream = rng.standard_normal(out.shape)
    (out * bnp.tensor(upstream)).sum().backward()
    gw = _host(layer.weight.grad).reshape(layer.weight.shape[0], -1).copy()  # step() rewrites in place
    gb = _host(layer.bias.grad).copy() if bias else None
    pre.step()
    mean, var = _channel_stats(x)
    reps = gw.shape[1] // len(mean)
    mean, var = np.repeat(mean, reps), np.repeat(var, reps)  # repeated over kernel offsets
    new_w = _host(layer.weight.grad).reshape(gw.shape)
    if bias:
        P = dense_p(mean, var, eps)
        expected = np.concatenate([gw, gb[:, None]], axis=1) @ (P @ P.T)
        got = np.concatenate([new_w, _host(layer.bias.grad)[:, None]], axis=1)
    else:
        d0 = np.diag(1.0 / np.sqrt(var + mean**2 + eps))  # documented reduction without bias
        expected, got = gw @ (d0 @ d0.T), new_w
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max())


def _standardized_forward(layers, stats, weights, x):
    """The reparametrized network: every preconditioned layer sees D^-1 (patch - mu).

    ``weights`` are the (W_hat, b_hat) leaves; Tanh between layers; the conv's
    patches (zero padding included) are standardized with the repeated channel
    statistics, which is exactly the P that BNP applies.
    """
    h = x
    for k, (layer, (mean, d)) in enumerate(zip(layers, stats)):
        w_hat, b_hat = weights[k]
        if isinstance(layer, Conv2d):
            cols = unfold(h, layer.kernel_size, layer.stride, layer.padding)  # (N, n, L)
            reps = cols.shape[1] // len(mean)
            mu = Tensor(backend.asarray(np.repeat(mean, reps))[:, None])
            dd = Tensor(backend.asarray(np.repeat(d, reps))[:, None])
            z = w_hat.reshape(w_hat.shape[0], -1) @ ((cols - mu) / dd) + b_hat.reshape(-1, 1)
            oh, ow = layer.output_shape(h.shape[2], h.shape[3])
            h = z.reshape(h.shape[0], w_hat.shape[0], oh, ow).flatten(1)
        else:
            h = ((h - Tensor(backend.asarray(mean))) / Tensor(backend.asarray(d))) @ w_hat.T + b_hat
        if k < len(layers) - 1:
            h = h.tanh()
    return h


@pytest.mark.parametrize("arch", ["mlp", "convnet"])
@pytest.mark.parametrize("eps", [0.0, 1e-2])
def test_bnp_is_gradient_descent_on_the_standardized_network(arch, eps):
    """THEORY.md section 2, exactly: with statistics frozen, k BNP steps on theta
    equal P theta_hat_k from k plain GD steps on the standardized network."""
    rng = np.random.default_rng(0)
    init.manual_seed(0)
    if arch == "mlp":
        layers = [Linear(4, 5), Linear(5, 3)]
        model = Sequential(layers[0], Tanh(), layers[1])
        x = rng.standard_normal((16, 4)) * [0.1, 1.0, 10.0, 3.0] + [5.0, -2.0, 20.0, 1.0]
    else:
        layers = [Conv2d(2, 3, 3, stride=2, padding=1), Linear(3 * 3 * 3, 3)]
        model = Sequential(layers[0], Tanh(), bnp.nn.Flatten(), layers[1])
        x = rng.standard_normal((8, 2, 5, 6)) * np.array([0.2, 4.0])[None, :, None, None] + 3.0
    y = bnp.tensor(rng.integers(0, 3, len(x)))
    xt = bnp.tensor(x)
    pre = BNP(model, rho=0.0, eps=eps)
    model(xt)
    pre.remove()  # freeze the statistics of this batch
    stats = []
    for layer in layers:
        mean, var = (_host(v) for v in pre.statistics(layer))
        stats.append((mean, np.sqrt(var + eps)))
    # theta_hat from theta: W_hat = W D (per input entry), b_hat = b + W mu
    weights = []
    for layer, (mean, d) in zip(layers, stats):
        w = _host(layer.weight).reshape(layer.weight.shape[0], len(mean), -1)
        w_hat = w * d[None, :, None]
        b_hat = _host(layer.bias) + (w * mean[None, :, None]).sum(axis=(1, 2))
        weights.append((bnp.tensor(w_hat.reshape(layer.weight.shape), requires_grad=True),
                        bnp.tensor(b_hat, requires_grad=True)))
    lr = 0.1
    for _ in range(3):
        model.zero_grad()
        F.cross_entropy(model(xt), y).backward()
        pre.step()
        for p in model.parameters():
            p.data = p.data - lr * p.grad.data
        params = [t for pair in weights for t in pair]
        grads = bnp.grad(F.cross_entropy(_standardized_forward(layers, stats, weights, xt), y), params)
        weights = [(bnp.tensor(_host(w) - lr * _host(gw), requires_grad=True),
                    bnp.tensor(_host(b) - lr * _host(gb), requires_grad=True))
                   for (w, b), gw, gb in zip(weights, grads[0::2], grads[1::2])]
    for layer, (mean, d), (w_hat, b_hat) in zip(layers, stats, weights):
        w_back = _host(w_hat).reshape(layer.weight.shape[0], len(mean), -1) / d[None, :, None]
        b_back = _host(b_hat) - (w_back * mean[None, :, None]).sum(axis=(1, 2))
        np.testing.assert_allclose(_host(layer.weight), w_back.reshape(layer.weight.shape), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(_host(layer.bias), b_back, rtol=1e-9, atol=1e-11)
    with bnp.no_grad():
        np.testing.assert_allclose(_host(model(xt)), _host(_standardized_forward(layers, stats, weights, xt)),
                                   rtol=1e-9, atol=1e-11)


def test_batch_size_one_statistics_converge():
    rng = np.random.default_rng(3)
    mean, std = np.array([3.0, -40.0, 0.0]), np.array([0.5, 4.0, 0.01])
    layer = Linear(3, 2)
    pre = BNP(layer, rho=0.995)
    with bnp.no_grad():
        for _ in range(4000):
            layer(bnp.tensor(rng.standard_normal((1, 3)) * std + mean))
    m, v = (_host(a) for a in pre.statistics(layer))
    assert np.all(np.abs(m - mean) < 0.25 * std)
    np.testing.assert_allclose(v, std**2, rtol=0.25)


def test_hooks_inactive_in_eval_mode_and_after_remove():
    layer = Linear(2, 2)
    pre = BNP(layer, rho=0.0)
    layer(bnp.tensor([[1.0, 2.0], [3.0, 4.0]]))
    before = _host(pre.statistics(layer)[0]).copy()
    layer.eval()
    layer(bnp.tensor([[100.0, 200.0]]))
    np.testing.assert_array_equal(_host(pre.statistics(layer)[0]), before)
    layer.train()
    pre.remove()
    layer(bnp.tensor([[100.0, 200.0]]))
    np.testing.assert_array_equal(_host(pre.statistics(layer)[0]), before)


def test_step_before_any_forward_says_what_to_do():
    layer = Linear(2, 1)
    pre = BNP(layer)
    layer.eval()
    layer(bnp.tensor([[1.0, 2.0]])).sum().backward()
    with pytest.raises(RuntimeError, match="training mode"):
        pre.step()


@pytest.mark.parametrize("opt_name", ["sgd_momentum", "adam"])
def test_composes_with_optimizers(opt_name):
    """The optimizer sees exactly the preconditioned gradient."""
    rng = np.random.default_rng(4)
    x, y = bnp.tensor(rng.standard_normal((8, 3)) + 5.0), bnp.tensor(rng.integers(0, 2, 8))
    init.manual_seed(1)
    model = bnp.nn.models.mlp([3, 4, 2])
    init.manual_seed(1)
    twin = bnp.nn.models.mlp([3, 4, 2])
    make = {"sgd_momentum": lambda p: bnp.optim.SGD(p, lr=0.05, momentum=0.9),
            "adam": lambda p: bnp.optim.Adam(p, lr=0.01)}[opt_name]
    opt, opt_twin = make(model.parameters()), make(twin.parameters())
    pre = BNP(model, rho=0.9)
    pre_twin = BNP(twin, rho=0.9)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        pre.step()
        opt.step()
        opt_twin.zero_grad()
        F.cross_entropy(twin(x), y).backward()
        pre_twin.step()  # the same preconditioning, then a hand-checked optimizer
        grads = [backend.to_numpy(p.grad.data).copy() for p in twin.parameters()]
        opt_twin.step()
        assert all(np.all(np.isfinite(g)) for g in grads)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(_host(p), _host(q))
    assert any(np.abs(_host(p)).max() > 0 for p in model.parameters())


def test_state_survives_a_checkpoint(tmp_path):
    rng = np.random.default_rng(5)
    model = bnp.nn.models.mlp([3, 4, 2])
    pre = BNP(model, rho=0.9)
    for _ in range(3):
        model(bnp.tensor(rng.standard_normal((5, 3)) * 3 + 1))
    bnp.checkpoint.save({"bnp": pre.state_dict(), "model": model.state_dict()}, tmp_path / "ckpt.npz")
    state = bnp.checkpoint.load(tmp_path / "ckpt.npz")
    copy = bnp.nn.models.mlp([3, 4, 2])  # one BNP per layer: the restored one preconditions a copy
    copy.load_state_dict(state["model"])
    fresh = BNP(copy, rho=0.9)
    fresh.load_state_dict(state["bnp"])
    for layer, twin in zip(pre.layers, fresh.layers):
        for a, b in zip(pre.statistics(layer), fresh.statistics(twin)):
            np.testing.assert_array_equal(_host(a), _host(b))
    # the count came back too: the next update weighs the batch identically
    batch = bnp.tensor(rng.standard_normal((5, 3)))
    model(batch)
    copy(batch)
    for layer, twin in zip(pre.layers, fresh.layers):
        for a, b in zip(pre.statistics(layer), fresh.statistics(twin)):
            np.testing.assert_allclose(_host(a), _host(b), rtol=1e-12)


def test_whitening_rejects_convolutions_and_bad_arguments():
    with pytest.raises(ValueError, match="Linear layers only"):
        BNP(Sequential(Conv2d(1, 1, 3)), whiten=True)
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        BNP(Tanh())
    with pytest.raises(ValueError, match="conv_statistics"):
        BNP(Linear(2, 2), conv_statistics="pixel")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 3, 5, 5), (4, 1, 6, 6), (4, 8, 7, 7), (3, 20, 1, 1), (16, 70, 2, 2)])
def test_input_statistics_equal_numpy_mean_to_the_bit(shape, dtype):
    """The fast statistics of _observe (BNP's cost per forward pass) give exactly
    ``rows.mean(0)`` and ``rows - mean``: results of a run do not depend on the speed-up."""
    rng = np.random.default_rng(3)
    a = (rng.standard_normal(shape) * 50 + 7).astype(dtype)
    rows = a.transpose(0, 2, 3, 1).reshape(-1, shape[1])  # a copy, or a view at batch size 1
    mean = rows.mean(axis=0)
    assert np.array_equal(_column_means(rows), mean)
    assert np.array_equal(_minus_row(rows, mean, shape[0]), rows - mean)
