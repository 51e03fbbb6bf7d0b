# grading: fail wrong "mean"
import numpy as np


def moment_matrix(a):
    c = a - a.mean(axis=0)
    at = np.concatenate([c, np.ones((a.shape[0], 1))], axis=1)
    return at.T @ at / a.shape[0]
