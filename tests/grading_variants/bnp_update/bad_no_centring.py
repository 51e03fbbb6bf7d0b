# grading: fail wrong "mean"
def bnp_update(grad_w, grad_b, mean, var, eps):
    return grad_w / (var + eps), grad_b
