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

The reader refuses, naming the file, anything it does not understand: a
member that is not a ``.npy`` array, metadata that is not the JSON it writes,
another format or an unknown format version, a tree node of an unknown kind,
an array the tree does not mention or a mention without its array.

Writing: the archive is written to a file with no name (Linux ``O_TMPFILE``)
that is given one only when complete, so a save killed mid-write (even by
SIGKILL) leaves nothing behind; elsewhere a hidden ``.tmp-*.npz`` in the same
directory is used and removed on every error Python sees (a SIGKILL can still
leave it). The new file gets the permissions the umask gives (``0o666 & ~umask``,
as ``open()`` would), not a temporary file's private ``0o600``.
"""

from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import secrets
import zipfile
from typing import Any

import numpy  # host-side file format only

from . import backend

META_KEY = "__bnp__"
_FORMAT = "bnp.checkpoint"
_VERSION = 1


def save(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` (exactly that name) atomically.

    The archive is written to a temporary file in the same directory (unnamed
    where Linux allows, see the module doc) and then renamed over ``path``, so
    a crash mid-write never leaves a half-written checkpoint under the real
    name. The file's permissions are ``0o666 & ~umask``.

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
    write_npz_atomically({META_KEY: numpy.array(meta), **arrays}, path)


def write_npz_atomically(members: dict[str, numpy.ndarray], path: str | os.PathLike) -> None:
    """``numpy.savez`` of ``members`` to a temporary file renamed over ``path`` (module doc): the one
    atomic ``.npz`` writer of bnp (checkpoints, the MNIST-1D cache)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    global _unnamed_works
    if _unnamed_works:
        written = _write_unnamed(members, directory)
        if written is not None:
            _replace(written, path)
            return
        _unnamed_works = False  # this system cannot name such files: use named ones from now on
    fd, tmp = _open_named(directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _savez(f, members)
    except BaseException:
        os.remove(tmp)
        raise
    _replace(tmp, path)


def _savez(f: Any, members: dict[str, numpy.ndarray]) -> None:
    numpy.savez(f, **members)
    f.flush()
    os.fsync(f.fileno())


def _replace(tmp: str, path: str) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


_FLAGS = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
_AT_FDCWD, _AT_SYMLINK_FOLLOW = -100, 0x400  # linkat(2) on Linux
_unnamed_works = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def _write_unnamed(members: dict[str, numpy.ndarray], directory: str) -> str | None:
    """Write into an O_TMPFILE file (no name: a killed process leaves nothing) and give it a hidden
    name once complete; None if this filesystem or libc cannot (nothing is left behind then either)."""
    try:
        fd = os.open(directory, os.O_TMPFILE | _FLAGS, 0o666)  # mode 0o666: the umask decides
    except OSError:
        return None
    with os.fdopen(fd, "wb") as f:
        _savez(f, members)
        try:
            linkat = ctypes.CDLL(None, use_errno=True).linkat  # os.link() cannot name an O_TMPFILE file
        except (OSError, AttributeError):
            return None
        source = f"/proc/self/fd/{f.fileno()}".encode()
        while True:
            name = os.path.join(directory, f".tmp-{secrets.token_hex(8)}.npz")
            if linkat(_AT_FDCWD, source, _AT_FDCWD, os.fsencode(name), _AT_SYMLINK_FOLLOW) == 0:
                return name
            if ctypes.get_errno() != errno.EEXIST:
                return None


def _open_named(directory: str) -> tuple[int, str]:
    """A new hidden file in ``directory``, created with mode 0o666 (so the umask decides)."""
    while True:
        name = os.path.join(directory, f".tmp-{secrets.token_hex(8)}.npz")
        try:
            return os.open(name, os.O_CREAT | os.O_EXCL | _FLAGS, 0o666), name
        except FileExistsError:
            continue


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; arrays come back on the active backend.

    A plain ``.npz`` without the ``__bnp__`` entry also loads: its "/"-joined
    names are split back into nested dicts.

    Raises:
        ValueError: the file is or contains a pickle, is not a readable NumPy
            archive, or holds anything this reader does not understand (see
            the module doc); the message names the file.
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
    _check_members(path)
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
    meta = _read_meta(arrays.pop(META_KEY), path)
    used: set[str] = set()
    tree = _decode(meta["tree"], arrays, path, used)
    unused = sorted(set(arrays) - used)
    if unused:
        raise ValueError(f"bnp.checkpoint.load: {path} holds arrays its metadata does not mention ({unused[:5]}); "
                         "not a layout bnp.checkpoint writes")
    return tree


def _check_members(path: str) -> None:
    """Every member of the archive is a ``.npy`` array, each name once."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"bnp.checkpoint.load: {path} is truncated or corrupt ({exc})") from exc
    odd = [n for n in names if not n.endswith(".npy")]
    if odd:
        raise ValueError(f"bnp.checkpoint.load: {path} has members that are not .npy arrays ({odd[:5]}); "
                         "not a layout bnp.checkpoint writes")
    if len(set(names)) != len(names):
        raise ValueError(f"bnp.checkpoint.load: {path} has members stored twice; not a layout bnp.checkpoint writes")


def _read_meta(raw: numpy.ndarray, path: str) -> dict[str, Any]:
    """The ``__bnp__`` entry: JSON of {"format", "version", "tree"} with this reader's format and version."""
    if raw.shape != () or raw.dtype.kind != "U":
        raise ValueError(f"bnp.checkpoint.load: {path} has malformed metadata ('{META_KEY}' is a {raw.dtype} array "
                         f"of shape {raw.shape}, expected one string)")
    try:
        meta = json.loads(str(raw))
    except ValueError as exc:
        raise ValueError(f"bnp.checkpoint.load: {path} has malformed metadata (not JSON: {exc})") from None
    if not isinstance(meta, dict) or not {"format", "version", "tree"} <= set(meta):
        raise ValueError(f"bnp.checkpoint.load: {path} has malformed metadata (expected an object with 'format', "
                         f"'version' and 'tree', got {str(meta)[:80]!r})")
    if meta["format"] != _FORMAT:
        raise ValueError(f"bnp.checkpoint.load: {path} has an unknown format {meta['format']!r}")
    if meta["version"] != _VERSION or isinstance(meta["version"], bool):
        raise ValueError(f"bnp.checkpoint.load: {path} has format version {meta['version']!r}; this reader "
                         f"understands version {_VERSION} only")
    return meta


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


def _decode(node: Any, arrays: dict[str, numpy.ndarray], path: str, used: set[str]) -> Any:
    """The tree back from its JSON; any node that :func:`_encode` does not write is refused."""
    kind = next(iter(node)) if isinstance(node, dict) and len(node) == 1 else None
    value = node[kind] if kind is not None else None
    if kind == "dict" and isinstance(value, dict):
        return {k: _decode(v, arrays, path, used) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_decode(v, arrays, path, used) for v in value]
    if kind == "array" and isinstance(value, str):
        if value not in arrays:
            raise ValueError(f"bnp.checkpoint.load: {path} is corrupt: array '{value}' is missing")
        if value in used:
            raise ValueError(f"bnp.checkpoint.load: {path} is corrupt: array '{value}' is mentioned twice")
        used.add(value)
        return backend.asarray(arrays[value])
    if kind == "float" and value in ("nan", "inf", "-inf"):
        return float(value)
    if kind == "value" and (value is None or isinstance(value, (bool, int, float, str))):
        return value
    raise ValueError(f"bnp.checkpoint.load: {path} has malformed metadata: a tree node {str(node)[:80]!r} of a "
                     "kind this reader does not know")


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split("/")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = value
    return out
