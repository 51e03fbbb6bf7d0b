"""MNIST and Fashion-MNIST from files on disk (nothing is downloaded).

Where the files are looked for: the directory ``data_dir``, or else the one
in the environment variable ``BNP_DATA``; in it, first a sub-directory named
for the kind (``mnist/``, ``MNIST/raw/`` as torchvision leaves it;
``fashion/``, ``fashion-mnist/``, ``FashionMNIST/raw/``), then the directory
itself. Two layouts are understood:

* the four standard IDX files (each raw or ``.gz``)::

      train-images-idx3-ubyte  train-labels-idx1-ubyte
      t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte

* a Keras-style ``mnist.npz`` (``fashion-mnist.npz`` for Fashion) with arrays
  ``x_train, y_train, x_test, y_test``, read without pickle.

Both data sets use the same file names, so keep them in separate directories.
"""

from __future__ import annotations

import os

import numpy  # host-side file parsing

from .dataset import Dataset
from .idx import IMAGES_MAGIC, LABELS_MAGIC, DataFileError, read_idx
from .npz import read_npz

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
KINDS = {
    "mnist": dict(subdirs=("mnist", os.path.join("MNIST", "raw")), npz=("mnist.npz",), name="mnist"),
    "fashion": dict(subdirs=("fashion", "fashion-mnist", "fashion_mnist", os.path.join("FashionMNIST", "raw")),
                    npz=("fashion-mnist.npz", "fashion_mnist.npz", "fashion.npz"), name="fashion-mnist"),
}
N_CLASSES = 10


def mnist(data_dir: str | os.PathLike | None = None, kind: str = "mnist", flatten: bool = False) -> Dataset:
    """Load MNIST (``kind="mnist"``) or Fashion-MNIST (``kind="fashion"``) from disk.

    Args:
        data_dir: the directory holding the files (default: ``$BNP_DATA``).
        kind: ``"mnist"`` or ``"fashion"``.
        flatten: give (N, 784) vectors instead of (N, 1, 28, 28) images.

    Returns:
        a Dataset with float32 pixels scaled to [0, 1] and int64 labels
        (60000 train and 10000 test samples for the real files).

    Raises:
        FileNotFoundError: no directory given, or none of the files found (the
            message lists the directories and file names looked for).
        DataFileError (a ValueError): a file is truncated or corrupt; the message names it.
    """
    if kind not in KINDS:
        raise ValueError(f"mnist: kind must be one of {sorted(KINDS)}, got {kind!r}")
    spec = KINDS[kind]
    root = data_dir if data_dir is not None else os.environ.get("BNP_DATA")
    if not root:
        raise FileNotFoundError(
            f"mnist: no data directory: pass data_dir=... or set the BNP_DATA environment variable to the "
            f"directory holding {_wanted(spec)}"
        )
    root = os.fspath(root)
    directories = [os.path.join(root, sub) for sub in spec["subdirs"]] + [root]
    for directory in directories:
        found = {key: _find(directory, name) for key, name in IDX_FILES.items()}
        if all(found.values()):
            arrays = _from_idx(found)
            break
        if any(found.values()):
            missing = [IDX_FILES[k] + "[.gz]" for k, v in found.items() if v is None]
            raise FileNotFoundError(f"mnist: {directory} holds some of the IDX files but not {', '.join(missing)}")
        npz = next((p for p in (os.path.join(directory, f) for f in spec["npz"]) if os.path.isfile(p)), None)
        if npz:
            arrays = _from_npz(npz)
            break
    else:
        raise FileNotFoundError(
            f"mnist: no {spec['name']} files found. Looked in {', '.join(directories)} for {_wanted(spec)}"
        )
    X_train, y_train, X_test, y_test = arrays
    if X_train.shape[1:] != X_test.shape[1:]:
        raise DataFileError(f"mnist: train images are {X_train.shape[1:]}, test images {X_test.shape[1:]}")

    def pixels(images: numpy.ndarray) -> numpy.ndarray:
        x = images.astype(numpy.float32) / 255.0  # float32: 60000 images in float64 would take 376 MB
        return x.reshape(len(x), -1) if flatten else x[:, None, :, :]

    return Dataset(pixels(X_train), y_train.astype(numpy.int64), pixels(X_test), y_test.astype(numpy.int64),
                   N_CLASSES, spec["name"])


def _wanted(spec: dict) -> str:
    return ", ".join(f"{name}[.gz]" for name in IDX_FILES.values()) + " or " + " / ".join(spec["npz"])


def _find(directory: str, name: str) -> str | None:
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _from_idx(paths: dict[str, str]) -> tuple[numpy.ndarray, ...]:
    out = []
    for part in ("train", "test"):
        images = read_idx(paths[f"{part}_images"], IMAGES_MAGIC)
        labels = read_idx(paths[f"{part}_labels"], LABELS_MAGIC)
        if len(images) != len(labels):
            raise DataFileError(
                f"mnist: {paths[f'{part}_images']} has {len(images)} images but "
                f"{paths[f'{part}_labels']} has {len(labels)} labels"
            )
        _check_labels(labels, paths[f"{part}_labels"])
        out += [images, labels]
    return tuple(out)


def _from_npz(path: str) -> tuple[numpy.ndarray, ...]:
    npz = read_npz(path, ("x_train", "y_train", "x_test", "y_test"))
    arrays = tuple(npz[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    X_train, y_train, X_test, y_test = arrays
    for X, y, part in ((X_train, y_train, "train"), (X_test, y_test, "test")):
        if X.ndim != 3 or X.dtype != numpy.uint8:
            raise DataFileError(f"{path}: x_{part} must be uint8 images (N, H, W), got {X.dtype} {X.shape}")
        if y.ndim != 1 or len(y) != len(X) or y.dtype.kind not in "iu":
            raise DataFileError(f"{path}: y_{part} must hold {len(X)} integer labels, got {y.dtype} {y.shape}")
        _check_labels(y, path)
    return arrays


def _check_labels(labels: numpy.ndarray, path: str) -> None:
    if len(labels) and int(labels.max()) >= N_CLASSES:
        raise DataFileError(f"{path}: label {int(labels.max())} out of range; expected classes 0..{N_CLASSES - 1}")
