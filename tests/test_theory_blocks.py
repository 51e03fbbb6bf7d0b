"""THEORY sections 1-2 on real networks: exact Hessian blocks of any layer, the Kronecker form,
the transformed Hessian P^T H P, and the Loewner bounds alpha M <= H <= beta M.

The networks are random small MLPs built with bnp.functional (tanh / sigmoid /
relu, MSE or cross-entropy). Their input comes from ``layer_inputs`` (large
means, spread scales, near-singular, tiny batches); every layer's weights are
drawn in standardized coordinates (``W = W_hat D^-1``, ``b = b_hat - W mu``) so
that pre-activations stay O(1) whatever the input statistics, which keeps the
curvatures ``c_k`` away from saturation.

The per-sample curvatures ``C_k = d2 l_k / dh_k dh_k^T`` are obtained
independently of the layer's parameters: the pre-activation ``h`` of the
layer is made a leaf and the rest of the network ("the tail") is
differentiated twice with respect to it.

Tolerances: the Hessian computed by autograd and the closed form both round
relative to the size of their terms, so entries are compared against
``|C| (x) |at| |at|^T`` (the same sum with absolute values), times 1e-9; an
additional floor of 1e-6 of the largest |C| covers curvatures that cancel to
nearly 0 in hidden layers (relu, saturated units).
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from test_theory_strategies import EPS, layer_inputs

import bnp
import bnp.functional as F
from bnp import backend, curvature, theory

ACTIVATIONS = {"tanh": F.tanh, "sigmoid": F.sigmoid, "relu": F.relu}


def _np(x):
    return backend.to_numpy(x)


def _b(x):
    return backend.asarray(x)


class Net:
    """A random MLP with its data; ``forward`` can start from any layer's pre-activation."""

    def __init__(self, x, widths, acts, loss, seed):
        rng = np.random.default_rng(seed)
        self.x, self.acts, self.loss = x, acts, loss
        self.params = []
        a = x
        for k, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            mu, var = a.mean(axis=0), a.var(axis=0)
            # a floor keeps W finite when a feature is constant over the batch (its variance then is
            # rounding noise, or 0 for N = 1) without touching genuinely spread features
            d = np.sqrt(var + 1e-10 * (mu * mu + 1.0))
            W = rng.standard_normal((fan_out, fan_in)) * rng.uniform(0.5, 2.0) / np.sqrt(fan_in) / d
            b = 0.5 * rng.standard_normal(fan_out) - W @ mu
            self.params += [bnp.tensor(W, requires_grad=True), bnp.tensor(b, requires_grad=True)]
            h = a @ W.T + b
            a = _np(ACTIVATIONS[acts[k]](bnp.tensor(h)).data) if k < len(acts) else h
        N = x.shape[0]
        if loss == "ce":
            self.y = _b(rng.integers(0, widths[-1], N))
        else:
            self.y = bnp.tensor(rng.standard_normal((N, widths[-1])))
        self.depth = len(widths) - 1
        self.widths = widths

    def __repr__(self):
        return f"Net(widths={self.widths}, acts={self.acts}, loss={self.loss!r}, x=np.{self.x!r})"

    def layer_input(self, layer, params=None):
        """The input ``a`` of linear layer ``layer`` as a Tensor."""
        params = self.params if params is None else params
        a = bnp.tensor(self.x)
        for k in range(layer):
            a = ACTIVATIONS[self.acts[k]](F.linear(a, params[2 * k], params[2 * k + 1]))
        return a

    def tail(self, h, layer, params=None):
        """Per-sample losses l_k (N,) from the pre-activation h of ``layer``."""
        params = self.params if params is None else params
        for k in range(layer + 1, self.depth):
            h = F.linear(ACTIVATIONS[self.acts[k - 1]](h), params[2 * k], params[2 * k + 1])
        if self.loss == "ce":
            return -F.log_softmax(h, axis=1)[backend.xp().arange(h.shape[0]), self.y]
        diff = h - self.y
        return (diff * diff).mean(axis=1)

    def loss_fn(self):
        return lambda: self.total(self.layer_input(self.depth - 1), self.depth - 1)

    def total(self, a, layer):
        h = F.linear(a, self.params[2 * layer], self.params[2 * layer + 1])
        out = h
        for k in range(layer + 1, self.depth):
            out = F.linear(ACTIVATIONS[self.acts[k - 1]](out), self.params[2 * k], self.params[2 * k + 1])
        return F.cross_entropy(out, self.y) if self.loss == "ce" else F.mse_loss(out, self.y)

    def curvatures(self, layer):
        """C (N, out, out): per-sample Hessians of l_k in h_k, by autograd of the tail alone."""
        with bnp.no_grad():
            a = self.layer_input(layer)
            h_data = F.linear(a, self.params[2 * layer], self.params[2 * layer + 1]).data
        h = bnp.tensor(h_data, requires_grad=True)
        N, out = h.shape
        full = _np(bnp.hessian(lambda: self.tail(h, layer).sum(), h)).reshape(N, out, N, out)
        C = np.stack([full[k, :, k, :] for k in range(N)])
        off = full.copy()
        for k in range(N):
            off[k, :, k, :] = 0
        return C, off


@st.composite
def networks(draw, min_depth=1, max_depth=3, losses=("mse", "ce")):
    x = draw(layer_inputs(max_n=4, max_batch=8))
    depth = draw(st.integers(min_depth, max_depth))
    loss = draw(st.sampled_from(losses))
    widths = [x.shape[1]] + [draw(st.integers(1, 4)) for _ in range(depth - 1)]
    widths.append(draw(st.integers(2 if loss == "ce" else 1, 4)))
    acts = [draw(st.sampled_from(sorted(ACTIVATIONS))) for _ in range(depth - 1)]
    return Net(x, widths, acts, loss, draw(st.integers(0, 2**32 - 1)))


def _assert_within(actual, expected, tol, what):
    """|actual - expected| <= tol entrywise, reporting the worst entry relative to its tolerance."""
    excess = np.abs(actual - expected) / np.maximum(tol, 1e-300)
    if not np.all(excess <= 1.0):
        idx = np.unravel_index(np.argmax(excess), excess.shape)
        raise AssertionError(f"{what}: entry {idx} off by {excess[idx]:.3g} x its tolerance {tol[idx]:.3e} "
                             f"(actual {actual[idx]!r}, expected {expected[idx]!r})")


def _tolerance(a, C, rel=1e-9):
    """``rel`` times the absolute-value version of the Kronecker sum, with a floor for cancelling curvatures."""
    C_abs = np.abs(C) + 1e-6 * max(np.abs(C).max(), 1e-300)
    return rel * _np(theory.exact_layer_block(_b(np.abs(a)), _b(C_abs)))


def _loss_at(net, layer):
    return lambda: net.total(net.layer_input(layer), layer)


@given(networks(), st.data())
def test_block_hessian_of_any_layer_is_the_kronecker_sum(net, data):
    layer = data.draw(st.integers(0, net.depth - 1), label="layer")
    W, b = net.params[2 * layer], net.params[2 * layer + 1]
    a = _np(net.layer_input(layer).data)
    C, off = net.curvatures(layer)
    np.testing.assert_array_equal(off, 0.0)  # samples do not interact: d2 l_k / dh_k dh_j = 0 for j != k
    loss_fn = _loss_at(net, layer)
    np.testing.assert_allclose(_np(net.tail(bnp.tensor(a @ _np(W.data).T + _np(b.data)), layer).mean().data),
                               _np(loss_fn().data), rtol=1e-12)  # the tail's per-sample losses average to L
    H = _np(curvature.layer_block(loss_fn, W, b))
    exact = _np(theory.exact_layer_block(_b(a), _b(C)))
    tol = _tolerance(a, C)
    _assert_within(H, exact, tol, "layer block vs Kronecker sum")
    # one neuron: (1/N) sum_k c_k at_k at_k^T with c_k = d2 l_k / d h_ki^2
    i = data.draw(st.integers(0, W.shape[0] - 1), label="neuron")
    n1 = a.shape[1] + 1
    block = _np(curvature.neuron_block(loss_fn, W, b, i))
    neuron = _np(theory.exact_neuron_block(_b(a), _b(C[:, i, i])))
    sl = slice(i * n1, (i + 1) * n1)
    _assert_within(block, neuron, tol[sl, sl], "neuron block vs (1/N) sum c_k at at^T")


@given(networks(max_depth=2))
def test_last_layer_closed_forms_mse_and_softmax(net):
    layer = net.depth - 1
    W, b = net.params[2 * layer], net.params[2 * layer + 1]
    a = _np(net.layer_input(layer).data)
    N, out = a.shape[0], W.shape[0]
    C, _ = net.curvatures(layer)
    if net.loss == "mse":
        # F.mse_loss averages over the out outputs too: l_k = (1/out) |h_k - y_k|^2, so C_k = (2/out) I
        closed = np.broadcast_to(2.0 / out * np.eye(out), (N, out, out))
    else:
        logits = a @ _np(W.data).T + _np(b.data)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        closed = np.stack([np.diag(pk) - np.outer(pk, pk) for pk in p])  # softmax CE: diag(p) - p p^T
    np.testing.assert_allclose(C, closed, rtol=1e-10, atol=1e-13)
    H = _np(curvature.layer_block(net.loss_fn(), W, b))
    _assert_within(H, _np(theory.exact_layer_block(_b(a), _b(closed))), _tolerance(a, closed), "closed form")
    if net.loss == "mse":  # the whole layer block is (2/out) I (x) M
        M = _np(theory.moment_matrix(_b(a)))
        _assert_within(H, np.kron(2.0 / out * np.eye(out), M), _tolerance(a, closed), "(2/out) I (x) M")


@given(networks(), st.data())
def test_transformed_hessian_is_the_hessian_of_the_standardized_network(net, data):
    """P^T H P (H over one layer's [W|b]) = Hessian of the network whose layer sees D^-1 (a - mu), mu, D frozen."""
    layer = data.draw(st.integers(0, net.depth - 1), label="layer")
    W, b = net.params[2 * layer], net.params[2 * layer + 1]
    a_t = net.layer_input(layer)
    a = _np(a_t.data)
    N, n = a.shape
    out = W.shape[0]
    mu, var = a.mean(axis=0), a.var(axis=0)
    # eps = 0 needs every feature to vary genuinely over the batch (not just by rounding of a constant)
    varies = np.all(var > (1e-8 * np.abs(a).max(axis=0)) ** 2)
    eps = data.draw(st.sampled_from([0.0, 1e-3, 1.0] if varies else [1e-3, 1.0]), label="eps")
    d = np.sqrt(var + eps)
    # theta = P theta_hat  <=>  W_hat = W D, b_hat = b + W mu
    W_hat = bnp.tensor(_np(W.data) * d, requires_grad=True)
    b_hat = bnp.tensor(_np(b.data) + _np(W.data) @ mu, requires_grad=True)
    params = list(net.params)
    params[2 * layer], params[2 * layer + 1] = W_hat, b_hat

    def standardized_loss():
        a_hat = (net.layer_input(layer, params) - _b(mu)) / _b(d)  # frozen constants
        h = F.linear(a_hat, W_hat, b_hat)
        return net.tail(h, layer, params).mean()

    # The two networks compute the same h with different rounding: W a + b cancels terms of size
    # |W| |a| ~ |a| / d down to O(1), so h (hence every c_k) differs by about eps max(|a| / d) relatively.
    rel = 1e-9 + 1e3 * (n + 1) * EPS * np.max(np.abs(a) / d)
    loss_fn = _loss_at(net, layer)
    np.testing.assert_allclose(_np(standardized_loss().data), _np(loss_fn().data), rtol=rel)  # same function
    H = _np(curvature.layer_block(loss_fn, W, b))
    H_hat = _np(curvature.layer_block(standardized_loss, W_hat, b_hat))
    P = _np(theory.bnp_transform(_b(mu), _b(var), eps))
    P_layer = np.kron(np.eye(out), P)
    C, _ = net.curvatures(layer)
    tol = np.abs(P_layer).T @ _tolerance(a, C, rel) @ np.abs(P_layer)  # rounding of H, carried through P
    tol += 100 * out * (n + 1) * EPS * np.abs(P_layer).T @ np.abs(H) @ np.abs(P_layer)  # rounding of the product
    _assert_within(P_layer.T @ H @ P_layer, H_hat, tol, "P^T H P vs standardized network")
    # and both equal the Kronecker sum over the standardized inputs ah = [D^-1 (a - mu); 1]
    a_hat = _np(theory.standardize(_b(a), _b(mu), _b(var), eps))[:, :n]
    exact = _np(theory.exact_layer_block(_b(a_hat), _b(C)))
    _assert_within(H_hat, exact, _tolerance(a_hat, C, rel), "standardized network vs Kronecker sum")


@given(layer_inputs(max_n=4, max_batch=10), st.booleans(), st.integers(0, 2**32 - 1))
def test_logistic_loss_block_lies_between_alpha_M_and_beta_M(x, hidden, seed):
    """c_k = sigma(h_k)(1 - sigma(h_k)) in [alpha, beta] gives alpha M <= H <= beta M (Loewner order)."""
    rng = np.random.default_rng(seed)
    widths = [x.shape[1], int(rng.integers(1, 5)), 1] if hidden else [x.shape[1], 1]
    net = Net(x, widths, ["tanh"] * (len(widths) - 2), "mse", seed)
    layer = net.depth - 1
    W, b = net.params[2 * layer], net.params[2 * layer + 1]
    y = _b(rng.choice([-1.0, 1.0], size=(x.shape[0], 1)))
    a = _np(net.layer_input(layer).data)

    def loss_fn():  # mean_k log(1 + exp(-y_k h_k))
        h = F.linear(net.layer_input(layer), W, b)
        return -F.sigmoid(h * y).log().mean()

    H = _np(curvature.neuron_block(loss_fn, W, b, 0))
    h = a @ _np(W.data).T[:, 0] + _np(b.data)[0]
    s = 1 / (1 + np.exp(-h))
    c = s * (1 - s)
    alpha, beta = c.min(), c.max()
    M = _np(theory.moment_matrix(_b(a)))
    N, n = a.shape
    # H is the exact block with these c_k ...
    _assert_within(H, _np(theory.exact_neuron_block(_b(a), _b(c))), _tolerance(a, c[:, None, None]), "logistic")
    # ... hence sandwiched; eigenvalues of the differences are known to about (N + n) eps beta trace(M)
    slack = 1e3 * (N + n) * EPS * beta * np.trace(M)
    assert np.linalg.eigvalsh(H - alpha * M).min() >= -slack
    assert np.linalg.eigvalsh(beta * M - H).min() >= -slack
    # and so lambda_max(H) <= beta lambda_max(M), lambda_min(H) >= alpha lambda_min(M): kappa(H) <= beta/alpha kappa(M)
    wH, wM = np.linalg.eigvalsh(H), np.linalg.eigvalsh(M)
    assert wH[-1] <= beta * wM[-1] + slack and wH[0] >= alpha * wM[0] - slack
