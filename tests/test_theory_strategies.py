"""Shared hypothesis strategies and tolerances for the theory tests, and checks that they reach the hard cases.

Imported by the other tests/test_theory_*.py files (pytest puts tests/ on
sys.path). The layer inputs drawn here are meant to break naive numerics:

* large means, |mu| up to about 1e3 (ReLU outputs, un-centred data);
* feature scales spread over up to six orders of magnitude (1e-3 .. 1e3);
* near-singular covariances: low rank plus a tiny jitter (1e-8 .. 1e-3 of the scale),
  or features correlated up to 1 - 1e-8;
* N < n + 1 (M singular) and N = 1 (S = 0).

Tolerances. Every comparison between two float64 computations allows for the
rounding they can honestly commit: for a symmetric matrix formed from data,
an eigenvalue is known to about ``(N + n) * eps * trace`` in absolute terms
(backward stability of eigvalsh plus the rounding in forming the sum of outer
products). Inequalities between eigenvalues are asserted up to that slack; in
the hardest cases (kappa near 1/eps) a check becomes weaker, never spurious.
"""

import numpy as np
from hypothesis import find
from hypothesis import strategies as st

from bnp import backend, theory

EPS = np.finfo(np.float64).eps


def host_stats(a):
    """Host (NumPy) mean and covariance of a batch of layer inputs, by bnp.theory.batch_statistics."""
    mu, S = theory.batch_statistics(backend.asarray(a))
    return backend.to_numpy(mu), backend.to_numpy(S)


def eig_slack(A, count):
    """Absolute rounding slack for the eigenvalues of a PSD matrix formed from ``count`` rows (see module doc)."""
    return 100.0 * (count + A.shape[0]) * EPS * max(float(np.trace(A)), 0.0)


@st.composite
def layer_inputs(draw, min_n=1, max_n=5, min_batch=1, max_batch=16):
    """A batch of layer inputs ``a`` (N, n), float64, from a mix of easy and hard regimes."""
    n = draw(st.integers(min_n, max_n))
    N = draw(st.integers(min_batch, max_batch))
    mean_kind = draw(st.sampled_from(["zero", "moderate", "large", "positive"]))
    log_center = draw(st.floats(-3.0, 3.0))
    log_spread = draw(st.sampled_from([0.0, 1.0, 3.0, 6.0]))
    structure = draw(st.sampled_from(["independent", "correlated", "low_rank"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    # feature scales 10^[center - spread/2, center + spread/2], clipped to [1e-3, 1e3]
    logs = np.clip(log_center + log_spread * (rng.uniform(size=n) - 0.5), -3.0, 3.0)
    scales = 10.0**logs
    if mean_kind == "zero":
        mu = np.zeros(n)
    elif mean_kind == "moderate":
        mu = rng.standard_normal(n)
    elif mean_kind == "large":  # |mu| up to 1e3 in a random direction
        direction = rng.standard_normal(n)
        mu = direction / np.linalg.norm(direction) * 10.0 ** rng.uniform(1.0, 3.0)
    else:  # all positive, like ReLU outputs
        mu = rng.uniform(0.5, 1.0, n) * 10.0 ** rng.uniform(0.0, 3.0) / np.sqrt(n)

    z = rng.standard_normal((N, n))
    if structure == "correlated":  # correlation up to 1 - 1e-8 through a shared factor
        rho = 1.0 - 10.0 ** -rng.uniform(1.0, 8.0)
        z = np.sqrt(1.0 - rho) * z + np.sqrt(rho) * rng.standard_normal((N, 1))
    elif structure == "low_rank" and n >= 2:  # rank r < n plus a tiny isotropic jitter
        r = int(rng.integers(1, n))
        jitter = 10.0 ** -rng.uniform(3.0, 8.0)
        z = rng.standard_normal((N, r)) @ rng.standard_normal((r, n)) / np.sqrt(r) + jitter * z
    return mu + z * scales


def _mean_norm(a):
    return np.linalg.norm(a.mean(axis=0))


def _scale_ratio(a):
    s = a.std(axis=0)
    return s.max() / s.min() if s.min() > 0 else np.inf


def _kappa_cov(a):
    """kappa(S) through singular values of the centred data (accurate enough to classify)."""
    c = a - a.mean(axis=0)
    s = np.linalg.svd(c, compute_uv=False)
    return np.inf if len(s) < a.shape[1] or s.min() == 0 else (s.max() / s.min()) ** 2


def test_strategy_reaches_large_means():
    a = find(layer_inputs(), lambda a: _mean_norm(a) > 300.0)
    assert _mean_norm(a) > 300.0


def test_strategy_reaches_spread_scales():
    a = find(layer_inputs(min_batch=4), lambda a: _scale_ratio(a) > 1e4)
    assert _scale_ratio(a) > 1e4


def test_strategy_reaches_near_singular_covariances_with_enough_samples():
    a = find(layer_inputs(min_n=2), lambda a: a.shape[0] > a.shape[1] + 1 and 1e10 < _kappa_cov(a) < np.inf)
    assert 1e10 < _kappa_cov(a) < np.inf


def test_strategy_reaches_small_batches():
    a = find(layer_inputs(min_n=2), lambda a: a.shape[0] < a.shape[1] + 1)
    assert a.shape[0] < a.shape[1] + 1
    a = find(layer_inputs(), lambda a: a.shape[0] == 1)
    assert a.shape == (1, a.shape[1])


def test_strategy_reaches_all_hard_cases_at_once():
    def hard(a):
        return _mean_norm(a) > 100.0 and _scale_ratio(a) > 100.0 and a.shape[0] > a.shape[1] and _kappa_cov(a) > 1e8

    assert hard(find(layer_inputs(min_n=2), hard))
