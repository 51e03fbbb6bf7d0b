# grading: fail shape "at.T @ at"
import numpy as np


def moment_matrix(a):
    at = np.concatenate([a, np.ones((a.shape[0], 1))], axis=1)
    return at @ at.T / a.shape[0]
