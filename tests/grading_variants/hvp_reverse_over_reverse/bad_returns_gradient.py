# grading: fail wrong "gradient, not H v"
import bnp


def hvp(f, x, v):
    xt = bnp.tensor(x, requires_grad=True)
    return bnp.grad(f(xt), xt)[0].numpy()
