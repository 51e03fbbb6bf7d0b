# grading: fail structure "parent"
"""Records a detached copy of x as the parent: the gradient never reaches x."""
import bnp
from bnp.autograd import make_node, ops


def softplus(x):
    y = x.detach().requires_grad_()
    return make_node(bnp.backend.xp().logaddexp(0.0, x.data), (y,), (lambda g, o: g * ops.sigmoid(y),), "softplus")
