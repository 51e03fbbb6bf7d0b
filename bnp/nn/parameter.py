"""Parameter: a tensor that a Module learns."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Tensor


class Parameter(Tensor):
    """A leaf Tensor with ``requires_grad=True`` that Modules register as learnable.

    Assigning one to a Module attribute (``self.weight = Parameter(...)``) is
    what makes it appear in ``parameters()`` and ``state_dict()``. Operations on
    a Parameter return plain Tensors.

    Args:
        data: a backend array, a Tensor (its data is taken, detached) or array-like.
        requires_grad: True by default (False freezes it).
    """

    __slots__ = ()  # Tensor uses __slots__; an empty one keeps instances dict-free

    def __init__(self, data: Any, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        elif not backend.is_array(data):
            data = backend.asarray(data, dtype=backend.get_default_dtype())
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"Parameter: only floating data can require gradients, got dtype {data.dtype}")
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, requires_grad={self.requires_grad})"
