"""Fused primitives used by the layers for speed.

DESIGN.md: composites are built from primitives "unless a fused version is
needed for speed; then the fused VJP is itself differentiable and tested
against the composite" (tests/test_nn_fused.py).

``linear`` is ``x @ weight.T + bias`` as ONE graph node. The composite
``F.linear`` records a transpose, a matmul and an add; its weight gradient
comes out as ``(x.T @ g).T``, a transposed view that must then be copied
(for a 784x256 weight that copy costs as much as the matrix product). Here
the weight gradient is computed directly as ``g.T @ x``, already laid out
like the weight, and the bias is added in place.
"""

from __future__ import annotations

from ..autograd import Tensor, ops
from ..autograd.graph import make_node


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with a hand-written (differentiable) VJP.

    Shapes: x (*, in), weight (out, in), bias (out,) or None -> (*, out).
    The VJPs take upstream gradients with extra leading batch axes B:
    g (B, *, out) -> x: (B, *, in), weight: (B, out, in), bias: (B, out).
    """
    if x.shape[-1:] != weight.shape[1:] or weight.ndim != 2:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {weight.shape}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    out = x.data @ weight.data.T
    if bias is not None:
        out += bias.data
    lead, width = x.shape[:-1], x.shape[-1]

    def rows(g: Tensor, out: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        """g as (B, M, out) with M the product of x's leading axes."""
        nb = g.ndim - out.ndim
        return ops.reshape(g, g.shape[:nb] + (-1, weight.shape[0])), g.shape[:nb]

    def vjp_x(g: Tensor, out: Tensor) -> Tensor:
        return g @ weight

    def vjp_weight(g: Tensor, out: Tensor) -> Tensor:
        g2, _ = rows(g, out)
        x2 = ops.reshape(x, (-1, width)) if len(lead) != 1 else x
        return ops.swapaxes(g2, -1, -2) @ x2  # (B, out, M) @ (M, in): laid out like the weight

    def vjp_bias(g: Tensor, out: Tensor) -> Tensor:
        g2, _ = rows(g, out)
        return ops.sum(g2, axis=g2.ndim - 2)

    parents = (x, weight) if bias is None else (x, weight, bias)
    vjps = (vjp_x, vjp_weight) if bias is None else (vjp_x, vjp_weight, vjp_bias)
    return make_node(out, parents, vjps, "linear")
