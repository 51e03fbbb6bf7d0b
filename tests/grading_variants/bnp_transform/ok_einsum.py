# grading: pass
"""Correct, another form: P from blocks, P^T H P per pair of neurons with einsum."""
import numpy as np


def bnp_transform(mean, var, eps):
    d_inv = (var + eps) ** -0.5
    top = np.hstack([np.diag(d_inv), np.zeros((len(mean), 1))])
    bottom = np.append(-mean * d_inv, 1.0)
    return np.vstack([top, bottom])


def transformed_hessian(H, P):
    k = P.shape[0]
    out = H.shape[0] // k
    H4 = H.reshape(out, k, out, k)
    return np.einsum("pa,ipjq,qb->iajb", P, H4, P).reshape(H.shape)
