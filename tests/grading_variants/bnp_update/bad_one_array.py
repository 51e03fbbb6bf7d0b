# grading: fail type "tuple"
def bnp_update(grad_w, grad_b, mean, var, eps):
    return (grad_w - grad_b[:, None] * mean[None, :]) / (var + eps)
