# grading: fail wrong "large"
"""log(1 + exp(x)) on the array: overflows at x = 800."""
import bnp
from bnp.autograd import make_node, ops


def softplus(x):
    xp = bnp.backend.xp()
    return make_node(xp.log(1.0 + xp.exp(x.data)), (x,), (lambda g, o: g * ops.sigmoid(x),), "softplus")
