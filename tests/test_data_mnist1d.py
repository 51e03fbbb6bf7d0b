"""bnp.data.mnist1d: the documented shapes, determinism, the npz cache (and its errors), no network,
the caller's random state left alone, and ``bnp compare --data mnist1d``."""

import json
import random
import socket
import sys

import numpy as np
import pytest

import bnp
from bnp.__main__ import main
from bnp.data import DataFileError, mnist1d
from bnp.experiments.compare import CompareConfig, build_model, load_data

mnist1d_data = pytest.importorskip("mnist1d.data")
mnist1d_module = sys.modules["bnp.data.mnist1d"]


@pytest.fixture(scope="module")
def fresh():
    """One build without the cache (about a second)."""
    return mnist1d(cache=False)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A cache directory holding one build."""
    root = tmp_path_factory.mktemp("mnist1d-cache")
    mnist1d(root)
    return root


def _arrays(ds):
    return ds.X_train, ds.y_train, ds.X_test, ds.y_test


def test_default_set_has_the_documented_shapes(fresh):
    assert fresh.X_train.shape == (4000, 40) and fresh.X_test.shape == (1000, 40)
    assert fresh.y_train.shape == (4000,) and fresh.y_test.shape == (1000,)
    assert fresh.X_train.dtype == np.float64 and fresh.y_train.dtype == np.int64
    assert fresh.n_classes == 10 and fresh.input_shape == (40,)
    y = np.concatenate([fresh.y_train, fresh.y_test])
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))  # 5000 samples, 500 per class
    assert 0.1 * len(fresh.y_test) > np.abs(np.bincount(fresh.y_test, minlength=10) - 100).max()
    X = np.concatenate([fresh.X_train, fresh.X_test])
    assert abs(X.mean()) < 1e-12 and abs(X.std() - 1) < 1e-12  # the generator standardizes the whole set
    assert len(np.unique(X, axis=0)) == 5000  # no duplicated signals


def test_it_is_the_package_generator_with_its_defaults(fresh):
    state = np.random.get_state()
    try:
        reference = mnist1d_data.make_dataset(mnist1d_data.get_dataset_args())
    finally:
        np.random.set_state(state)
    for ours, key in zip(_arrays(fresh), ("x", "y", "x_test", "y_test"), strict=True):
        np.testing.assert_array_equal(ours, reference[key])


def test_linear_model_reaches_the_published_level(fresh):
    """MNIST-1D is hard for linear models: the paper's logistic regression gets 32 %."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    model = linear_model.LogisticRegression(max_iter=2000).fit(fresh.X_train, fresh.y_train)
    assert 0.25 < model.score(fresh.X_test, fresh.y_test) < 0.40


def test_build_is_deterministic_offline_and_keeps_the_callers_random_state(fresh, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("mnist1d() tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    np.random.seed(123)
    random.seed(456)
    expected_np, expected_py = np.random.get_state(), random.getstate()
    again = mnist1d(cache=False)
    assert random.getstate() == expected_py
    after = np.random.get_state()
    assert after[0] == expected_np[0] and after[2:] == expected_np[2:]
    np.testing.assert_array_equal(after[1], expected_np[1])
    for a, b in zip(_arrays(again), _arrays(fresh), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cached_copy_equals_a_fresh_build_and_holds_no_pickle(fresh, cache_dir, monkeypatch):
    (path,) = cache_dir.glob("mnist1d-*.npz")
    assert path.name.startswith("mnist1d-0.") or path.name.startswith("mnist1d-unknown-")
    with np.load(path, allow_pickle=False) as npz:  # every array is plain data
        assert json.loads(str(npz["args"]))["seed"] == 42
    monkeypatch.setattr(mnist1d_module, "_build", lambda generator: pytest.fail("rebuilt despite the cache"))
    cached = mnist1d(cache_dir)
    for a, b in zip(_arrays(cached), _arrays(fresh), strict=True):
        np.testing.assert_array_equal(a, b)
    image = mnist1d(cache_dir, as_image=True)
    assert image.X_train.shape == (4000, 1, 1, 40) and image.X_test.shape == (1000, 1, 1, 40)
    np.testing.assert_array_equal(image.X_train[:, 0, 0], fresh.X_train)


def test_cache_directory_defaults_to_bnp_data(tmp_path, monkeypatch, cache_dir):
    (cached,) = cache_dir.glob("mnist1d-*.npz")
    (tmp_path / cached.name).write_bytes(cached.read_bytes())
    monkeypatch.setenv("BNP_DATA", str(tmp_path))
    monkeypatch.setattr(mnist1d_module, "_build", lambda generator: pytest.fail("did not look in $BNP_DATA"))
    assert mnist1d().X_train.shape == (4000, 40)
    monkeypatch.delenv("BNP_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist1d_module.default_cache_dir() == tmp_path / "home" / ".cache" / "bnp"


def test_corrupt_or_foreign_cache_files_are_named(tmp_path, cache_dir):
    (cached,) = cache_dir.glob("mnist1d-*.npz")
    path = tmp_path / cached.name
    path.write_bytes(cached.read_bytes()[:500])
    with pytest.raises(DataFileError, match=f"{path}.*corrupt.*delete it"):
        mnist1d(tmp_path)
    with np.load(cached, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["args"] = np.array(json.dumps({"seed": 7}))
    np.savez(path, **arrays)
    with pytest.raises(DataFileError, match="expected mnist1d .* delete it"):
        mnist1d(tmp_path)
    del arrays["y_test"]
    np.savez(path, **arrays)
    with pytest.raises(DataFileError, match=r"missing arrays \['y_test'\]"):
        mnist1d(tmp_path)


def test_without_the_package_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)  # makes `import mnist1d` raise ImportError
    with pytest.raises(ImportError, match=r"pip install -e '\.\[data\]'"):
        mnist1d(cache=False)


def test_compare_runs_on_mnist1d_with_the_1d_convnet(tmp_path, cache_dir, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--quick", "--data", "mnist1d", "--data-dir", str(cache_dir), "--batch-sizes", "16",
                 "--methods", "none,bn,bnp", "--out", str(out)]) == 0
    summary = json.loads((out / "results.json").read_text())["summary"]
    expected = {(m, k) for m in ("mlp", "cnn") for k in ("none", "bn", "bnp")}
    assert {(r["model"], r["method"]) for r in summary} == expected
    assert all(r["status"] == "ok" and r["test_accuracy_mean"] > 0 for r in summary)
    config = CompareConfig(data="mnist1d", data_dir=str(cache_dir))
    X, *_ = load_data(config, image=True)
    assert X.shape == (config.n_train, 1, 1, 40)
    model = build_model("cnn", "bn", X.shape, 10, config, seed=0)
    assert isinstance(model[1], bnp.nn.BatchNorm2d) and model[0].kernel_size == (1, 5)
    assert load_data(config, image=False)[0].shape == (config.n_train, 40)
