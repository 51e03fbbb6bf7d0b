# grading: pass
"""Correct, with einsum."""
import numpy as np


def moment_matrix(a):
    at = np.hstack([a, np.ones((len(a), 1))])
    return np.einsum("ki,kj->ij", at, at) / len(a)
