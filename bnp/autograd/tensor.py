"""The Tensor: a backend array plus the record of how it was computed.

A tensor made by an operation on tensors that require gradients remembers its
parents and one vector-Jacobian product (VJP) per parent. Nothing else is
stored: the graph is a set of tensors pointing at their parents.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import backend

# A VJP maps (upstream gradient g, the output tensor) to the gradient of one parent.
# g may carry extra *leading* batch axes (see `bnp.grad(..., is_grads_batched=True)`).
VJP = Callable[["Tensor", "Tensor"], "Tensor"]


class Tensor:
    """An n-dimensional array that can record operations for differentiation.

    Attributes:
        data: the backend array (``numpy.ndarray`` or ``cupy.ndarray``).
        requires_grad: whether operations on it are recorded.
        grad: the accumulated gradient after ``backward()`` (a Tensor) or None.
    """

    __slots__ = ("data", "requires_grad", "grad", "_parents", "_vjps", "_op", "_hint", "__weakref__")
    __array_ufunc__ = None  # make `ndarray * Tensor` defer to Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False):
        self.data = backend.ensure_array(data)  # NumPy gives scalars for 0-d results; keep arrays
        self.requires_grad = requires_grad
        self.grad: Tensor | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._vjps: tuple[VJP | None, ...] = ()
        self._op = ""
        self._hint = ""  # why this tensor has no graph, for error messages

    # -- basic facts ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def is_leaf(self) -> bool:
        """True unless an operation recorded this tensor (even if its graph was freed since)."""
        return not self._op

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __bool__(self) -> bool:
        """Truth of a one-element tensor; ambiguous (an error) for more, as in NumPy."""
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.size} elements is ambiguous")
        return bool(self.data.reshape(()).item())

    def numpy(self):
        """A NumPy copy (or view) of the data on the host."""
        return backend.to_numpy(self.data)

    def item(self) -> float | int:
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item(): tensor has {self.size} elements, expected 1")
        return self.data.reshape(()).item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        self.requires_grad = flag
        return self

    def __repr__(self) -> str:
        extra = f", op={self._op}" if self._op else (", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({backend.to_numpy(self.data)!r}{extra})"

    def backward(self, grad: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is the upstream gradient; it may be omitted only for a
        one-element tensor. The graph is freed afterwards unless
        ``retain_graph`` or ``create_graph`` is set.
        """
        from .graph import backward

        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    # -- operators (the operations themselves live in ops.py) ---------------
    def __add__(self, o): return _ops().add(self, o)
    def __radd__(self, o): return _ops().add(o, self)
    def __sub__(self, o): return _ops().sub(self, o)
    def __rsub__(self, o): return _ops().sub(o, self)
    def __mul__(self, o): return _ops().mul(self, o)
    def __rmul__(self, o): return _ops().mul(o, self)
    def __truediv__(self, o): return _ops().div(self, o)
    def __rtruediv__(self, o): return _ops().div(o, self)
    def __neg__(self): return _ops().neg(self)
    def __pow__(self, p): return _ops().pow(self, p)
    def __rpow__(self, b): return _ops().rpow(b, self)
    def __matmul__(self, o): return _ops().matmul(self, o)
    def __rmatmul__(self, o): return _ops().matmul(o, self)
    def __getitem__(self, idx): return _ops().getitem(self, idx)

    # comparisons give plain boolean tensors (no gradient flows through them)
    def __gt__(self, o): return Tensor(self.data > _raw(o))
    def __ge__(self, o): return Tensor(self.data >= _raw(o))
    def __lt__(self, o): return Tensor(self.data < _raw(o))
    def __le__(self, o): return Tensor(self.data <= _raw(o))

    __hash__ = object.__hash__  # tensors are graph nodes: identity, not value

    # -- methods, as in NumPy / PyTorch --------------------------------------
    def sum(self, axis=None, keepdims=False): return _ops().sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _ops().mean(self, axis, keepdims)
    def var(self, axis=None, keepdims=False, correction=0): return _ops().var(self, axis, keepdims, correction)
    def max(self, axis=None, keepdims=False): return _ops().max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return _ops().min(self, axis, keepdims)
    def exp(self): return _ops().exp(self)
    def log(self): return _ops().log(self)
    def sqrt(self): return _ops().sqrt(self)
    def tanh(self): return _ops().tanh(self)
    def relu(self): return _ops().relu(self)
    def sigmoid(self): return _ops().sigmoid(self)
    def abs(self): return _ops().abs(self)
    def reshape(self, *shape): return _ops().reshape(self, _one_or_many(shape))
    def flatten(self, start_dim=0): return _ops().flatten(self, start_dim)
    def transpose(self, *axes): return _ops().transpose(self, _one_or_many(axes) or None)
    def swapaxes(self, a, b): return _ops().swapaxes(self, a, b)
    def astype(self, dtype): return _ops().astype(self, dtype)

    @property
    def T(self) -> Tensor:
        return _ops().transpose(self, None)


_OPS = None


def _ops():
    """The ops module, imported on first use (it needs Tensor, so it cannot be imported above)."""
    global _OPS
    if _OPS is None:
        from . import ops

        _OPS = ops
    return _OPS


def _one_or_many(args: tuple) -> tuple:
    """``t.reshape(2, 3)`` and ``t.reshape((2, 3))`` mean the same, as in NumPy."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a leaf tensor on the active backend.

    Floating and Python-number data get the default dtype (float64 unless
    changed with ``bnp.set_default_dtype``); integer and boolean data keep
    their kind (class labels stay integers). ``dtype`` overrides both.
    The data are always copied (as ``torch.tensor``): in-place updates of the
    tensor, an optimizer's say, never reach the caller's array.
    """
    if isinstance(data, Tensor):
        data = data.data
    source = data
    arr = backend.asarray(data)
    if dtype is None and arr.dtype.kind == "f" and not backend.is_array(data):
        dtype = backend.get_default_dtype()
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if arr is source or (backend.is_array(source) and backend.shares_memory(arr, source)):
        arr = arr.copy()
    if requires_grad and arr.dtype.kind != "f":
        raise TypeError(f"tensor(): only floating tensors can require gradients, got dtype {arr.dtype}")
    return Tensor(arr, requires_grad=requires_grad)

