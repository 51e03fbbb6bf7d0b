# grading: pass
"""Correct, Adam's way: uncorrected EMAs of the mean and of the centred spread, divided by 1 - rho^t at the end.

The spread is kept about a running reference point (the first batch's mean) to avoid cancellation.
"""
import numpy as np


def running_moments(batches, rho):
    ref = batches[0].mean(axis=0)
    m1 = np.zeros_like(ref)
    m2 = np.zeros_like(ref)
    for b in batches:
        d = b - ref
        m1 = rho * m1 + (1 - rho) * d.mean(axis=0)
        m2 = rho * m2 + (1 - rho) * (d * d).mean(axis=0)
    T = len(batches)
    m1, m2 = m1 / (1 - rho**T), m2 / (1 - rho**T)
    return ref + m1, m2 - m1 * m1
