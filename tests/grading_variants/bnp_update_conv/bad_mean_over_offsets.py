# grading: fail wrong "offsets"


def bnp_update_conv(grad_w, grad_b, mean, var, eps):
    mu = mean.reshape(1, -1, 1, 1)
    new = (grad_w - grad_b.reshape(-1, 1, 1, 1) * mu) / (var + eps).reshape(1, -1, 1, 1)
    return new, grad_b - (new * mu).mean(axis=(2, 3)).sum(axis=1)
