# grading: fail wrong "eps"
def bnp_update(grad_w, grad_b, mean, var, eps):
    new_w = (grad_w - grad_b[:, None] * mean[None, :]) / var
    return new_w, grad_b - new_w @ mean
