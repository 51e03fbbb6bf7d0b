# grading: pass
"""Correct, another form: sigmoid(x) = 1 - exp(-softplus(x)), written with the output tensor o."""
import bnp
from bnp.autograd import make_node, ops


def softplus(x):
    out = bnp.backend.xp().logaddexp(0.0, x.data)
    return make_node(out, (x,), (lambda g, o: g * (1.0 - ops.exp(-o)),), "softplus")
