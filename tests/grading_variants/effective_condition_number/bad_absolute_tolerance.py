# grading: fail wrong|exception "RELATIVE"
import numpy as np


def effective_condition_number(H, w):
    _, _, vt = np.linalg.svd(w[None, :])
    lam = np.linalg.eigvalsh(vt[1:] @ H @ vt[1:].T)
    return float(lam.max() / lam[lam > 1e-9].min())
