# grading: fail forbidden "hessian"
import bnp


def hvp(f, x, v):
    xt = bnp.tensor(x, requires_grad=True)
    return bnp.hessian(lambda: f(xt), [xt]) @ v
