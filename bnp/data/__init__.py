"""Data sets and mini-batches.

    ds = bnp.data.synthetic(seed=0)                      # built in: off-centre, badly scaled features
    ds = bnp.data.digits()                               # scikit-learn's 8x8 digits
    ds = bnp.data.mnist("~/data", kind="fashion")        # MNIST / Fashion-MNIST files on disk
    ds = bnp.data.mnist1d()                              # MNIST-1D, generated locally and cached
    loader = bnp.data.DataLoader((ds.X_train, ds.y_train), batch_size=32, seed=0)

Data sets are host NumPy arrays in a :class:`Dataset`; the loader moves them
to the active backend and yields ``(x, y)`` Tensors.
"""

from .dataset import Dataset
from .digits import digits
from .idx import DataFileError, read_idx, write_idx
from .loader import DataLoader
from .mnist import mnist
from .mnist1d import mnist1d
from .synthetic import synthetic

__all__ = ["Dataset", "DataLoader", "synthetic", "digits", "mnist", "mnist1d", "DataFileError", "read_idx", "write_idx"]
