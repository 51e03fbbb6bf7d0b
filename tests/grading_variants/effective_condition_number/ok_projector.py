# grading: pass
"""Correct, another form: the projector I - u u^T, then drop the one eigenvalue that belongs to w."""
import numpy as np


def effective_condition_number(H, w):
    u = w / np.linalg.norm(w)
    P = np.eye(len(w)) - np.outer(u, u)
    lam, V = np.linalg.eigh(P @ H @ P)
    keep = np.abs(V.T @ u) < 0.5  # drop the eigenvector along w (eigenvalue 0 of the projected matrix)
    lam = lam[keep]
    return float(lam.max() / lam[lam > 1e-10 * lam.max()].min())
