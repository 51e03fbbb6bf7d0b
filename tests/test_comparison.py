"""The comparison the project exists for: BNP and FN train where BN cannot, and
``bnp compare`` runs end to end."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

import bnp
from bnp.__main__ import main
from bnp.data import DataLoader, synthetic
from bnp.experiments import compare
from bnp.experiments.lr_grid import LrSearch
from bnp.nn import init, models

ROOT = Path(__file__).resolve().parents[1]


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
    table = (out / "table.md").read_text().splitlines()
    assert table[0] == "`bnp compare --quick --models mlp`"  # the command that made it (--out does not matter)
    body = [line for line in table if line.startswith("| mlp |")]
    assert len(body) == 8 and body[0].startswith("| mlp | none | 1 | ")
    bn1 = next(line for line in body if line.startswith("| mlp | bn | 1 |"))
    assert "failed (expected): BatchNorm1d(16, " in bn1 and "batch_norm: expected more than 1 value per channel" in bn1
    for name in ("loss_curves.png", "accuracy_vs_batch_size.png"):
        assert (out / name).stat().st_size > 1000


def test_compare_rejects_unknown_data_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", "--quick", "--data", "cifar", "--out", str(tmp_path)])
    assert info.value.code == 2 and "invalid choice: 'cifar'" in capsys.readouterr().err


def test_whitening_bnp_runs_on_the_mlp_and_refuses_the_cnn(tmp_path):
    out = tmp_path / "w"
    assert main(["compare", "--quick", "--models", "mlp", "--methods", "none,wbnp", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["summary"]
    assert {r["method"] for r in rows} == {"none", "wbnp"} and all(r["status"] == "ok" for r in rows)
    with pytest.raises(SystemExit):  # a usage error (tests/test_cli.py checks the message)
        main(["compare", "--quick", "--models", "cnn", "--methods", "wbnp", "--out", str(out)])


def test_format_table_prints_one_line_per_summary_row():
    from bnp.experiments.compare import HEADER, format_table

    ok = dict(model="mlp", method="bnp", batch_size=8, lr=0.1, lr_at_edge=False, status="ok", error="",
              unexpected_failures=0, expected_failure=False, final_loss_mean=0.5, final_loss_std=0.01,
              test_accuracy_mean=0.8, test_accuracy_std=0.02, seconds_mean=1.0)
    failed = {**ok, "method": "bn", "batch_size": 1, "lr": None, "status": "failed", "expected_failure": True,
              "error": "one value per channel"}
    lines = format_table([ok, failed]).splitlines()
    assert lines[0] == HEADER and set(lines[1]) == {"-"}
    assert "0.5000 ± 0.0100" in lines[2] and "80.0 ± 2.0 %" in lines[2]
    assert lines[3].endswith("failed (expected): one value per channel")


# -- the learning-rate search --------------------------------------------------------
def test_lr_search_extends_the_grid_past_the_edge_by_the_neighbouring_ratio():
    """The default grid: x3 upward (0.3 -> 0.9 -> 2.7; 8.1 is above lr_max 3), /3.33 downward."""
    s = LrSearch((0.3, 0.1, 0.03, 0.01, 0.003), max_extensions=3, lr_max=3.0)
    assert (s.factor_up, s.factor_down) == (pytest.approx(3.0), pytest.approx(10 / 3))
    for lr in s.tried:
        s.record(lr, -lr)  # the larger the better: the search walks upward
    assert s.next_lr() == 0.9
    s.record(0.9, -0.9)
    assert s.next_lr() == 2.7
    s.record(2.7, -2.7)
    assert s.next_lr() is None and s.best == 2.7 and s.at_edge  # stopped by the ceiling, not by the count
    down = LrSearch((0.3, 0.1, 0.03, 0.01, 0.003), max_extensions=3)
    for lr in down.tried:
        down.record(lr, lr)
    got = []
    while (lr := down.next_lr()) is not None:
        got.append(lr)
        down.record(lr, lr)
    assert got == [0.0009, 0.00027, 8.1e-05] and down.at_edge  # stopped by the count


def test_lr_search_without_a_finite_score():
    diverged = LrSearch((0.1, 0.01), max_extensions=2)
    for lr in diverged.tried:
        diverged.record(lr, math.inf, diverged=True)
    assert diverged.next_lr() == 0.001  # every rate diverged: smaller rates are the cure
    diverged.record(0.001, 0.5)
    assert diverged.next_lr() == 0.0001  # ... and the best is still at the low edge
    diverged.record(0.0001, 0.7)
    assert diverged.next_lr() is None and diverged.best == 0.001 and not diverged.at_edge
    failed = LrSearch((0.1, 0.01))
    for lr in failed.tried:
        failed.record(lr, math.inf, diverged=False)  # failed at every rate: nothing to tune
    assert failed.next_lr() is None and failed.best is None and not failed.at_edge
    single = LrSearch((0.1,))
    single.record(0.1, 1.0)
    assert single.next_lr() is None and single.best == 0.1 and not single.at_edge  # a fixed rate
    with pytest.raises(RuntimeError, match="no score yet"):
        LrSearch((0.1, 0.01)).next_lr()
    with pytest.raises(ValueError, match="lr_max"):
        LrSearch((0.1, 0.01), lr_max=0.05)


def test_compare_lr_grid_extension_with_deterministic_scores(tmp_path, monkeypatch):
    """A fake run whose final loss is (log10 lr - log10 best)^2, a different best per method, through
    the whole ``compare.run``: best inside the grid, beyond the low edge, beyond the high edge, and
    beyond both limits (the lr ceiling upward, the count downward)."""
    optimum = {"none": 0.03, "bn": 0.001, "bnp": 0.5, "fn": 100.0, "wbnp": 1e-6}

    def fake_run_one(kind, method, batch_size, lr, seed, arrays, config):
        loss = (math.log10(lr) - math.log10(optimum[method])) ** 2
        return dict(model=kind, method=method, batch_size=batch_size, lr=lr, seed=seed, status="ok",
                    expected_failure=False, error="", final_loss=loss, train_accuracy=0.5, test_accuracy=0.5,
                    seconds=0.0, losses=[1.0 + loss])

    monkeypatch.setattr(compare, "run_one", fake_run_one)
    config = compare.CompareConfig.quick_config(models=("mlp",), methods=tuple(optimum), batch_sizes=(8,),
                                                lrs=(0.1, 0.03, 0.01), lr_extensions=3, lr_max=3.0,
                                                seeds=2, out=str(tmp_path))
    result = compare.run(config, log=lambda line: None, jobs=1)
    rows = {r["method"]: r for r in result["summary"]}
    assert rows["none"]["lrs_tried"] == [0.1, 0.03, 0.01] and rows["none"]["lr"] == 0.03  # inside
    assert rows["bn"]["lrs_tried"] == [0.1, 0.03, 0.01, 0.00333333, 0.00111111, 0.00037037]  # low edge, then inside
    assert rows["bn"]["lr"] == 0.00111111
    assert rows["bnp"]["lrs_tried"] == [0.1, 0.03, 0.01, 0.333333, 1.11111] and rows["bnp"]["lr"] == 0.333333
    assert rows["fn"]["lrs_tried"] == [0.1, 0.03, 0.01, 0.333333, 1.11111]  # 3.7037 would pass lr_max = 3
    assert rows["wbnp"]["lrs_tried"][3:] == [0.00333333, 0.00111111, 0.00037037]  # the count limit
    assert [m for m, r in rows.items() if r["lr_at_edge"]] == ["fn", "wbnp"]
    for r in rows.values():  # the other seed ran at the chosen rate
        seeds = [run for run in result["runs"] if run["method"] == r["method"] and run["role"] == "seed"]
        assert [(run["seed"], run["lr"]) for run in seeds] == [(1, r["lr"])]
    table = (tmp_path / "table.md").read_text()
    assert "| mlp | fn | 8 | 1.11111\\* |" in table and "the search stopped at its limit" in table


def test_quick_subsets_every_data_set():
    pytest.importorskip("sklearn")
    config = compare.CompareConfig.quick_config(data="digits")
    X_train, _, X_test, _, n_classes = compare.load_data(config, image=True)
    assert X_train.shape == (config.n_train, 1, 8, 8) and len(X_test) == config.n_test and n_classes == 10
    full = compare.load_data(compare.CompareConfig(data="digits"), image=False)
    assert len(full[0]) > 1000  # without --quick: all of digits' training part


def test_every_committed_results_table_is_quoted_verbatim_in_the_readme():
    """Numbers that cannot drift: each ``docs/results/<name>/table.md`` (written by ``bnp compare``
    with that directory as ``--out``) appears in README.md exactly as the command wrote it."""
    tables = sorted((ROOT / "docs" / "results").glob("*/table.md"))
    if not tables:
        pytest.skip("no committed results under docs/results/ yet")
    readme = (ROOT / "README.md").read_text()
    for table in tables:
        text = table.read_text().strip()
        assert text.startswith("`bnp compare")
        assert text in readme, f"README.md does not quote {table.relative_to(ROOT)} verbatim: regenerate or re-paste"
