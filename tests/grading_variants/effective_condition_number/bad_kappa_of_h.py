# grading: fail wrong "restrict"
import numpy as np


def effective_condition_number(H, w):
    lam = np.linalg.eigvalsh(H)
    return float(lam.max() / lam[lam > 1e-10 * lam.max()].min())
