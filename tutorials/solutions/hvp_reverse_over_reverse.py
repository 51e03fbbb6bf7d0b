"""Reference solution of exercise hvp_reverse_over_reverse (chapter 01_autograd)."""

from __future__ import annotations

from typing import Callable

import numpy as np

import bnp


def hvp(f: Callable[[bnp.Tensor], bnp.Tensor], x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """H(x) v for a scalar function f of a vector. Shapes: x, v (n,) -> (n,)."""
    xt = bnp.tensor(x, requires_grad=True)
    (g,) = bnp.grad(f(xt), xt, create_graph=True)  # the gradient, recorded as a graph
    (hv,) = bnp.grad(g, xt, grad_outputs=v)  # the VJP of the gradient with v: H^T v = H v
    return hv.numpy()
