"""``bnp baseline mnist1d``: quick mode end to end (JSON, the Markdown table, measured beside published),
the reference architectures against PyTorch (the 1-D convolution as a 1 x L Conv2d), and the full run (slow)."""

import json

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp.__main__ import main
from bnp.experiments import baseline
from bnp.testing import gradcheck, gradgradcheck

pytest.importorskip("mnist1d")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist1d-cache")
    bnp.data.mnist1d(root)
    return root


def test_quick_run_prints_and_writes_measured_beside_published(tmp_path, cache_dir, capsys):
    out = tmp_path / "baseline"
    assert main(["baseline", "mnist1d", "--quick", "--cache-dir", str(cache_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for kind, published in (("linear", "32%"), ("mlp", "68%"), ("cnn", "94%")):
        assert any(line.startswith(kind) and published in line for line in printed.splitlines()), printed
    result = json.loads((out / "mnist1d.json").read_text())
    assert result["config"]["epochs"] == 2 and result["config"]["seeds"] == 1
    rows = {r["model"]: r for r in result["summary"]}
    assert set(rows) == {"linear", "mlp", "cnn"}
    assert {k: r["published_test_accuracy"] for k, r in rows.items()} == {"linear": 0.32, "mlp": 0.68, "cnn": 0.94}
    assert {k: r["parameters"] for k, r in rows.items()} == {"linear": 410, "mlp": 15210, "cnn": 5210}
    for kind, row in rows.items():
        assert row["steps"] == 2 * 4000 // 100
        assert 0.2 < row["test_accuracy_mean"] <= 1, (kind, row)  # chance is 0.1: two epochs already learn
        assert row["difference"] == pytest.approx(row["test_accuracy_mean"] - row["published_test_accuracy"])
    runs = [r for r in result["runs"] if r["model"] == "cnn"]
    assert len(runs) == 1 and len(runs[0]["test_accuracy_per_epoch"]) == 2
    assert runs[0]["test_accuracy_per_epoch"][-1] == pytest.approx(runs[0]["test_accuracy"])

    table = (out / "mnist1d.md").read_text().splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("| model"))
    assert [c.strip() for c in table[header].strip("|").split("|")] == list(baseline.MARKDOWN_COLUMNS)
    body = [[c.strip() for c in line.strip("|").split("|")] for line in table[header + 2 : header + 5]]
    assert [row[0] for row in body] == ["linear", "mlp", "cnn"]
    published, measured = baseline.MARKDOWN_COLUMNS.index("published test acc."), \
        baseline.MARKDOWN_COLUMNS.index("measured test acc.")
    for row in body:
        assert row[published] == f"{100 * rows[row[0]]['published_test_accuracy']:.0f} %"
        assert row[measured] == f"{100 * rows[row[0]]['test_accuracy_mean']:.1f} %"
    assert "Greydanus & Kobak" in "\n".join(table) and "the reference run has 6000 steps" in "\n".join(table)


@pytest.mark.parametrize("argv, message", [
    (["--models", "mlp,gru"], "--models must list some of"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--lr", "-1"], "--lr must be > 0"),
])
def test_bad_arguments_are_named(tmp_path, argv, message):
    with pytest.raises(ValueError, match=message):
        main(["baseline", "mnist1d", "--quick", "--out", str(tmp_path), *argv])


def test_unknown_dataset_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["baseline", "cifar10", "--quick"])
    assert "invalid choice" in capsys.readouterr().err


def test_the_1d_convolution_as_a_1xL_conv2d_derivatives_to_second_order():
    """The first layer's geometry: kernel (1, 5), stride (1, 2), padding (0, 1) on a 1 x L signal."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((1, 2, 1, 7)), rng.standard_normal((2, 2, 1, 5)), rng.standard_normal(2)

    def conv(a, wt, bias):
        return F.conv2d(a, wt, bias, stride=(1, 2), padding=(0, 1))

    inputs = [bnp.tensor(a) for a in (x, w, b)]
    gradcheck(conv, inputs)
    gradgradcheck(lambda a, wt, bias: conv(a, wt, bias) ** 2, inputs)


def _torch_reference(torch, ours):
    """The mnist1d repository's ConvBase / MLPBase, written with torch.nn.functional, on our weights."""
    params = [torch.tensor(p.numpy()) for p in ours.parameters()]
    fn = torch.nn.functional
    if len(params) == 8:  # ConvBase: three Conv1d (5/3/3, stride 2, padding 1) and a Linear
        def net(x):
            h = x.view(-1, 1, x.shape[-1])
            for i in range(3):
                h = fn.conv1d(h, params[2 * i][:, :, 0, :], params[2 * i + 1], stride=2, padding=1).relu()
            return fn.linear(h.reshape(len(h), -1), params[6], params[7])
        return net

    def net(x):  # MLPBase: h = relu(l1 x); h = h + relu(l2 h); l3 h
        h = fn.linear(x, params[0], params[1]).relu()
        h = h + fn.linear(h, params[2], params[3]).relu()
        return fn.linear(h, params[4], params[5])
    return net


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_reference_architectures_match_pytorch(kind):
    torch = pytest.importorskip("torch")
    model = baseline.build_model(kind, seed=3)
    rng = np.random.default_rng(1)
    signals = rng.standard_normal((6, 40))
    x = bnp.tensor(signals[:, None, None, :] if kind == "cnn" else signals, requires_grad=True)
    out = model(x)
    xt = torch.tensor(signals, requires_grad=True)
    ref = _torch_reference(torch, model)(xt)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    up = rng.standard_normal(out.shape)
    (ours,) = bnp.grad(out, [x], grad_outputs=up)
    (theirs,) = torch.autograd.grad(ref, [xt], grad_outputs=torch.tensor(up))
    np.testing.assert_allclose(ours.numpy().reshape(6, 40), theirs.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_full_reference_run_meets_the_published_table(tmp_path, cache_dir):
    """One seed of the reference protocol (about 30 s on 2 cores): within a few points of the paper."""
    config = baseline.BaselineConfig(seeds=1, cache_dir=str(cache_dir), out=str(tmp_path))
    rows = {r["model"]: r for r in baseline.run(config, log=lambda *_: None)["summary"]}
    assert abs(rows["linear"]["difference"]) < 0.04
    assert abs(rows["mlp"]["difference"]) < 0.07
    assert abs(rows["cnn"]["difference"]) < 0.04
