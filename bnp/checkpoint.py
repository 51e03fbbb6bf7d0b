"""Save and load training state as a plain ``.npz`` file, without pickle.

A state is a nested dict whose leaves are arrays (NumPy or CuPy), Python
numbers, booleans, strings, None, or lists of those::

    bnp.checkpoint.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 10}, "run.npz")
    state = bnp.checkpoint.load("run.npz")
    model.load_state_dict(state["model"]); opt.load_state_dict(state["optimizer"])

The file is an ordinary NumPy archive: every array is stored under its path
of keys joined by "/" (``model/0.weight``), and one extra entry,
``__bnp__``, holds the rest of the tree as JSON (numbers and strings, and a
placeholder for each array). ``numpy.load`` can read it anywhere.

Why not pickle: loading a pickle runs code chosen by whoever wrote the file.
Object arrays (which NumPy stores as pickles) are refused when saving, and a
file that contains one is refused when loading.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from typing import Any

import numpy  # host-side file format only

from . import backend

META_KEY = "__bnp__"
_FORMAT = "bnp.checkpoint"
_VERSION = 1


def save(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` (exactly that name) atomically.

    The archive is written to a temporary file in the same directory and then
    renamed over ``path``, so a crash mid-write never leaves a half-written
    checkpoint under the real name.

    Raises:
        TypeError: for a leaf that is not an array, number, string, bool,
            None or list, for an object array, or for a non-string key.
        ValueError: for a key containing "/" (the path separator) or empty.
    """
    if not isinstance(state, dict):
        raise TypeError(f"bnp.checkpoint.save: state must be a dict, got {type(state).__name__}")
    arrays: dict[str, numpy.ndarray] = {}
    tree = _encode(state, "", arrays)
    meta = json.dumps({"format": _FORMAT, "version": _VERSION, "tree": tree})
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **{META_KEY: numpy.array(meta)}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; arrays come back on the active backend.

    A plain ``.npz`` without the ``__bnp__`` entry also loads: its "/"-joined
    names are split back into nested dicts.

    Raises:
        ValueError: the file is or contains a pickle, or is not a readable NumPy archive.
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        magic = f.read(6)
    if not magic.startswith(b"PK"):  # every .npz is a zip archive
        if magic[:1] == b"\x80":  # the first byte of a pickle (protocol 2 and later)
            raise ValueError(f"bnp.checkpoint.load: {path} is a pickle; refusing to load it (unpickling can run code)")
        what = "a single .npy array" if magic == b"\x93NUMPY" else "not a .npz (zip) archive"
        raise ValueError(f"bnp.checkpoint.load: {path} is {what}; a bnp checkpoint is an .npz archive")
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise ValueError(
                f"bnp.checkpoint.load: {path} contains a pickled object; refusing to load it "
                "(unpickling can run arbitrary code)"
            ) from None
        raise ValueError(f"bnp.checkpoint.load: {path} is corrupt ({exc})") from exc
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"bnp.checkpoint.load: {path} is truncated or corrupt ({exc})") from exc
    if META_KEY not in arrays:
        return _unflatten({k: backend.asarray(v) for k, v in arrays.items()})
    meta = json.loads(str(arrays.pop(META_KEY)))
    if meta.get("format") != _FORMAT:
        raise ValueError(f"bnp.checkpoint.load: {path} has an unknown format {meta.get('format')!r}")
    return _decode(meta["tree"], arrays, path)


# -- the tree <-> (JSON, arrays) encoding -------------------------------------------
def _encode(node: Any, where: str, arrays: dict[str, numpy.ndarray]) -> Any:
    """JSON-able copy of ``node``; arrays are moved into ``arrays`` under their path."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise TypeError(f"bnp.checkpoint.save: keys must be strings, got {key!r} at '{where or '/'}'")
            if not key or "/" in key or key == META_KEY:
                raise ValueError(
                    f"bnp.checkpoint.save: invalid key {key!r} at '{where or '/'}' (empty, reserved, or contains '/')"
                )
            out[key] = _encode(value, f"{where}/{key}" if where else key, arrays)
        return {"dict": out}
    if hasattr(node, "data") and backend.is_array(getattr(node, "data", None)):
        node = node.data  # a Tensor: store its array
    if backend.is_array(node):
        arr = backend.to_numpy(node)
        if arr.dtype.hasobject:
            raise TypeError(f"bnp.checkpoint.save: '{where}' is an object array; only numeric/string arrays are stored")
        arrays[where] = arr
        return {"array": where}
    if isinstance(node, numpy.generic):
        node = node.item()  # NumPy scalar -> Python number
    if node is None or isinstance(node, (bool, int, str)):
        return {"value": node}
    if isinstance(node, float):
        return {"value": node} if math.isfinite(node) else {"float": repr(node)}  # nan/inf are not JSON
    if isinstance(node, (list, tuple)):
        return {"list": [_encode(v, f"{where}/{i}", arrays) for i, v in enumerate(node)]}
    raise TypeError(
        f"bnp.checkpoint.save: cannot store '{where}' of type {type(node).__name__} "
        "(allowed: dict, array, number, bool, str, None, list)"
    )


def _decode(node: dict[str, Any], arrays: dict[str, numpy.ndarray], path: str) -> Any:
    if "dict" in node:
        return {k: _decode(v, arrays, path) for k, v in node["dict"].items()}
    if "array" in node:
        if node["array"] not in arrays:
            raise ValueError(f"bnp.checkpoint.load: {path} is corrupt: array '{node['array']}' is missing")
        return backend.asarray(arrays[node["array"]])
    if "float" in node:
        return float(node["float"])
    if "list" in node:
        return [_decode(v, arrays, path) for v in node["list"]]
    return node["value"]


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split("/")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = value
    return out
