"""Exercise hvp_reverse_over_reverse: a Hessian-vector product by reverse mode over reverse mode.

Prepared by chapter 01_autograd (Hessian-vector products and a dense Hessian).
Grade it with::

    bnp grade hvp_reverse_over_reverse tutorials/exercises/hvp_reverse_over_reverse.py

Task. H v = d/dx <grad f(x), v>: one reverse pass that records itself
(create_graph=True) gives the gradient as a graph; a second reverse pass over
it, seeded with v, gives H v, without ever forming H. Write

    hvp(f, x, v) -> Hv
        f: a function from a bnp Tensor of shape (n,) to a one-element Tensor,
           built from bnp operations.
        x, v: NumPy arrays of shape (n,).
        Hv: the Hessian of f at x times v, a NumPy array (or Tensor) of shape (n,).

Use bnp.grad twice; the grader refuses bnp.hvp, bnp.hessian and bnp.jacobian
(what it would otherwise be), and a finite difference is not accurate enough.

Hints.
- xt = bnp.tensor(x, requires_grad=True); (g,) = bnp.grad(f(xt), xt, create_graph=True).
- Then (hv,) = bnp.grad(g, xt, grad_outputs=v), or bnp.grad of (g * v).sum().
- The grader's functions mix a quadratic with tanh units, eigenvalues over 8
  decades and points where tanh saturates; it knows their Hessians in closed form.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

import bnp  # noqa: F401  (bnp.tensor, bnp.grad)


def hvp(f: Callable[[bnp.Tensor], bnp.Tensor], x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """H(x) v for a scalar function f of a vector. Shapes: x, v (n,) -> (n,)."""
    raise NotImplementedError("write hvp")
