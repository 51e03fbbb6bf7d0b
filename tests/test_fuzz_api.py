"""Fuzzing the public API the way a careless or hostile user would.

For drawn shapes, dtypes and values (empty batches, NaN/inf entries, float32 values whose square
overflows, batch size 1, wrong ranks, float32/float64 mixes) every call ends in a correct result or
a clear error (ValueError/TypeError/RuntimeError naming the layer or argument); never a non-finite
running statistic, never silent nonsense.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bnp
import bnp.functional as F
from bnp import backend
from bnp.nn import BatchNorm1d, BatchNorm2d, FullNorm1d, FullNorm2d, Linear, Sequential
from bnp.preconditioner import BNP

CLEAR = (ValueError, TypeError, RuntimeError)
NORMS = {"BatchNorm1d": BatchNorm1d, "BatchNorm2d": BatchNorm2d, "FullNorm1d": FullNorm1d, "FullNorm2d": FullNorm2d}
dtypes = st.sampled_from(["float32", "float64"])
values = st.sampled_from(["normal", "offset", "nan", "inf", "huge", "constant"])


def _host(a):
    return backend.to_numpy(a.data if isinstance(a, bnp.Tensor) else a).copy()


def _array(shape, kind, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if kind == "offset":
        x = x * 1e-3 + 1e4
    elif kind == "constant":
        x = np.full(shape, 2.5)
    x = x.astype(dtype)
    if x.size and kind in ("nan", "inf"):
        x.flat[rng.integers(x.size)] = np.nan if kind == "nan" else np.inf
    if x.size and kind == "huge":
        x.flat[rng.integers(x.size)] = np.finfo(dtype).max / 2
    return x


def _benign(kind):
    return kind in ("normal", "offset", "constant")


def _shape(draw_ndim, n, c, hw):
    return {1: (c,), 2: (n, c), 3: (n, c, hw), 4: (n, c, hw, hw)}[draw_ndim]


@given(name=st.sampled_from(sorted(NORMS)), layer_dtype=dtypes, input_dtype=dtypes, kind=values,
       n=st.integers(0, 4), c=st.integers(1, 3), extra=st.integers(0, 1), ndim=st.integers(1, 4),
       hw=st.integers(1, 3), training=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz_norm_layers(name, layer_dtype, input_dtype, kind, n, c, extra, ndim, hw, training, seed):
    bnp.set_default_dtype(layer_dtype)
    layer = NORMS[name](c)
    layer.train(training)
    x = _array(_shape(ndim, n, c + extra, hw), kind, input_dtype, seed)
    before = [_host(b) for b in layer.buffers()]
    try:
        y = layer(bnp.tensor(x))
    except CLEAR as exc:
        assert name in str(exc), str(exc)
        for a, b in zip(before, layer.buffers()):
            np.testing.assert_array_equal(a, _host(b))  # a refusal changes nothing
    else:
        assert y.shape == x.shape and y.dtype == np.dtype(layer_dtype)
        assert input_dtype == layer_dtype and extra == 0  # a mismatch is never silently accepted
        if training:
            assert _benign(kind), "a non-finite batch was folded in without a word"
        if _benign(kind) and (training or n):
            assert np.isfinite(_host(y)).all()
    for b in layer.buffers():
        assert np.isfinite(_host(b)).all()


@given(dtype=dtypes, kind=values, n=st.integers(0, 4), whiten=st.booleans(), eps=st.sampled_from([0.0, 1e-3]),
       rho=st.sampled_from([0.0, 0.9]), ndim=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_fuzz_bnp_training_step(dtype, kind, n, whiten, eps, rho, ndim, seed):
    bnp.set_default_dtype(dtype)
    model = bnp.nn.models.mlp([3, 4, 2], rng=seed)
    pre = BNP(model, rho=rho, eps=eps, whiten=whiten)
    opt = bnp.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(seed)
    model(bnp.tensor(rng.standard_normal((4, 3)).astype(dtype)))  # statistics exist
    before = [(_host(m.mean), _host(m.var), m.count) for m in pre._moments.values()]
    x = _array({1: (3,), 2: (n, 3), 3: (n, 1, 3)}[ndim], kind, dtype, seed)
    try:
        out = model(bnp.tensor(x))
        opt.zero_grad()
        out.sum().backward()
        pre.step()
    except CLEAR as exc:
        assert "Linear" in str(exc) or "BNP" in str(exc), str(exc)
        after = [(_host(m.mean), _host(m.var), m.count) for m in pre._moments.values()]
        for old, new in zip(before, after):
            np.testing.assert_array_equal(old[0], new[0])
            np.testing.assert_array_equal(old[1], new[1])
            assert old[2] == new[2]
    else:
        assert _benign(kind) and (n > 0 or ndim == 1)  # ndim 1: one sample without a batch axis
        for p in model.parameters():
            assert np.isfinite(_host(p.grad)).all()
    for m in pre._moments.values():
        assert np.isfinite(_host(m.mean)).all() and np.isfinite(_host(m.var)).all()


anything = (st.integers(-3, 5) | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.none()
            | st.sampled_from(["2", "0.1", [2], 2.0, 0.5, 1.0, 0.0]))


@given(size=anything, eps=anything, momentum=anything, rho=anything, which=st.sampled_from(
    ["Linear", "Conv2d", *sorted(NORMS), "BNP"]))
def test_fuzz_constructors(size, eps, momentum, rho, which):
    try:
        if which == "Linear":
            obj = Linear(size, 2)
        elif which == "Conv2d":
            obj = bnp.nn.Conv2d(2, size, 1)
        elif which == "BNP":
            obj = BNP(Sequential(Linear(2, 2)), rho=rho, eps=eps)
        else:
            obj = NORMS[which](size, eps=eps, momentum=momentum)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert message.startswith(which), message
        assert any(arg in message for arg in ("in_features", "out_channels", "num_features", "eps", "momentum",
                                               "rho")), message
        return
    # accepted: every argument is in its domain
    if which in ("Linear", "Conv2d") or which in NORMS:
        assert isinstance(size, int) and not isinstance(size, bool) and size >= 1
    if which == "BNP":
        assert 0 <= obj.rho < 1 and math.isfinite(obj.eps) and obj.eps >= 0
    elif which in NORMS:
        assert math.isfinite(obj.eps) and obj.eps >= 0
        if obj.momentum is not None:
            assert 0 <= obj.momentum <= 1 and (which.startswith("Batch") or obj.momentum > 0)


@given(kind=st.sampled_from(["float32", "float64", "int64", "bool", "str", "object", "list", "nested list",
                             "ragged"]), requires_grad=st.booleans(), shape=st.sampled_from([(), (0,), (2, 3)]))
def test_fuzz_tensor_creation(kind, requires_grad, shape):
    size = int(np.prod(shape))
    data = {
        "float32": np.ones(shape, np.float32), "float64": np.ones(shape), "int64": np.ones(shape, np.int64),
        "bool": np.ones(shape, bool), "str": np.full(shape, "a"), "object": np.empty(shape, object),
        "list": [1.0] * size, "nested list": [[1, 2], [3, 4]], "ragged": [[1.0], [1.0, 2.0]],
    }[kind]
    for make in (bnp.Tensor, bnp.tensor):
        try:
            t = make(data, requires_grad=requires_grad)
        except TypeError as exc:
            assert "ensor" in str(exc)
            numeric = kind in ("float32", "float64", "int64", "bool", "list", "nested list")
            floating = kind in ("float32", "float64", "list")
            assert not numeric or (requires_grad and not floating), (kind, requires_grad, str(exc))
        else:
            assert backend.is_array(t.data) and t.data.dtype.kind in "biuf"
            assert not t.requires_grad or t.dtype.kind == "f"


@given(n=st.integers(0, 3), features=st.integers(1, 4), ndim=st.integers(0, 3), dtype=dtypes,
       target_kind=st.sampled_from(["ok", "float", "out of range", "wrong length", "list"]))
def test_fuzz_linear_and_cross_entropy(n, features, ndim, dtype, target_kind):
    layer = Linear(3, 2, rng=0)
    shape = {0: (), 1: (features,), 2: (n, features), 3: (n, 1, features)}[ndim]
    x = bnp.tensor(np.ones(shape, dtype=dtype))
    try:
        out = layer(x)
    except CLEAR as exc:
        assert "Linear" in str(exc)
        assert features != 3 or dtype != "float64" or ndim == 0
        return
    assert out.shape == shape[:-1] + (2,)
    if out.ndim != 2:
        return
    targets = {"ok": np.zeros(n, np.int64), "float": np.zeros(n), "out of range": np.full(n, 5),
               "wrong length": np.zeros(n + 1, np.int64), "list": [0] * n}[target_kind]
    try:
        loss = F.cross_entropy(out, targets)
    except CLEAR as exc:
        assert "cross_entropy" in str(exc)
        assert target_kind != "ok" and not (target_kind == "out of range" and n == 0)
    else:
        assert target_kind in ("ok", "list") or (target_kind == "out of range" and n == 0)
        assert np.isfinite(loss.item()) or n == 0


@given(n=st.integers(2, 5), norm=st.sampled_from(["bn", "fn"]), seed=st.integers(0, 2**16))
def test_fuzz_second_order_tools_touch_no_state(n, norm, seed):
    rng = np.random.default_rng(seed)
    model = bnp.nn.models.mlp([2, 3, 2], norm=norm, rng=seed)
    pre = BNP(model)
    x, y = bnp.tensor(rng.standard_normal((n, 2)) * 3), bnp.tensor(rng.integers(0, 2, n))
    model(x)
    before = [_host(b) for b in model.buffers()] + [m.count for m in pre._moments.values()]
    params = list(model.parameters())
    H = bnp.hessian(lambda: F.cross_entropy(model(x), y), params)
    bnp.hvp(lambda: F.cross_entropy(model(x), y), params, [np.ones(p.shape) for p in params])
    after = [_host(b) for b in model.buffers()] + [m.count for m in pre._moments.values()]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(H).all()
    np.testing.assert_allclose(H, H.T, atol=1e-8 * max(1.0, np.abs(H).max()))


def test_fuzz_suite_reaches_every_outcome():
    """The strategies above reach both outcomes (sanity of the fuzzing itself, not of bnp)."""
    layer = BatchNorm1d(2)
    with pytest.raises(ValueError):
        layer(bnp.tensor(_array((1, 2), "normal", "float64", 0)))  # batch size 1: no variance
    layer(bnp.tensor(_array((3, 2), "normal", "float64", 0)))
