# grading: fail wrong "last"
import numpy as np


def moment_matrix(a):
    at = np.concatenate([np.ones((a.shape[0], 1)), a], axis=1)
    return at.T @ at / a.shape[0]
