"""Matrix multiplication, batched and broadcasting like ``numpy.matmul``."""

from __future__ import annotations

from typing import Any

from .. import backend
from ._util import as_tensor, check_same_backend
from .graph import make_node
from .shapes import reshape, sum_to, transpose
from .tensor import Tensor


def swapaxes(a: Tensor, i: int, j: int) -> Tensor:
    axes = list(range(a.ndim))
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(a, axes)


def _mT(a: Tensor) -> Tensor:
    return swapaxes(a, -1, -2)


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b``. 1-D operands are promoted to matrices and the added axis removed,
    as in NumPy; leading axes broadcast.

    Shapes: (..., m, k) @ (..., k, n) -> (..., m, n).
    """
    a = as_tensor(a, b if isinstance(b, Tensor) else None, "matmul")
    b = as_tensor(b, a, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
    if a.ndim == 1:
        out = _matmul(reshape(a, (1, a.shape[0])), b)
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = _matmul(a, reshape(b, (b.shape[0], 1)))
        return reshape(out, out.shape[:-1])
    return _matmul(a, b)


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    check_same_backend("matmul", a, b)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned "
            f"({a.shape[-1]} columns vs {b.shape[-2]} rows)"
        )
    try:
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
