# %% [markdown]
# # Chapter 2. Why a layer's inputs decide its conditioning
#
# Gradient descent is slow when the loss is curved very differently in
# different directions: the condition number of the Hessian is large. This
# chapter shows that for one layer of a network that condition number is
# governed by a single matrix built from the layer's *inputs*, that input
# means and unequal input scales make it large, and that one linear change of
# variables (the BNP transform) removes both effects exactly.
#
# The mathematics is in `bnp.theory` (closed forms, no autograd); the Hessians
# come from the autograd of chapter 1. The two are checked against each other.
# Reference: S. Lange, K. Helfrich, Q. Ye, *Batch Normalization
# Preconditioning for Neural Network Training*, JMLR 23(72), 2022.

# %%
import os

import numpy as np  # host-side: printing and plotting

import bnp
from bnp import spectra, theory
from bnp.curvature import layer_permutation
from bnp.data import synthetic
from bnp.nn import models

QUICK = os.environ.get("BNP_TUTORIAL_QUICK", "0") == "1"
bnp.set_default_dtype("float64")
rng = np.random.default_rng(0)
to_host = bnp.backend.to_numpy

# %% [markdown]
# ## 1. The Hessian block of one layer is a moment matrix
#
# A fully connected layer maps its input $a \in \mathbb{R}^n$ to
# $h = W a + b$. Neuron $i$ owns the row $\theta_i = [w_i; b_i]$ and, with the
# extended input $\tilde a = [a; 1]$, computes $h_i = \theta_i^\top \tilde a$.
# Over a batch of $N$ inputs $a_1, \dots, a_N$ with per-sample losses $\ell_k$
# and $L = \frac1N \sum_k \ell_k$, the chain rule and the linearity of $h_i$
# in $\theta_i$ give, exactly,
#
# $$\frac{\partial^2 L}{\partial \theta_i^2} = \frac1N \sum_k c_k\, \tilde a_k \tilde a_k^\top,
# \qquad c_k = \frac{\partial^2 \ell_k}{\partial h_{ki}^2}.$$
#
# For the last layer with the squared error $\ell_k = \tfrac12 \|h_k - y_k\|^2$,
# every $c_k = 1$ and the block is the **input moment matrix**
#
# $$M = \frac1N \sum_k \tilde a_k \tilde a_k^\top
#     = \begin{bmatrix} S + \mu\mu^\top & \mu \\ \mu^\top & 1 \end{bmatrix},$$
#
# with $\mu$ the batch mean and $S$ the (biased) batch covariance of the
# inputs. The block of the whole layer, neuron by neuron, is $I \otimes M$.
#
# Let us check this on the last layer of a small ReLU network, with the
# Hessian from autograd on one side and `theory.moment_matrix` on the other.

# %%
n_in, hidden, n_out, batch = (4, 6, 2, 32) if QUICK else (8, 16, 3, 256)
model = models.mlp([n_in, hidden, n_out], activation="relu", rng=0)
X = bnp.tensor(rng.standard_normal((batch, n_in)))  # centred, unit-scale network inputs
Y = bnp.tensor(rng.standard_normal((batch, n_out)))
last = model[2]
a = model[1](model[0](X)).data  # what the last layer sees: ReLU outputs, (batch, hidden)


def half_squared_error() -> bnp.Tensor:
    """L = (1/N) sum_k 1/2 |h_k - y_k|^2, the convention in which every c_k = 1."""
    r = model(X) - Y
    return (r * r).sum() * (0.5 / batch)


H = bnp.hessian(half_squared_error, [last.weight, last.bias])
perm = layer_permutation(n_out, hidden)  # rows [W | b] neuron by neuron: [w_1; b_1; w_2; b_2; ...]
H_neurons = to_host(H[perm][:, perm])
M = to_host(theory.moment_matrix(a))
block_error = np.abs(H_neurons - np.kron(np.eye(n_out), M)).max() / np.abs(M).max()
print(f"last layer: Hessian {H_neurons.shape} vs I (x) M: relative difference {block_error:.1e}")
assert block_error < 1e-12

# %% [markdown]
# The layer's inputs are ReLU outputs. They are never negative, so their mean
# cannot be zero, even though the network's own inputs are centred: for a
# Gaussian pre-activation each feature's mean is about 0.7 of its standard
# deviation, and $|\mu|$ grows like the square root of the layer's width.
# Keep an eye on $|\mu|$: the next section shows it is what hurts.

# %%
mu_hidden, S_hidden = theory.batch_statistics(a)
std_hidden = np.sqrt(np.diag(to_host(S_hidden)))
alive = std_hidden > 0  # a unit that is off for the whole batch has mean and std 0
print(f"ReLU layer outputs: |mu| = {np.linalg.norm(to_host(mu_hidden)):.2f}, "
      f"mean / std per feature = {np.mean(to_host(mu_hidden)[alive] / std_hidden[alive]):.2f}, "
      f"kappa(M) = {spectra.kappa_from_eigenvalues(spectra.gram_eigenvalues(theory.extend(a))):.3g}")
assert (to_host(mu_hidden) >= 0).all()

# %% [markdown]
# ## 2. Means and scales make M ill-conditioned
#
# Rayleigh quotients $x^\top M x / x^\top x$ lie between the extreme
# eigenvalues of $M$, so every test vector gives a bound.
#
# * $x = [\mu; 1]$ gives $\lambda_{\max}(M) \ge 1 + |\mu|^2$.
# * $x = [m; -m^\top\mu]$ with $m = \mu / |\mu|$ kills the mean:
#   $\lambda_{\min}(M) \le m^\top S m / (1 + |\mu|^2)$.
#
# Together, $\kappa(M) \ge (1+|\mu|^2)^2 / (m^\top S m)$: for a fixed spread
# the condition number grows like $|\mu|^4$. Separately, the test vector
# $[u; -u^\top\mu]$ with $u$ the bottom eigenvector of $S$ gives
# $\lambda_{\min}(M) \le \lambda_{\min}(S)$, and interlacing (the top-left block
# of $M$ is $S + \mu\mu^\top \succeq S$) gives $\lambda_{\max}(M) \ge \lambda_{\max}(S)$.
# So $\kappa(M) \ge \kappa(S) \ge \max_j S_{jj} / \min_j S_{jj}$: unequal
# feature scales hurt on their own.
#
# We generate inputs with both defects on a knob (`bnp.data.synthetic`): each
# feature is $s_j (z_j + \text{shift})$ with $z$ standardized and the scales
# $s_j$ spread over a ratio `spread`. Everything else stays the same
# (same seed), so only the two knobs move.

# %%
n_features, n_samples = (6, 200) if QUICK else (20, 2000)
settings = [(0, 1), (1, 1), (3, 1), (10, 1), (30, 1), (0, 10), (0, 100), (0, 1000), (3, 100)]


def layer_inputs(shift: float, spread: float):
    """Inputs (n_samples, n_features) with the given mean shift and scale spread, as a backend array."""
    ds = synthetic(n_train=n_samples, n_test=0, n_features=n_features, mean_shift=shift,
                   scale_spread=spread, seed=0)
    return bnp.backend.asarray(ds.X_train)


def kappa_M(inputs) -> float:
    """kappa(M) from the singular values of the extended inputs: accurate even for kappa ~ 1e12."""
    return spectra.kappa_from_eigenvalues(spectra.gram_eigenvalues(theory.extend(inputs)))


rows = []
for shift, spread in settings:
    inputs = layer_inputs(shift, spread)
    mu, S = theory.batch_statistics(inputs)
    rows.append(dict(shift=shift, spread=spread, mu2=float((mu * mu).sum()), measured=kappa_M(inputs),
                     bound_mean=theory.kappa_lower_bound_mean(mu, S),
                     bound_scales=theory.kappa_lower_bound_scales(S),
                     after_bnp=spectra.condition_number(theory.transformed_moment_matrix(inputs)),
                     kappa_R=spectra.condition_number(theory.correlation_matrix(S))))

print(f"{'shift':>5} {'spread':>6} | {'kappa(M) measured':>17} {'bound (mean)':>13} {'bound (scales)':>14} "
      f"| {'kappa(P^T M P)':>14} {'kappa(R)':>10}")
for r in rows:
    print(f"{r['shift']:>5} {r['spread']:>6} | {r['measured']:>17.4g} {r['bound_mean']:>13.4g} "
          f"{r['bound_scales']:>14.4g} | {r['after_bnp']:>14.6g} {r['kappa_R']:>10.6g}")

for r in rows:  # THEORY's bounds hold (up to rounding in the last digits)
    assert r["measured"] >= r["bound_mean"] * (1 - 1e-9), r
    assert r["measured"] >= r["bound_scales"] * (1 - 1e-9), r

# The |mu|^4 law: from shift 10 to shift 30 the bound grows by ((1+|mu_30|^2)/(1+|mu_10|^2))^2 ~ 81.
r10, r30 = rows[3], rows[4]
predicted = ((1 + r30["mu2"]) / (1 + r10["mu2"])) ** 2
observed = r30["measured"] / r10["measured"]
print(f"shift 10 -> 30: kappa(M) grew by {observed:.1f}, the |mu|^4 law predicts {predicted:.1f}")
assert 0.5 < observed / predicted < 2

# %% [markdown]
# ## 3. The BNP transform undoes both
#
# Let $D = \mathrm{diag}(s_j)$ hold the feature standard deviations and
# reparametrize each neuron as $\theta = P \hat\theta$ with
#
# $$P = \begin{bmatrix} D^{-1} & 0 \\ -\mu^\top D^{-1} & 1 \end{bmatrix},
# \qquad P^\top \tilde a = \begin{bmatrix} D^{-1}(a - \mu) \\ 1 \end{bmatrix}.$$
#
# The network computes the same outputs, but in the new coordinates the layer
# *sees standardized inputs*. The Hessian block transforms as
# $P^\top H P$, and
#
# $$P^\top M P = \begin{bmatrix} R & 0 \\ 0 & 1 \end{bmatrix},
# \qquad R = D^{-1} S D^{-1},$$
#
# the correlation matrix of the inputs. $R$ has a unit diagonal, so its
# eigenvalues straddle 1, and $\kappa(P^\top M P) = \kappa(R)$: **the mean and
# the scales are gone**. In the table above the last two columns agree and do
# not move while $\kappa(M)$ ranges over six orders of magnitude and more.
# (They are not 1: these features are correlated, and a diagonal $D$ cannot
# undo correlation.)

# %%
after = np.array([r["after_bnp"] for r in rows])
print(f"kappa(P^T M P) over all settings: from {after.min():.10g} to {after.max():.10g}")
assert np.allclose(after, [r["kappa_R"] for r in rows], rtol=1e-9)
assert np.allclose(after, after[0], rtol=1e-8), "the transformed conditioning must not depend on mean and scales"

# The closed form P^T M P = blockdiag(R, 1), formed from the dense matrices for a moderate shift.
inputs = layer_inputs(3, 100)
mu, S = theory.batch_statistics(inputs)
P = theory.bnp_transform(mu, bnp.backend.xp().diag(S))
PtMP = to_host(P.T @ theory.moment_matrix(inputs) @ P)
expected = np.zeros_like(PtMP)
expected[:-1, :-1], expected[-1, -1] = to_host(theory.correlation_matrix(S)), 1.0
print(f"|P^T M P - blockdiag(R, 1)|_max = {np.abs(PtMP - expected).max():.1e}")
assert np.abs(PtMP - expected).max() < 1e-10

# %% [markdown]
# The same statement, seen by autograd: put the standardization *inside* the
# network, so that the last layer of section 1 reads $D^{-1}(a - \mu)$ with
# $\mu$, $D$ frozen, and ask for the Hessian of its new weights. It must be
# $I \otimes \mathrm{blockdiag}(R, 1)$, and its condition number drops
# accordingly.

# %%
mu_a, S_a = theory.batch_statistics(a)
d_inv = 1.0 / bnp.backend.xp().sqrt(bnp.backend.xp().diag(S_a) + 1e-12)  # a dead ReLU unit has s_j = 0
a_hat = bnp.tensor((a - mu_a) * d_inv)
w_hat = bnp.tensor(rng.standard_normal((n_out, hidden)), requires_grad=True)
b_hat = bnp.tensor(np.zeros(n_out), requires_grad=True)


def half_squared_error_standardized() -> bnp.Tensor:
    r = a_hat @ w_hat.T + b_hat - Y
    return (r * r).sum() * (0.5 / batch)


H_hat = to_host(bnp.hessian(half_squared_error_standardized, [w_hat, b_hat])[perm][:, perm])
T = to_host(theory.transformed_moment_matrix(a, mu_a, bnp.backend.xp().diag(S_a), eps=1e-12))
standardized_error = np.abs(H_hat - np.kron(np.eye(n_out), T)).max()
print(f"standardized last layer: |H - I (x) blockdiag(R, 1)|_max = {standardized_error:.1e}")
assert standardized_error < 1e-12
kappa_before = spectra.condition_number(H_neurons, psd=True)
kappa_after = spectra.condition_number(H_hat, psd=True)
print(f"last-layer Hessian: kappa = {kappa_before:.4g} before, {kappa_after:.4g} after the BNP transform")
assert kappa_after < kappa_before

# %% [markdown]
# ## 4. How good is a diagonal rescaling? (van der Sluis)
#
# BNP divides by the feature scales: *Jacobi scaling* of $S$. Is there a better
# diagonal scaling $E$? Van der Sluis (1969) proved that unit-diagonal scaling
# is within a factor $n$ of the best one:
#
# $$\kappa(R) \le n\, \kappa(E S E) \quad \text{for every positive diagonal } E.$$
#
# It is *not* always the best, and it can even be slightly worse than doing
# nothing. We search for a better diagonal scaling by a simple random descent
# that starts from Jacobi's $E = D^{-1}$ and keeps any multiplicative tweak that
# lowers $\kappa(ESE)$: the search does find better scalings, but only by a
# modest factor, never by more than $n$. Then a $3 \times 3$ covariance for
# which $\kappa(R) > \kappa(S)$. Finally, the "whitening" variant of BNP
# replaces $D^2$ by the full covariance $S$: then the transformed block is the
# identity, at the price of solving with $S$.

# %%
def kappa_scaled(S, e) -> float:
    """kappa(E S E) for E = diag(e)."""
    return spectra.condition_number(S * e[:, None] * e[None, :])


def search_diagonal_scaling(S, steps: int, seed: int = 0):
    """Random descent on log(e), from Jacobi scaling: returns the best e found and its kappa(E S E)."""
    search = np.random.default_rng(seed)
    e = 1.0 / np.sqrt(np.diag(to_host(S)))
    best = kappa_scaled(S, bnp.backend.asarray(e))
    for _ in range(steps):
        trial = e * np.exp(0.05 * search.standard_normal(e.shape))
        k = kappa_scaled(S, bnp.backend.asarray(trial))
        if k < best:
            e, best = trial, k
    return e, best


inputs = layer_inputs(3, 100)
mu, S = theory.batch_statistics(inputs)
kappa_R = spectra.condition_number(theory.correlation_matrix(S))
_, best_diagonal = search_diagonal_scaling(S, steps=300 if QUICK else 3000)
print(f"kappa(S) = {spectra.condition_number(S):.4g}; Jacobi: kappa(R) = {kappa_R:.4g}; "
      f"best diagonal scaling found = {best_diagonal:.4g} (Jacobi is {kappa_R / best_diagonal:.2f} times worse, "
      f"van der Sluis allows n = {n_features})")
assert best_diagonal <= kappa_R
assert kappa_R <= n_features * best_diagonal

S3 = bnp.backend.asarray(np.array([[2.0, 1.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]]))
k_S3, k_R3 = spectra.condition_number(S3), spectra.condition_number(theory.correlation_matrix(S3))
print(f"3x3 example: kappa(S) = {k_S3:.4f} < kappa(R) = {k_R3:.4f} <= 3 kappa(S) = {3 * k_S3:.4f}")
assert k_S3 < k_R3 <= 3 * k_S3

P_white = theory.whitening_transform(mu, S)
k_white = spectra.condition_number(P_white.T @ theory.moment_matrix(inputs) @ P_white)
print(f"whitening BNP: kappa(P_w^T M P_w) = {k_white:.6f}")
assert abs(k_white - 1) < 1e-6

# %% [markdown]
# ## 5. A picture
#
# The condition number of $M$ against the mean shift, next to the bound of
# section 2 and the constant condition number after the BNP transform. Set
# `BNP_TUTORIAL_FIGURES=<folder>` to save it; it is shown on screen when
# matplotlib has an interactive backend.

# %%
from bnp.plotting import save_or_show  # noqa: E402  (saves, or shows on screen)


def plot_conditioning() -> None:
    import matplotlib.pyplot as plt

    shifts = np.array([0.3, 1, 3, 10, 30, 100][: 4 if QUICK else 6])
    measured, bound, after_bnp = [], [], []
    for shift in shifts:
        inputs = layer_inputs(shift, 10)
        mu, S = theory.batch_statistics(inputs)
        measured.append(kappa_M(inputs))
        bound.append(max(theory.kappa_lower_bound_mean(mu, S), theory.kappa_lower_bound_scales(S)))
        after_bnp.append(spectra.condition_number(theory.transformed_moment_matrix(inputs)))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog(shifts, measured, "o-", label=r"$\kappa(M)$ measured")
    ax.loglog(shifts, bound, "s--", label="lower bound (THEORY)")
    ax.loglog(shifts, after_bnp, "^-", label=r"$\kappa(P^\top M P)$ (BNP)")
    ax.set_xlabel("mean shift (in feature standard deviations)")
    ax.set_ylabel("condition number")
    ax.set_title("scale spread 10")
    ax.legend()
    save_or_show(fig, "02_conditioning_vs_mean_shift.png")
    assert all(m >= b * (1 - 1e-9) for m, b in zip(measured, bound))


plot_conditioning()

# %% [markdown]
# ## Summary
#
# * The Hessian block of a layer's neuron is a weighted moment matrix of the
#   layer's inputs; for the last layer with squared error it *is* $M$.
# * $\kappa(M)$ grows like $|\mu|^4$ with the input mean and at least like the
#   ratio of the largest to the smallest feature variance.
# * ReLU outputs have large means, so hidden layers suffer from this even
#   when the network's inputs are standardized.
# * The BNP transform $P$ makes $\kappa(P^\top M P) = \kappa(R)$, independent
#   of means and scales; diagonal scaling is within a factor $n$ of optimal.
#
# Chapter 3 turns $P$ into an optimizer step, and trains with it.
