# %% [markdown]
# # Exercise 1. A new primitive: softplus and its VJP
#
# *Goes with chapter 1.* The softplus function
#
# $$\mathrm{softplus}(x) = \log(1 + e^x)$$
#
# is a smooth cousin of ReLU. Your task: add it to the autograd as a
# **primitive**, with a hand-written vector-Jacobian product, the way
# `bnp/autograd/elementwise.py` writes `tanh` and `exp`.
#
# 1. Compute the output array from `x.data` with the backend's array module
#    (`xp = bnp.backend.xp()`). Tip: `xp.logaddexp(0, a)` computes
#    $\log(e^0 + e^a)$ without overflowing for large $a$.
# 2. Work out the derivative $\mathrm{softplus}'(x)$ on paper. Which familiar
#    function is it?
# 3. Return `make_node(out, (x,), (vjp,), "softplus")` where `vjp(g, out)`
#    returns $g \odot \mathrm{softplus}'(x)$ **written in Tensor operations**
#    (`bnp.autograd.ops` has what you need). Computing on `.data` arrays would
#    give the right first derivative but cut the graph, and second
#    derivatives (Hessians!) would silently vanish. The checker tests for it.
# 4. Your VJP must also accept an upstream gradient `g` with extra leading
#    axes (a batch of upstream gradients, which `bnp.hessian` sends). For an
#    elementwise function, broadcasting does that for free.
#
# Run this file: `python tutorials/exercises/01_softplus_vjp.py`. The checker
# prints PASS or FAIL with the worst error it saw.

# %%
import bnp
from bnp import grading
from bnp.autograd import Tensor, ops  # noqa: F401  (ops is for your VJP)
from bnp.autograd.graph import make_node  # noqa: F401

bnp.set_default_dtype("float64")


def softplus(x: Tensor) -> Tensor:
    """Elementwise log(1 + exp(x)) as a primitive. Shapes: any -> same."""
    # TODO (student): compute the output array, then return make_node(out, (x,), (vjp,), "softplus").
    raise NotImplementedError("write softplus and its VJP")


# %%
report = grading.check_vjp(softplus)

# %% [markdown]
# **Going further.** Once it passes: use `bnp.testing.gradgradcheck(softplus, [x])`
# on a random `x` to confirm the second derivative against finite differences,
# and evaluate your softplus at `x = 800`. Does the naive
# `ops.log(1 + ops.exp(x))` survive there?
