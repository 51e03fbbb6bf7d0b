"""Layers, initialization and ready-made models: shapes, PyTorch equivalence
with copied weights, seeding, the norm registry, and input errors that name the
layer with the expected and received shapes."""

from __future__ import annotations

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp import nn
from bnp.nn import init, models


def _copy_to_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
            assert name == tname and p.shape == tuple(tp.shape)
            tp.copy_(torch.tensor(p.numpy()))


def _torch_small_cnn(torch, norm):
    tnn = torch.nn
    layers = []
    for cin, cout in ((1, 8), (8, 16)):
        layers.append(tnn.Conv2d(cin, cout, 3, padding=1))
        if norm:
            layers.append(tnn.BatchNorm2d(cout))
        layers += [tnn.ReLU(), tnn.MaxPool2d(2)]
    return tnn.Sequential(*layers, tnn.Flatten(), tnn.Linear(16 * 7 * 7, 10)).double()


@pytest.mark.parametrize("norm", [None, "bn"])
def test_small_cnn_equals_the_same_pytorch_network(norm):
    torch = pytest.importorskip("torch")
    ours = nn.small_cnn(norm=norm, rng=0)
    theirs = _torch_small_cnn(torch, norm)
    _copy_to_torch(ours, theirs)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 1, 28, 28)), rng.integers(0, 10, 4)
    loss = F.cross_entropy(ours(bnp.tensor(x)), y)
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
    tloss.backward()
    assert np.isclose(loss.item(), tloss.item(), rtol=1e-12)
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    if norm:
        np.testing.assert_allclose(ours[1].running_var, theirs[1].running_var.numpy(), rtol=1e-12)


def test_mlp_equals_the_same_pytorch_network():
    torch = pytest.importorskip("torch")
    ours = nn.mlp([5, 4, 3, 2], activation="tanh", rng=0)
    tnn = torch.nn
    theirs = tnn.Sequential(tnn.Linear(5, 4), tnn.Tanh(), tnn.Linear(4, 3), tnn.Tanh(), tnn.Linear(3, 2)).double()
    _copy_to_torch(ours, theirs)
    x = np.random.default_rng(1).standard_normal((6, 5))
    np.testing.assert_allclose(ours(bnp.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_model_shapes():
    x = bnp.tensor(np.zeros((3, 784)))
    for norm in (None, "none", "bn"):
        model = nn.mlp([784, 256, 256, 10], norm=norm)
        assert model(x).shape == (3, 10)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in nn.mlp([4, 3, 3, 2], norm="bn").modules()) == 2
    assert nn.mlp([4, 2])(bnp.tensor(np.zeros((1, 4)))).shape == (1, 2)
    assert all(m.bias is None for m in nn.mlp([4, 3, 2], bias=False) if isinstance(m, nn.Linear))
    cnn = nn.small_cnn(in_channels=3, num_classes=5, norm="bn", image_size=30, channels=(4, 6))
    assert cnn(bnp.tensor(np.random.default_rng(0).standard_normal((2, 3, 30, 30)))).shape == (2, 5)
    assert cnn[-1].in_features == 6 * 7 * 7
    assert [type(m).__name__ for m in cnn][:4] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]


def test_norm_registry():
    made = []

    def factory(kind):
        def make(features):
            made.append((kind, features))
            return nn.Tanh()  # any Module will do

        return make

    models.NORMS["test-norm"] = (factory("1d"), factory("2d"))
    try:
        nn.mlp([4, 3, 2], norm="test-norm")
        nn.small_cnn(norm="test-norm", channels=(2, 5), image_size=8)
        assert made == [("1d", 3), ("2d", 2), ("2d", 5)]
    finally:
        del models.NORMS["test-norm"]
    with pytest.raises(ValueError, match=r"mlp: unknown norm 'ln'; known: None, 'bn', 'fn'"):
        nn.mlp([4, 2], norm="ln")
    with pytest.raises(ValueError, match=r"small_cnn: unknown norm 'gn'; known: None, 'bn', 'fn'"):
        nn.small_cnn(norm="gn")
    with pytest.raises(ValueError, match="unknown activation 'gelu'; known: relu, sigmoid, tanh"):
        nn.mlp([4, 2], activation="gelu")
    with pytest.raises(ValueError, match="at least an input and an output size"):
        nn.mlp([4])


# -- initialization ---------------------------------------------------------------------
def test_default_init_is_uniform_within_one_over_sqrt_fan_in():
    layer = nn.Linear(400, 300, rng=0)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    bound = 1 / np.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # it uses the whole range
    assert np.isclose(w.var(), bound**2 / 3, rtol=0.02)  # variance of U(-a, a) is a^2 / 3
    conv = nn.Conv2d(4, 6, (3, 2), rng=0)
    assert np.abs(conv.weight.numpy()).max() <= 1 / np.sqrt(4 * 3 * 2)
    assert init.fan_in(conv.weight) == 24


def test_init_is_seedable():
    init.manual_seed(123)
    a = nn.mlp([5, 4, 2])
    init.manual_seed(123)
    b = nn.mlp([5, 4, 2])
    c = nn.mlp([5, 4, 2])
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
        assert not np.array_equal(pa.numpy(), pc.numpy())
    d, e = nn.Linear(3, 3, rng=7), nn.Linear(3, 3, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(d.weight.numpy(), e.weight.numpy())
    # one seed for a layer: the bias continues the stream rather than repeating the weight's draws
    assert not np.array_equal(d.weight.numpy()[0], d.bias.numpy())
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy.random.Generator"):
        nn.Linear(2, 2, rng="seed")


def test_init_uses_the_default_dtype():
    bnp.set_default_dtype("float32")
    model = nn.small_cnn(norm="bn")
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float32


def test_kaiming_normal():
    w = nn.Parameter(np.zeros((500, 200)))
    init.kaiming_normal_(w, rng=0)
    assert np.isclose(w.numpy().std(), np.sqrt(2 / 200), rtol=0.02)


# -- input checks ----------------------------------------------------------------------
def test_linear_input_errors():
    with pytest.raises(
        ValueError, match=r"^Linear\(in_features=784, out_features=256, bias=True\): expected input of shape "
        r"\(N, 784\), got \(32, 100\)$"
    ):
        nn.Linear(784, 256)(bnp.tensor(np.zeros((32, 100))))
    with pytest.raises(ValueError, match="must be a positive integer"):
        nn.Linear(0, 3)


def test_conv2d_input_errors():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    prefix = r"Conv2d\(3, 8, kernel_size=\(3, 3\), stride=\(1, 1\), padding=\(1, 1\)\): "
    with pytest.raises(ValueError, match=prefix + r"expected input of shape \(N, 3, H, W\), got \(2, 1, 28, 28\)"):
        conv(bnp.tensor(np.zeros((2, 1, 28, 28))))
    with pytest.raises(ValueError, match=prefix + r"expected input of shape \(N, 3, H, W\), got \(2, 784\)"):
        conv(bnp.tensor(np.zeros((2, 784))))
    with pytest.raises(ValueError, match=r"input of shape \(1, 3, 1, 1\) is smaller than the kernel \(5, 5\)"):
        nn.Conv2d(3, 1, 5, padding=1)(bnp.tensor(np.zeros((1, 3, 1, 1))))
    with pytest.raises(ValueError, match="padding >= 0"):
        nn.Conv2d(3, 1, 3, padding=-1)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair of ints"):
        nn.Conv2d(3, 1, "3")


def test_conv2d_layer_output_shape_and_value():
    conv = nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), rng=0)
    x = bnp.tensor(np.random.default_rng(0).standard_normal((2, 2, 7, 5)))
    out = conv(x)
    assert out.shape == (2, 3, *conv.output_shape(7, 5)) == (2, 3, 4, 4)
    np.testing.assert_array_equal(out.numpy(), F.conv2d(x, conv.weight, conv.bias, (2, 1), (1, 0)).numpy())


def test_flatten_and_activations():
    x = bnp.tensor(np.linspace(-2, 2, 24).reshape(2, 3, 2, 2))
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(2)(x).shape == (2, 3, 4)
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=3\): input of shape \(2, 3\) has no axis 3"):
        nn.Flatten(3)(bnp.tensor(np.zeros((2, 3))))
    np.testing.assert_array_equal(nn.ReLU()(x).numpy(), np.maximum(x.numpy(), 0))
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x.numpy()))
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x.numpy())))


_LAYERS = {
    "linear": lambda: bnp.nn.Linear(3, 2),
    "conv": lambda: bnp.nn.Conv2d(3, 2, 3),
    "bn1d": lambda: bnp.nn.BatchNorm1d(3),
    "bn2d": lambda: bnp.nn.BatchNorm2d(3),
    "fn1d": lambda: bnp.nn.FullNorm1d(3),
    "fn2d": lambda: bnp.nn.FullNorm2d(3),
}


@pytest.mark.parametrize(
    "layer,shape",
    [("linear", (2, 3)), ("conv", (2, 3, 4, 4)), ("bn1d", (2, 3)), ("bn2d", (2, 3, 4, 4)), ("fn1d", (2, 3)),
     ("fn2d", (2, 3, 4, 4))],
)
def test_dtype_mismatch_is_refused_naming_the_layer(layer, shape):
    module = _LAYERS[layer]()
    x = bnp.tensor(np.zeros(shape), dtype="float32")
    with pytest.raises(TypeError, match=r"(Linear|Conv2d|BatchNorm.d|FullNorm.d)\(.*expected input of dtype float64, "
                       r"got float32"):
        module(x)


def test_functional_mlp_equals_the_module_mlp():
    init.manual_seed(3)
    model = models.mlp([4, 6, 5, 3], activation="tanh")
    x = bnp.tensor(np.random.default_rng(0).standard_normal((7, 4)))
    params = list(model.parameters())
    np.testing.assert_allclose(F.mlp(x, params, F.tanh).numpy(), model(x).numpy(), rtol=1e-14)
    with pytest.raises(ValueError, match="alternate weight, bias"):
        F.mlp(x, params[:-1])
