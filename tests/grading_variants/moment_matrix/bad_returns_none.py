# grading: fail type "return"
import numpy as np


def moment_matrix(a):
    at = np.concatenate([a, np.ones((a.shape[0], 1))], axis=1)
    M = at.T @ at / a.shape[0]  # noqa: F841
