# grading: fail wrong "N - 1"
import numpy as np


def moment_matrix(a):
    at = np.concatenate([a, np.ones((a.shape[0], 1))], axis=1)
    return at.T @ at / max(a.shape[0] - 1, 1)
