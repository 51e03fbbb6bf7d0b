"""Every primitive and composite of the autograd, checked against central differences.

Each case below is a hypothesis strategy that draws shapes (0-d, size-1 axes,
broadcasting) and a seed, and returns the function to check with its input
arrays. Two properties run over all cases:

* first and second order: ``gradcheck`` and ``gradgradcheck`` in float64,
  each with a random upstream gradient;
* batched upstream gradients: ``bnp.grad(..., is_grads_batched=True)`` equals
  stacking one-vector results, also with ``create_graph=True`` and for
  batched VJPs of VJPs (the way ``bnp.hessian`` gets all its rows at once).

Inputs of functions with kinks (relu, abs, max, maximum) are drawn distinct
and away from zero, so finite differences never straddle a kink or a tie.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bnp
import bnp.functional as F
from bnp.autograd import ops
from bnp.testing import gradcheck, gradgradcheck

MAX_SIZE = 24  # entries per input: keeps finite differences of second order cheap


class Case(NamedTuple):
    fn: Callable[..., bnp.Tensor]
    arrays: list  # host float64 arrays, one per differentiated input
    tol: dict = {}  # extra keyword arguments for gradcheck / gradgradcheck


def _small(shape: tuple[int, ...]) -> bool:
    return math.prod(shape) <= MAX_SIZE


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4).filter(_small)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4).filter(_small)
seeds = st.integers(0, 2**32 - 1)


def broadcastable(n: int):
    """``n`` shapes that broadcast together (0-d and size-1 axes included)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=3, min_side=1, max_side=4).filter(
        lambda b: _small(b.result_shape)
    )


# -- input values -------------------------------------------------------------
def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)


def distinct(rng, *shape_list):
    """Arrays whose entries are all different from each other (by >= 0.2) and from 0 (by >= 0.1)."""
    sizes = [math.prod(s) for s in shape_list]
    n = sum(sizes)
    magnitude = rng.permutation(n) * 0.3 + 0.15 + rng.uniform(-0.05, 0.05, n)
    pool = rng.choice([-1.0, 1.0], n) * magnitude
    out, start = [], 0
    for s, size in zip(shape_list, sizes, strict=True):
        out.append(pool[start : start + size].reshape(s))
        start += size
    return out


def _rng(seed: int):
    return np.random.default_rng(seed)


CASES: dict[str, st.SearchStrategy[Case]] = {}


def _register(name: str, strategy: st.SearchStrategy[Case]) -> None:
    assert name not in CASES
    CASES[name] = strategy


# -- elementwise, one input -----------------------------------------------------
UNARY = {
    "neg": (lambda x: -x, normal),
    "exp": (ops.exp, normal),
    "log": (ops.log, positive),
    "sqrt": (ops.sqrt, positive),
    "tanh": (ops.tanh, normal),
    "sigmoid": (ops.sigmoid, normal),
    "relu": (ops.relu, None),
    "abs": (ops.abs, None),
    "square": (ops.square, normal),
    "pow 2": (lambda x: x**2, normal),
    "pow 3": (lambda x: x**3, normal),
    "pow 0": (lambda x: x**0, normal),
    "pow -1": (lambda x: x**-1, positive),
    "pow 0.5": (lambda x: x**0.5, positive),
    "pow -1.5": (lambda x: x**-1.5, positive),
    "pow 1/3": (lambda x: x ** (1 / 3), positive),
    "rpow 2**x": (lambda x: 2.0**x, normal),
    "scalar add": (lambda x: 1.5 + x, normal),
    "scalar sub": (lambda x: 1.5 - x, normal),
    "scalar mul": (lambda x: x * -2.5, normal),
    "scalar div": (lambda x: x / 4.0, normal),
    "scalar rdiv": (lambda x: 3.0 / x, away_from_zero),
    "astype round trip": (lambda x: ops.astype(ops.astype(x, "float32"), "float64") * 1.0, normal),
}


def _unary(fn, values):
    @st.composite
    def draw(draw_):
        shape, rng = draw_(shapes), _rng(draw_(seeds))
        x = distinct(rng, shape)[0] if values is None else values(rng, shape)
        tol = {"eps": 1e-2, "atol": 1e-4, "rtol": 1e-4} if fn is UNARY["astype round trip"][0] else {}
        return Case(fn, [x], tol)

    return draw()


for _name, (_fn, _values) in UNARY.items():
    _register(_name, _unary(_fn, _values))


# -- elementwise, two or three inputs, broadcasting -------------------------------
BINARY = {
    "add": (lambda a, b: a + b, normal, normal),
    "sub": (lambda a, b: a - b, normal, normal),
    "mul": (lambda a, b: a * b, normal, normal),
    "div": (lambda a, b: a / b, normal, away_from_zero),
    "pow tensor**tensor": (lambda a, b: a**b, positive, normal),
    "maximum": (ops.maximum, None, None),
    "minimum": (ops.minimum, None, None),
}


def _binary(fn, va, vb):
    @st.composite
    def draw(draw_):
        (sa, sb), _ = draw_(broadcastable(2))
        rng = _rng(draw_(seeds))
        a, b = distinct(rng, sa, sb) if va is None else (va(rng, sa), vb(rng, sb))
        return Case(fn, [a, b])

    return draw()


for _name, (_fn, _va, _vb) in BINARY.items():
    _register(_name, _binary(_fn, _va, _vb))


@st.composite
def _where(draw):
    (sc, sa, sb), _ = draw(broadcastable(3))
    rng = _rng(draw(seeds))
    cond = rng.random(sc) < 0.5
    return Case(lambda a, b: ops.where(cond, a, b), [normal(rng, sa), normal(rng, sb)])


_register("where", _where())


# -- matmul -----------------------------------------------------------------------
@st.composite
def _matmul(draw):
    kind = draw(st.sampled_from(["2-D", "batched", "1-D @ batched", "batched @ 1-D", "1-D @ 1-D", "1-D @ 2-D"]))
    m, k, n = (draw(st.integers(1, 3)) for _ in range(3))
    (ba, bb), _ = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=2))
    sa, sb = {
        "2-D": ((m, k), (k, n)),
        "batched": (ba + (m, k), bb + (k, n)),
        "1-D @ batched": ((k,), bb + (k, n)),
        "batched @ 1-D": (ba + (m, k), (k,)),
        "1-D @ 1-D": ((k,), (k,)),
        "1-D @ 2-D": ((k,), (k, n)),
    }[kind]
    rng = _rng(draw(seeds))
    return Case(lambda a, b: a @ b, [normal(rng, sa), normal(rng, sb)])


_register("matmul", _matmul())


@st.composite
def _linear(draw):
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))  # x: (in,), (N, in) or (M, N, in)
    d_in, d_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    with_bias = draw(st.booleans())
    rng = _rng(draw(seeds))
    arrays = [normal(rng, lead + (d_in,)), normal(rng, (d_out, d_in))] + ([normal(rng, (d_out,))] if with_bias else [])
    return Case(lambda x, w, *b: F.linear(x, w, *b), arrays)


_register("F.linear", _linear())


# -- reductions ---------------------------------------------------------------------
@st.composite
def _axes(draw, ndim: int):
    """None, one axis (possibly negative) or a tuple of distinct axes."""
    if ndim == 0:
        return draw(st.sampled_from([None, 0, -1, ()]))
    one = st.integers(-ndim, ndim - 1)
    return draw(st.one_of(st.none(), one, st.lists(one, max_size=ndim, unique_by=lambda a: a % ndim).map(tuple)))


def _count(shape, axis) -> int:
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    return math.prod(shape[a] for a in axes) if shape else 1


def _reduction(name: str):
    @st.composite
    def draw(draw_):
        shape = draw_(shapes)
        axis, keepdims = draw_(_axes(len(shape))), draw_(st.booleans())
        rng = _rng(draw_(seeds))
        if name in ("max", "min"):
            x = distinct(rng, shape)[0]
            fn = (lambda a: a.max(axis, keepdims)) if name == "max" else (lambda a: a.min(axis, keepdims))
        elif name == "var":
            correction = 1 if _count(shape, axis) > 1 and draw_(st.booleans()) else 0
            x, fn = normal(rng, shape), lambda a: a.var(axis, keepdims, correction)
        else:
            x, fn = normal(rng, shape), lambda a: getattr(a, name)(axis, keepdims)
        return Case(fn, [x])

    return draw()


for _name in ("sum", "mean", "var", "max", "min"):
    _register(_name, _reduction(_name))


# -- shapes ---------------------------------------------------------------------------
@st.composite
def _reshape(draw):
    shape = draw(shapes)
    target = draw(st.sampled_from([(-1,), tuple(reversed(shape)), shape + (1,), (1,) + shape]))
    rng = _rng(draw(seeds))
    return Case(lambda a: a.reshape(target) * 1.0, [normal(rng, shape)])


@st.composite
def _transpose(draw):
    shape = draw(shapes)
    perm = tuple(draw(st.permutations(range(len(shape)))))
    rng = _rng(draw(seeds))
    fn = (lambda a: a.T) if draw(st.booleans()) else (lambda a: a.transpose(perm))
    return Case(fn, [normal(rng, shape)])


@st.composite
def _swapaxes(draw):
    shape = draw(nonscalar_shapes)
    i, j = (draw(st.integers(-len(shape), len(shape) - 1)) for _ in range(2))
    rng = _rng(draw(seeds))
    return Case(lambda a: a.swapaxes(i, j) * 1.0, [normal(rng, shape)])


@st.composite
def _broadcast_to(draw):
    shape = draw(shapes)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    target = lead + tuple(draw(st.integers(1, 3)) if s == 1 else s for s in shape)
    rng = _rng(draw(seeds))
    return Case(lambda a: ops.broadcast_to(a, target), [normal(rng, shape)])


@st.composite
def _flatten_squeeze(draw):
    shape = draw(nonscalar_shapes)
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    rng = _rng(draw(seeds))
    fn = draw(
        st.sampled_from(
            [
                lambda a: a.flatten(),
                lambda a: F.flatten(ops.expand_dims(a, 0)),
                lambda a: ops.squeeze(ops.expand_dims(a, axis), axis),
            ]
        )
    )
    return Case(fn, [normal(rng, shape)])


_register("reshape", _reshape())
_register("transpose", _transpose())
_register("swapaxes", _swapaxes())
_register("broadcast_to", _broadcast_to())
_register("flatten/expand_dims/squeeze", _flatten_squeeze())


# -- indexing --------------------------------------------------------------------------
INDEX_KINDS = {  # kind -> fewest dimensions it needs
    "int": 1, "slice": 1, "int array (repeats)": 1, "bool mask": 1, "mask of axis 0": 1, "ellipsis": 1,
    "newaxis + array": 1, "int and slice": 2, "two arrays": 2, "array after slice": 2, "separated arrays": 3,
}  # fmt: skip


def _index(draw, kind, shape, rng):
    """An index of the given kind, valid for ``shape``."""

    def picks(size):  # with repeats, on purpose: their gradients must add up
        return rng.integers(0, size, draw(st.integers(1, 5)))

    if kind == "int":
        return draw(st.integers(-shape[0], shape[0] - 1))
    if kind == "slice":
        start, stop = draw(st.integers(-shape[0], shape[0])), draw(st.integers(-shape[0], shape[0]))
        return slice(start, stop, draw(st.sampled_from([1, 2, -1, -2])))
    if kind == "int array (repeats)":
        return picks(shape[0])
    if kind == "bool mask":
        return rng.random(shape) < 0.5
    if kind == "mask of axis 0":
        return bnp.tensor(rng.random(shape[0]) < 0.5)
    if kind == "ellipsis":
        return (Ellipsis, draw(st.integers(0, shape[-1] - 1)))
    if kind == "newaxis + array":
        return (None, picks(shape[0]))
    if kind == "int and slice":
        return (draw(st.integers(0, shape[0] - 1)), slice(1, None))
    if kind == "two arrays":
        n = draw(st.integers(1, 4))
        return (rng.integers(0, shape[0], n), rng.integers(0, shape[1], n))
    if kind == "array after slice":
        return (slice(None), picks(shape[1]))
    n = draw(st.integers(1, 4))  # separated arrays: NumPy moves their axis to the front
    return (rng.integers(0, shape[0], n), slice(None), rng.integers(0, shape[2], n))


def _indexing(kind: str, scatter: bool):
    @st.composite
    def draw(draw_):
        ndim = draw_(st.integers(INDEX_KINDS[kind], 3))
        shape = tuple(draw_(st.integers(1, 4 if ndim < 3 else 3)) for _ in range(ndim))
        rng = _rng(draw_(seeds))
        idx = _index(draw_, kind, shape, rng)
        if not scatter:
            return Case(lambda a: a[idx], [normal(rng, shape)])
        values_shape = np.zeros(shape)[idx.data if isinstance(idx, bnp.Tensor) else idx].shape
        return Case(lambda v: ops.scatter(v, idx, shape), [normal(rng, values_shape)])

    return draw()


for _kind in INDEX_KINDS:
    _register(f"getitem {_kind}", _indexing(_kind, scatter=False))
    _register(f"scatter {_kind}", _indexing(_kind, scatter=True))


@st.composite
def _concatenate(draw):
    shape = draw(nonscalar_shapes)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    rng = _rng(draw(seeds))
    arrays = []
    for _ in range(draw(st.integers(1, 3))):
        s = list(shape)
        s[axis] = draw(st.integers(1, 3))
        arrays.append(normal(rng, tuple(s)))
    return Case(lambda *ts: ops.concatenate(ts, axis), arrays)


@st.composite
def _stack(draw):
    shape = draw(shapes)
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    rng = _rng(draw(seeds))
    arrays = [normal(rng, shape) for _ in range(draw(st.integers(1, 3)))]
    return Case(lambda *ts: ops.stack(ts, axis), arrays)


_register("concatenate", _concatenate())
_register("stack", _stack())


# -- composites of the functional API ----------------------------------------------------
@st.composite
def _softmax(draw, fn):
    shape = draw(nonscalar_shapes)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    rng = _rng(draw(seeds))
    return Case(lambda a: fn(a, axis), [normal(rng, shape)])


@st.composite
def _cross_entropy(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    rng = _rng(draw(seeds))
    target = rng.integers(0, c, n)
    return Case(lambda logits: F.cross_entropy(logits, target), [normal(rng, (n, c)) * 2])


@st.composite
def _mse(draw):
    shape = draw(shapes)
    rng = _rng(draw(seeds))
    return Case(F.mse_loss, [normal(rng, shape), normal(rng, shape)])


_register("F.softmax", _softmax(F.softmax))
_register("F.log_softmax", _softmax(F.log_softmax))
_register("F.tanh", _unary(F.tanh, normal))
_register("F.cross_entropy", _cross_entropy())
_register("F.mse_loss", _mse())

NAMES = sorted(CASES)


def _tensors(case: Case, requires_grad: bool = False) -> list[bnp.Tensor]:
    return [bnp.tensor(a, requires_grad=requires_grad) for a in case.arrays]


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_first_and_second_derivatives(name, data):
    case = data.draw(CASES[name], label="case")
    assert gradcheck(case.fn, _tensors(case), **case.tol)
    assert gradgradcheck(case.fn, _tensors(case), **case.tol)


# -- batched upstream gradients ---------------------------------------------------
def _host(grads, xs, lead=()):
    """Gradients as host arrays, None (unused input) as zeros."""
    return [np.zeros(lead + x.shape) if g is None else g.numpy() for g, x in zip(grads, xs, strict=True)]


def _grads(out, xs, **kw):
    kw.setdefault("allow_unused", True)
    if not out.requires_grad:  # e.g. the gradient of a linear map is constant
        return [None] * len(xs)
    return bnp.grad(out, xs, **kw)


def _inner(grads, weights):
    """sum_k <grads[k], weights[k]> as a scalar Tensor (0 if no gradient has a graph)."""
    total = bnp.tensor(0.0)
    for g, w in zip(grads, weights, strict=True):
        if g is not None:
            total = total + (g * bnp.tensor(w)).sum()
    return total


def assert_close(actual, expected, case):
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=1e-9 if not case.tol else 1e-5, atol=1e-11 if not case.tol else 1e-6)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data(), batch=st.integers(1, 3), seed=seeds)
def test_batched_vjps_equal_stacked_single_vjps(name, data, batch, seed):
    case = data.draw(CASES[name], label="case")
    rng = _rng(seed)
    xs = _tensors(case, requires_grad=True)
    out = case.fn(*xs)
    G = rng.standard_normal((batch,) + out.shape)

    # first order: one pass with B upstream vectors == B passes
    batched = _grads(out, xs, grad_outputs=G, is_grads_batched=True, retain_graph=True)
    single = [_host(_grads(out, xs, grad_outputs=G[b], retain_graph=True), xs) for b in range(batch)]
    assert_close(_host(batched, xs, (batch,)), [np.stack(s) for s in zip(*single, strict=True)], case)

    # second order through batched VJPs: d/dx sum_b <J^T G_b, W_b>
    W = [rng.standard_normal((batch,) + x.shape) for x in xs]
    batched = _grads(out, xs, grad_outputs=G, is_grads_batched=True, create_graph=True)
    looped = bnp.tensor(0.0)
    for b in range(batch):
        single_b = _grads(out, xs, grad_outputs=G[b], create_graph=True)
        looped = looped + _inner(single_b, [w[b] for w in W])
    through_batched = _grads(_inner(batched, W), xs, retain_graph=True)
    assert_close(_host(through_batched, xs), _host(_grads(looped, xs, retain_graph=True), xs), case)

    # batched VJPs of a VJP, as bnp.hessian does: rows of d(J^T u)/dx in one pass
    first = _grads(out, xs, grad_outputs=G[0], create_graph=True)
    live = [(g, rng.standard_normal((batch,) + g.shape)) for g in first if g is not None and g.requires_grad]
    if live:
        outs, vs = [g for g, _ in live], [v for _, v in live]
        rows = bnp.grad(outs, xs, grad_outputs=vs, is_grads_batched=True, retain_graph=True, allow_unused=True)
        one_by_one = [
            _host(bnp.grad(outs, xs, grad_outputs=[v[b] for v in vs], retain_graph=True, allow_unused=True), xs)
            for b in range(batch)
        ]
        assert_close(_host(rows, xs, (batch,)), [np.stack(s) for s in zip(*one_by_one, strict=True)], case)


def test_every_documented_op_has_a_case():
    """The brief's list of primitives and composites, so none is dropped by accident."""
    required = [
        "add", "sub", "neg", "mul", "div", "pow -1", "pow 0.5", "exp", "log", "sqrt", "tanh", "relu", "maximum",
        "minimum", "where", "abs", "sigmoid", "matmul", "sum", "mean", "var", "max", "min", "reshape", "transpose",
        "swapaxes", "broadcast_to", "getitem int array (repeats)", "getitem bool mask", "scatter int array (repeats)",
        "concatenate", "stack", "astype round trip", "F.softmax",
        "F.log_softmax", "F.cross_entropy", "F.mse_loss", "F.linear",
    ]  # fmt: skip
    assert not [r for r in required if r not in CASES]


def test_gradcheck_catches_a_wrong_rule():
    """The checker itself: a deliberately wrong VJP (and a nan one) must fail."""
    from bnp.autograd.graph import make_node
    from bnp.testing import GradcheckError

    def wrong(x):
        return make_node(x.data**2, (x,), (lambda g, o: g * x,), "square_missing_factor_2")

    def nan(x):
        return make_node(x.data * 2, (x,), (lambda g, o: g * float("nan"),), "nan")

    x = bnp.tensor([0.3, -1.2, 2.0])
    for fn in (wrong, nan):
        with pytest.raises(GradcheckError):
            gradcheck(fn, [x])
        assert gradcheck(fn, [x], raise_exception=False) is False

    def wrong_second_order(x):  # right first derivative, built without a graph
        return make_node(x.data**2, (x,), (lambda g, o: g * bnp.tensor(2 * x.data),), "square_no_graph")

    assert gradcheck(wrong_second_order, [x])
    with pytest.raises(GradcheckError):
        gradgradcheck(wrong_second_order, [x])


def test_ties_share_the_gradient():
    """At ties the rules pick the subgradient PyTorch uses: max shares equally, maximum splits in half."""
    x = bnp.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    (gx,) = bnp.grad(x.max(axis=1).sum(), x)
    np.testing.assert_allclose(gx.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    a, b = bnp.tensor([1.0, 2.0, 3.0], requires_grad=True), bnp.tensor([1.0, 5.0, 0.0], requires_grad=True)
    ga, gb = bnp.grad(ops.maximum(a, b).sum(), [a, b])
    np.testing.assert_allclose(ga.numpy(), [0.5, 0, 1])
    np.testing.assert_allclose(gb.numpy(), [0.5, 1, 0])
    z = bnp.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    (gz,) = bnp.grad(ops.relu(z).sum() + ops.abs(z).sum(), z)
    np.testing.assert_allclose(gz.numpy(), [-1, 0, 2])  # relu'(0) = 0 and abs'(0) = 0


@given(data=st.data())
def test_fused_linear_equals_the_composite(data):
    """ops.linear is a primitive for speed; its values and derivatives (first and
    second order) must be those of ``x @ weight.T + bias``."""
    case = data.draw(_linear(), label="case")
    xs = _tensors(case, requires_grad=True)
    fused, composite = case.fn(*xs), xs[0] @ xs[1].T + (xs[2] if len(xs) == 3 else 0.0)
    np.testing.assert_allclose(fused.numpy(), composite.numpy(), rtol=1e-13, atol=1e-13)
    rng = np.random.default_rng(0)
    G = rng.standard_normal(fused.shape)
    first = [bnp.grad(out, xs, grad_outputs=G, create_graph=True) for out in (fused, composite)]
    for a, b in zip(*first, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-13)
    W = [rng.standard_normal(x.shape) for x in xs]
    second = [_host(_grads(_inner(f, W), xs), xs) for f in first]
    assert_close(second[0], second[1], case)


def test_linear_rejects_bad_shapes():
    x, w = bnp.tensor(np.ones((4, 3))), bnp.tensor(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"linear: input has 3 features \(shape \(4, 3\)\).*\(2, 5\)"):
        F.linear(x, w)
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(2,\).*got \(3,\)"):
        F.linear(bnp.tensor(np.ones((4, 5))), w, bnp.tensor(np.ones(3)))
