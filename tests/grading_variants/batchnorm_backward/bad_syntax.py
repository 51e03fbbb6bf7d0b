# grading: fail import "syntax error"
def batchnorm_forward(x, gamma, beta, eps)
    return x, None


def batchnorm_backward(dout, cache):
    return dout, dout, dout
