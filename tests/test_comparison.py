"""The comparison the project exists for: BNP and FN train where BN cannot, and
``bnp compare`` runs end to end."""

import csv
import json

import numpy as np
import pytest

import bnp
from bnp.__main__ import main
from bnp.data import DataLoader, synthetic
from bnp.nn import init, models


def _data():
    ds = synthetic(n_train=120, n_test=40, n_features=8, seed=3)
    return ds


def _train(norm, batch_size, preconditioner=False, class_sorted=False, lr=0.02, epochs=2):
    ds = _data()
    init.manual_seed(0)
    model = models.mlp([8, 16, ds.n_classes], norm=norm)
    loader = DataLoader((ds.X_train, ds.y_train), batch_size=batch_size, seed=0, class_sorted=class_sorted)
    opt = bnp.optim.SGD(model.parameters(), lr=lr)
    pre = bnp.BNP(model) if preconditioner else None
    return bnp.fit(model, loader, opt, epochs=epochs, preconditioner=pre, progress=False)


def test_bnp_trains_at_batch_size_one_where_bn_raises():
    history = _train(None, 1, preconditioner=True)
    first, last = np.mean(history.step_losses[:20]), np.mean(history.step_losses[-60:])
    assert last < 0.7 * first
    with pytest.raises(ValueError, match="value per channel"):
        _train("bn", 1)


def test_fn_trains_on_class_sorted_batches():
    history = _train("fn", 8, class_sorted=True, lr=0.05, epochs=3)
    assert np.all(np.isfinite(history.step_losses))
    assert history.epoch_losses[-1] < 0.85 * history.epoch_losses[0]


def test_fn_runs_at_batch_size_one_but_its_input_gradient_degenerates():
    """A finding, kept as a test: with one sample the batch moments are the sample
    itself, so FN's compositional gradient cancels the direct path of the
    normalized unit: dy/dx = -w (x - mu)^2 / sigma^3 instead of w / sigma.
    FN therefore passes almost no gradient to earlier layers at batch size 1
    (measured in ``bnp compare``); BN cannot run there at all."""
    layer = bnp.nn.FullNorm1d(3, momentum=0.1, eps=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(5):
        layer(bnp.tensor(rng.standard_normal((1, 3)) * 2 + 1))
    x = bnp.tensor(rng.standard_normal((1, 3)) * 2 + 1, requires_grad=True)
    layer(x).sum().backward()
    mu = bnp.backend.to_numpy(layer.running_mean)
    sigma = np.sqrt(bnp.backend.to_numpy(layer.running_var) + 1e-12)
    expected = -((x.numpy() - mu) ** 2) / sigma**3
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-10, atol=1e-12)
    history = _train("fn", 1, lr=0.05, epochs=1)
    assert np.all(np.isfinite(history.step_losses))


def test_compare_quick_writes_table_json_csv_and_plots(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--quick", "--out", str(out), "--models", "mlp"]) == 0
    printed = capsys.readouterr().out
    assert "method" in printed and "bnp" in printed and "failed" in printed  # BN at batch size 1
    result = json.loads((out / "results.json").read_text())
    rows = {(r["method"], r["batch_size"]): r for r in result["summary"]}
    assert set(rows) == {(m, b) for m in ("none", "bn", "bnp", "fn") for b in (1, 16)}
    assert rows[("bn", 1)]["status"] == "failed" and "value per channel" in rows[("bn", 1)]["error"]
    for method in ("none", "bnp", "fn"):
        assert rows[(method, 1)]["status"] == "ok"
        assert rows[(method, 1)]["lr"] in result["config"]["lrs"]
    with open(out / "summary.csv") as f:
        assert len(list(csv.DictReader(f))) == 8
    for name in ("loss_curves.png", "accuracy_vs_batch_size.png"):
        assert (out / name).stat().st_size > 1000


def test_compare_rejects_unknown_data(tmp_path):
    with pytest.raises(ValueError, match="unknown data"):
        main(["compare", "--quick", "--data", "cifar", "--out", str(tmp_path)])


def test_whitening_bnp_runs_on_the_mlp_and_refuses_the_cnn(tmp_path):
    out = tmp_path / "w"
    assert main(["compare", "--quick", "--models", "mlp", "--methods", "none,wbnp", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["summary"]
    assert {r["method"] for r in rows} == {"none", "wbnp"} and all(r["status"] == "ok" for r in rows)
    with pytest.raises(ValueError, match="Linear layers only"):
        main(["compare", "--quick", "--models", "cnn", "--methods", "wbnp", "--out", str(out)])


def test_format_table_prints_one_line_per_summary_row():
    from bnp.experiments.compare import HEADER, format_table

    ok = dict(model="mlp", method="bnp", batch_size=8, lr=0.1, status="ok", error="", final_loss_mean=0.5,
              final_loss_std=0.01, test_accuracy_mean=0.8, test_accuracy_std=0.02, seconds_mean=1.0)
    failed = {**ok, "method": "bn", "batch_size": 1, "status": "failed", "error": "one value per channel"}
    lines = format_table([ok, failed]).splitlines()
    assert lines[0] == HEADER and set(lines[1]) == {"-"}
    assert "0.5000 ± 0.0100" in lines[2] and "80.0 ± 2.0 %" in lines[2]
    assert lines[3].endswith("failed: one value per channel")
