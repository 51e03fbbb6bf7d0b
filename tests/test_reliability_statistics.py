"""Running statistics cannot be poisoned (BNP, BN, FN): empty or non-finite batches are refused
before anything is folded in, hyperparameters are checked where they are given, and a
near-constant feature with eps = 0 leaves .grad finite."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bnp
from bnp import backend
from bnp.errors import NonFiniteError
from bnp.nn import BatchNorm1d, BatchNorm2d, Conv2d, FullNorm1d, FullNorm2d, Linear, Sequential
from bnp.preconditioner import BNP, precondition, precondition_whitened
from bnp.running_moments import RunningMoments

NORMS = [BatchNorm1d, FullNorm1d]


def _host(a):
    return backend.to_numpy(a.data if isinstance(a, bnp.Tensor) else a).copy()


def _snapshot_bnp(pre):
    return [tuple(_host(s) for s in pre.statistics(layer)) + (pre._moments[id(layer)].count,) for layer in pre.layers]


def _bad_batch(kind, n, dtype):
    rng = np.random.default_rng(n)
    if kind == "empty":
        return np.zeros((0, 3), dtype=dtype)
    x = rng.standard_normal((n, 3)).astype(dtype)
    if kind == "nan":
        x[rng.integers(n), rng.integers(3)] = np.nan
    elif kind == "inf":
        x[rng.integers(n), rng.integers(3)] = -np.inf
    else:  # "huge": finite float32 values whose square overflows
        x[:, rng.integers(3)] = np.float32(3e38) * np.sign(rng.standard_normal(n) + 0.5)
        x[0, 0] = np.float32(-3e38)
    return x


@given(kind=st.sampled_from(["empty", "nan", "inf", "huge"]), n=st.integers(2, 6),
       dtype=st.sampled_from(["float32", "float64"]), whiten=st.booleans())
def test_bnp_refuses_a_bad_batch_and_keeps_its_statistics(kind, n, dtype, whiten):
    if kind == "huge" and dtype == "float64":
        dtype = "float32"
    bnp.set_default_dtype(dtype)
    model = bnp.nn.models.mlp([3, 4, 2])
    pre = BNP(model, rho=0.5, whiten=whiten)
    rng = np.random.default_rng(0)
    model(bnp.tensor(rng.standard_normal((5, 3)).astype(dtype)))
    before = _snapshot_bnp(pre)
    error = ValueError if kind == "empty" else NonFiniteError
    with pytest.raises(error, match=r"BNP, layer '0' \(Linear"):
        model(bnp.tensor(_bad_batch(kind, n, dtype)))
    after = _snapshot_bnp(pre)
    for old, new in zip(before, after):
        for a, b in zip(old, new):
            np.testing.assert_array_equal(a, b)
    # training goes on from the unpoisoned statistics
    model(bnp.tensor(rng.standard_normal((5, 3)).astype(dtype)))
    for layer in pre.layers:
        assert all(np.isfinite(_host(s)).all() for s in pre.statistics(layer))


def test_bnp_first_batch_bad_leaves_no_statistics():
    model = bnp.nn.models.mlp([3, 2])
    pre = BNP(model)
    with pytest.raises(ValueError, match="no samples"):
        model(bnp.tensor(np.zeros((0, 3))))
    with pytest.raises(KeyError, match="no statistics yet"):
        pre.statistics(pre.layers[0])


@pytest.mark.parametrize("cls", NORMS)
@given(kind=st.sampled_from(["empty", "nan", "inf", "huge"]), n=st.integers(2, 6),
       dtype=st.sampled_from(["float32", "float64"]))
def test_norm_layers_refuse_a_bad_batch_and_keep_their_buffers(cls, kind, n, dtype):
    if kind == "huge":
        dtype = "float32"
    bnp.set_default_dtype(dtype)
    layer = cls(3)
    layer(bnp.tensor(np.random.default_rng(1).standard_normal((4, 3)).astype(dtype)))
    before = [_host(b) for b in layer.buffers()]
    if kind == "empty" and cls is BatchNorm1d:
        error, message = ValueError, "more than 1 value per channel"
    else:
        error, message = (ValueError, "no samples") if kind == "empty" else (NonFiniteError, "non-finite")
    with pytest.raises(error, match=rf"{cls.__name__}\(3, .*{message}"):
        layer(bnp.tensor(_bad_batch(kind, n, dtype)))
    for a, b in zip(before, layer.buffers()):
        np.testing.assert_array_equal(a, _host(b))


@pytest.mark.parametrize("cls", [BatchNorm2d, FullNorm2d])
def test_2d_norm_layers_refuse_nan_images(cls):
    layer = cls(2)
    x = np.random.default_rng(2).standard_normal((2, 2, 3, 3))
    x[1, 1, 2, 0] = np.nan
    with pytest.raises(NonFiniteError, match=cls.__name__):
        layer(bnp.tensor(x))
    np.testing.assert_array_equal(_host(layer.running_var), np.ones(2))
    assert int(layer.num_batches_tracked) == 0


def test_functional_forms_refuse_non_finite_batches():
    rm, rv = np.zeros(3), np.ones(3)
    x = bnp.tensor(np.array([[1.0, np.nan, 2.0], [0.0, 1.0, 3.0]]))
    with pytest.raises(NonFiniteError, match="batch_norm"):
        bnp.functional.batch_norm(x, rm, rv, training=True)
    with pytest.raises(NonFiniteError, match="full_norm"):
        bnp.functional.full_norm(x, rm, rv, training=True)
    np.testing.assert_array_equal(rm, np.zeros(3))
    np.testing.assert_array_equal(rv, np.ones(3))


def test_running_moments_refuse_non_finite_updates_and_loads():
    rm = RunningMoments(2, 0.9, name="mine")
    rm.update(np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    with pytest.raises(NonFiniteError, match="mine: .*mean has 1 non-finite of 2"):
        rm.update(np.array([np.nan, 2.0]), np.array([0.5, 0.5]))
    with pytest.raises(NonFiniteError, match="variance"):
        rm.update(np.array([1.0, 2.0]), np.array([0.5, np.inf]))
    assert rm.count == 1
    np.testing.assert_array_equal(rm.mean, [1.0, 2.0])
    with pytest.raises(NonFiniteError, match="load_state_dict"):
        rm.load_state_dict({"mean": np.array([0.0, np.nan]), "var": np.ones(2), "count": np.asarray(3)})
    with pytest.raises(ValueError, match="count"):
        rm.load_state_dict({"mean": np.zeros(2), "var": np.ones(2), "count": np.asarray(-1)})
    assert rm.count == 1


BAD_RHO = [1.0, -0.1, math.nan, math.inf, "0.5", True]
BAD_EPS = [-1e-3, math.nan, math.inf, "1e-3", None]


@pytest.mark.parametrize("rho", BAD_RHO)
def test_bnp_checks_rho_at_construction(rho):
    with pytest.raises(ValueError, match="BNP: rho"):
        BNP(bnp.nn.models.mlp([2, 2]), rho=rho)


@pytest.mark.parametrize("eps", BAD_EPS)
def test_bnp_and_norm_layers_check_eps_at_construction(eps):
    with pytest.raises(ValueError, match="BNP: eps"):
        BNP(bnp.nn.models.mlp([2, 2]), eps=eps)
    for cls in (BatchNorm1d, BatchNorm2d, FullNorm1d, FullNorm2d):
        with pytest.raises(ValueError, match=f"{cls.__name__}: eps"):
            cls(2, eps=eps)


@pytest.mark.parametrize("momentum", [-0.1, 1.5, math.nan, math.inf, "0.1"])
def test_norm_layers_check_momentum_at_construction(momentum):
    for cls in (BatchNorm1d, BatchNorm2d, FullNorm1d, FullNorm2d):
        with pytest.raises(ValueError, match=f"{cls.__name__}: momentum"):
            cls(2, momentum=momentum)


def test_momentum_edges():
    BatchNorm1d(2, momentum=None), BatchNorm1d(2, momentum=0.0), BatchNorm1d(2, momentum=1.0)
    FullNorm1d(2, momentum=1.0)
    with pytest.raises(ValueError, match=r"FullNorm1d: momentum must lie in \(0, 1\]"):
        FullNorm1d(2, momentum=0.0)  # a batch's long-run weight 0 (and 0/0 in the bias correction)
    with pytest.raises(ValueError, match="FullNorm1d: momentum"):
        FullNorm1d(2, momentum=None)
    with pytest.raises(ValueError, match="batch_norm: momentum"):
        bnp.functional.batch_norm(bnp.tensor(np.ones((3, 2))), np.zeros(2), np.ones(2), training=True, momentum=2.0)
    with pytest.raises(ValueError, match="full_norm: eps"):
        bnp.functional.full_norm(bnp.tensor(np.ones((3, 2))), np.zeros(2), np.ones(2), eps=-1.0)


# -- eps = 0 and near-constant features -------------------------------------------------
@given(const=st.sampled_from([0.0, 1e-170, 1.0]) | st.floats(-1e6, 1e6),
       jitter=st.sampled_from([0.0, 1e-300, 1e-160, 1e-30, 1e-20, 1e-14]),
       bias=st.booleans(), conv=st.booleans(), rho=st.sampled_from([0.0, 0.9]),
       dtype=st.sampled_from(["float32", "float64"]))
def test_eps_zero_near_constant_feature_gives_finite_grad(const, jitter, bias, conv, rho, dtype):
    bnp.set_default_dtype(dtype)
    rng = np.random.default_rng(3)
    if conv:
        model = Sequential(Conv2d(2, 2, 2, bias=bias, rng=0))
        x = rng.standard_normal((3, 2, 3, 3))
        x[:, 1] = const + jitter * rng.standard_normal((3, 3, 3))
    else:
        model = Sequential(Linear(3, 2, bias=bias, rng=0))
        x = rng.standard_normal((4, 3))
        x[:, 1] = const + jitter * rng.standard_normal(4)
    pre = BNP(model, rho=rho, eps=0.0)
    for _ in range(2):
        model.zero_grad()
        model(bnp.tensor(x.astype(dtype))).sum().backward()
        pre.step()
        for p in model.parameters():
            assert np.isfinite(_host(p.grad)).all(), (p.shape, _host(p.grad))


def test_eps_zero_floor_rule():
    """The floor is u * (s^2 + mu^2) per feature; an all-zero feature is left unscaled."""
    u = np.finfo(np.float64).eps
    mean, var = np.array([4.0, 0.0, 1.0]), np.array([0.0, 0.0, 2.0])
    gw, gb = np.ones((1, 3)), np.array([0.5])
    out_w, out_b = precondition(gw, gb, mean, var, 0.0)
    centred = gw - gb[:, None] * mean
    np.testing.assert_allclose(out_w, centred / np.array([u * 16.0, 1.0, 2.0]))
    np.testing.assert_allclose(out_b, gb - out_w @ mean)
    out_w, _ = precondition(gw, None, mean, var, 0.0)  # no bias: D0^2 = s^2 + mu^2 (+ eps)
    np.testing.assert_allclose(out_w, gw / np.array([16.0, 1.0, 3.0]))
    # the floor never binds for a feature whose variance is resolved
    out_w, _ = precondition(gw, gb, mean, var + 1.0, 0.0)
    np.testing.assert_allclose(out_w, centred / (var + 1.0))
    tiny = np.finfo(np.float64).tiny
    out_w, _ = precondition(gw, gb, np.array([1e-160, 0.0, 1.0]), var, 0.0)  # subnormal scale: floored at tiny
    np.testing.assert_allclose(out_w[0, 0], (1 - 0.5e-160) / tiny)


def test_whitened_eps_zero_with_singular_covariance_is_finite():
    model = Sequential(Linear(3, 2, rng=0))
    pre = BNP(model, rho=0.0, eps=0.0, whiten=True)
    x = np.random.default_rng(4).standard_normal((2, 3))  # 2 samples, 3 features: covariance of rank 1
    model(bnp.tensor(x)).sum().backward()
    pre.step()
    assert all(np.isfinite(_host(p.grad)).all() for p in model.parameters())
    gw, gb = precondition_whitened(np.ones((1, 2)), None, np.zeros(2), np.zeros((2, 2)), 0.0)
    np.testing.assert_array_equal(gw, np.ones((1, 2)))  # all-zero statistics: ridge 1, nothing to scale
