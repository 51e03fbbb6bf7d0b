"""MNIST-1D (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024), built locally.

The data set is procedural: ten 1-D templates ("digits") are padded, scaled,
translated, sheared, given correlated and white noise, and resampled to
length 40. ``mnist1d()`` runs the generator of the ``mnist1d`` package
(``mnist1d.data.make_dataset``) with that package's default arguments
(``get_dataset_args()``: 5000 samples, 80 % for training, seed 42) and never
its download path (a pickle fetched over the network). The default set has
4000 training and 1000 test signals of length 40 and 10 classes; the whole
set is standardized to mean 0 and standard deviation 1 by the generator.

Cache: the build takes about a second, so the result is kept as an ``.npz``
file (plain arrays, read with ``allow_pickle=False``) in ``cache_dir``, else
in ``$BNP_DATA``, else in ``~/.cache/bnp``. The file name carries the package
version and a hash of the generator arguments, so another version or other
defaults never read a stale file; the arguments are stored in the file too and
checked on reading.

Side effects avoided: the generator seeds NumPy's and Python's *global*
random generators (``np.random.seed(42)``); ``mnist1d()`` saves both states
and restores them afterwards, so building the data set leaves the caller's
random streams where they were.

The ``mnist1d`` package (``pip install -e '.[data]'``) imports ``requests`` at
import time (its download helper lives in the same module), but building
calls nothing from it: no network connection is made.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy  # host-side data

from ..checkpoint import write_npz_atomically
from .dataset import Dataset
from .idx import DataFileError
from .npz import read_npz

N_CLASSES = 10
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def mnist1d(cache_dir: str | os.PathLike | None = None, as_image: bool = False, cache: bool = True) -> Dataset:
    """The default MNIST-1D data set, generated locally and cached (see the module docstring).

    Args:
        cache_dir: directory of the cached ``.npz`` (default: ``$BNP_DATA``, else ``~/.cache/bnp``).
        as_image: give each signal as a 1 x 40 image, X of shape (N, 1, 1, 40), the
            layout of bnp's convolutions; otherwise (N, 40) vectors.
        cache: read and write the cache; ``False`` always builds afresh and writes nothing.

    Returns:
        a Dataset with float64 X and int64 y: X_train (4000, 40), X_test (1000, 40), 10 classes.

    Raises:
        ImportError: the ``mnist1d`` package is not installed.
        DataFileError (a ValueError): the cached file is corrupt or holds another
            build; the message names the file (delete it to rebuild).
    """
    generator = _generator()
    args = generator.get_dataset_args(as_dict=True)
    args.pop("url", None)  # where the pickle would be downloaded from: not an argument of the build
    version = _package_version()
    path = _cache_path(cache_dir, version, args) if cache else None
    if path is not None and path.is_file():
        arrays = _read(path, version, args)
    else:
        arrays = _build(generator)
        if path is not None:
            _write(path, arrays, version, args)
    X_train, y_train, X_test, y_test = (arrays[k] for k in ARRAYS)
    if as_image:
        X_train, X_test = X_train[:, None, None, :], X_test[:, None, None, :]
    return Dataset(X_train, y_train, X_test, y_test, N_CLASSES, "mnist1d")


def default_cache_dir() -> Path:
    """``$BNP_DATA`` if set, else ``~/.cache/bnp``."""
    root = os.environ.get("BNP_DATA")
    return Path(root) if root else Path.home() / ".cache" / "bnp"


def _generator() -> Any:
    try:
        from mnist1d import data
    except ImportError as exc:
        raise ImportError(
            "mnist1d() needs the mnist1d package (its procedural generator builds the data set), which could not "
            f"be imported ({exc}): install it with `pip install -e '.[data]'` (or `pip install mnist1d`)"
        ) from exc
    return data


def _package_version() -> str:
    try:
        return version("mnist1d")
    except PackageNotFoundError:  # importable but not installed as a distribution (e.g. a source checkout)
        return "unknown"


def _cache_path(cache_dir: str | os.PathLike | None, version: str, args: dict) -> Path:
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir().expanduser()
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]
    return root / f"mnist1d-{version}-{digest}.npz"


def _build(generator: Any) -> dict[str, numpy.ndarray]:
    """Run the package's generator with its defaults, leaving the global random states as they were."""
    numpy_state, python_state = numpy.random.get_state(), random.getstate()
    try:
        built = generator.make_dataset(generator.get_dataset_args())
    finally:
        numpy.random.set_state(numpy_state)
        random.setstate(python_state)
    arrays = {
        "x_train": numpy.ascontiguousarray(built["x"], dtype=numpy.float64),
        "y_train": numpy.asarray(built["y"]).astype(numpy.int64),
        "x_test": numpy.ascontiguousarray(built["x_test"], dtype=numpy.float64),
        "y_test": numpy.asarray(built["y_test"]).astype(numpy.int64),
    }
    _check(arrays, "mnist1d generator")
    return arrays


def _check(arrays: dict[str, numpy.ndarray], where: Any) -> None:
    for part in ("train", "test"):
        X, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if X.ndim != 2 or X.dtype != numpy.float64:
            raise DataFileError(f"{where}: x_{part} must be float64 signals (N, L), got {X.dtype} {X.shape}")
        if y.shape != (len(X),) or y.dtype != numpy.int64:
            raise DataFileError(f"{where}: y_{part} must hold {len(X)} int64 labels, got {y.dtype} {y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= N_CLASSES):
            raise DataFileError(f"{where}: y_{part} has labels outside 0..{N_CLASSES - 1}")
    if arrays["x_train"].shape[1] != arrays["x_test"].shape[1]:
        raise DataFileError(f"{where}: train signals have length {arrays['x_train'].shape[1]}, "
                            f"test signals {arrays['x_test'].shape[1]}")


def _read(path: Path, version: str, args: dict) -> dict[str, numpy.ndarray]:
    hint = "delete it to rebuild the data set"
    npz = read_npz(path, ARRAYS + ("args", "version"), hint)
    arrays = {k: npz[k] for k in ARRAYS}
    try:
        stored_args, stored_version = json.loads(str(npz["args"])), str(npz["version"])
    except ValueError as exc:
        raise DataFileError(f"{path}: its build arguments are not JSON ({exc}); {hint}") from exc
    if stored_args != args or stored_version != version:
        raise DataFileError(
            f"{path}: holds a build by mnist1d {stored_version} with arguments {stored_args}, expected mnist1d "
            f"{version} with {args}; {hint}"
        )
    _check(arrays, path)
    return arrays


def _write(path: Path, arrays: dict[str, numpy.ndarray], version: str, args: dict) -> None:
    """Write atomically (checkpoint.write_npz_atomically): a crash never leaves half a file under the name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_npz_atomically({**arrays, "args": numpy.array(json.dumps(args, sort_keys=True)),
                          "version": numpy.array(version)}, path)
