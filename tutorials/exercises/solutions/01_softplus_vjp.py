# %% [markdown]
# # Solution to exercise 1: softplus as a primitive
#
# The derivative of $\log(1 + e^x)$ is $e^x / (1 + e^x) = \sigma(x)$, the
# logistic sigmoid, so the VJP is $g \odot \sigma(x)$. It is written with
# `ops.sigmoid`, a Tensor operation, so the backward pass is recorded when
# `create_graph=True` and second derivatives ($\sigma' = \sigma(1-\sigma)$)
# come out of autograd by themselves. Broadcasting of `g * ops.sigmoid(x)`
# handles upstream gradients with extra leading axes.

# %%
import numpy as np  # host-side: silencing an expected overflow

import bnp
from bnp import grading
from bnp.autograd import Tensor, ops
from bnp.autograd.graph import make_node
from bnp.testing import gradgradcheck

bnp.set_default_dtype("float64")


def softplus(x: Tensor) -> Tensor:
    """Elementwise log(1 + exp(x)) as a primitive. Shapes: any -> same."""
    xp = bnp.backend.xp()
    out = xp.logaddexp(0.0, x.data)  # log(e^0 + e^x), no overflow for large x
    return make_node(out, (x,), (lambda g, out: g * ops.sigmoid(x),), "softplus")


# %%
report = grading.check_vjp(softplus)
assert report.passed

# Going further: second derivatives against finite differences, and a large input.
x = bnp.tensor([-3.0, -0.5, 0.0, 1.0, 4.0])
assert gradgradcheck(softplus, [x])
big = softplus(bnp.tensor([800.0])).item()
with np.errstate(over="ignore"):  # exp(800) overflows to inf, and log(1 + inf) = inf
    naive = ops.log(1.0 + ops.exp(bnp.tensor([800.0]))).item()
print(f"softplus(800) = {big} (the naive formula gives {naive})")
assert big == 800.0 and naive == float("inf")
