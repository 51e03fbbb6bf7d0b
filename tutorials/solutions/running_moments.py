"""Reference solution of exercise running_moments (chapter 05_small_batches): the parallel-variance update."""

from __future__ import annotations

import numpy as np


def running_moments(batches: list[np.ndarray], rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected running mean and variance. Shapes: [(N_t, D)] -> (D,), (D,)."""
    mean = np.zeros(batches[0].shape[1])
    var = np.zeros_like(mean)
    for t, batch in enumerate(batches, start=1):
        w = (1.0 - rho) / (1.0 - rho**t)  # 1 at t = 1: the first batch's own moments
        m_b = batch.mean(axis=0)
        v_b = ((batch - m_b) ** 2).mean(axis=0)  # biased, centred
        new_mean = mean + w * (m_b - mean)
        var = (1.0 - w) * (var + (mean - new_mean) ** 2) + w * (v_b + (m_b - new_mean) ** 2)
        mean = new_mean
    return mean, var
