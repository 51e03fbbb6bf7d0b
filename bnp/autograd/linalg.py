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
