"""The Module API: registration, traversal order and names, modes, gradients,
state dicts, forward hooks, printing; Parameter and Sequential."""

from __future__ import annotations

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp import nn


class Block(nn.Module):
    """A module with a parameter, a buffer, a child and a nested Sequential."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3))
        self.register_buffer("count", np.zeros(()))
        self.inner = nn.Linear(3, 2, rng=0)
        self.stack = nn.Sequential(nn.Linear(2, 2, rng=1), nn.ReLU(), nn.BatchNorm1d(2))

    def forward(self, x):
        return self.stack(self.inner(x * self.scale))


def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(np.arange(3.0))
    assert isinstance(p, bnp.Tensor) and p.requires_grad and p.is_leaf
    assert not hasattr(p, "__dict__")  # Tensor's __slots__ carry over
    y = p * 2
    assert type(y) is bnp.Tensor and y.requires_grad
    y.backward(np.ones(3))
    np.testing.assert_array_equal(p.grad.numpy(), 2)
    assert nn.Parameter(bnp.tensor([1.0, 2.0])).shape == (2,)
    assert nn.Parameter([1.0, 2.0]).dtype == bnp.get_default_dtype()
    assert not nn.Parameter(np.ones(2), requires_grad=False).requires_grad
    with pytest.raises(TypeError, match="only floating"):
        nn.Parameter(np.arange(3))


def test_named_parameters_order_and_names():
    model = nn.mlp([4, 3, 2], norm="bn")
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    assert [id(p) for p in model.parameters()] == [id(p) for _, p in model.named_parameters()]
    assert model[0].weight is dict(model.named_parameters())["0.weight"]
    block = Block()
    assert [n for n, _ in block.named_parameters()] == [
        "scale", "inner.weight", "inner.bias", "stack.0.weight", "stack.0.bias", "stack.2.weight", "stack.2.bias",
    ]
    assert [n for n, _ in block.named_parameters(recurse=False)] == ["scale"]


def test_modules_children_and_buffers():
    block = Block()
    assert [n for n, _ in block.named_modules()] == ["", "inner", "stack", "stack.0", "stack.1", "stack.2"]
    assert [type(m).__name__ for m in block.children()] == ["Linear", "Sequential"]
    assert list(block.modules())[0] is block
    assert [n for n, _ in block.named_buffers()] == [
        "count", "stack.2.running_mean", "stack.2.running_var", "stack.2.num_batches_tracked",
    ]


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]


def test_assignment_registers_and_replaces():
    m = nn.Module()
    m.w = nn.Parameter(np.ones(2))
    m.child = nn.Linear(2, 1)
    m.plain = 3
    assert [n for n, _ in m.named_parameters()] == ["w", "child.weight", "child.bias"]
    assert m.plain == 3 and "plain" not in dict(m.named_parameters())
    m.w = None  # an absent parameter (like bias=False)
    assert m.w is None and [n for n, _ in m.named_parameters()] == ["child.weight", "child.bias"]
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'w'"):
        m.w = np.ones(2)
    del m.child
    assert not hasattr(m, "child")
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        _ = m.nope


def test_subclass_must_call_super_init():
    class Forgetful(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) before assigning 'w'"):
        Forgetful()


def test_train_and_eval_reach_every_module():
    block = Block()
    assert all(m.training for m in block.modules())
    assert block.eval() is block
    assert not any(m.training for m in block.modules())
    block.train()
    assert all(m.training for m in block.modules())
    block.stack.train(False)
    assert block.training and block.inner.training and not block.stack[2].training


def test_eval_changes_batchnorm_output():
    model = nn.mlp([3, 4, 2], norm="bn", rng=0)
    x = bnp.tensor(np.random.default_rng(0).standard_normal((5, 3)) + 3)
    train_out = model(x).numpy()
    eval_out = model.eval()(x).numpy()
    assert not np.allclose(train_out, eval_out)


def test_zero_grad():
    model = nn.mlp([3, 4, 2], rng=0)
    loss = F.cross_entropy(model(bnp.tensor(np.ones((2, 3)))), np.array([0, 1]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    grads = [p.grad for p in model.parameters()]
    model.zero_grad(set_to_none=False)
    assert all(p.grad is g and not np.any(g.numpy()) for p, g in zip(model.parameters(), grads, strict=True))
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(p.grad.shape == p.shape and not np.any(p.grad.numpy()) for p in model.parameters())


def test_state_dict_holds_copies_of_parameters_and_buffers():
    model = nn.small_cnn(norm="bn", rng=0)
    state = model.state_dict()
    assert list(state)[:7] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
    ]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["0.weight"][...] = 0
    assert np.any(model[0].weight.numpy() != 0)


def test_state_dict_round_trip():
    a, b = nn.small_cnn(norm="bn", rng=1), nn.small_cnn(norm="bn", rng=2)
    x = bnp.tensor(np.random.default_rng(0).standard_normal((3, 1, 28, 28)))
    a(x)  # move a's running statistics
    a.eval(), b.eval()
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    np.testing.assert_array_equal(b[1].running_mean, a[1].running_mean)
    assert int(b[1].num_batches_tracked) == 1
    a[0].weight.data[...] = 0  # no aliasing between the two models
    assert np.any(b[0].weight.numpy() != 0)


def test_load_state_dict_accepts_tensors_and_casts_to_the_modules_dtype():
    layer = nn.Linear(2, 3)
    layer.load_state_dict({"weight": bnp.tensor(np.ones((3, 2))), "bias": np.arange(3, dtype=np.float32)})
    assert layer.bias.dtype == np.float64
    np.testing.assert_array_equal(layer.bias.numpy(), [0, 1, 2])
    np.testing.assert_array_equal(layer.weight.numpy(), 1)


def test_load_state_dict_errors_name_the_keys():
    model = nn.mlp([4, 3, 2], rng=0)
    state = model.state_dict()
    before = model[0].weight.numpy().copy()
    del state["2.bias"]
    state["2.extra"] = np.zeros(1)
    state["0.weight"] = np.zeros((3, 4)) + 7
    with pytest.raises(RuntimeError, match=r"missing keys \['2.bias'\]; unexpected keys \['2.extra'\]"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model[0].weight.numpy(), before)  # nothing loaded
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["2.extra"]
    np.testing.assert_array_equal(model[0].weight.numpy(), 7)
    bad = model.state_dict()
    bad["2.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"'2.weight' has shape \(3, 3\) in the state but \(2, 3\) in the module"):
        model.load_state_dict(bad)


def test_forward_hooks_see_inputs_and_may_replace_the_output():
    layer = nn.Linear(2, 2, rng=0)
    seen = []
    handle = layer.register_forward_hook(lambda m, inputs, out: seen.append((m, inputs, out)))
    x = bnp.tensor(np.ones((1, 2)))
    y = layer(x)
    assert len(seen) == 1 and seen[0][0] is layer and seen[0][1] == (x,) and seen[0][2] is y
    doubled = layer.register_forward_hook(lambda m, inputs, out: out * 2)
    np.testing.assert_allclose(layer(x).numpy(), 2 * y.numpy())
    assert len(seen) == 2
    handle.remove()
    doubled.remove()
    handle.remove()  # removing twice is harmless
    np.testing.assert_allclose(layer(x).numpy(), y.numpy())
    assert len(seen) == 2


def test_hooks_on_submodules_fire_inside_a_model():
    model = nn.mlp([3, 4, 2], rng=0)
    shapes = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.register_forward_hook(lambda mod, inputs, out: shapes.append((inputs[0].shape, out.shape)))
    model(bnp.tensor(np.ones((5, 3))))
    assert shapes == [((5, 3), (5, 4)), ((5, 4), (5, 2))]


def test_repr_like_pytorch():
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Sequential(nn.Flatten()))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=256, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Flatten(start_dim=1)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Conv2d(1, 8, 3, padding=1, bias=False)) == (
        "Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)"
    )


def test_sequential_container():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    sub = model[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == layers[1:]
    x = bnp.tensor(np.ones((4, 2)))
    np.testing.assert_allclose(model(x).numpy(), layers[2](layers[1](layers[0](x))).numpy())
    model.append(nn.Tanh())
    assert len(model) == 4 and [n for n, _ in model.named_children()] == ["0", "1", "2", "3"]
    with pytest.raises(IndexError, match="index 7 out of range for 4 layers"):
        model[7]
    with pytest.raises(TypeError, match="argument 1 is a int, not a Module"):
        nn.Sequential(nn.ReLU(), 3)


def test_a_training_step_through_modules_lowers_the_loss():
    model = nn.small_cnn(1, 3, image_size=8, channels=(2, 3), rng=0)
    rng = np.random.default_rng(0)
    x, y = bnp.tensor(rng.standard_normal((6, 1, 8, 8))), rng.integers(0, 3, 6)
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < losses[0]
