"""bnp.checkpoint: npz round trips, optimizer continuation, pickle refusal, atomic writes."""

import os
import pickle

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp import backend, checkpoint
from bnp.optim import SGD, Adam


def test_round_trip_of_a_nested_state(tmp_path):
    state = {
        "model": {"0.weight": np.arange(6.0).reshape(2, 3), "0.bias": backend.asarray(np.array([1.5, -2.0]))},
        "step": 10, "lr": 0.1, "name": "run-1", "flag": True, "nothing": None, "bad": float("nan"),
        "betas": [0.9, 0.999], "empty": {}, "counts": np.array([1, 2], dtype=np.int32), "scalar": np.float64(2.5),
    }
    path = tmp_path / "ck.npz"
    checkpoint.save(state, path)
    got = checkpoint.load(path)
    assert list(got) == list(state)
    assert got["step"] == 10 and isinstance(got["step"], int)
    assert got["lr"] == 0.1 and got["name"] == "run-1" and got["flag"] is True and got["nothing"] is None
    assert np.isnan(got["bad"]) and got["betas"] == [0.9, 0.999] and got["empty"] == {}
    assert got["scalar"] == 2.5 and isinstance(got["scalar"], float)
    for key in ("0.weight", "0.bias"):
        assert backend.is_array(got["model"][key]) and backend.array_backend(got["model"][key]) == backend.get_backend()
        np.testing.assert_array_equal(backend.to_numpy(got["model"][key]), backend.to_numpy(state["model"][key]))
    assert got["counts"].dtype == np.int32
    # an ordinary NumPy archive: arrays under "/"-joined names
    with np.load(path, allow_pickle=False) as npz:
        assert {"model/0.weight", "model/0.bias", "counts"} <= set(npz.files)


def test_plain_npz_is_unflattened(tmp_path):
    np.savez(tmp_path / "plain.npz", **{"a/b": np.ones(2), "c": np.zeros(1)})
    got = checkpoint.load(tmp_path / "plain.npz")
    assert set(got) == {"a", "c"} and set(got["a"]) == {"b"}
    np.testing.assert_array_equal(backend.to_numpy(got["a"]["b"]), np.ones(2))


def test_optimizer_continues_identically_after_a_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    for make in (lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True), lambda p: Adam(p, lr=0.05)):
        def run(params, opt, steps):
            for _ in range(steps):
                opt.zero_grad()
                F.cross_entropy(F.linear(bnp.tensor(x), params[0], params[1]), bnp.tensor(y)).backward()
                opt.step()

        init = [rng.standard_normal((2, 3)), rng.standard_normal(2)]
        ref = [bnp.tensor(a, requires_grad=True) for a in init]
        ref_opt = make(ref)
        run(ref, ref_opt, 3)
        checkpoint.save({"params": [p.data for p in ref], "optimizer": ref_opt.state_dict()}, tmp_path / "o.npz")
        run(ref, ref_opt, 4)
        state = checkpoint.load(tmp_path / "o.npz")
        params = [bnp.tensor(a, requires_grad=True) for a in state["params"]]
        opt = make(params)
        opt.load_state_dict(state["optimizer"])
        run(params, opt, 4)
        for a, b in zip(params, ref, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_object_arrays_are_refused_on_save(tmp_path):
    with pytest.raises(TypeError, match="'weights/w' is an object array"):
        checkpoint.save({"weights": {"w": np.array([{"a": 1}], dtype=object)}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="cannot store 'f' of type function"):
        checkpoint.save({"f": lambda: 1}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be strings"):
        checkpoint.save({1: np.ones(1)}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="contains '/'"):
        checkpoint.save({"a/b": np.ones(1)}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []  # nothing written, no temporary left behind


def test_pickles_are_refused_on_load(tmp_path):
    npz = tmp_path / "objects.npz"
    np.savez(npz, a=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match=f"{npz}.*pickled object"):
        checkpoint.load(npz)
    raw = tmp_path / "state.pkl"
    raw.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match=f"{raw} is a pickle"):
        checkpoint.load(raw)


def test_corrupt_files_are_reported_by_path(tmp_path):
    good = tmp_path / "good.npz"
    checkpoint.save({"a": np.arange(1000.0)}, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match=f"{truncated} is truncated or corrupt"):
        checkpoint.load(truncated)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=f"{text} is not a .npz"):
        checkpoint.load(text)
    np.save(tmp_path / "one.npy", np.ones(2))
    with pytest.raises(ValueError, match="single .npy array"):
        checkpoint.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "missing.npz")


def test_atomic_write_leaves_no_temporary_and_replaces(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    checkpoint.save({"v": np.ones(3)}, path)
    checkpoint.save({"v": np.zeros(3)}, path)
    assert os.listdir(tmp_path) == ["ck.npz"]
    np.testing.assert_array_equal(backend.to_numpy(checkpoint.load(path)["v"]), np.zeros(3))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save({"v": np.full(3, 7.0)}, path)
    assert os.listdir(tmp_path) == ["ck.npz"]  # the old checkpoint survives intact, no temp file
    monkeypatch.undo()
    np.testing.assert_array_equal(backend.to_numpy(checkpoint.load(path)["v"]), np.zeros(3))


def test_model_and_optimizer_round_trip_through_a_file(tmp_path):
    """Save mid-training, train on; a fresh model and optimizer loaded from the file continue identically."""
    from bnp.data import DataLoader, synthetic
    from bnp.nn import models
    from bnp.train import fit

    ds = synthetic(n_train=64, n_test=16, seed=0)

    def setup(seed):
        model = models.mlp([20, 16, 4], norm="bn", rng=seed)
        return model, Adam(model.parameters(), lr=1e-2), DataLoader((ds.X_train, ds.y_train), batch_size=16, seed=4)

    model, opt, loader = setup(0)
    fit(model, loader, opt, epochs=2, progress=False)
    x = bnp.tensor(ds.X_test)
    predictions = model.eval()(x).numpy()
    path = tmp_path / "run.npz"
    checkpoint.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": loader.epoch}, path)
    later = fit(model, loader, opt, epochs=2, progress=False).step_losses

    state = checkpoint.load(path)
    fresh, fresh_opt, fresh_loader = setup(1)  # different initial weights: everything must come from the file
    fresh.load_state_dict(state["model"])
    fresh_opt.load_state_dict(state["optimizer"])
    fresh_loader.set_epoch(state["epoch"])
    np.testing.assert_array_equal(fresh.eval()(x).numpy(), predictions)  # BN running statistics included
    resumed = fit(fresh, fresh_loader, fresh_opt, epochs=2, progress=False).step_losses
    np.testing.assert_array_equal(resumed, later)
    for a, b in zip(fresh.parameters(), model.parameters(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
