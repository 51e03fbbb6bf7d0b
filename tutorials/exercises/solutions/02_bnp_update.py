# %% [markdown]
# # Solution to exercise 2: the BNP update
#
# $G_W'$ must come first, because $g_b'$ is built from the *new* weight
# gradient: $g_b' = g_b - G_W' \mu$ is the last row of $P P^\top$ applied to
# $[g_w; g_b]$, namely $-\mu^\top D^{-2} g_w + (1 + \mu^\top D^{-2} \mu) g_b$.
# Dividing by $D$ instead of $D^2$ gives the weight block of $P^\top g$: the
# gradient in the standardized coordinates $\hat\theta$, half of the round
# trip. Gradient descent on $\hat\theta$, seen in the original coordinates
# $\theta = P\hat\theta$, moves along $P P^\top g$.

# %%
import bnp
from bnp import grading

bnp.set_default_dtype("float64")


def bnp_update(grad_w, grad_b, mu, var, eps):
    """BNP's rewrite of one Linear layer's gradients.

    Shapes: grad_w (out, n), grad_b (out,), mu (n,), var (n,), eps float
    -> (new_grad_w (out, n), new_grad_b (out,)).
    """
    new_grad_w = (grad_w - grad_b[:, None] * mu[None, :]) / (var + eps)[None, :]
    new_grad_b = grad_b - new_grad_w @ mu
    return new_grad_w, new_grad_b


# %%
report = grading.check_bnp_update(bnp_update)
assert report.passed
