"""All tensor operations in one namespace: the primitives, and the composites
built from them; at the bottom, Tensor's operators and methods.

A composite has no VJP of its own; autograd differentiates the primitives it
is made of, so its higher derivatives are right whenever theirs are.
"""

from __future__ import annotations

import builtins
from typing import Any, Sequence

from ._util import as_tensor, normalize_axes
from .elementwise import abs, add, div, exp, log, maximum, mul, neg, pow, relu, sqrt, sub, tanh, where
from .graph import backward as _backward
from .linalg import linear, matmul, swapaxes
from .reductions import broadcast_to, max, sum, sum_to
from .shapes import astype, concatenate, getitem, reshape, scatter, transpose
from .tensor import Tensor

__all__ = [
    "abs", "add", "astype", "broadcast_to", "concatenate", "div", "exp", "flatten", "getitem", "linear", "log",
    "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "neg", "pow", "relu", "reshape", "rpow",
    "scatter", "sigmoid", "sqrt", "stack", "sub", "sum", "sum_to", "swapaxes", "tanh", "transpose", "var",
    "where", "expand_dims", "squeeze", "square",
]


def rpow(base: Any, exponent: Tensor) -> Tensor:
    """``base ** exponent`` for a tensor exponent: ``exp(exponent * log(base))``."""
    base = as_tensor(base, exponent, "pow")
    return exp(exponent * log(base))


def square(a: Tensor) -> Tensor:
    return a * a


def mean(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: a sum divided by the number of entries summed."""
    axes = normalize_axes(axis, a.ndim, "mean")
    count = 1
    for ax in axes:
        count *= a.shape[ax]
    return sum(a, axes, keepdims) / count


def var(a: Tensor, axis: Any = None, keepdims: bool = False, correction: int = 0) -> Tensor:
    """Variance over ``axis``; ``correction=1`` gives the unbiased estimate."""
    axes = normalize_axes(axis, a.ndim, "var")
    count = 1
    for ax in axes:
        count *= a.shape[ax]
    centred = a - mean(a, axes, keepdims=True)
    return sum(centred * centred, axes, keepdims) / (count - correction)


def min(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    return neg(max(neg(a), axis, keepdims))


def minimum(a: Any, b: Any) -> Tensor:
    a = as_tensor(a, b if isinstance(b, Tensor) else None, "minimum")
    b = as_tensor(b, a, "minimum")
    return neg(maximum(neg(a), neg(b)))


def sigmoid(a: Tensor) -> Tensor:
    """``1 / (1 + exp(-a))``, computed as ``(1 + tanh(a/2)) / 2``: no overflow for large |a|."""
    return (tanh(a * 0.5) + 1) * 0.5


def flatten(a: Tensor, start_dim: int = 0) -> Tensor:
    """Merge the axes from ``start_dim`` on into one."""
    start_dim %= builtins.max(a.ndim, 1)
    size = 1
    for s in a.shape[start_dim:]:
        size *= s
    return reshape(a, a.shape[:start_dim] + (size,))


def expand_dims(a: Tensor, axis: int) -> Tensor:
    axis = axis % (a.ndim + 1)
    return reshape(a, a.shape[:axis] + (1,) + a.shape[axis:])


def squeeze(a: Tensor, axis: int) -> Tensor:
    axis %= a.ndim
    if a.shape[axis] != 1:
        raise ValueError(f"squeeze: axis {axis} of shape {a.shape} has length {a.shape[axis]}, not 1")
    return reshape(a, a.shape[:axis] + a.shape[axis + 1 :])


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors of equal shape along a new axis."""
    tensors = [as_tensor(t, None, "stack") for t in tensors]
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors need the same shape, got {[t.shape for t in tensors]}")
    return concatenate([expand_dims(t, axis) for t in tensors], axis % (tensors[0].ndim + 1))


# -- Tensor's operators and methods, attached once, here ------------------------
# (tensor.py cannot import the operations: they need Tensor.)
def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _one_or_many(args: tuple) -> tuple:
    """``t.reshape(2, 3)`` and ``t.reshape((2, 3))`` mean the same, as in NumPy."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _tensor_backward(self: Tensor, grad: Any = None, retain_graph: bool | None = None,
                     create_graph: bool = False) -> None:
    """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    ``grad`` is the upstream gradient; it may be omitted only for a
    one-element tensor. The graph is freed afterwards unless
    ``retain_graph`` or ``create_graph`` is set.
    """
    _backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)


_TENSOR_METHODS = {
    "backward": _tensor_backward,
    "__add__": add, "__radd__": lambda a, b: add(b, a),
    "__sub__": sub, "__rsub__": lambda a, b: sub(b, a),
    "__mul__": mul, "__rmul__": lambda a, b: mul(b, a),
    "__truediv__": div, "__rtruediv__": lambda a, b: div(b, a),
    "__neg__": neg, "__pow__": pow, "__rpow__": lambda a, b: rpow(b, a),
    "__matmul__": matmul, "__rmatmul__": lambda a, b: matmul(b, a),
    "__getitem__": getitem,
    # comparisons give plain boolean tensors: no gradient flows through them
    "__gt__": lambda a, b: Tensor(a.data > _raw(b)), "__ge__": lambda a, b: Tensor(a.data >= _raw(b)),
    "__lt__": lambda a, b: Tensor(a.data < _raw(b)), "__le__": lambda a, b: Tensor(a.data <= _raw(b)),
    "sum": sum, "mean": mean, "var": var, "max": max, "min": min,
    "exp": exp, "log": log, "sqrt": sqrt, "tanh": tanh, "relu": relu, "sigmoid": sigmoid, "abs": abs,
    "reshape": lambda a, *shape: reshape(a, _one_or_many(shape)),
    "flatten": flatten,
    "transpose": lambda a, *axes: transpose(a, _one_or_many(axes) or None),
    "swapaxes": swapaxes, "astype": astype,
    "T": property(lambda a: transpose(a, None), doc="The tensor with its axes reversed."),
}
for _name, _method in _TENSOR_METHODS.items():
    setattr(Tensor, _name, _method)
