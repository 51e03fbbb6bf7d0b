# grading: fail wrong "M"
"""Computes in float32: 1e-7 relative, far above float64's rounding."""
import numpy as np


def moment_matrix(a):
    at = np.concatenate([a, np.ones((a.shape[0], 1))], axis=1).astype(np.float32)
    return at.T @ at / np.float32(a.shape[0])
