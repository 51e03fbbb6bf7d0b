# grading: fail forbidden "hvp"
import bnp


def hvp(f, x, v):
    xt = bnp.tensor(x, requires_grad=True)
    return bnp.hvp(lambda: f(xt), [xt], [v])[0]
