# grading: fail wrong "centring"
def bnp_update(grad_w, grad_b, mean, var, eps):
    new_w = (grad_w + grad_b[:, None] * mean[None, :]) / (var + eps)
    return new_w, grad_b + new_w @ mean
