"""The array backend: NumPy on the CPU, CuPy on an NVIDIA GPU.

This is the only module of ``bnp`` that imports CuPy. Every other module asks
for the array namespace with :func:`xp` and never imports NumPy for tensor
data. Switch with ``bnp.set_backend("cupy")`` or the environment variable
``BNP_BACKEND=cupy`` (read once, at import).

Arrays stay where they live: conversions to host memory happen only at the
edges (:func:`to_numpy`, data loading, plotting).
"""

from __future__ import annotations

import contextlib
import os
from types import ModuleType
from typing import Any

import numpy

_BACKENDS = ("numpy", "cupy")
_FLOAT_DTYPES = ("float64", "float32")

_name = "numpy"
_xp: ModuleType = numpy
_default_dtype = numpy.dtype("float64")

_CUPY_HELP = (
    "install CuPy for your CUDA version, e.g. `pip install cupy-cuda12x` "
    "(or `pip install 'bnp[gpu]'`), on a machine with an NVIDIA GPU"
)


def _load_cupy() -> ModuleType:
    try:
        import cupy  # the one place cupy is imported
    except ImportError as exc:
        raise RuntimeError(
            f"bnp: the 'cupy' backend needs CuPy, which is not installed: {_CUPY_HELP}"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise RuntimeError(
            f"bnp: CuPy is installed but no usable GPU was found ({exc}); "
            "use set_backend('numpy') on this machine"
        ) from exc
    if count < 1:
        raise RuntimeError("bnp: CuPy is installed but no GPU is present; use the numpy backend")
    return cupy


def set_backend(name: str) -> None:
    """Select the array library: ``"numpy"`` (default) or ``"cupy"``.

    Tensors made before the switch keep their arrays; mixing them with new
    ones raises a clear error rather than copying silently.
    """
    global _name, _xp
    if name not in _BACKENDS:
        raise ValueError(f"bnp: unknown backend {name!r}; expected one of {_BACKENDS}")
    _xp = numpy if name == "numpy" else _load_cupy()
    _name = name


def get_backend() -> str:
    """The name of the active backend, ``"numpy"`` or ``"cupy"``."""
    return _name


def xp() -> ModuleType:
    """The active array namespace (the ``numpy`` or ``cupy`` module)."""
    return _xp


def set_default_dtype(dtype: str | Any) -> None:
    """Set the floating dtype of new tensors: ``"float64"`` (default) or ``"float32"``."""
    global _default_dtype
    dt = numpy.dtype(dtype)
    if dt.name not in _FLOAT_DTYPES:
        raise ValueError(f"bnp: default dtype must be one of {_FLOAT_DTYPES}, got {dt.name}")
    _default_dtype = dt


def get_default_dtype() -> numpy.dtype:
    """The floating dtype given to new tensors made from Python or integer-free data."""
    return _default_dtype


def is_array(obj: Any) -> bool:
    """True for a NumPy or (if loaded) CuPy ndarray."""
    if isinstance(obj, numpy.ndarray):
        return True
    return type(obj).__module__.startswith("cupy")


def array_backend(arr: Any) -> str:
    """``"numpy"`` or ``"cupy"``: where the array lives."""
    return "numpy" if isinstance(arr, numpy.ndarray) else "cupy"


def asarray(data: Any, dtype: Any = None) -> Any:
    """Move data (lists, scalars, NumPy or CuPy arrays) onto the active backend."""
    if _name == "cupy" and isinstance(data, numpy.ndarray):
        return _xp.asarray(data, dtype=dtype)
    if _name == "numpy" and is_array(data) and not isinstance(data, numpy.ndarray):
        data = data.get()  # CuPy array onto the host
    return _xp.asarray(data, dtype=dtype)


def ensure_array(data: Any) -> Any:
    """NumPy turns 0-d results into scalars; make them arrays again."""
    if isinstance(data, numpy.generic):
        return numpy.asarray(data)
    return data


def shares_memory(a: Any, b: Any) -> bool:
    """Whether two arrays of the same backend may overlap in memory."""
    if array_backend(a) != array_backend(b):
        return False
    return bool((numpy if isinstance(a, numpy.ndarray) else _xp).may_share_memory(a, b))


def quiet_float_errors() -> Any:
    """Context manager that silences NumPy's overflow/invalid/divide warnings, for code that
    checks the finiteness of its results itself and raises a clear error (CuPy never warns)."""
    if _name == "numpy":
        return numpy.errstate(over="ignore", invalid="ignore", divide="ignore")
    return contextlib.nullcontext()


def to_numpy(arr: Any) -> numpy.ndarray:
    """A host (NumPy) copy or view of a backend array."""
    if isinstance(arr, numpy.ndarray):
        return arr
    if is_array(arr):
        return arr.get()
    return numpy.asarray(arr)


def add_at(out: Any, index: Any, values: Any) -> None:
    """Unbuffered ``out[index] += values`` (repeated indices accumulate)."""
    if isinstance(out, numpy.ndarray):
        numpy.add.at(out, index, values)
    else:
        import cupyx  # part of CuPy

        cupyx.scatter_add(out, index, values)


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast of several shapes (pure shape arithmetic, any backend)."""
    return numpy.broadcast_shapes(*shapes)


def synchronize() -> None:
    """Wait for queued GPU work (for honest timings); a no-op on NumPy."""
    if _name == "cupy":
        _xp.cuda.Stream.null.synchronize()


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one GPU (used to skip GPU tests)."""
    try:
        _load_cupy()
    except RuntimeError:
        return False
    return True


_env = os.environ.get("BNP_BACKEND")
if _env:
    set_backend(_env.strip().lower())
