# %% [markdown]
# # Chapter 1. Automatic differentiation, from gradients to Hessians
#
# Every later chapter rests on one tool: a program that computes exact
# derivatives of other programs, including derivatives of derivatives. This
# chapter takes that tool apart.
#
# 1. A tensor remembers the operations that produced it: a *graph*.
# 2. Each primitive operation knows one rule, its *vector-Jacobian product*
#    (VJP). Reverse mode chains these rules backwards through the graph.
# 3. We write a primitive of our own and check it against finite differences.
# 4. Because every VJP is itself written with tensor operations, the backward
#    pass can be recorded and differentiated again. That gives Hessian-vector
#    products and dense Hessians, which we verify twice: the Hessian must be
#    symmetric, and it must match finite differences of the gradient.
#
# Run it as a script: `python tutorials/01_autograd_and_hessians.py`.
# `BNP_TUTORIAL_QUICK=1` shrinks the sizes (this is what the test suite does).

# %%
import os

import numpy as np  # host-side: printing and finite-difference bookkeeping only

import bnp
from bnp import functional as F
from bnp.autograd import ops
from bnp.autograd.graph import make_node
from bnp.nn import models
from bnp.testing import GradcheckError, gradcheck, gradgradcheck

QUICK = os.environ.get("BNP_TUTORIAL_QUICK", "0") == "1"
bnp.set_default_dtype("float64")  # derivative checks need all 16 digits
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Tensors remember where they came from
#
# A `bnp.Tensor` wraps an array (`.data`). When at least one input of an
# operation has `requires_grad=True`, the result records its parents and the
# rule for sending a gradient back to each of them. Nothing else is stored:
# the graph *is* these links.
#
# Take $y = \sum_i x_i^2$. Its gradient is $\partial y / \partial x_i = 2 x_i$.

# %%
x = bnp.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = (x * x).sum()
print("x =", x)
print("y =", y)


def show_graph(t: bnp.Tensor, depth: int = 0) -> None:
    """Print the recorded graph below ``t`` (reads two private fields, for teaching only)."""
    name = t._op or ("leaf, requires_grad" if t.requires_grad else "constant")
    print("  " * depth + f"{name}  shape={t.shape}")
    for parent in t._parents:
        show_graph(parent, depth + 1)


show_graph(y)
y.backward()
print("dy/dx =", x.grad.numpy(), " expected 2x =", 2 * x.numpy())
assert np.allclose(x.grad.numpy(), 2 * x.numpy())

# %% [markdown]
# ## 2. One rule per primitive: the vector-Jacobian product
#
# Let a primitive map $a \mapsto o = f(a)$ and let the loss $L$ depend on $o$.
# Reverse mode arrives at the primitive holding $g = \partial L / \partial o$
# (the *upstream gradient*, same shape as $o$) and must return
# $\partial L / \partial a = J_f(a)^\top g$. For an elementwise $f$ the Jacobian
# is diagonal, so the VJP is just $g \odot f'(a)$.
#
# In `bnp` a primitive computes its output array, then calls
# `make_node(out, parents, vjps, name)`, where each VJP is a function
# `vjp(g, out)` **written in Tensor operations**. That last point is what makes
# second derivatives possible: the backward pass is an ordinary computation
# that can itself be recorded.
#
# Here are `sin` and `cos`, each defined through the other:
# $\sin' = \cos$ and $\cos' = -\sin$.

# %%
def sin(a: bnp.Tensor) -> bnp.Tensor:
    """Elementwise sine. Shapes: any -> same."""
    xp = bnp.backend.xp()
    return make_node(xp.sin(a.data), (a,), (lambda g, out: g * cos(a),), "sin")


def cos(a: bnp.Tensor) -> bnp.Tensor:
    """Elementwise cosine. Shapes: any -> same."""
    xp = bnp.backend.xp()
    return make_node(xp.cos(a.data), (a,), (lambda g, out: -(g * sin(a)),), "cos")


t = bnp.tensor(rng.standard_normal(5), requires_grad=True)
(g_sin,) = bnp.grad(sin(t).sum(), [t])
print("d/dt sum(sin t) - cos t:", np.abs(g_sin.numpy() - np.cos(t.numpy())).max())
assert np.allclose(g_sin.numpy(), np.cos(t.numpy()), atol=1e-15)

# %% [markdown]
# ## 3. Trust, but verify: gradient checks
#
# A hand-written VJP is a claim. `bnp.testing.gradcheck` tests it against
# central differences,
#
# $$\frac{\partial}{\partial x_j} \langle u, f(x) \rangle \approx
# \frac{\langle u, f(x + \epsilon e_j)\rangle - \langle u, f(x - \epsilon e_j)\rangle}{2\epsilon},$$
#
# with a *random* upstream vector $u$ (checking only $\sum f$ would test a
# single direction of the Jacobian, and some functions have a zero gradient in
# exactly that direction). In float64 with $\epsilon = 10^{-6}$ the two sides
# agree to about $10^{-9}$: truncation error $O(\epsilon^2)$ plus rounding
# error $O(10^{-16}/\epsilon)$.
#
# We check a small function built from our new primitive, then its second
# derivative (`gradgradcheck` checks the gradient map itself by finite
# differences). Then we plant a bug (a `cos` whose derivative has the wrong
# sign) and watch the check catch it.

# %%
def wave(x: bnp.Tensor, w: bnp.Tensor) -> bnp.Tensor:
    """A student-written function: ``sin(x @ w) * tanh(x @ w)``. Shapes: x (N, n), w (n, m) -> (N, m)."""
    h = x @ w
    return sin(h) * ops.tanh(h)


x0 = bnp.tensor(rng.standard_normal((4, 3)))
w0 = bnp.tensor(rng.standard_normal((3, 2)))
assert gradcheck(wave, [x0, w0])
assert gradgradcheck(wave, [x0, w0])
print("gradcheck and gradgradcheck pass for wave(x, w)")


def bad_cos(a: bnp.Tensor) -> bnp.Tensor:
    """Cosine with a sign error in its VJP."""
    xp = bnp.backend.xp()
    return make_node(xp.cos(a.data), (a,), (lambda g, out: g * sin(a),), "bad_cos")


try:
    gradcheck(bad_cos, [bnp.tensor(rng.standard_normal(4))])
    caught = False
except GradcheckError as err:
    caught = True
    print("gradcheck caught the planted bug:\n   ", err)
assert caught, "gradcheck should reject a VJP with the wrong sign"

# %% [markdown]
# ## 4. Second order: Hessian-vector products
#
# Let $L(\theta)$ be a scalar loss of the parameters $\theta \in \mathbb{R}^n$
# and $H = \nabla^2 L(\theta)$. For a fixed vector $v$,
#
# $$H v = \nabla_\theta \big( \nabla_\theta L(\theta)^\top v \big).$$
#
# So: compute the gradient *with its graph recorded* (`create_graph=True`),
# take its inner product with $v$, and differentiate again. The cost is a
# small constant times one gradient, and $H$ is never formed. `bnp.hvp` does
# exactly this. `bnp.hessian` gets all $n$ rows at once by sending the whole
# identity matrix backwards as a *batch* of upstream gradients (each VJP
# accepts extra leading axes), one pass over arrays $n$ times wider.
#
# Our test subject: a tiny tanh MLP with a mean-squared-error loss on a fixed
# batch. `loss_fn` is a closure with no arguments, as `bnp.hessian` expects.

# %%
sizes = [3, 4, 2] if QUICK else [5, 8, 3]
batch = 8 if QUICK else 32
model = models.mlp(sizes, activation="tanh", rng=1)
X = bnp.tensor(rng.standard_normal((batch, sizes[0])))
Y = bnp.tensor(rng.standard_normal((batch, sizes[-1])))
params = list(model.parameters())
n_params = sum(p.size for p in params)


def loss_fn() -> bnp.Tensor:
    return F.mse_loss(model(X), Y)


H = bnp.backend.to_numpy(bnp.hessian(loss_fn, params))
print(f"MLP {sizes}: {n_params} parameters, Hessian {H.shape}")

# One Hessian-vector product, two ways: matrix-free, and from the dense matrix.
vectors = [rng.standard_normal(p.shape) for p in params]
hv_blocks = bnp.hvp(loss_fn, params, [bnp.backend.asarray(v) for v in vectors])
hv = np.concatenate([bnp.backend.to_numpy(h).ravel() for h in hv_blocks])
v_flat = np.concatenate([v.ravel() for v in vectors])
hvp_error = np.abs(hv - H @ v_flat).max() / np.abs(hv).max()
print(f"relative difference of hvp and H @ v: {hvp_error:.2e}")
assert hvp_error < 1e-12

# %% [markdown]
# ## 5. Is that Hessian right? Two independent checks
#
# **Symmetry.** Mixed partial derivatives commute for smooth functions, so
# $H = H^\top$ exactly. Our $H$ is computed row by row (row $i$ is
# $H e_i$), so nothing forces the symmetry: it is a genuine check, passing
# only up to rounding.
#
# **Finite differences of the gradient.** Column $j$ of $H$ is the derivative
# of the gradient along $e_j$:
#
# $$H e_j \approx \frac{\nabla L(\theta + \epsilon e_j) - \nabla L(\theta - \epsilon e_j)}{2 \epsilon}.$$
#
# This uses first derivatives only, so it is independent of the second-order
# machinery. The bookkeeping (nudging one parameter entry in place, reading
# the gradient as one flat vector) lives in two small helpers.

# %%
def flat_gradient() -> np.ndarray:
    """The gradient of ``loss_fn`` at the current parameters, flattened in ``params`` order."""
    grads = bnp.grad(loss_fn(), params)
    return np.concatenate([g.numpy().ravel() for g in grads])


def nudge(j: int, delta: float) -> None:
    """Add ``delta`` to entry ``j`` of the flattened parameters (in place)."""
    for p in params:
        if j < p.size:
            p.data.reshape(-1)[j] += delta
            return
        j -= p.size


def finite_difference_hessian(eps: float = 1e-5) -> np.ndarray:
    """Central differences of the gradient, one column per parameter entry."""
    columns = []
    for j in range(n_params):
        nudge(j, eps)
        plus = flat_gradient()
        nudge(j, -2 * eps)
        minus = flat_gradient()
        nudge(j, eps)
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=1)


scale = np.abs(H).max()
symmetry_error = np.abs(H - H.T).max() / scale
fd_error = np.abs(H - finite_difference_hessian()).max() / scale
print(f"symmetry:            max |H - H^T| / max |H|    = {symmetry_error:.2e}")
print(f"finite differences:  max |H - H_fd| / max |H|   = {fd_error:.2e}")
assert symmetry_error < 1e-12
assert fd_error < 1e-6

# %% [markdown]
# ## 6. What the Hessian tells us
#
# The eigenvalues of $H$ are the curvatures of the loss along its principal
# directions. Away from a minimum $H$ can have negative eigenvalues (this one
# usually does: the MLP is untrained). The ratio of the largest to the
# smallest curvature, the *condition number*, decides how fast gradient
# descent can go: the step must be small enough for the steepest direction
# and is then far too small for the flattest. The next chapter shows where
# bad conditioning comes from in a neural network, and how BNP removes it.

# %%
eigenvalues = np.linalg.eigvalsh(H)
kappa = np.abs(eigenvalues).max() / np.abs(eigenvalues).min()
print(f"eigenvalues from {eigenvalues.min():.3g} to {eigenvalues.max():.3g}; "
      f"{(eigenvalues < 0).sum()} of {n_params} negative; |lambda|_max / |lambda|_min = {kappa:.3g}")
assert np.isclose(eigenvalues.sum(), np.trace(H))  # the trace is the sum of the eigenvalues

# %% [markdown]
# ## Summary
#
# * A primitive needs one rule, its VJP, written with tensor operations.
# * `gradcheck` and `gradgradcheck` compare first and second derivatives with
#   central differences, using a random upstream gradient.
# * Differentiating the recorded backward pass gives $Hv$ for the price of a
#   few gradients; a batch of unit vectors gives the dense Hessian.
# * The Hessian passed both independent checks above: symmetry to rounding
#   error and agreement with finite differences of the gradient.
#
# **Try it.** Replace `tanh` by `relu` in the MLP. Which check still passes,
# and why can finite differences disagree at a kink?
