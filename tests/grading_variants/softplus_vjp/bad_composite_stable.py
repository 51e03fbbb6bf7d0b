# grading: fail structure "composite"
"""A stable composite: relu(x) + log(1 + exp(-|x|)). Correct values and derivatives, but not a primitive."""
import bnp
from bnp.autograd import Tensor, ops
from bnp.autograd.graph import make_node


def softplus(x):
    return ops.relu(x) + ops.log(1.0 + ops.exp(-ops.abs(x)))
