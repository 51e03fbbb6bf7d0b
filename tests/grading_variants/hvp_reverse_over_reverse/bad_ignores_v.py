# grading: fail wrong "ones"
import numpy as np

import bnp


def hvp(f, x, v):
    xt = bnp.tensor(x, requires_grad=True)
    (g,) = bnp.grad(f(xt), xt, create_graph=True)
    return bnp.grad(g, xt, grad_outputs=np.ones_like(v))[0].numpy()
