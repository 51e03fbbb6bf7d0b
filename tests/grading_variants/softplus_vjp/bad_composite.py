# grading: fail structure "composite"
import bnp
from bnp.autograd import Tensor, ops
from bnp.autograd.graph import make_node


def softplus(x):
    return ops.log(1.0 + ops.exp(x))
