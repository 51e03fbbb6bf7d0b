# grading: fail structure "composite"
"""A stable composite: relu(x) + log(1 + exp(-|x|)). Correct values and derivatives, but not a primitive."""
from bnp.autograd import ops


def softplus(x):
    return ops.relu(x) + ops.log(1.0 + ops.exp(-ops.abs(x)))
