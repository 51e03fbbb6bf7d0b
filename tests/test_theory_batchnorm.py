"""THEORY section 3: BN on the pre-activation (eps = 0) makes the loss scale invariant in the weights feeding it.

Network: ``x -> h = W x + b -> BN (batch statistics, eps = 0) -> tanh -> linear -> MSE / CE``.
Statements, for every row w_i of W and every c > 0:
``L(c w_i) = L(w_i)``; ``grad_{w_i} . w_i = 0``; ``H(c W) = H(W) / c^2`` (row-wise:
block (i, j) scales by ``1/(c_i c_j)``); ``H(W) vec W = -grad``; and the bias before BN
has zero gradient and zero curvature. BN is used both as ``bnp.functional.batch_norm``
and as a reference written here with autograd ops.

Tolerances: BN subtracts the batch mean of h, which cancels ``max|h|`` down to
``std(h)``; rounding is therefore relative to ``eps * max|h| / std(h)`` (the
"cancellation factor" ``cf``, up to about 1e6 for inputs with mean 1e3 and spread 1e-3).
"""


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_theory_strategies import EPS, layer_inputs

import bnp
import bnp.functional as F
from bnp import backend, curvature, spectra, theory
from bnp.autograd import ops


def _np(x):
    return backend.to_numpy(x)


def bn_ops(h, gamma, beta, eps=0.0):
    """BN in training mode from primitives: (h - mean_B h) / sqrt(var_B h + eps) * gamma + beta."""
    centred = h - ops.mean(h, 0, keepdims=True)
    var = ops.mean(centred * centred, 0, keepdims=True)
    return centred / ops.sqrt(var + eps) * gamma + beta


def bn_functional(h, gamma, beta, eps=0.0):
    return F.batch_norm(h, None, None, gamma, beta, training=True, eps=eps)


IMPLEMENTATIONS = {"ops": bn_ops, "functional": bn_functional}


class BNNet:
    def __init__(self, x, out, loss, impl, seed):
        rng = np.random.default_rng(seed)
        n = x.shape[1]
        self.x, self.loss, self.bn = bnp.tensor(x), loss, IMPLEMENTATIONS[impl]
        self.W = bnp.tensor(rng.standard_normal((out, n)), requires_grad=True)
        self.b = bnp.tensor(rng.standard_normal(out), requires_grad=True)
        self.gamma = bnp.tensor(rng.uniform(0.5, 2.0, out))
        self.beta = bnp.tensor(rng.standard_normal(out))
        k = int(rng.integers(2, 4))
        self.V = bnp.tensor(rng.standard_normal((k, out)))
        self.c = bnp.tensor(rng.standard_normal(k))
        N = x.shape[0]
        self.y = backend.asarray(rng.integers(0, k, N)) if loss == "ce" else bnp.tensor(rng.standard_normal((N, k)))

    def forward(self, W, b=None):
        """(loss, h, z): the pre-activation and the BN output are kept to differentiate with respect to."""
        b = self.b if b is None else b
        h = F.linear(self.x, W, b)
        z = self.bn(h, self.gamma, self.beta)
        out = F.linear(F.tanh(z), self.V, self.c)
        return (F.cross_entropy(out, self.y) if self.loss == "ce" else F.mse_loss(out, self.y)), h, z

    def loss_at(self, W, b=None):
        return self.forward(W, b)[0]

    def cancellation_factor(self, W):
        h = _np(F.linear(self.x, W, self.b).data)
        return float(np.max(np.abs(h).max(axis=0) / h.std(axis=0)))


@st.composite
def bn_nets(draw, min_n=1, min_batch=2):
    x = draw(layer_inputs(min_n=min_n, min_batch=min_batch, max_n=4, max_batch=10))
    out = draw(st.integers(1, 3))
    net = BNNet(x, out, draw(st.sampled_from(["mse", "ce"])), draw(st.sampled_from(sorted(IMPLEMENTATIONS))),
                draw(st.integers(0, 2**32 - 1)))
    # BN with eps = 0 needs every pre-activation to vary genuinely over the batch
    h = _np(F.linear(net.x, net.W, net.b).data)
    spread_ok = np.all(h.std(axis=0) > 1e-9 * np.abs(h).max(axis=0))
    return net if spread_ok else draw(st.nothing())


def _rel(net, W):
    return 1e-10 + 1e3 * EPS * net.cancellation_factor(W)


def _grad_scale(net, W):
    """Per row, the size of the terms that cancel in dL/dw_i: (gamma_i / sigma_i) sum_k |dL/dz_ki| max_k |x_k|.

    The natural yardstick for rounding in quantities that are exactly 0 in theory (with n = 1, say,
    L does not depend on w at all: its gradient and Hessian are pure rounding).
    """
    loss, h, z = net.forward(W)
    (gz,) = bnp.grad(loss, [z])
    sigma = _np(h.data).std(axis=0)
    x = _np(net.x.data)
    return _np(net.gamma.data) / sigma * np.abs(_np(gz.data)).sum(axis=0) * np.linalg.norm(x, axis=1).max()


def _hessian_scale(net, W, H):
    """|H| or, when H is all rounding, the gradient scale over |w| (H w = -g makes H ~ g / |w|)."""
    w = np.linalg.norm(_np(W.data), axis=1)
    return np.abs(H).max() + np.max(_grad_scale(net, W) / w.min())


@given(bn_nets(), st.integers(0, 2**16))
def test_loss_is_invariant_to_positive_rescaling_of_each_row(net, seed):
    c = 10.0 ** np.random.default_rng(seed).uniform(-3, 3, net.W.shape[0])
    W_scaled = bnp.tensor(_np(net.W.data) * c[:, None], requires_grad=True)
    base = net.loss_at(net.W).item()
    assert abs(net.loss_at(W_scaled).item() - base) <= _rel(net, net.W) * (1 + abs(base))
    # and to the bias (BN removes any shift)
    b_shifted = bnp.tensor(_np(net.b.data) + 10.0 ** np.random.default_rng(seed).uniform(-3, 3), requires_grad=True)
    assert abs(net.loss_at(net.W, b_shifted).item() - base) <= _rel(net, net.W) * (1 + abs(base))


@given(bn_nets())
def test_gradient_is_orthogonal_to_each_row_and_the_bias_gradient_vanishes(net):
    loss, h, z = net.forward(net.W)
    gW, gb, gz = (_np(g.data) for g in bnp.grad(loss, [net.W, net.b, z]))
    W = _np(net.W.data)
    rel = _rel(net, net.W)
    dots = np.sum(gW * W, axis=1)
    scale = (np.linalg.norm(gW, axis=1) + _grad_scale(net, net.W)) * np.linalg.norm(W, axis=1)
    assert np.all(np.abs(dots) <= 10 * rel * scale)
    # dL/db_i = sum_k dL/dh_ki = (gamma_i / sigma_i) sum_k (g_zk - mean g_z - zhat_k mean(g_z zhat)) = 0:
    # rounding is relative to the terms, (gamma_i / sigma_i) sum_k |g_zk|
    sigma = _np(h.data).std(axis=0)
    terms = _np(net.gamma.data) / sigma * np.abs(gz).sum(axis=0)
    assert np.all(np.abs(gb) <= 10 * rel * terms + 1e-300)


@given(bn_nets(), st.integers(0, 2**16))
def test_hessian_scales_like_one_over_c_squared(net, seed):
    """H(diag(c) W) = Dc^-1 H(W) Dc^-1 with Dc = diag(c) (x) I_n; for a common c: H(c W) = H(W) / c^2."""
    out, n = net.W.shape
    c = 10.0 ** np.random.default_rng(seed).uniform(-2, 2, out)
    W_scaled = bnp.tensor(_np(net.W.data) * c[:, None], requires_grad=True)
    H = _np(bnp.hessian(lambda: net.loss_at(net.W), net.W))
    H_scaled = _np(bnp.hessian(lambda: net.loss_at(W_scaled), W_scaled))
    cc = np.repeat(c, n)
    rel = _rel(net, net.W) + _rel(net, W_scaled)
    H_scale = _hessian_scale(net, net.W, H)
    np.testing.assert_allclose(H_scaled * np.outer(cc, cc), H, rtol=0, atol=1e3 * rel * H_scale)
    common = float(c[0])
    W_common = bnp.tensor(_np(net.W.data) * common, requires_grad=True)
    H_common = _np(bnp.hessian(lambda: net.loss_at(W_common), W_common))
    np.testing.assert_allclose(H_common, H / common**2, rtol=0, atol=1e3 * rel * H_scale / common**2)


@given(bn_nets())
def test_hessian_times_weights_is_minus_the_gradient(net):
    H = _np(bnp.hessian(lambda: net.loss_at(net.W), net.W))
    (g,) = bnp.grad(net.loss_at(net.W), [net.W])
    g, w = _np(g.data).ravel(), _np(net.W.data).ravel()
    H_scale = _hessian_scale(net, net.W, H)
    scale = H_scale * np.abs(w).sum() + np.abs(g).max() + _grad_scale(net, net.W).max()
    assert np.all(np.abs(H @ w + g) <= 1e3 * _rel(net, net.W) * scale)
    # the bias before BN has no curvature at all
    full = _np(bnp.hessian(lambda: net.loss_at(net.W, net.b), [net.W, net.b]))
    m = w.size
    bias_scale = H_scale * max(1.0, np.abs(_np(net.x.data)).max())  # d/db ~ d/dw / |x|, rows mix both
    np.testing.assert_allclose(full[m:, :], 0.0, atol=1e3 * _rel(net, net.W) * (np.abs(full).max() + bias_scale))


@given(bn_nets(min_n=2, min_batch=4))
def test_effective_condition_number_is_scale_invariant(net):
    out, n = net.W.shape
    H = _np(bnp.hessian(lambda: net.loss_at(net.W), net.W))
    W = _np(net.W.data)
    directions = np.zeros((out, out * n))
    for i in range(out):
        directions[i, i * n : (i + 1) * n] = W[i]
    c = 7.5
    W_c = bnp.tensor(W * c, requires_grad=True)
    H_c = _np(bnp.hessian(lambda: net.loss_at(W_c), W_c))
    if out * n - out < 1:  # n = 1: nothing left after projecting out the rows
        return
    k = spectra.effective_condition_number(backend.asarray(H), backend.asarray(directions), psd=False)
    k_c = spectra.effective_condition_number(backend.asarray(H_c), backend.asarray(directions * c), psd=False)
    rel = _rel(net, net.W)
    # reliable only if the restricted spectrum's smallest |eigenvalue| is well above the rounding (with
    # N = 2, say, BN outputs +-1 whatever W is, and H is rounding noise)
    Q = np.linalg.svd(directions, full_matrices=True)[2][out:].T
    small = np.abs(np.linalg.eigvalsh(Q.T @ H @ Q)).min()
    if small > 1e4 * rel * _hessian_scale(net, net.W, H):  # then kappa is good to ~1e-4
        assert k_c == pytest.approx(k, rel=1e-3)


def test_batch_of_one_bn_output_is_constant_beta():
    """At N = 1 the batch mean is the sample: BN (eps > 0) outputs beta exactly and W gets no gradient."""
    rng = np.random.default_rng(0)
    x = bnp.tensor(rng.standard_normal((1, 3)) * 100)
    W = bnp.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    gamma, beta = bnp.tensor(np.array([1.5, 0.7])), bnp.tensor(np.array([0.3, -2.0]))
    z = bn_ops(F.linear(x, W), gamma, beta, eps=1e-5)
    np.testing.assert_array_equal(_np(z.data), _np(beta.data)[None, :])
    (g,) = bnp.grad((z * z).sum(), [W])
    np.testing.assert_array_equal(_np(g.data), 0.0)
    # the functional BN refuses this case in training mode, as PyTorch does
    with pytest.raises(ValueError, match="more than 1 value"):
        bn_functional(F.linear(x, W), gamma, beta, eps=1e-5)


def test_functional_batch_norm_matches_the_ops_reference():
    rng = np.random.default_rng(1)
    h = bnp.tensor(rng.standard_normal((6, 3)) * [1e-2, 1.0, 1e2] + 1e3, requires_grad=True)
    gamma, beta = bnp.tensor(rng.uniform(0.5, 2, 3)), bnp.tensor(rng.standard_normal(3))
    up = rng.standard_normal((6, 3))
    z1, z2 = bn_ops(h, gamma, beta), bn_functional(h, gamma, beta)
    np.testing.assert_allclose(_np(z1.data), _np(z2.data), rtol=1e-9, atol=1e-9)
    (g1,) = bnp.grad(z1, [h], grad_outputs=backend.asarray(up))
    (g2,) = bnp.grad(z2, [h], grad_outputs=backend.asarray(up))
    np.testing.assert_allclose(_np(g1.data), _np(g2.data), rtol=1e-7, atol=1e-9 * np.abs(_np(g1.data)).max())


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_batch_statistics_couple_the_samples_so_the_per_sample_block_form_needs_all_pairs(impl):
    """THEORY's (1/N) sum_k c_k at_k at_k^T needs per-sample losses l_k(h_k). With BN in training mode
    downstream, L depends on all h_k at once; the exact block is then sum_{k,l} d2L/dh_ki dh_li at_k at_l^T,
    and dropping the cross terms k != l is wrong. In eval mode (running statistics, constants) BN is affine
    per sample and the per-sample form holds."""
    rng = np.random.default_rng(2)
    N, n = 5, 3
    x = rng.standard_normal((N, n)) * 2 + 1
    net = BNNet(x, 2, "mse", impl, 3)
    W, b = net.W, net.b
    H = _np(curvature.layer_block(lambda: net.loss_at(W, b), W, b))
    # the h-Hessian of the whole loss, all sample pairs
    h = bnp.tensor(_np(F.linear(net.x, W, b).data), requires_grad=True)

    def from_h(hh, bn):
        out = F.linear(F.tanh(bn(hh, net.gamma, net.beta)), net.V, net.c)
        return F.mse_loss(out, net.y)

    G = _np(bnp.hessian(lambda: from_h(h, net.bn), h)).reshape(N, 2, N, 2)  # d2L / dh_ki dh_lj
    at = np.concatenate([x, np.ones((N, 1))], axis=1)
    coupled = np.einsum("kilj,kp,lq->ipjq", G, at, at).reshape(2 * (n + 1), 2 * (n + 1))
    np.testing.assert_allclose(H, coupled, rtol=1e-9, atol=1e-12 * np.abs(H).max())
    diagonal_only = _np(theory.exact_layer_block(backend.asarray(x), backend.asarray(
        np.stack([N * G[k, :, k, :] for k in range(N)]))))  # exact_layer_block divides by N
    assert np.abs(H - diagonal_only).max() > 1e-3 * np.abs(H).max()  # the cross-sample terms matter
    # eval mode: constant statistics, samples independent again, per-sample form exact
    mean, var = _np(h.data).mean(axis=0), _np(h.data).var(axis=0)

    def bn_eval(hh, gamma, beta):
        return F.batch_norm(hh, backend.asarray(mean), backend.asarray(var), gamma, beta, training=False, eps=0.0)

    G_eval = _np(bnp.hessian(lambda: from_h(h, bn_eval), h)).reshape(N, 2, N, 2)
    for k in range(N):
        for m in range(N):
            if k != m:
                np.testing.assert_array_equal(G_eval[k, :, m, :], 0.0)
    net.bn = bn_eval
    H_eval = _np(curvature.layer_block(lambda: net.loss_at(W, b), W, b))
    C = np.stack([G_eval[k, :, k, :] * N for k in range(N)])  # c_k of l_k, with L = (1/N) sum_k l_k
    exact = _np(theory.exact_layer_block(backend.asarray(x), backend.asarray(C)))
    np.testing.assert_allclose(H_eval, exact, rtol=1e-9, atol=1e-12 * np.abs(exact).max())
