"""Constructors and functions check their arguments: tensors, layer sizes, optimizer gradients, checkpoints."""

import json
import os
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bnp
import bnp.functional as F
from bnp import backend, checkpoint
from bnp.nn import BatchNorm1d, BatchNorm2d, Conv2d, FullNorm1d, FullNorm2d, Linear


# -- tensors -------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [np.arange(3), np.array([True, False]), [1, 2], 3, np.int32(4)])
def test_integer_and_bool_data_cannot_require_grad(data):
    with pytest.raises(TypeError, match="only floating tensors can require gradients"):
        bnp.Tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="only floating tensors can require gradients"):
        bnp.tensor(data, requires_grad=True)
    t = bnp.Tensor(data)
    with pytest.raises(TypeError, match=r"requires_grad_\(\): only floating"):
        t.requires_grad_()
    assert not t.requires_grad
    t.requires_grad_(False)  # switching off is always fine


@pytest.mark.parametrize("data", [np.array(["a", "b"]), np.array([b"x"]), np.array([{"a": 1}], dtype=object),
                                  ["a", "b"], np.array(["2020-01-01"], dtype="datetime64[D]"), [[1.0], [1.0, 2.0]]])
def test_object_and_string_data_are_refused_when_made(data):
    with pytest.raises(TypeError, match="Tensor: "):
        bnp.Tensor(data)
    with pytest.raises(TypeError, match=r"(Tensor|tensor\(\)): "):
        bnp.tensor(data)


def test_python_lists_are_accepted_where_arrays_are():
    t = bnp.Tensor([1.0, 2.0])
    assert backend.is_array(t.data) and t.dtype == bnp.get_default_dtype()
    bnp.set_default_dtype("float32")
    assert bnp.Tensor([1.0, 2.0]).dtype == np.float32 and bnp.Tensor(np.float64(1.0)).dtype == np.float64
    bnp.set_default_dtype("float64")
    w = bnp.tensor([1.0, 2.0], requires_grad=True)
    y = w * [3.0, 4.0] + [1, 1]
    np.testing.assert_array_equal(y.numpy(), [4.0, 9.0])
    (g,) = bnp.grad(y.sum(), w)
    np.testing.assert_array_equal(g.numpy(), [3.0, 4.0])
    assert ([2.0, 2.0] - w).dtype == np.float64
    np.testing.assert_array_equal(bnp.hvp(lambda: (w * w).sum(), w, [[1.0, 0.0]])[0], [2.0, 0.0])


# -- layer sizes ------------------------------------------------------------------------------
BAD_SIZES = [(0, ValueError), (-2, ValueError), (2.0, TypeError), (2.5, TypeError), (True, TypeError),
             ("3", TypeError), (None, TypeError)]


@pytest.mark.parametrize("bad,error", BAD_SIZES)
def test_layer_sizes_are_positive_integers_named_in_the_error(bad, error):
    cases = [
        (lambda v: Linear(v, 2), "Linear: in_features"), (lambda v: Linear(2, v), "Linear: out_features"),
        (lambda v: Conv2d(v, 2, 3), "Conv2d: in_channels"), (lambda v: Conv2d(2, v, 3), "Conv2d: out_channels"),
    ] + [(lambda v, c=c: c(v), f"{c.__name__}: num_features") for c in (BatchNorm1d, BatchNorm2d, FullNorm1d,
                                                                          FullNorm2d)]
    for make, name in cases:
        with pytest.raises(error, match=f"{name} must be a positive integer, got {bad!r}".replace("(", r"\(")):
            make(bad)


def test_numpy_integers_are_sizes():
    assert Linear(np.int64(3), np.int32(2)).weight.shape == (2, 3)
    assert BatchNorm1d(np.int64(4)).num_features == 4


# -- optimizers and hand-made gradients ---------------------------------------------------------
@pytest.mark.parametrize("make", [lambda p: bnp.optim.SGD(p, lr=0.5, momentum=0.9), lambda p: bnp.optim.Adam(p)])
@pytest.mark.parametrize("kind", ["array", "list", "int array"])
def test_optimizers_accept_a_gradient_assigned_as_an_array(make, kind):
    a = bnp.tensor([1.0, 2.0], requires_grad=True)
    b = bnp.tensor([1.0, 2.0], requires_grad=True)
    grad = {"array": np.array([0.5, -1.0]), "list": [0.5, -1.0], "int array": np.array([1, -1])}[kind]
    a.grad = grad
    b.grad = bnp.Tensor(np.asarray(grad, dtype=np.float64))
    opt_a, opt_b = make([a]), make([b])
    opt_a.step()
    opt_b.step()
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert isinstance(a.grad, bnp.Tensor) and a.grad.dtype == a.dtype


def test_optimizers_say_what_gradient_they_want():
    p = bnp.tensor([1.0, 2.0], requires_grad=True)
    opt = bnp.optim.SGD([p], lr=0.1)
    p.grad = "0.5"
    with pytest.raises(TypeError, match=r"SGD.step\(\): parameter 0: .grad must be a Tensor or an array of shape"):
        opt.step()
    p.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"parameter 0: gradient of shape \(3,\) for a parameter of shape \(2,\)"):
        opt.step()
    p.grad = np.array([True, False])
    with pytest.raises(TypeError, match="gradient of dtype bool"):
        opt.step()
    np.testing.assert_array_equal(p.numpy(), [1.0, 2.0])


def test_bnp_step_accepts_array_gradients():
    model = bnp.nn.models.mlp([3, 2], rng=0)
    pre = bnp.BNP(model, rho=0.0)
    model(bnp.tensor(np.random.default_rng(0).standard_normal((4, 3))))
    layer = model[0]
    layer.weight.grad, layer.bias.grad = np.ones((2, 3)), [1.0, 1.0]
    pre.step()
    assert isinstance(layer.weight.grad, bnp.Tensor) and np.isfinite(layer.weight.grad.numpy()).all()


# -- checkpoints ------------------------------------------------------------------------------------
def _rewrite(src, dst, change):
    """Copy the archive ``src`` to ``dst`` with ``change(members) -> members`` applied to name -> bytes."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in change(members).items():
            z.writestr(name, data)


def _meta_bytes(meta):
    import io
    buf = io.BytesIO()
    np.save(buf, np.array(meta if isinstance(meta, str) else json.dumps(meta)))
    return buf.getvalue()


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    checkpoint.save({"w": np.ones(3), "step": 2}, path)
    return path


@pytest.mark.parametrize("case,message", [
    ("not json", "malformed metadata \\(not JSON"),
    ("list", "malformed metadata \\(expected an object"),
    ("version 2", "format version 2; this reader understands version 1 only"),
    ("version true", "format version True"),
    ("other format", "unknown format 'other'"),
    ("odd node", "tree node .* of a kind this reader does not know"),
    ("missing array", "array 'w' is missing"),
    ("extra array", "arrays its metadata does not mention \\(\\['x'\\]\\)"),
    ("non-npy member", "members that are not .npy arrays \\(\\['notes.txt'\\]\\)"),
    ("meta array", "malformed metadata \\('__bnp__' is a float64 array"),
])
def test_the_reader_refuses_what_it_does_not_understand(saved, tmp_path, case, message):
    good = json.loads(str(np.load(saved)["__bnp__"]))

    def change(members):
        meta = dict(good)
        if case == "not json":
            members["__bnp__.npy"] = _meta_bytes("{not json")
        elif case == "list":
            members["__bnp__.npy"] = _meta_bytes([1, 2])
        elif case.startswith("version"):
            meta["version"] = 2 if case == "version 2" else True
        elif case == "other format":
            meta["format"] = "other"
        elif case == "odd node":
            meta["tree"] = {"dict": {"w": {"pickle": "x"}}}
        elif case == "missing array":
            del members["w.npy"]
        elif case == "extra array":
            members["x.npy"] = members["w.npy"]
        elif case == "non-npy member":
            members["notes.txt"] = b"hello"
        elif case == "meta array":
            import io
            buf = io.BytesIO()
            np.save(buf, np.ones(2))
            members["__bnp__.npy"] = buf.getvalue()
        if case in ("version 2", "version true", "other format", "odd node"):
            members["__bnp__.npy"] = _meta_bytes(meta)
        return members

    bad = tmp_path / f"{case.replace(' ', '_')}.npz"
    _rewrite(saved, bad, change)
    with pytest.raises(ValueError, match=f"{bad}.*{message}"):
        checkpoint.load(bad)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = tmp_path / "ck.npz"
        checkpoint.save({"a": np.ones(2)}, path)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["ck.npz"]


@pytest.mark.parametrize("unnamed", [True, False])
def test_a_killed_save_leaves_no_temporary_file(tmp_path, unnamed):
    """SIGKILL in the middle of writing: the unnamed file (O_TMPFILE) leaves nothing behind."""
    if unnamed and not checkpoint._unnamed_works:
        pytest.skip("this system cannot write unnamed files")
    script = f"""
import os, signal, numpy, bnp.checkpoint as c
c._unnamed_works = {unnamed}
real = numpy.savez
def killed(f, **members):
    real(f, **members)
    os.kill(os.getpid(), signal.SIGKILL)  # written, not yet named
numpy.savez = killed
c.save({{"a": numpy.ones(1000)}}, {str(tmp_path / "ck.npz")!r})
"""
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    left = os.listdir(tmp_path)
    if unnamed:
        assert left == []
    else:  # the fallback's documented limit: a named temporary survives a SIGKILL
        assert len(left) == 1 and left[0].startswith(".tmp-")


def test_the_named_fallback_cleans_up_on_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "_unnamed_works", False)
    path = tmp_path / "ck.npz"
    checkpoint.save({"v": np.ones(2)}, path)
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"v": np.zeros(2)}, path)
    assert os.listdir(tmp_path) == ["ck.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(backend.to_numpy(checkpoint.load(path)["v"]), np.ones(2))


@given(st.recursive(st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
                        st.text("abc._", min_size=1, max_size=4), kids, max_size=3), max_leaves=8))
def test_round_trip_of_drawn_trees(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("rt") / "t.npz"
    checkpoint.save({"t": tree}, path)
    got = checkpoint.load(path)["t"]

    def same(a, b):
        if isinstance(a, float) and np.isnan(a):
            return isinstance(b, float) and np.isnan(b)
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return a == b and type(a) is type(b)

    assert same(tree, got)


def test_functional_sizes_and_lists():
    assert F.positive_int("here", "n", np.int16(3)) == 3
    with pytest.raises(TypeError, match="here: n must be a positive integer"):
        F.positive_int("here", "n", 3.0)
    logits = bnp.tensor(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="targets must be integer class indices"):
        F.cross_entropy(logits, [0.5, 1.0])
