"""bnp.torch.BNP against bnp's NumPy reference (bnp.BNP), float64, on identical weights and batches."""

from __future__ import annotations

import inspect
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp import nn as bnn
from bnp.preconditioner import BNP as ReferenceBNP

torch = pytest.importorskip("torch")
import bnp.torch as bt  # noqa: E402  (needs torch)

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-10
BATCHES = (4, 1, 7, 3, 5)  # batch 1 included: the running moments must not need N > 1
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.gpu,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]),
]


def assert_rel_close(actual, expected, tol=TOL, what="", scale=0.0):
    """Max-norm relative error (robust where single entries are near zero), against at least ``scale``."""
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, what
    scale = max(np.abs(expected).max(), scale, 1e-300)
    error = np.abs(actual - expected).max() / scale
    assert error <= tol, f"{what}: relative error {error:.3g} > {tol:g}"


def _torch_model(kind: str) -> torch.nn.Sequential:
    tn = torch.nn
    if kind == "mlp":  # the middle layer has no bias: Jacobi scaling with the uncentred moment
        return tn.Sequential(tn.Linear(5, 6), tn.ReLU(), tn.Linear(6, 4, bias=False), tn.Tanh(), tn.Linear(4, 3))
    return tn.Sequential(  # stride 2 and padding 1, then a convolution without bias
        tn.Conv2d(2, 4, 3, stride=2, padding=1), tn.ReLU(), tn.Conv2d(4, 3, 3, padding=1, bias=False), tn.ReLU(),
        tn.Flatten(), tn.Linear(27, 3))


def _reference_twin(model: torch.nn.Sequential) -> bnn.Sequential:
    """The same network in bnp.nn with a copy of the weights (float64)."""
    layers = []
    for m in model:
        if isinstance(m, torch.nn.Linear):
            twin = bnn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        elif isinstance(m, torch.nn.Conv2d):
            twin = bnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                              bias=m.bias is not None)
        else:
            layers.append({torch.nn.ReLU: bnn.ReLU, torch.nn.Tanh: bnn.Tanh, torch.nn.Flatten: bnn.Flatten}[type(m)]())
            continue
        twin.weight.data = m.weight.detach().cpu().numpy().astype(np.float64).copy()
        if m.bias is not None:
            twin.bias.data = m.bias.detach().cpu().numpy().astype(np.float64).copy()
        layers.append(twin)
    return bnn.Sequential(*layers)


def _batches(kind: str, seed: int):
    """Off-centre, badly scaled inputs (what BNP is for) and labels."""
    rng = np.random.default_rng(seed)
    for n in BATCHES:
        if kind == "mlp":
            x = rng.standard_normal((n, 5)) * np.array([1.0, 10.0, 0.1, 3.0, 1.0]) + 4.0
        else:
            x = rng.standard_normal((n, 2, 6, 5)) * np.array([1.0, 5.0])[None, :, None, None] + 3.0
        yield x, rng.integers(0, 3, n)


def _run_both(kind, device, seed=0, **options):
    """Train both for len(BATCHES) SGD steps; yield per step the pairs (torch value, reference value)."""
    torch.manual_seed(seed)
    model = _torch_model(kind).double().to(device)
    twin = _reference_twin(model)
    pre, ref = bt.BNP(model, **options), ReferenceBNP(twin, **options)
    opt, ref_opt = torch.optim.SGD(model.parameters(), lr=0.05), bnp.optim.SGD(twin.parameters(), lr=0.05)
    pairs = [(a, b) for a, b in zip(pre.layers, ref.layers, strict=True)]
    for x, y in _batches(kind, seed):
        loss = torch.nn.functional.cross_entropy(model(torch.tensor(x, device=device)), torch.tensor(y, device=device))
        opt.zero_grad()
        loss.backward()
        pre.step()
        ref_loss = F.cross_entropy(twin(bnp.tensor(x)), y)
        ref_opt.zero_grad()
        ref_loss.backward()
        ref.step()
        checks = []
        for a, b in pairs:
            (mean, var), (ref_mean, ref_var) = pre.statistics(a), ref.statistics(b)
            checks.append((f"mean of {a}", mean, ref_mean, 0.0))
            # a variance is rounded on the scale of mean^2 (it is 0 at batch 1 with rho=0)
            checks.append((f"var of {a}", var, ref_var, float(np.max(ref_mean**2))))
            # W and b together: at batch 1 with rho=0, G_W' is 0 up to rounding and g_b' carries the scale
            mine = [a.weight.grad.flatten()] + ([a.bias.grad] if a.bias is not None else [])
            theirs = [b.weight.grad.data.ravel()] + ([b.bias.grad.data] if b.bias is not None else [])
            checks.append((f"grads of {a}", torch.cat(mine), np.concatenate(theirs), 0.0))
        yield checks
        opt.step()
        ref_opt.step()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("rho", [0.0, 0.9])
@pytest.mark.parametrize("kind, options", [
    ("mlp", {}), ("mlp", {"whiten": True}), ("conv", {}), ("conv", {"conv_statistics": "patch"}),
], ids=["mlp", "mlp-whiten", "conv-channel", "conv-patch"])
def test_matches_numpy_reference(kind, options, rho, bias_correction, device):
    steps = 0
    for checks in _run_both(kind, device, rho=rho, bias_correction=bias_correction, eps=1e-3, **options):
        for what, mine, theirs, scale in checks:
            assert mine.dtype == torch.float64 and mine.device.type == device
            assert_rel_close(mine, theirs, what=what, scale=scale)
        steps += 1
    assert steps == len(BATCHES)


def test_defaults_are_the_references():
    ours, theirs = inspect.signature(bt.BNP).parameters, inspect.signature(ReferenceBNP).parameters
    for name in ("rho", "eps", "bias_correction", "conv_statistics", "whiten", "layers"):
        assert ours[name].default == theirs[name].default, name


def test_rho_zero_step_is_the_closed_form():
    """Independent of the reference: G' = (G - g_b mu^T) D^-2, g_b' = g_b - G' mu with this batch's moments."""
    torch.manual_seed(1)
    layer = torch.nn.Linear(4, 3).double()
    x = torch.randn(6, 4, dtype=torch.float64) * torch.tensor([1.0, 20.0, 0.1, 2.0], dtype=torch.float64) + 7
    pre = bt.BNP(layer, rho=0.0, eps=1e-3)
    (layer(x) * torch.randn(6, 3, dtype=torch.float64)).sum().backward()
    gw, gb = layer.weight.grad.clone(), layer.bias.grad.clone()
    pre.step()
    mean, var = x.mean(0), x.var(0, unbiased=False)
    expected_w = (gw - torch.outer(gb, mean)) / (var + 1e-3)
    assert_rel_close(layer.weight.grad, expected_w.numpy(), what="W")
    assert_rel_close(layer.bias.grad, (gb - expected_w @ mean).numpy(), what="b")


def test_frozen_bias_counts_as_absent():
    torch.manual_seed(2)
    layer = torch.nn.Linear(3, 2).double()
    layer.bias.requires_grad_(False)
    x = torch.randn(5, 3, dtype=torch.float64) + 3
    pre = bt.BNP(layer, rho=0.0, eps=1e-3)
    layer(x).square().sum().backward()
    gw = layer.weight.grad.clone()
    pre.step()
    uncentred = (x * x).mean(0) + 1e-3
    assert_rel_close(layer.weight.grad, (gw / uncentred).numpy())


def test_step_rewrites_the_same_grad_tensors_and_works_with_adam():
    torch.manual_seed(3)
    model = _torch_model("conv")
    pre = bt.BNP(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(4, 2, 6, 5) + 2
    (model(x) * torch.randn(4, 3)).sum().backward()  # a plain sum() would give the head G - g_b mu^T = 0
    before = {p: (p.grad.data_ptr(), p.grad.clone()) for p in model.parameters()}
    pre.step()
    for p, (pointer, old) in before.items():
        assert p.grad.data_ptr() == pointer
        assert not torch.equal(p.grad, old)  # every layer is preconditioned, the inputs are off-centre
    weights = [p.detach().clone() for p in model.parameters()]
    opt.step()
    assert all(not torch.equal(w, p) for w, p in zip(weights, model.parameters(), strict=True))


def test_statistics_only_in_training_mode_and_without_graph():
    model = _torch_model("mlp")
    pre = bt.BNP(model)
    x = torch.randn(3, 5, requires_grad=True)
    model(x)
    mean, var = pre.statistics(model[0])
    assert not mean.requires_grad and mean.grad_fn is None and var.grad_fn is None
    model.eval()
    model(x + 100)
    assert pre.state_dict()["0.count"] == 1
    assert torch.equal(pre.statistics(model[0])[0], mean)


def test_float32_and_autocast_keep_float32_statistics():
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    seen = []
    model[2].register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
    for whiten in (False, True):
        pre = bt.BNP(model, rho=0.0, whiten=whiten)
        x = torch.randn(8, 6) + 3
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(x).float().square().mean()
        assert seen[-1].dtype == torch.bfloat16  # the layer really saw a low-precision input
        loss.backward()
        pre.step()
        mean, var = pre.statistics(model[2])
        a = seen[-1].double()
        assert mean.dtype == var.dtype == torch.float32
        np.testing.assert_allclose(mean.numpy(), a.mean(0).numpy(), rtol=1e-5, atol=1e-6)
        expected = torch.cov(a.T, correction=0) if whiten else a.var(0, unbiased=False)
        np.testing.assert_allclose(var.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
        assert model[2].weight.grad.dtype == torch.float32 and torch.isfinite(model[2].weight.grad).all()
        pre.remove()
        model.zero_grad()


def test_bfloat16_weights_get_float32_statistics_and_the_float32_update():
    """The update is computed in float32 from the bfloat16 gradients and rounded once into them."""
    torch.manual_seed(5)
    low = torch.nn.Linear(4, 3).to(torch.bfloat16)
    x = (torch.randn(6, 4) * torch.tensor([1.0, 3.0, 0.3, 1.0]) + 1).to(torch.bfloat16)
    pre = bt.BNP(low, rho=0.0)
    (low(x) * torch.randn(6, 3).to(torch.bfloat16)).sum().backward()
    gw, gb = low.weight.grad.float(), low.bias.grad.float()
    pre.step()
    mean, var = pre.statistics(low)
    assert mean.dtype == var.dtype == torch.float32 and low.weight.grad.dtype == torch.bfloat16
    a = x.double()
    np.testing.assert_allclose(var.numpy(), a.var(0, unbiased=False).numpy(), rtol=1e-5)
    expected_w = (gw - torch.outer(gb, mean)) / (var + 1e-3)
    assert_rel_close(low.weight.grad.float(), expected_w.numpy(), tol=1e-2)
    assert_rel_close(low.bias.grad.float(), (gb - expected_w @ mean).numpy(), tol=1e-2)


def _trained(kind="mlp", steps=2, **options):
    torch.manual_seed(6)
    model = _torch_model(kind).double()
    pre = bt.BNP(model, rho=0.9, **options)
    for x, y in list(_batches(kind, 7))[:steps]:
        torch.nn.functional.cross_entropy(model(torch.tensor(x)), torch.tensor(y)).backward()
    return model, pre


@pytest.mark.parametrize("whiten", [False, True])
def test_state_dict_survives_torch_save_weights_only(whiten):
    model, pre = _trained(whiten=whiten)
    buffer = io.BytesIO()
    torch.save(pre.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    twin = _torch_model("mlp").double()
    twin.load_state_dict(model.state_dict())
    restored = bt.BNP(twin, rho=0.9, whiten=whiten)
    restored.load_state_dict(state)
    x, y = list(_batches("mlp", 8))[0]
    for m, p in ((model, pre), (twin, restored)):
        m.zero_grad()
        torch.nn.functional.cross_entropy(m(torch.tensor(x)), torch.tensor(y)).backward()
        p.step()
    for a, b in zip(pre.layers, restored.layers, strict=True):
        assert torch.equal(a.weight.grad, b.weight.grad)
        for s, t in zip(pre.statistics(a), restored.statistics(b), strict=True):
            assert torch.equal(s, t)
    assert restored.state_dict()["0.count"] == 3


def test_loads_the_numpy_references_state_dict():
    model = _torch_model("conv").double()
    twin = _reference_twin(model)
    ref = ReferenceBNP(twin, rho=0.9)
    for x, _ in list(_batches("conv", 9))[:3]:
        twin(bnp.tensor(x))
    pre = bt.BNP(model, rho=0.9)
    pre.load_state_dict(ref.state_dict())
    for a, b in zip(pre.layers, ref.layers, strict=True):
        for s, t in zip(pre.statistics(a), ref.statistics(b), strict=True):
            assert_rel_close(s, t)
    x, _ = list(_batches("conv", 10))[0]
    model(torch.tensor(x))
    twin(bnp.tensor(x))
    assert_rel_close(pre.statistics(model[0])[1], ref.statistics(twin[0])[1])  # the bias correction continues


def test_load_state_dict_rejects_bad_entries():
    model, pre = _trained()
    state = pre.state_dict()
    with pytest.raises(ValueError, match=r"unexpected keys \['9.mean'\]"):
        pre.load_state_dict({**state, "9.mean": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"layer '0' expects mean \(5,\)"):
        pre.load_state_dict({**state, "0.mean": torch.zeros(4)})
    partial = dict(state)
    del partial["2.var"]
    with pytest.raises(ValueError, match="layer '2' needs all of"):
        pre.load_state_dict(partial)


def test_remove_detaches_the_hooks_and_frees_the_layers():
    model, pre = _trained()
    count = pre.state_dict()["0.count"]
    pre.remove()
    model(torch.randn(2, 5, dtype=torch.float64))
    assert pre.state_dict()["0.count"] == count
    again = bt.BNP(model)  # allowed once the first one is removed
    model(torch.randn(2, 5, dtype=torch.float64))
    assert again.state_dict()["0.count"] == 1


def test_errors_before_the_first_forward():
    model = _torch_model("mlp")
    pre = bt.BNP(model)
    with pytest.raises(KeyError, match="no statistics yet for layer '0'"):
        pre.statistics(model[0])
    model[0].weight.grad = torch.zeros_like(model[0].weight)
    with pytest.raises(RuntimeError, match=r"no input statistics for layer '0'.*model.train\(\)"):
        pre.step()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"rho": 1.0}, ValueError, r"rho must lie in \[0, 1\), got 1.0"),
    ({"rho": -0.1}, ValueError, r"rho must lie in \[0, 1\)"),
    ({"rho": float("nan")}, ValueError, "rho must be a finite real number, got nan"),
    ({"rho": "0.9"}, ValueError, "rho must be a finite real number, got '0.9'"),
    ({"eps": -1e-3}, ValueError, "eps must be >= 0, got -0.001"),
    ({"eps": float("inf")}, ValueError, "eps must be a finite real number, got inf"),
    ({"eps": True}, ValueError, "eps must be a finite real number, got True"),
    ({"conv_statistics": "pixel"}, ValueError, "conv_statistics must be 'channel' or 'patch', got 'pixel'"),
    ({"whiten": True}, ValueError, r"whiten=True supports nn.Linear layers only; '0' \(Conv2d"),
    ({"process_group": "world"}, TypeError, "process_group must be a torch.distributed.ProcessGroup"),
])
def test_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        bt.BNP(_torch_model("conv"), **kwargs)


def test_rejects_bad_models_and_layers():
    model = _torch_model("mlp")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got Sequential"):
        bt.BNP(_reference_twin(model))
    with pytest.raises(ValueError, match="has no nn.Linear or nn.Conv2d layer"):
        bt.BNP(torch.nn.Sequential(torch.nn.ReLU()))
    with pytest.raises(TypeError, match="only precondition nn.Linear and nn.Conv2d layers, got ReLU"):
        bt.BNP(model, layers=[model[1]])
    with pytest.raises(ValueError, match="is not a sub-module of the model"):
        bt.BNP(model, layers=[torch.nn.Linear(5, 6)])
    with pytest.raises(ValueError, match="layer '0' .* is listed twice"):
        bt.BNP(model, layers=[model[0], model[0]])
    with pytest.raises(ValueError, match="layers is empty"):
        bt.BNP(model, layers=[])
    with pytest.raises(ValueError, match="groups=2 is not supported"):
        bt.BNP(torch.nn.Conv2d(2, 4, 3, groups=2))
    with pytest.raises(ValueError, match="'patch' needs explicit zero padding"):
        bt.BNP(torch.nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"), conv_statistics="patch")
    first = bt.BNP(model, layers=[model[2]])
    with pytest.raises(ValueError, match="layer '2' .* already preconditioned by another BNP"):
        bt.BNP(model)
    assert first.layers == [model[2]]
    only = bt.BNP(model, layers=[model[0], model[4]])  # the other layers are still free
    model(torch.randn(2, 5))
    assert set(only.state_dict()) == {"0.mean", "0.var", "0.count", "4.mean", "4.var", "4.count"}


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_core_bnp_never_imports_torch():
    code = """
import sys
import numpy as np
import bnp
model = bnp.nn.mlp([3, 4, 2])
pre = bnp.BNP(model)
loss = bnp.functional.cross_entropy(model(bnp.tensor(np.ones((2, 3)))), np.array([0, 1]))
loss.backward(); pre.step()
assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)
print('ok')
"""
    result = _python(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_clear_import_error_without_torch():
    result = _python("import sys; sys.modules['torch'] = None; import bnp.torch")
    assert result.returncode != 0
    assert "bnp.torch needs PyTorch" in result.stderr and "pip install -e '.[torch]'" in result.stderr


def test_an_empty_batch_leaves_the_statistics_alone():
    model = _torch_model("mlp")
    pre = bt.BNP(model)
    model(torch.randn(3, 5))
    before = pre.state_dict()
    model(torch.randn(0, 5))
    after = pre.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
