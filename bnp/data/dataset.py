"""The Dataset record every loader in ``bnp.data`` returns: train and test arrays on the host."""

from __future__ import annotations

from dataclasses import dataclass

import numpy  # host-side data, before it reaches a backend


@dataclass
class Dataset:
    """A classification data set split into train and test parts.

    Attributes:
        X_train: (N_train, ...) float inputs: (N, features) vectors or (N, C, H, W) images.
        y_train: (N_train,) integer labels in [0, n_classes).
        X_test, y_test: the same for the test part.
        n_classes: number of classes.
        name: a short description, e.g. ``"synthetic(seed=0)"`` or ``"mnist"``.

    The arrays are host NumPy arrays; ``bnp.data.DataLoader`` moves them to
    the active backend and gives batches the default float dtype.
    """

    X_train: numpy.ndarray
    y_train: numpy.ndarray
    X_test: numpy.ndarray
    y_test: numpy.ndarray
    n_classes: int
    name: str = "dataset"

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            X, y = getattr(self, f"X_{part}"), getattr(self, f"y_{part}")
            if y.ndim != 1 or y.dtype.kind not in "iu":
                raise ValueError(
                    f"Dataset {self.name!r}: y_{part} must be a 1-d integer array, got {y.dtype} {y.shape}"
                )
            if len(X) != len(y):
                raise ValueError(f"Dataset {self.name!r}: X_{part} has {len(X)} samples but y_{part} has {len(y)}")
            if len(y) and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError(f"Dataset {self.name!r}: y_{part} must lie in [0, {self.n_classes - 1}]")
        if self.X_train.shape[1:] != self.X_test.shape[1:]:
            raise ValueError(
                f"Dataset {self.name!r}: train samples have shape {self.X_train.shape[1:]}, "
                f"test samples {self.X_test.shape[1:]}"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, e.g. (20,) or (1, 28, 28)."""
        return tuple(self.X_train.shape[1:])

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """The first ``n_train`` training and ``n_test`` test samples (None keeps all)."""
        return Dataset(self.X_train[:n_train], self.y_train[:n_train], self.X_test[:n_test], self.y_test[:n_test],
                       self.n_classes, self.name)

    def flattened(self) -> Dataset:
        """The same data with every sample as a flat vector: (N, C, H, W) -> (N, C*H*W)."""
        return Dataset(self.X_train.reshape(len(self.X_train), -1), self.y_train,
                       self.X_test.reshape(len(self.X_test), -1), self.y_test, self.n_classes, self.name)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: {len(self.X_train)} train / {len(self.X_test)} test samples "
                f"of shape {self.input_shape}, {self.n_classes} classes)")
