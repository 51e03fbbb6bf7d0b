"""The engine around the rules: accumulation, freeing the graph, memory, deep
graphs, no_grad, error messages, and the ``tensor()`` constructor."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp.autograd import ops


def _leaf(values):
    return bnp.tensor(values, requires_grad=True)


# -- accumulation into .grad ------------------------------------------------------
def test_backward_accumulates_into_grad_like_pytorch():
    x = _leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])
    (x * x).sum().backward()  # a second graph: gradients add up
    np.testing.assert_allclose(x.grad.numpy(), [4.0, -8.0, 12.0])
    x.grad = None
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_a_leaf_used_twice_gets_both_contributions_and_intermediates_get_no_grad():
    x = _leaf([0.5, 2.0])
    y = x * 2.0
    (y * x + x).sum().backward()  # d/dx (2x^2 + x) = 4x + 1
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 9.0])
    assert y.grad is None  # as in PyTorch, only leaves keep .grad


def test_each_leaf_owns_a_writable_grad():
    """Optimizers update .grad in place: it must be neither shared nor a read-only view."""
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    seed = bnp.tensor([1.0, 1.0])
    (a + b).backward(seed)
    assert a.grad is not b.grad and not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    assert not np.shares_memory(a.grad.numpy(), seed.numpy())
    c = _leaf(np.ones((2, 3)))
    c.sum().backward()  # the rule of sum broadcasts: a read-only view
    c.grad.data *= 2.0
    np.testing.assert_allclose(c.grad.numpy(), 2.0)
    a.grad.data[0] = 100.0
    assert b.grad.numpy()[0] == 1.0 and seed.numpy()[0] == 1.0


def test_grad_returns_gradients_without_touching_dot_grad():
    x = _leaf([1.0, 2.0])
    y = x * x
    gx, gy = bnp.grad((y * 3.0).sum(), [x, y])  # an intermediate can be an input too
    np.testing.assert_allclose(gx.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(gy.numpy(), [3.0, 3.0])
    assert x.grad is None


# -- freeing the graph ----------------------------------------------------------------
def test_second_backward_over_a_freed_graph_raises_and_retain_graph_allows_it():
    x = _leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="freed.*retain_graph=True"):
        loss.backward()

    x.grad = None
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_a_graph_shared_by_two_losses_is_not_silently_treated_as_constant():
    x = _leaf([1.0, 2.0])
    y = x.exp()
    first, second = y.sum(), (y * 2.0).sum()
    first.backward()  # frees y's graph
    with pytest.raises(RuntimeError, match="freed"):
        second.backward()
    with pytest.raises(RuntimeError, match="freed"):
        bnp.grad(second, x)


def test_create_graph_keeps_the_graph_for_second_order():
    x = _leaf([1.0, 2.0])
    (g,) = bnp.grad((x**3).sum(), x, create_graph=True)
    (h,) = bnp.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), [6.0, 12.0])
    x.grad = None
    (x**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad  # the gradient itself is differentiable
    (hh,) = bnp.grad(x.grad.sum(), x)
    np.testing.assert_allclose(hh.numpy(), [6.0, 12.0])


# -- memory ------------------------------------------------------------------------------
def _mlp_loss(w1, w2, x, y):
    h = F.tanh(F.linear(x, w1))
    return F.mse_loss(F.linear(h, w2), y)


def test_intermediates_die_after_backward_without_the_garbage_collector():
    """No reference cycles: reference counting alone frees the graph."""
    rng = np.random.default_rng(0)
    w1, w2 = _leaf(rng.standard_normal((5, 3))), _leaf(rng.standard_normal((2, 5)))
    x, y = bnp.tensor(rng.standard_normal((4, 3))), bnp.tensor(rng.standard_normal((4, 2)))
    gc.disable()
    try:
        h = F.tanh(F.linear(x, w1))
        loss = F.mse_loss(F.linear(h, w2), y)
        refs = [weakref.ref(h), weakref.ref(h._parents[0])]
        del h
        assert all(r() is not None for r in refs)  # kept alive by the graph
        loss.backward()
        assert all(r() is None for r in refs)  # backward dropped the graph; loss is still alive
        assert loss.item() > 0

        h = F.tanh(F.linear(x, w1))
        loss = F.mse_loss(F.linear(h, w2), y)
        refs = [weakref.ref(h)]
        del h, loss  # never differentiated: the graph goes with its last reference
        assert refs[0]() is None
    finally:
        gc.enable()


def test_memory_does_not_grow_over_a_long_training_loop():
    rng = np.random.default_rng(1)
    w1, w2 = _leaf(rng.standard_normal((8, 4)) * 0.3), _leaf(rng.standard_normal((1, 8)) * 0.3)
    x, y = bnp.tensor(rng.standard_normal((16, 4))), bnp.tensor(rng.standard_normal((16, 1)))

    def live_tensors() -> int:
        gc.collect()
        return sum(type(o) is bnp.Tensor for o in gc.get_objects())  # type(): no proxies woken up

    def steps(n: int) -> None:
        for _ in range(n):
            w1.grad = w2.grad = None
            _mlp_loss(w1, w2, x, y).backward()
            with bnp.no_grad():
                for w in (w1, w2):
                    w.data -= 0.05 * w.grad.data

    steps(5)
    before = live_tensors()
    steps(300)
    assert live_tensors() <= before


def test_a_10000_op_chain_backpropagates_without_recursion_error():
    x = _leaf(0.3)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001**10_000, rtol=1e-9)

    y = x  # and twice over (create_graph), then dropped without backward
    for _ in range(10_000):
        y = ops.tanh(y) + 0.0
    (g,) = bnp.grad(y, x, create_graph=True)
    (h,) = bnp.grad(g, x)
    assert np.isfinite(h.item())
    del y, g, h


# -- no_grad ---------------------------------------------------------------------------------
def test_no_grad_results_carry_no_graph_and_cannot_be_differentiated():
    x = _leaf([1.0, 2.0])
    with bnp.no_grad():
        y = (x * x).sum()
    assert not y.requires_grad and y.is_leaf and not y._parents
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()
    with pytest.raises(RuntimeError, match="no_grad"):
        bnp.grad(y, x)
    assert bnp.is_grad_enabled()


def test_no_grad_as_decorator_nests_and_enable_grad_reopens():
    @bnp.no_grad()
    def recurse(n: int) -> list[bool]:
        inner = recurse(n - 1) if n else []
        return inner + [bnp.is_grad_enabled()]

    assert recurse(3) == [False] * 4  # the same decorator re-entered
    assert bnp.is_grad_enabled()
    x = _leaf([1.0])
    with bnp.no_grad():
        with bnp.enable_grad():
            y = x * 2.0
        z = x * 2.0
    assert y.requires_grad and not z.requires_grad


# -- error messages ------------------------------------------------------------------------
def test_matmul_shape_errors_show_both_shapes():
    a, b = bnp.tensor(np.ones((2, 3))), bnp.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match=r"matmul.*\(3,\).*\(4,\)"):
        bnp.tensor(np.ones(3)) @ bnp.tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"batch axes.*\(2, 2, 3\).*\(3, 3, 1\)"):
        bnp.tensor(np.ones((2, 2, 3))) @ bnp.tensor(np.ones((3, 3, 1)))


def test_broadcast_errors_show_both_shapes():
    with pytest.raises(ValueError, match=r"add.*\(2, 3\).*\(4,\)"):
        bnp.tensor(np.ones((2, 3))) + bnp.tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"mul.*\(3,\).*\(2,\)"):
        bnp.tensor(np.ones(3)) * np.ones(2)
    with pytest.raises(ValueError, match=r"broadcast_to.*\(3,\).*\(2, 4\)"):
        ops.broadcast_to(bnp.tensor(np.ones(3)), (2, 4))


def test_backward_on_a_non_scalar_without_grad_says_so():
    y = _leaf(np.ones((2, 3))) * 2.0
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"expected shape \(2, 3\)"):
        y.backward(np.ones(3))
    y.backward(np.ones((2, 3)))  # an explicit upstream gradient is fine


def test_grad_api_errors():
    x, unused = _leaf([1.0, 2.0]), _leaf([3.0])
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="input 1.*not used.*allow_unused"):
        bnp.grad(y, [x, unused], retain_graph=True)
    gx, none = bnp.grad(y, [x, unused], allow_unused=True, retain_graph=True)
    assert none is None and gx.shape == (2,)
    with pytest.raises(ValueError, match="is_grads_batched=True needs explicit grad_outputs"):
        bnp.grad(y, x, is_grads_batched=True, retain_graph=True)
    with pytest.raises(ValueError, match="batched"):
        bnp.grad(x * 2.0, x, grad_outputs=np.ones(2), is_grads_batched=True)
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        bnp.grad(x * 2.0, x, grad_outputs=[np.ones(2), np.ones(2)])
    with pytest.raises(RuntimeError, match="does not require grad"):
        bnp.grad(bnp.tensor([1.0]) * 2.0, x)


def test_shape_and_index_errors_name_the_operation():
    x = bnp.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\).*\(4,\)"):
        x.reshape(4)
    with pytest.raises(ValueError, match=r"transpose.*\(2, 3\)"):
        x.transpose(0, 0)
    with pytest.raises(IndexError, match=r"shape \(2, 3\)"):
        x[5]
    with pytest.raises(IndexError, match="integer or boolean"):
        x[np.array([0.5])]
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match=r"concatenate.*\(2, 3\).*\(2, 4\)"):
        ops.concatenate([x, bnp.tensor(np.ones((2, 4)))], axis=0)
    with pytest.raises(ValueError, match="stack"):
        ops.stack([x, bnp.tensor(np.ones((3, 2)))])
    with pytest.raises(ValueError, match="max: cannot reduce an empty"):
        bnp.tensor(np.ones((0, 2))).max()


def test_unsupported_operands_raise_type_errors():
    with pytest.raises(TypeError, match="mul.*str"):
        bnp.tensor([1.0]) * "a"


# -- tensor() and conversions -------------------------------------------------------------------
def test_tensor_dtype_rules():
    assert bnp.tensor([1.0, 2.0]).dtype == np.float64  # Python floats: the default dtype
    assert bnp.tensor(1.5).dtype == np.float64 and bnp.tensor(1.5).shape == ()
    assert bnp.tensor([1, 2]).dtype.kind == "i"  # integers stay integers (class labels)
    assert bnp.tensor([True, False]).dtype == np.bool_
    assert bnp.tensor(np.ones(2, dtype=np.float32)).dtype == np.float32  # arrays keep theirs
    assert bnp.tensor([1, 2], dtype="float32").dtype == np.float32  # dtype overrides
    assert bnp.tensor(bnp.tensor([1.0])).dtype == np.float64
    bnp.set_default_dtype("float32")  # conftest restores float64
    assert bnp.tensor([1.0, 2.0]).dtype == np.float32
    assert bnp.tensor(np.ones(2)).dtype == np.float64  # an explicit float64 array is kept
    with pytest.raises(ValueError, match="default dtype"):
        bnp.set_default_dtype("float16")
    with pytest.raises(TypeError, match="only floating tensors can require gradients"):
        bnp.tensor([1, 2], requires_grad=True)


def test_float32_stays_float32_through_ops_and_gradients():
    rng = np.random.default_rng(0)
    w = bnp.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    x = bnp.tensor(rng.standard_normal((5, 4)).astype(np.float32))
    logits = F.linear(x, w) * 2 + 1.5
    loss = F.cross_entropy(logits, np.array([0, 1, 2, 0, 1])) + 0.1 * F.mse_loss(F.sigmoid(logits), logits * 0.0)
    assert logits.dtype == np.float32 and loss.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32


def test_item_and_numpy():
    t = bnp.tensor([[2.5]])
    assert t.item() == 2.5 and isinstance(t.item(), float)
    assert isinstance(bnp.tensor(3).item(), int)
    with pytest.raises(ValueError, match="2 elements"):
        bnp.tensor([1.0, 2.0]).item()
    a = bnp.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    host = a.numpy()
    assert isinstance(host, np.ndarray) and host.shape == (2, 2)
    np.testing.assert_array_equal(host, [[1.0, 2.0], [3.0, 4.0]])
    d = a.detach()
    assert not d.requires_grad and d.is_leaf and np.shares_memory(d.numpy(), host)
    assert "requires_grad=True" in repr(a) and "op=mul" in repr(a * 2.0)


def test_comparisons_and_integer_casts_give_constants():
    x = _leaf([-1.0, 2.0])
    mask = x > 0
    assert mask.dtype == np.bool_ and not mask.requires_grad
    assert not ops.astype(x, "int64").requires_grad
    np.testing.assert_array_equal(ops.where(mask, x, 0.0).numpy(), [0.0, 2.0])


def test_operands_numpy_scalars_integer_axes_and_truth_values():
    x = _leaf([1.0, 2.0])
    assert (x * np.float32(0.5)).dtype == np.float64  # a NumPy scalar acts as a Python number
    assert x.sum(axis=np.int64(0)).item() == 3.0
    y = ops.where(np.array([1, 0]), x, x * 3.0)  # an integer condition means nonzero
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 3.0])
    assert bool(x.sum() > 2.0) and not bool(x.sum() > 5.0)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x > 0.0)
    with pytest.raises(TypeError, match="0-d"):
        len(x.sum())
    assert ops.stack([np.ones(2), np.zeros(2)]).shape == (2, 2)  # raw arrays are accepted


# -- make_node: one VJP per parent, or a declared zero derivative -----------------------
def test_make_node_refuses_a_missing_or_extra_vjp():
    from bnp.autograd import make_node

    x = bnp.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"make_node\('twice'\): got 0 VJPs for 1 parents"):
        make_node(x.data * 2, (x,), (), "twice")
    with pytest.raises(TypeError, match=r"make_node\('twice'\): the VJP of parent 0 is None, expected a function"):
        make_node(x.data * 2, (x,), (None,), "twice")


def test_a_declared_zero_derivative_sends_nothing_to_its_parent():
    from bnp.autograd import ZERO_DERIVATIVE, make_node

    x = bnp.tensor([1.0, 2.0], requires_grad=True)
    scale = bnp.tensor([3.0, 5.0], requires_grad=True)  # treated as a constant by this op
    out = make_node(x.data * scale.data, (x, scale), (lambda g, o: g * scale.detach(), ZERO_DERIVATIVE), "scaled")
    gx, gs = bnp.grad(out.sum(), [x, scale], allow_unused=True)
    np.testing.assert_array_equal(gx.numpy(), [3.0, 5.0])
    assert gs is None


def test_tensor_keeps_the_dtype_of_data_that_carry_one():
    previous = bnp.get_default_dtype()
    bnp.set_default_dtype("float32")
    try:
        assert bnp.tensor(np.zeros(2)).dtype == np.float64  # an array keeps float64
        assert bnp.tensor(np.float64(1.0)).dtype == np.float64  # so does a NumPy scalar
        assert bnp.tensor(1.0).dtype == np.float32  # Python numbers and lists take the default
        assert bnp.tensor([1.0, 2.0]).dtype == np.float32
    finally:
        bnp.set_default_dtype(previous)
