"""Small helpers shared by the primitives: operand conversion and axis handling."""

from __future__ import annotations

from typing import Any

from .. import backend
from .tensor import Tensor


def as_tensor(x: Any, like: Tensor | None = None, op: str = "") -> Tensor:
    """A Tensor for an operand; Python numbers take the dtype of ``like``.

    Raw arrays must live on the active backend: silently copying a NumPy array
    to the GPU (or back) inside an operation would hide a slow or wrong program.
    """
    if isinstance(x, Tensor):
        return x
    if not backend.is_array(x) and getattr(x, "shape", None) == () and hasattr(x, "item"):
        x = x.item()  # a NumPy scalar (numpy.float32(0.5), ...) is used as a Python number
    if isinstance(x, (int, float, bool)):
        if like is not None and like.dtype.kind == "f":
            return Tensor(backend.xp().asarray(x, dtype=like.dtype))
        kind = float if isinstance(x, float) else None
        dtype = backend.get_default_dtype() if kind is float else None
        return Tensor(backend.xp().asarray(x, dtype=dtype))
    if backend.is_array(x):
        if backend.array_backend(x) != backend.get_backend():
            raise TypeError(
                f"{op or 'operation'}: cannot mix a {backend.array_backend(x)} array with tensors on the "
                f"'{backend.get_backend()}' backend; convert it with bnp.tensor(...) first"
            )
        return Tensor(x)
    if isinstance(x, (list, tuple)):  # accepted wherever arrays are; floats take the dtype of ``like``
        arr = backend.asarray(x)
        if arr.dtype.kind == "f" or (like is not None and like.dtype.kind == "f" and arr.dtype.kind in "iub"):
            arr = arr.astype(like.dtype if like is not None and like.dtype.kind == "f" else backend.get_default_dtype())
        return Tensor(arr)
    raise TypeError(f"{op or 'operation'}: unsupported operand of type {type(x).__name__}")


def check_same_backend(op: str, *tensors: Tensor) -> None:
    """Refuse to combine a NumPy-backed tensor with a CuPy-backed one."""
    first = type(tensors[0].data)
    for t in tensors:  # the common case, checked cheaply: every array of one type
        if type(t.data) is not first:
            break
    else:
        return
    kinds = {backend.array_backend(t.data) for t in tensors}
    if len(kinds) > 1:
        raise TypeError(
            f"{op}: cannot mix numpy and cupy arrays "
            f"(shapes {[t.shape for t in tensors]}); move data with bnp.tensor(...) on one backend"
        )


def normalize_axes(axis: Any, ndim: int, op: str) -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; None means all axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in map(int, axes):  # NumPy integers too
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        if ndim:  # a 0-d tensor accepts axis 0 or -1 (as PyTorch) and has nothing to reduce
            out.append(a % ndim)
    return tuple(sorted(set(out)))


def batch_ndim(g: Tensor, out: Tensor) -> int:
    """Number of leading batch axes a (possibly batched) upstream gradient carries."""
    return g.ndim - out.ndim
