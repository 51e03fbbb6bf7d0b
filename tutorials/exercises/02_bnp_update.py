# %% [markdown]
# # Exercise 2. The BNP gradient rewrite for one layer
#
# *Goes with chapters 2 and 3.* A Linear layer $h = W a + b$ has gradients
# $G_W$ (out, n) and $g_b$ (out,). BNP keeps the mean $\mu$ (n,) and the
# variances $s^2$ (n,) of the layer's input, sets $D^2 = \mathrm{diag}(s^2 + \epsilon)$,
# and replaces the gradients by
#
# $$G_W' = (G_W - g_b \mu^\top) D^{-2}, \qquad g_b' = g_b - G_W' \mu .$$
#
# This is $P P^\top$ applied to each neuron's $[g_w; g_b]$, with $P$ the BNP
# transform of chapter 2, written without forming any matrix: the cost is
# that of reading $G_W$ once.
#
# Write `bnp_update(grad_w, grad_b, mu, var, eps)` returning the pair
# `(new_grad_w, new_grad_b)`. The arguments are backend arrays (NumPy
# arrays on the CPU): use `@`, `*`, `/`, broadcasting with `[:, None]` or
# `[None, :]`, and `.T`. No loops are needed.
#
# Questions to think about while you write it:
#
# * Which of the two formulas must be computed first, and why?
# * What goes wrong if you divide by the standard deviation $D$ instead of $D^2$?
# * Check on paper that applying
#   $P P^\top = \begin{bmatrix} D^{-2} & -D^{-2}\mu \\ -\mu^\top D^{-2} & 1 + \mu^\top D^{-2}\mu \end{bmatrix}$
#   to each neuron's $[g_w; g_b]$ gives the same two lines.
#
# Run this file: `python tutorials/exercises/02_bnp_update.py`.

# %%
import bnp
from bnp import grading

bnp.set_default_dtype("float64")


def bnp_update(grad_w, grad_b, mu, var, eps):
    """BNP's rewrite of one Linear layer's gradients.

    Shapes: grad_w (out, n), grad_b (out,), mu (n,), var (n,), eps float
    -> (new_grad_w (out, n), new_grad_b (out,)).
    """
    # TODO (student): two lines, in the right order.
    raise NotImplementedError("write the BNP update")


# %%
report = grading.check_bnp_update(bnp_update)

# %% [markdown]
# **Going further.** `bnp.BNP` applies exactly this to every Linear layer,
# with running estimates of $\mu$ and $s^2$. Read `precondition` in
# `bnp/preconditioner.py`: it also handles convolutions (one statistic per
# input channel, shared by all kernel offsets) and layers without a bias.
# Why can a layer without a bias not absorb the centring term?
