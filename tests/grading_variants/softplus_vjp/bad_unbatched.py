# grading: fail exception "leading axes"
import bnp
from bnp.autograd import make_node, ops


def softplus(x):
    return make_node(bnp.backend.xp().logaddexp(0.0, x.data), (x,),
                     (lambda g, o: ops.reshape(g, x.shape) * ops.sigmoid(x),), "softplus")
