# grading: fail exception "create_graph"
import bnp


def hvp(f, x, v):
    xt = bnp.tensor(x, requires_grad=True)
    (g,) = bnp.grad(f(xt), xt)
    (hv,) = bnp.grad(g, xt, grad_outputs=v)
    return hv.numpy()
