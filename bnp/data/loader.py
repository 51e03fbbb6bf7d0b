"""Mini-batches of (inputs, labels) as bnp Tensors, in a seeded order.

The whole data set is moved to the active backend once (on a GPU: one copy,
not one per batch); each batch is then gathered there by an index array.
The order of epoch ``e`` is drawn from a generator seeded with ``(seed, e)``:
every epoch has a new order, and the same seed repeats the whole sequence,
on NumPy and CuPy alike (the permutation is drawn on the host).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy  # host-side index bookkeeping

from .. import backend
from ..autograd import Tensor


class DataLoader:
    """Iterate over ``(x, y)`` batches of a data set given as arrays.

    Args:
        data: a pair ``(X, y)``: X (N, ...) float inputs, y (N,) integer labels
            (NumPy or backend arrays; e.g. ``(ds.X_train, ds.y_train)``).
        batch_size: samples per batch, >= 1.
        shuffle: a new random order every epoch (otherwise the stored order).
        seed: seed of the shuffling.
        drop_last: skip the last batch when it is smaller than ``batch_size``.
        class_sorted: visit the samples sorted by label (shuffled within each
            class when ``shuffle``), so that most batches hold a single class:
            the non-representative batches under which BN's batch statistics fail.

    Yields:
        x: Tensor (B, ...) with the default float dtype; y: Tensor (B,) int64.
    """

    def __init__(
        self,
        data: tuple[Any, Any],
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        class_sorted: bool = False,
    ):
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise TypeError(f"DataLoader: data must be a pair (X, y) of arrays, got {type(data).__name__}")
        X, y = data
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, numpy.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an integer >= 1, got {batch_size!r}")
        y_host = backend.to_numpy(y)
        if y_host.ndim != 1 or y_host.dtype.kind not in "iu":
            raise ValueError(f"DataLoader: labels must be a 1-d integer array (N,), got {y_host.dtype} {y_host.shape}")
        if getattr(X, "ndim", 0) < 2:
            shape = getattr(X, "shape", type(X).__name__)
            raise ValueError(f"DataLoader: inputs must have shape (N, ...) with a batch axis, got {shape}")
        if len(X) != len(y_host):
            raise ValueError(f"DataLoader: {len(X)} inputs but {len(y_host)} labels")
        if len(X) == 0:
            raise ValueError("DataLoader: the data set is empty")
        if drop_last and len(X) < batch_size:
            raise ValueError(
                f"DataLoader: drop_last=True with batch_size {batch_size} > {len(X)} samples gives no batch"
            )
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, seed
        self.drop_last, self.class_sorted = drop_last, class_sorted
        self.epoch = 0
        self._labels = y_host  # host copy: the class-sorted order is computed on the host
        self._X = backend.asarray(X)  # no copy for NumPy on NumPy; one transfer for CuPy
        self._y = backend.asarray(y_host.astype(numpy.int64))

    def __len__(self) -> int:
        """The number of batches per epoch."""
        n = len(self._labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self._labels)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch`` (e.g. when resuming)."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> numpy.ndarray:
        """The sample indices visited in ``epoch`` (host int64 array of length N)."""
        n = len(self._labels)
        rng = numpy.random.default_rng([self.seed, epoch])
        if self.class_sorted:
            groups = [numpy.flatnonzero(self._labels == c) for c in numpy.unique(self._labels)]
            return numpy.concatenate([rng.permutation(g) if self.shuffle else g for g in groups])
        return rng.permutation(n) if self.shuffle else numpy.arange(n)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        index = backend.asarray(self.order(self.epoch))
        self.epoch += 1
        dtype = backend.get_default_dtype()  # read now: set_default_dtype may change between epochs
        stop = len(self) * self.batch_size
        for start in range(0, stop, self.batch_size):
            batch = index[start : start + self.batch_size]
            yield Tensor(self._X[batch].astype(dtype, copy=False)), Tensor(self._y[batch])

    def __repr__(self) -> str:
        return (f"DataLoader({self.num_samples} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"class_sorted={self.class_sorted}, {len(self)} batches)")
