# grading: fail wrong "zero"
import numpy as np


def effective_condition_number(H, w):
    u = w / np.linalg.norm(w)
    P = np.eye(len(w)) - np.outer(u, u)
    lam = np.abs(np.linalg.eigvalsh(P @ H @ P))
    return float(lam.max() / max(lam.min(), 1e-300))
