"""Hypothesis strategies for the graders' cases, aimed at the hard cases.

A case is a small frozen dataclass of *parameters* (sizes, the ratio of a
feature's mean to its spread, the spread of feature scales in decades, a
seed); its arrays are made from them by NumPy with that seed. Hypothesis
draws and shrinks the parameters, so a shrunk case reads as a sentence
("N = 1", "mean 1e6 standard deviations away from 0", "scales over 6
decades") and the arrays follow from it reproducibly.

The levels below reach what breaks plausible wrong answers:

* ``MEAN_RATIOS``: ``|mean| / std`` of a feature. At 1e6, ``E[x^2] - E[x]^2``
  loses about 12 of float64's 16 digits (relative error ~ u * ratio^2 ~ 1e-4),
  while centring first keeps ~ u * ratio ~ 1e-10: the graders' tolerances sit
  between the two.
* ``DECADES``: feature standard deviations spread log-uniformly over that
  many decades (``10**(-d/2) .. 10**(d/2)``): dividing by the variance where the
  standard deviation is due (or the converse) is off by up to ``10**(d/2)``.
* batch sizes include 1 (every batch variance is 0) and 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy
from hypothesis import strategies as st

__all__ = ["MEAN_RATIOS", "DECADES", "BatchCase", "batch_cases", "batch_sizes", "seeds", "feature_scales",
           "rng"]

MEAN_RATIOS = (0.0, 1.0, 1e3, 1e6)
DECADES = (0, 2, 4, 6)


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**31 - 1)


def batch_sizes(max_n: int = 16) -> st.SearchStrategy[int]:
    """1 often (its own branch), else 1..max_n."""
    return st.one_of(st.just(1), st.integers(1, max_n))


def rng(seed: int) -> numpy.random.Generator:
    return numpy.random.default_rng(seed)


def feature_scales(d: int, decades: float) -> numpy.ndarray:
    """Standard deviations ``10**(-decades/2) .. 10**(decades/2)``, log-spaced over d features (1 for d = 1)."""
    if d == 1:
        return numpy.ones(1)
    return 10.0 ** (decades * (numpy.linspace(0.0, 1.0, d) - 0.5))


@dataclass(frozen=True)
class BatchCase:
    """A batch x (n, d): feature j has standard deviation ``scale_j`` (see :func:`feature_scales`)
    and mean ``+-mean_ratio * scale_j``."""

    n: int
    d: int
    mean_ratio: float
    decades: int
    seed: int

    def x(self) -> numpy.ndarray:
        r = rng(self.seed)
        scale = feature_scales(self.d, self.decades)
        sign = r.choice([-1.0, 1.0], self.d)
        return sign * self.mean_ratio * scale + scale * r.standard_normal((self.n, self.d))


def gradient_and_statistics(seed: int, weight_shape: tuple[int, ...], features: int, mean_ratio: float,
                            decades: float, eps: float) -> dict[str, Any]:
    """A layer's gradients and input statistics for the BNP-update graders: ``grad_w`` of ``weight_shape``,
    ``grad_b`` (out,), per-feature ``mean`` (``mean_ratio`` standard deviations off zero, random signs) and
    ``var`` over ``decades`` orders of magnitude."""
    r = rng(seed)
    scale = feature_scales(features, decades)
    return {"grad_w": r.standard_normal(weight_shape), "grad_b": r.standard_normal(weight_shape[0]),
            "mean": r.choice([-1.0, 1.0], features) * mean_ratio * scale,
            "var": scale**2 * r.uniform(0.5, 2.0, features), "eps": eps}


def batch_cases(max_n: int = 16, max_d: int = 5) -> st.SearchStrategy[BatchCase]:
    return st.builds(BatchCase, n=batch_sizes(max_n), d=st.integers(1, max_d),
                     mean_ratio=st.sampled_from(MEAN_RATIOS), decades=st.sampled_from(DECADES), seed=seeds())


def describe_mean(ratio: float) -> str:
    return f"means {ratio:g} standard deviations away from 0"


def as_dict(case: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(case)
