"""The Tensor: a backend array plus the record of how it was computed.

A tensor made by an operation on tensors that require gradients remembers its
parents and one vector-Jacobian product (VJP) per parent. Nothing else is
stored: the graph is a set of tensors pointing at their parents.

Version counters (as PyTorch's): ``_version`` counts the in-place updates bnp
itself makes to a tensor's values (optimizer steps, ``Module.load_state_dict``,
``zero_grad(set_to_none=False)``, the ``bnp.nn.init`` functions, BN/FN
``reset_parameters``). A recorded node keeps its parents' versions, and a
backward pass over a graph whose inputs were modified since refuses (the
gradient would silently use the new values). Writes by hand to ``.data``
(``t.data[...] = v``, ``t.data -= v``, ``t.data = other``) are not seen:
bump ``t._version`` yourself, or recompute the graph, as PyTorch documents
for ``.data``.
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

    __slots__ = ("data", "requires_grad", "grad", "_parents", "_vjps", "_op", "_hint", "_version", "_versions",
                 "__weakref__")
    __array_ufunc__ = None  # make `ndarray * Tensor` defer to Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False):
        if not backend.is_array(data):
            data = _from_python(data)  # NumPy scalars (0-d results), lists, numbers
        if data.dtype.kind not in _NUMERIC:
            raise TypeError(f"Tensor: data of dtype {data.dtype} ({_KIND_NAMES.get(data.dtype.kind, 'non-numeric')}) "
                            "cannot be a tensor; expected numbers (float, int or bool)")
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating tensors can require gradients, got dtype {data.dtype}")
        self.data = data
        self.requires_grad = requires_grad
        self.grad: Tensor | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._vjps: tuple[VJP | None, ...] = ()
        self._op = ""
        self._hint = ""  # why this tensor has no graph, for error messages
        self._version = 0  # in-place updates so far (module doc)
        self._versions: tuple[int, ...] = ()  # the parents' versions when this node was recorded

    # -- basic facts ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape  # a tuple already (NumPy and CuPy)

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
        """Set ``requires_grad`` in place (only floating tensors can require gradients); returns self."""
        if flag and self.dtype.kind != "f":
            raise TypeError(f"requires_grad_(): only floating tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def __repr__(self) -> str:
        extra = f", op={self._op}" if self._op else (", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({backend.to_numpy(self.data)!r}{extra})"

    # Operators (+, *, @, [], ...), methods (sum, exp, reshape, ...) and
    # backward() are attached once, in ops.py, where the operations exist: they
    # need Tensor, so Tensor cannot import them.

    __hash__ = object.__hash__  # tensors are graph nodes: identity, not value


_NUMERIC = "biufc"  # bool, int, uint, float, complex (complex cannot require grad: only "f" can)
_KIND_NAMES = {"O": "Python objects", "U": "strings", "S": "bytes", "V": "raw records", "M": "dates", "m": "durations"}


def _from_python(data: Any) -> Any:
    """A backend array for data that is not one: NumPy scalars keep their dtype, Python floats
    (and lists of them) get the default dtype; anything NumPy cannot make numbers of is refused."""
    if isinstance(data, Tensor):
        return data.data  # its array, detached (as Parameter(t) does)
    if hasattr(data, "dtype"):  # a NumPy scalar: 0-d results of NumPy operations
        return backend.ensure_array(data) if backend.get_backend() == "numpy" else backend.asarray(data)
    try:
        arr = backend.asarray(data)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise TypeError(f"Tensor: cannot make an array of {type(data).__name__} data ({exc})") from None
    return arr.astype(backend.get_default_dtype()) if arr.dtype.kind == "f" else arr


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a leaf tensor on the active backend.

    Python floats and lists of them get the default dtype (float64 unless
    changed with ``bnp.set_default_dtype``); data that carry a dtype (NumPy or
    CuPy arrays, NumPy scalars) keep it, so a float64 array stays float64
    under a float32 default; integer and boolean data keep their kind (class
    labels stay integers). ``dtype`` overrides all of these.
    The data are always copied (as ``torch.tensor``): in-place updates of the
    tensor, an optimizer's say, never reach the caller's array.
    """
    if isinstance(data, Tensor):
        data = data.data
    source = data
    try:
        arr = backend.asarray(data)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise TypeError(f"tensor(): cannot make an array of {type(data).__name__} data ({exc})") from None
    if dtype is None and arr.dtype.kind == "f" and not hasattr(data, "dtype"):
        dtype = backend.get_default_dtype()
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if arr is source or (backend.is_array(source) and backend.shares_memory(arr, source)):
        arr = arr.copy()
    if requires_grad and arr.dtype.kind != "f":
        raise TypeError(f"tensor(): only floating tensors can require gradients, got dtype {arr.dtype}")
    return Tensor(arr, requires_grad=requires_grad)

