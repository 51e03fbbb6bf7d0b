# grading: fail wrong "NEW"
def bnp_update(grad_w, grad_b, mean, var, eps):
    new_w = (grad_w - grad_b[:, None] * mean[None, :]) / (var + eps)
    return new_w, grad_b - grad_w @ mean
