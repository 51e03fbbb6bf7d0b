# grading: pass
"""Correct, another form: differentiate the scalar <grad f, v>."""
import bnp


def hvp(f, x, v):
    xt = bnp.tensor(x, requires_grad=True)
    (g,) = bnp.grad(f(xt), [xt], create_graph=True)
    (hv,) = bnp.grad((g * bnp.tensor(v)).sum(), [xt])
    return hv
