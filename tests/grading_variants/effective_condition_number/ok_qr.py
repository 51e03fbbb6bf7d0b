# grading: pass
import numpy as np


def effective_condition_number(H, w):
    n = len(w)
    Q = np.linalg.qr(np.column_stack([w, np.eye(n)[:, : n - 1]]))[0][:, 1:]
    lam = np.linalg.eigvalsh(Q.T @ H @ Q)
    return lam.max() / lam[lam > 1e-10 * lam.max()].min()
