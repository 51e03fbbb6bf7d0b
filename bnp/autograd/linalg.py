"""Matrix multiplication, batched and broadcasting like ``numpy.matmul``."""

from __future__ import annotations

from typing import Any

from .. import backend
from ._util import as_tensor, batch_ndim, check_same_backend
from .graph import make_node
from .reductions import sum_to
from .shapes import reshape, transpose
from .tensor import Tensor


def swapaxes(a: Tensor, i: int, j: int) -> Tensor:
    axes = list(range(a.ndim))
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(a, axes if a.ndim != 2 else None)  # None: the reversal, the fast path of transpose


def _mT(a: Tensor) -> Tensor:
    return swapaxes(a, -1, -2)


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b``. 1-D operands are promoted to matrices and the added axis removed,
    as in NumPy; leading axes broadcast.

    Shapes: (..., m, k) @ (..., k, n) -> (..., m, n); (k,) @ (..., k, n) -> (..., n);
    (..., m, k) @ (k,) -> (..., m); (k,) @ (k,) -> ().
    """
    a = as_tensor(a, b if isinstance(b, Tensor) else None, "matmul")
    b = as_tensor(b, a, "matmul")
    check_same_backend("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
    rows_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != rows_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned ({a.shape[-1]} columns vs {rows_b} rows)"
        )
    if a.ndim > 1 and b.ndim > 1:
        return _matmul(a, b)
    out = _matmul(reshape(a, (1,) + a.shape) if a.ndim == 1 else a, reshape(b, b.shape + (1,)) if b.ndim == 1 else b)
    drop = ({out.ndim - 2} if a.ndim == 1 else set()) | ({out.ndim - 1} if b.ndim == 1 else set())
    return reshape(out, tuple(s for i, s in enumerate(out.shape) if i not in drop))


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    """Both operands at least 2-D, inner sizes already checked."""
    try:
        if a.ndim > 2 or b.ndim > 2:  # plain matrices have no batch axes to check (and this costs microseconds)
            backend.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch axes of shapes {a.shape} and {b.shape} do not broadcast") from None
    out = a.data @ b.data
    return make_node(
        out,
        (a, b),
        (lambda g, o: sum_to(g @ _mT(b), a.shape, o), lambda g, o: sum_to(_mT(a) @ g, b.shape, o)),
        "matmul",
    )


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` as one primitive: the layer every network is made of.

    Shapes: x (..., in), weight (out, in), bias (out,) or None -> (..., out).

    It has the derivatives of the composite (and is tested against it), but
    records one node instead of three and gives the weight's gradient directly
    as a contiguous (out, in) array: fewer steps per training iteration.
    """
    weight = as_tensor(weight, None, "linear")
    x = as_tensor(x, weight, "linear")
    bias = None if bias is None else as_tensor(bias, weight, "linear")
    parents = (x, weight) if bias is None else (x, weight, bias)
    check_same_backend("linear", *parents)
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}) but weight of shape "
            f"{weight.shape} expects {weight.shape[-1] if weight.ndim else '?'} (weight must be (out, in))"
        )
    d_out, d_in = weight.shape
    if bias is not None and bias.shape != (d_out,):
        raise ValueError(f"linear: bias must have shape ({d_out},) for weight {weight.shape}, got {bias.shape}")
    out = x.data @ weight.data.T
    if bias is not None:
        out = out + bias.data

    def d_x(g: Tensor, o: Tensor) -> Tensor:
        return g @ weight

    def d_weight(g: Tensor, o: Tensor) -> Tensor:
        # sum over every row of x (all its leading axes): g^T x with rows flattened
        lead = g.shape[: batch_ndim(g, o)]
        return _mT(reshape(g, lead + (-1, d_out))) @ reshape(x, (-1, d_in))

    def d_bias(g: Tensor, o: Tensor) -> Tensor:
        return sum_to(g, (d_out,), o)

    return make_node(out, parents, (d_x, d_weight, d_bias)[: len(parents)], "linear")
