"""scikit-learn's bundled 8x8 handwritten digits (1797 images, no download)."""

from __future__ import annotations

import numpy  # host-side data

from .dataset import Dataset


def digits(seed: int = 0, test_fraction: float = 0.25, flatten: bool = False) -> Dataset:
    """The UCI digits shipped with scikit-learn, split into train and test by ``seed``.

    The split is stratified: each class gives ``test_fraction`` of its samples
    (rounded) to the test part. Pixels (0..16) are scaled to [0, 1].

    Args:
        seed: seed of the split.
        test_fraction: share of each class held out, in (0, 1).
        flatten: give (N, 64) vectors instead of (N, 1, 8, 8) images.

    Returns:
        a Dataset with float64 X and int64 y, 10 classes (about 1347 train / 450 test).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "digits() needs scikit-learn, which is not installed: `pip install scikit-learn` "
            "(or `pip install 'bnp[data]'`)"
        ) from exc
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"digits: test_fraction must lie in (0, 1), got {test_fraction}")
    bunch = load_digits()
    X = bunch.images.astype(numpy.float64) / 16.0
    y = bunch.target.astype(numpy.int64)
    rng = numpy.random.default_rng(seed)
    test = numpy.zeros(len(y), dtype=bool)
    for c in range(10):
        members = rng.permutation(numpy.flatnonzero(y == c))
        test[members[: int(round(test_fraction * len(members)))]] = True
    X = X.reshape(len(X), -1) if flatten else X[:, None, :, :]
    train_idx, test_idx = rng.permutation(numpy.flatnonzero(~test)), rng.permutation(numpy.flatnonzero(test))
    return Dataset(X[train_idx], y[train_idx], X[test_idx], y[test_idx], 10, f"digits(seed={seed})")
