# grading: fail forbidden "precondition"
from bnp.preconditioner import precondition


def bnp_update(grad_w, grad_b, mean, var, eps):
    return precondition(grad_w, grad_b, mean, var, eps)
