"""bnp.train: fit learns, follows the documented step order, stops on NaN; evaluate; progress bar."""

import math
import sys

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp.data import DataLoader, synthetic
from bnp.nn import models
from bnp.optim import SGD, Adam
from bnp.train import History, evaluate, fit


def _mlp_setup(n_train=300, seed=0, batch_size=16):
    ds = synthetic(n_train=n_train, n_test=100, seed=seed)
    model = models.mlp([20, 32, 4], rng=seed)
    return ds, model, DataLoader((ds.X_train, ds.y_train), batch_size=batch_size, seed=seed)


def test_fit_trains_an_mlp_on_synthetic_data():
    ds, model, loader = _mlp_setup()
    history = fit(model, loader, Adam(model.parameters(), lr=1e-2), epochs=10, progress=False)
    start = np.mean(history.step_losses[:5])
    assert isinstance(history, History) and history.steps == 10 * len(loader) == len(history.step_losses)
    assert history.epoch_losses[-1] < 0.5 * start, (start, history.epoch_losses)
    assert history.train_accuracy[-1] > 0.6 and history.epochs == 10
    assert history.wall_time > 0 and len(history.epoch_times) == 10


def test_fit_trains_the_small_cnn_on_synthetic_images():
    ds = synthetic(n_train=200, n_test=50, seed=0, image_shape=(8, 8))
    model = models.small_cnn(1, ds.n_classes, image_size=8, rng=0)
    loader = DataLoader((ds.X_train, ds.y_train), batch_size=16, seed=0)
    history = fit(model, loader, Adam(model.parameters(), lr=1e-2), epochs=8, progress=False)
    assert history.epoch_losses[-1] < 0.75 * np.mean(history.step_losses[:5]), history.epoch_losses
    assert history.train_accuracy[-1] > history.train_accuracy[0] + 0.15


def test_fit_equals_the_hand_written_loop_with_a_preconditioner():
    """fit's step order (train, forward, loss, zero_grad, backward, pre.step, opt.step) reproduced by hand."""
    from bnp.preconditioner import BNP

    ds = synthetic(n_train=64, n_test=10, seed=3)
    runs = []
    for by_hand in (False, True):
        model = models.mlp([20, 8, 4], norm="bn", rng=1)
        loader = DataLoader((ds.X_train, ds.y_train), batch_size=8, seed=2)
        opt, pre = SGD(model.parameters(), lr=0.05, momentum=0.9), BNP(model, rho=0.9)
        if by_hand:
            losses = []
            for _ in range(2):
                for x, y in loader:
                    model.train()
                    loss = F.cross_entropy(model(x), y)
                    opt.zero_grad()
                    loss.backward()
                    pre.step()
                    opt.step()
                    losses.append(loss.item())
        else:
            losses = fit(model, loader, opt, epochs=2, preconditioner=pre, progress=False).step_losses
        runs.append((losses, [p.numpy() for p in model.parameters()]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_preconditioner_runs_after_backward_and_before_the_update():
    _, model, loader = _mlp_setup(n_train=32)
    before = [p.numpy().copy() for p in model.parameters()]

    class ZeroGrads:  # sees the fresh gradients, and cancels the update
        calls = 0

        def step(self):
            for p in model.parameters():
                assert p.grad is not None
                p.grad.data[...] = 0
            ZeroGrads.calls += 1

    fit(model, loader, SGD(model.parameters(), lr=0.5), epochs=2, preconditioner=ZeroGrads(), progress=False)
    assert ZeroGrads.calls == 2 * len(loader)
    for a, p in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, p.numpy())


def test_steps_and_early_stopping():
    _, model, loader = _mlp_setup(n_train=48)  # 3 batches per epoch
    history = fit(model, loader, SGD(model.parameters(), lr=0.01), epochs=100, steps=7, progress=False)
    assert history.steps == len(history.step_losses) == 7 and history.epochs == 3
    seen = []
    history = fit(model, loader, SGD(model.parameters(), lr=0.01), epochs=5, progress=False,
                  callback=lambda info: seen.append((info.step, info.epoch, info.batch)) or info.step == 5)
    assert history.stopped_early and history.steps == 5
    assert seen == [(1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 2, 1), (5, 2, 2)]


def test_epoch_loss_is_the_sample_weighted_mean_and_eval_runs_each_epoch():
    ds, model, loader = _mlp_setup(n_train=40, batch_size=16)  # batches of 16, 16, 8
    test_loader = DataLoader((ds.X_test, ds.y_test), batch_size=32, shuffle=False)
    history = fit(model, loader, SGD(model.parameters(), lr=0.01), epochs=2, eval_loader=test_loader, progress=False)
    first = history.step_losses[:3]
    assert history.epoch_losses[0] == pytest.approx((16 * first[0] + 16 * first[1] + 8 * first[2]) / 40)
    assert len(history.eval_loss) == len(history.eval_accuracy) == 2
    assert history.eval_loss[-1] == pytest.approx(evaluate(model, test_loader)["loss"], rel=1e-12)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_nan_loss_stops_training_and_names_the_step(bad):
    _, model, loader = _mlp_setup(n_train=64)  # 4 batches per epoch
    calls = {"n": 0}
    snapshots = []

    def loss_fn(outputs, y):
        calls["n"] += 1
        loss = F.cross_entropy(outputs, y)
        return loss * bad if calls["n"] == 6 else loss

    def remember(info):
        snapshots.append([p.numpy().copy() for p in model.parameters()])

    word = "nan" if math.isnan(bad) else "inf"
    with pytest.raises(FloatingPointError, match=rf"loss became {word} at step 6 \(epoch 2, batch 2\)"):
        fit(model, loader, SGD(model.parameters(), lr=0.1), epochs=3, loss_fn=loss_fn, callback=remember,
            progress=False)
    assert len(snapshots) == 5  # the bad loss was never back-propagated into the parameters
    for a, p in zip(snapshots[-1], model.parameters(), strict=True):
        np.testing.assert_array_equal(a, p.numpy())


def test_evaluate_matches_a_direct_computation_and_restores_the_mode():
    ds = synthetic(n_train=50, n_test=37, seed=1)
    model = models.mlp([20, 16, 4], norm="bn", rng=0)
    fit(model, DataLoader((ds.X_train, ds.y_train), batch_size=10), SGD(model.parameters(), lr=0.05), progress=False)
    loader = DataLoader((ds.X_test, ds.y_test), batch_size=8, shuffle=False)
    for training in (True, False):
        model.train(training)
        metrics = evaluate(model, loader)
        assert all(m.training is training for m in model.modules())
        model.eval()
        logits = model(bnp.tensor(ds.X_test))  # eval mode: BN's running statistics, no batch dependence
        expected_loss = F.cross_entropy(logits, bnp.tensor(ds.y_test)).item()
        expected_acc = float((logits.numpy().argmax(axis=1) == ds.y_test).mean())
        assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-12)
        assert metrics["accuracy"] == pytest.approx(expected_acc) and metrics["samples"] == 37

    def broken(outputs, y):
        raise RuntimeError("boom")

    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        evaluate(model, loader, loss_fn=broken)
    assert model.training  # restored even when evaluation fails


def test_evaluate_records_no_graph():
    ds, model, _ = _mlp_setup(n_train=20)
    evaluate(model, DataLoader((ds.X_test, ds.y_test), batch_size=50, shuffle=False))
    assert all(p.grad is None for p in model.parameters())
    assert bnp.is_grad_enabled()  # grad mode restored after no_grad


class _FakeTerminal:
    def __init__(self):
        self.text = []

    def isatty(self):
        return True

    def write(self, s):
        self.text.append(s)

    def flush(self):
        pass


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    _, model, loader = _mlp_setup(n_train=32)
    fit(model, loader, SGD(model.parameters(), lr=0.01), epochs=1)  # capsys: stderr is not a terminal
    assert capsys.readouterr().err == ""
    terminal = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    fit(model, loader, SGD(model.parameters(), lr=0.01), epochs=1)
    assert "step" in "".join(terminal.text)  # tqdm drew a bar
    terminal.text.clear()
    fit(model, loader, SGD(model.parameters(), lr=0.01), epochs=1, progress=False)
    assert terminal.text == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), "epochs must be an integer >= 1"),
    (dict(steps=0), "steps must be an integer >= 1"),
    (dict(loss_fn=lambda out, y: out), "loss_fn must return a scalar Tensor"),
])
def test_fit_rejects_bad_arguments(kwargs, message):
    _, model, loader = _mlp_setup(n_train=16)
    error = TypeError if "loss_fn" in kwargs else ValueError
    with pytest.raises(error, match=message):
        fit(model, loader, SGD(model.parameters(), lr=0.01), progress=False, **kwargs)
