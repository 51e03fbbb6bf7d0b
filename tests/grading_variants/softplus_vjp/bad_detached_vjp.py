# grading: fail structure "cut the graph"
import bnp
from bnp.autograd import Tensor, make_node


def softplus(x):
    xp = bnp.backend.xp()
    return make_node(xp.logaddexp(0.0, x.data), (x,), (lambda g, o: Tensor(g.data / (1.0 + xp.exp(-x.data))),),
                     "softplus")
