"""Reference solution of exercise softplus_vjp (chapter 01_autograd).

softplus'(x) = e^x / (1 + e^x) = sigmoid(x), so the VJP is g * sigmoid(x),
written with ops.sigmoid: a Tensor operation, so the backward pass is recorded
under create_graph=True and the second derivative sigmoid (1 - sigmoid) comes
out of autograd. Broadcasting handles upstream gradients with leading axes.
"""

from __future__ import annotations

import bnp
from bnp.autograd import Tensor, make_node, ops


def softplus(x: Tensor) -> Tensor:
    """Elementwise log(1 + exp(x)) as a primitive. Shapes: any -> the same."""
    out = bnp.backend.xp().logaddexp(0.0, x.data)  # log(e^0 + e^x): no overflow for large x
    return make_node(out, (x,), (lambda g, o: g * ops.sigmoid(x),), "softplus")
