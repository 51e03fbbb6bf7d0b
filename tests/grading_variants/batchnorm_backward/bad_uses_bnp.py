# grading: fail forbidden "bnp.functional.batch_norm"
"""Calls bnp's own batch norm and autograd instead of writing them."""
import numpy as np

import bnp
import bnp.functional as F


def batchnorm_forward(x, gamma, beta, eps):
    xt, gt, bt = (bnp.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    return out.numpy(), (out, xt, gt, bt)


def batchnorm_backward(dout, cache):
    out, xt, gt, bt = cache
    grads = bnp.grad(out, [xt, gt, bt], grad_outputs=[dout])
    return tuple(np.asarray(g.numpy()) for g in grads)
