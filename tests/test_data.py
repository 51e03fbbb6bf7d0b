"""bnp.data: the synthetic set's promised statistics, digits, MNIST files (good and broken), DataLoader."""

import gzip
import os
import struct
import sys

import numpy as np
import pytest

import bnp
from bnp import backend
from bnp.data import DataFileError, DataLoader, Dataset, digits, mnist, read_idx, synthetic, write_idx


# -- synthetic -----------------------------------------------------------------------
def _all(ds):
    return np.concatenate([ds.X_train, ds.X_test]), np.concatenate([ds.y_train, ds.y_test])


@pytest.mark.parametrize("image_shape", [None, (6, 5)])
@pytest.mark.parametrize("mean_shift, spread", [(3.0, 100.0), (0.0, 1.0), (-2.0, 7.0)])
def test_synthetic_has_the_promised_means_and_scales(image_shape, mean_shift, spread):
    ds = synthetic(n_train=300, n_test=100, n_features=12, n_classes=3, mean_shift=mean_shift,
                   scale_spread=spread, seed=5, image_shape=image_shape)
    X, y = _all(ds)
    X = X.reshape(len(X), -1)
    std, mean = X.std(axis=0), X.mean(axis=0)
    np.testing.assert_allclose(std.max() / std.min(), spread, rtol=1e-10)
    np.testing.assert_allclose(mean, mean_shift * std, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.exp(np.log(std).mean()), 1.0, rtol=1e-10)  # geometric mean of the scales
    assert np.bincount(y).max() - np.bincount(y).min() <= 1  # balanced classes
    assert ds.n_classes == 3 and ds.y_train.dtype == np.int64


def test_synthetic_shapes_and_seeds():
    a = synthetic(n_train=50, n_test=20, n_features=7, seed=1)
    assert a.X_train.shape == (50, 7) and a.X_test.shape == (20, 7) and a.y_test.shape == (20,)
    b = synthetic(n_train=50, n_test=20, n_features=7, seed=1)
    c = synthetic(n_train=50, n_test=20, n_features=7, seed=2)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.allclose(a.X_train, c.X_train)
    img = synthetic(n_train=30, n_test=10, image_shape=(8, 8), seed=0)
    assert img.X_train.shape == (30, 1, 8, 8) and img.input_shape == (1, 8, 8)
    # in images the scale grows smoothly from the top-left to the bottom-right corner
    std = _all(img)[0].std(axis=0)[0]
    assert std[0, 0] < std[3, 3] < std[7, 7] and np.isclose(std[7, 7] / std[0, 0], 100.0)


@pytest.mark.parametrize("image_shape", [None, (8, 8)])
def test_synthetic_is_learnable_but_not_trivially_linear(image_shape):
    sklearn = pytest.importorskip("sklearn.linear_model")
    ds = synthetic(n_train=1500, n_test=500, seed=0, image_shape=image_shape).flattened()
    mu, sd = ds.X_train.mean(0), ds.X_train.std(0)
    model = sklearn.LogisticRegression(max_iter=2000).fit((ds.X_train - mu) / sd, ds.y_train)
    acc = model.score((ds.X_test - mu) / sd, ds.y_test)
    assert 0.45 < acc < 0.95, acc  # far above chance (0.25), far from solved by a linear model


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_classes=1), "n_classes must be >= 2"),
    (dict(scale_spread=0.5), "scale_spread"),
    (dict(n_train=0), "n_train >= 1"),
    (dict(n_features=0), "n_features must be >= 1"),
    (dict(image_shape=(8,)), "image_shape must be"),
])
def test_synthetic_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic(**kwargs)


def test_dataset_checks_and_helpers():
    ds = synthetic(n_train=40, n_test=10, image_shape=(4, 4))
    sub = ds.subset(5, 3)
    assert len(sub.X_train) == 5 and len(sub.y_test) == 3 and sub.n_classes == ds.n_classes
    assert ds.flattened().X_train.shape == (40, 16)
    assert "40 train / 10 test" in repr(ds)
    with pytest.raises(ValueError, match="has 3 samples but y_train has 2"):
        Dataset(np.zeros((3, 2)), np.zeros(2, int), np.zeros((1, 2)), np.zeros(1, int), 2)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        Dataset(np.zeros((2, 2)), np.array([0, 2]), np.zeros((1, 2)), np.zeros(1, int), 2)


# -- digits --------------------------------------------------------------------------
def test_digits_split():
    pytest.importorskip("sklearn")
    ds = digits(seed=3)
    assert ds.X_train.shape[1:] == (1, 8, 8) and len(ds.X_train) + len(ds.X_test) == 1797
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() == 1.0
    counts = np.bincount(ds.y_test, minlength=10) / (np.bincount(ds.y_test, minlength=10) + np.bincount(ds.y_train))
    np.testing.assert_allclose(counts, 0.25, atol=0.01)  # stratified
    np.testing.assert_array_equal(digits(seed=3).X_test, ds.X_test)
    assert not np.array_equal(digits(seed=4).y_test, ds.y_test)
    assert digits(flatten=True).X_train.shape[1] == 64


def test_digits_without_sklearn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        digits()


# -- MNIST files -----------------------------------------------------------------------
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _idx_bytes(array):
    """The IDX format written out independently of bnp: magic 0x0000 08 ndim, big-endian dims, bytes."""
    array = np.asarray(array, dtype=np.uint8)
    return struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write(path, array):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(_idx_bytes(array))


def _fake_mnist(directory, gz=True, n_train=6, n_test=4, side=5, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    arrays = [rng.integers(0, 256, (n_train, side, side)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, side, side)), rng.integers(0, 10, n_test)]
    for name, array in zip(NAMES, arrays, strict=True):
        _write(os.path.join(directory, name + (".gz" if gz else "")), array)
    return arrays


def test_idx_magic_numbers_and_writer(tmp_path):
    assert _idx_bytes(np.zeros((2, 3, 3)))[:4] == (2051).to_bytes(4, "big")
    assert _idx_bytes(np.zeros(2))[:4] == (2049).to_bytes(4, "big")
    images = np.arange(24).reshape(2, 3, 4)
    write_idx(str(tmp_path / "a"), images)
    write_idx(str(tmp_path / "b.gz"), images)
    assert (tmp_path / "a").read_bytes() == _idx_bytes(images)
    assert gzip.decompress((tmp_path / "b.gz").read_bytes()) == _idx_bytes(images)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "b.gz"), 2051), images)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files(tmp_path, gz):
    arrays = _fake_mnist(tmp_path, gz=gz)
    ds = mnist(tmp_path)
    assert ds.X_train.shape == (6, 1, 5, 5) and ds.X_train.dtype == np.float32 and ds.name == "mnist"
    np.testing.assert_allclose(ds.X_train[:, 0], arrays[0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays[3])
    assert ds.y_train.dtype == np.int64 and ds.n_classes == 10
    assert mnist(tmp_path, flatten=True).X_test.shape == (4, 25)


def test_mnist_directory_from_environment_and_subdirectories(tmp_path, monkeypatch):
    digits_arrays = _fake_mnist(tmp_path / "mnist", seed=1)
    fashion_arrays = _fake_mnist(tmp_path / "FashionMNIST" / "raw", seed=2)
    monkeypatch.setenv("BNP_DATA", str(tmp_path))
    np.testing.assert_array_equal(mnist().y_train, digits_arrays[1])
    ds = mnist(kind="fashion")
    np.testing.assert_array_equal(ds.y_train, fashion_arrays[1])
    assert ds.name == "fashion-mnist"
    monkeypatch.delenv("BNP_DATA")
    with pytest.raises(FileNotFoundError, match="BNP_DATA"):
        mnist()


def test_mnist_reads_a_keras_npz(tmp_path):
    rng = np.random.default_rng(0)
    x_train, x_test = rng.integers(0, 256, (5, 4, 4), dtype=np.uint8), rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=np.arange(5), x_test=x_test, y_test=np.arange(3))
    ds = mnist(tmp_path)
    np.testing.assert_allclose(ds.X_test[:, 0] * 255.0, x_test, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, np.arange(5))
    np.savez(tmp_path / "fashion-mnist.npz", x_train=x_train, y_train=np.arange(5))
    with pytest.raises(DataFileError, match="fashion-mnist.npz: missing arrays"):
        mnist(tmp_path, kind="fashion")


def test_mnist_nothing_found_lists_the_file_names(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        mnist(tmp_path)
    message = str(info.value)
    for name in NAMES + ["mnist.npz", str(tmp_path)]:
        assert name in message


def test_mnist_partial_set_names_the_missing_file(tmp_path):
    _fake_mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match=r"not t10k-labels-idx1-ubyte\[\.gz\]"):
        mnist(tmp_path)


def _rewrite(path, transform):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    with opener(path, "wb") as f:
        f.write(transform(raw))


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-7], "truncated: the header promises dimensions"),
    (lambda raw: raw[:10], "truncated"),
    (lambda raw: raw[:2], "shorter than the 16-byte IDX header"),
    (lambda raw: raw + b"\x00\x01", "corrupt: 2 unexpected bytes"),
    (lambda raw: b"\x00\x00\x08\x01" + raw[4:], "magic number 2049"),
])
def test_mnist_reports_a_damaged_file_by_path(tmp_path, gz, damage, message):
    _fake_mnist(tmp_path, gz=gz)
    victim = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    _rewrite(victim, damage)
    with pytest.raises(DataFileError, match=message) as info:
        mnist(tmp_path)
    assert str(victim) in str(info.value)


def test_mnist_reports_broken_gzip_and_mismatched_counts(tmp_path):
    _fake_mnist(tmp_path)
    victim = tmp_path / "t10k-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:20])
    with pytest.raises(DataFileError, match=f"{victim}: corrupt or truncated gzip"):
        mnist(tmp_path)
    _fake_mnist(tmp_path)
    _write(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5))
    with pytest.raises(DataFileError, match="has 6 images but .* has 5 labels"):
        mnist(tmp_path)
    _write(tmp_path / "train-labels-idx1-ubyte.gz", np.full(6, 12))
    with pytest.raises(DataFileError, match="label 12 out of range"):
        mnist(tmp_path)


# -- DataLoader ------------------------------------------------------------------------
def _data(n=23, classes=3):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 2)), np.arange(n) % classes


@pytest.mark.parametrize("batch_size, drop_last, expected", [(5, False, 5), (5, True, 4), (1, False, 23), (23, True, 1),
                                                             (100, False, 1)])
def test_loader_length_and_coverage(batch_size, drop_last, expected):
    X, y = _data()
    loader = DataLoader((X, y), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == expected
    assert all(len(xb) == batch_size for xb, _ in batches[:-1])
    seen = np.concatenate([yb.numpy() for _, yb in batches])
    rows = np.concatenate([xb.numpy() for xb, _ in batches])
    # each row comes with its own label, and no sample is repeated
    idx = [int(np.flatnonzero((X == r).all(axis=1))[0]) for r in rows]
    np.testing.assert_array_equal(y[idx], seen)
    assert len(set(idx)) == len(idx) == (23 if not drop_last else expected * batch_size)


def test_loader_dtypes_and_backend():
    X, y = _data()
    xb, yb = next(iter(DataLoader((X.astype(np.float32), y.astype(np.uint8)), batch_size=4)))
    assert isinstance(xb, bnp.Tensor) and xb.dtype == np.float64 and yb.dtype == np.int64
    assert backend.array_backend(xb.data) == backend.get_backend() and xb.shape == (4, 2) and yb.shape == (4,)
    bnp.set_default_dtype("float32")
    xb, _ = next(iter(DataLoader((X, y), batch_size=4)))
    assert xb.dtype == np.float32


def test_loader_shuffling_is_seeded_and_new_each_epoch():
    X, y = _data(50)

    def orders(loader, epochs):
        return [np.concatenate([xb.numpy()[:, 0] for xb, _ in loader]) for _ in range(epochs)]

    a, b = orders(DataLoader((X, y), batch_size=8, seed=7), 3), orders(DataLoader((X, y), batch_size=8, seed=7), 3)
    c = orders(DataLoader((X, y), batch_size=8, seed=8), 1)
    for ea, eb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2]) and not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(np.sort(a[0]), np.sort(X[:, 0]))
    resumed = DataLoader((X, y), batch_size=8, seed=7)
    resumed.set_epoch(2)
    np.testing.assert_array_equal(orders(resumed, 1)[0], a[2])
    fixed = orders(DataLoader((X, y), batch_size=8, shuffle=False), 2)
    np.testing.assert_array_equal(fixed[0], X[:, 0])
    np.testing.assert_array_equal(fixed[1], X[:, 0])


def test_class_sorted_batches_hold_mostly_one_class():
    X, y = _data(90, classes=3)
    loader = DataLoader((X, y), batch_size=10, seed=1, class_sorted=True)
    first = [yb.numpy() for _, yb in loader]
    assert all(len(np.unique(b)) == 1 for b in first)  # 30 per class: every batch is pure
    assert [int(b[0]) for b in first] == [0] * 3 + [1] * 3 + [2] * 3
    second = np.concatenate([xb.numpy()[:, 0] for xb, _ in loader])
    assert not np.array_equal(np.concatenate([X[y == c, 0] for c in range(3)]), second)  # shuffled within classes
    ordinary = [yb.numpy() for _, yb in DataLoader((X, y), batch_size=10, seed=1)]
    assert sum(len(np.unique(b)) == 1 for b in ordinary) <= 1


@pytest.mark.parametrize("data, kwargs, error, message", [
    ((np.zeros((3, 2)), np.zeros(3, int)), dict(batch_size=0), ValueError, "batch_size must be an integer >= 1"),
    ((np.zeros((3, 2)), np.zeros(3, int)), dict(batch_size=2.5), ValueError, "batch_size"),
    ((np.zeros((3, 2)), np.zeros(2, int)), {}, ValueError, "3 inputs but 2 labels"),
    ((np.zeros((3, 2)), np.zeros(3)), {}, ValueError, "labels must be a 1-d integer array"),
    ((np.zeros(3), np.zeros(3, int)), {}, ValueError, "inputs must have shape"),
    ((np.zeros((3, 2)), np.zeros(3, int)), dict(batch_size=4, drop_last=True), ValueError, "gives no batch"),
    (np.zeros((3, 2)), {}, TypeError, "pair"),
])
def test_loader_rejects_bad_input(data, kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(data, **kwargs)
