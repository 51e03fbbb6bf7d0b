# %% [markdown]
# # Solution to exercise 3: the moment matrix
#
# Stack the extended inputs as the rows of `at` (N, n+1); then
# `at.T @ at` is the sum of the N outer products. For a single sample,
# $M = \tilde a \tilde a^\top$ has rank one: positive semidefinite, and
# perfectly well defined even though the covariance $S$ is zero.

# %%
import numpy as np  # host-side: the random inputs of the "going further" part

import bnp
from bnp import grading, spectra

bnp.set_default_dtype("float64")


def moment_matrix(a):
    """M = (1/N) sum_k [a_k; 1][a_k; 1]^T. Shapes: a (N, n) -> (n+1, n+1)."""
    xp = bnp.backend.xp()
    at = xp.concatenate([a, xp.ones((a.shape[0], 1), dtype=a.dtype)], axis=1)
    return at.T @ at / a.shape[0]


# %%
report = grading.check_moment_matrix(moment_matrix)
assert report.passed

# Going further: the |mu|^4 law. kappa(M) ~ (1 + |mu|^2)^2 / (m^T S m) for large |mu|.
z = bnp.backend.asarray(np.random.default_rng(0).standard_normal((1000, 5)))
k3 = spectra.condition_number(moment_matrix(3 + z))
k30 = spectra.condition_number(moment_matrix(30 + z))
predicted = ((1 + 5 * 30**2) / (1 + 5 * 3**2)) ** 2
print(f"kappa(M): {k3:.4g} at mean 3, {k30:.4g} at mean 30; ratio {k30 / k3:.4g}, "
      f"the |mu|^4 law predicts ~{predicted:.4g}")
assert 0.3 < (k30 / k3) / predicted < 3
