# grading: fail wrong "finite-difference"
import bnp


def _grad(f, x):
    xt = bnp.tensor(x, requires_grad=True)
    return bnp.grad(f(xt), xt)[0].numpy()


def hvp(f, x, v):
    h = 1e-5
    return (_grad(f, x + h * v) - _grad(f, x - h * v)) / (2 * h)
