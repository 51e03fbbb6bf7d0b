# grading: pass
"""Correct, a loop over samples accumulating outer products."""
import numpy as np


def moment_matrix(a):
    M = np.zeros((a.shape[1] + 1, a.shape[1] + 1))
    for row in a:
        at = np.append(row, 1.0)
        M += np.outer(at, at)
    return M / len(a)
