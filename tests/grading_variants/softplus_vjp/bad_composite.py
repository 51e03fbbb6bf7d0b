# grading: fail structure "composite"
from bnp.autograd import ops


def softplus(x):
    return ops.log(1.0 + ops.exp(x))
