# grading: pass
"""Correct, another form: the derivative written as (1 + tanh(x/2)) / 2, the array from log1p and max."""
import bnp
from bnp.autograd import make_node, ops


def softplus(x):
    xp = bnp.backend.xp()
    a = x.data
    out = xp.maximum(a, 0.0) + xp.log1p(xp.exp(-xp.abs(a)))
    return make_node(out, (x,), (lambda g, o: g * (1.0 + ops.tanh(x * 0.5)) * 0.5,), "my_softplus")
