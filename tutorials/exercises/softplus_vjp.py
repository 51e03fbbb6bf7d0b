"""Exercise softplus_vjp: a new autograd primitive, softplus, with its VJP in Tensor operations.

Prepared by chapter 01_autograd (VJPs written in differentiable operations).
Grade it with::

    bnp grade softplus_vjp tutorials/exercises/softplus_vjp.py

Task. softplus(x) = log(1 + e^x), a smooth ReLU. Add it to the autograd as ONE
new primitive, the way bnp/autograd/elementwise.py writes tanh and exp:

    softplus(x) -> out
        x: a bnp Tensor of any shape (float64); out: a Tensor of the same shape,
        made by make_node(out_array, (x,), (vjp,), "softplus"), where
        vjp(g, out) returns the gradient with respect to x as a Tensor.

The grader looks at the graph: the output must be one recorded node whose only
parent is x, with an op name that is not one of bnp's primitives. A composite
such as ops.log(1 + ops.exp(x)) is refused (it is correct, but it is not the
exercise). It then checks the values, the VJP, a VJP with a batch of upstream
gradients (an extra leading axis, what bnp.hessian sends) and the second
derivative, through your VJP applied under create_graph=True.

Hints.
- The array: xp = bnp.backend.xp(); xp.logaddexp(0.0, x.data) never overflows
  (the grader tries |x| up to 800).
- softplus'(x) is a familiar function; bnp.autograd.ops has it.
- Write the VJP in Tensor operations on x and g (g * ...): computed on .data
  arrays it gives the right first derivative but cuts the graph, and second
  derivatives (Hessians) silently vanish.
- make_node lives in bnp.autograd.graph (also exported as bnp.autograd.make_node).
"""

from __future__ import annotations

import bnp  # noqa: F401  (bnp.backend.xp() for the array)
from bnp.autograd import (  # noqa: F401  (ops for your VJP)
    Tensor,
    make_node,  # noqa: F401
    ops,
)


def softplus(x: Tensor) -> Tensor:
    """Elementwise log(1 + exp(x)) as a primitive. Shapes: any -> the same."""
    raise NotImplementedError("write softplus and its VJP")
