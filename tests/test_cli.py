"""The ``bnp compare`` and ``bnp hessian`` command lines: every argument checked before any
training (a usage error, exit status 2, one line naming the argument), ``--quick`` changing
only defaults, results kept when a run fails or is interrupted, a closed pipe ending quietly,
standard JSON, and the same results for any number of worker processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnp.__main__ import main
from bnp.experiments import compare, hessian_study

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--quick", "--models", "mlp", "--methods", "none,bnp", "--batch-sizes", "16"]


def _usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("args, message", [
    (["--methods", "none,batchnorm"], "unknown method 'batchnorm'; choose from none,bn,bnp,fn,wbnp"),
    (["--methods", ""], "argument --methods: expected a comma list of methods, got ''"),
    (["--models", "resnet"], "argument --models: unknown model 'resnet'; choose from mlp,cnn"),
    (["--models", "mlp,mlp"], "argument --models: model listed twice"),
    (["--data", "cifar"], "argument --data: invalid choice: 'cifar'"),
    (["--batch-sizes", "8,0"], "argument --batch-sizes: in '8,0': expected an integer >= 1, got '0'"),
    (["--batch-sizes", "8,,16"], "argument --batch-sizes: expected a comma list of batch sizes >= 1"),
    (["--batch-sizes", "1.5"], "argument --batch-sizes: in '1.5': expected an integer >= 1, got '1.5'"),
    (["--epochs", "0"], "argument --epochs: expected an integer >= 1, got '0'"),
    (["--seeds", "-2"], "argument --seeds: expected an integer >= 1, got '-2'"),
    (["--lrs", ","], "argument --lrs: expected a comma list of positive learning rates, got ','"),
    (["--lrs", "0.1,nan"], "argument --lrs: in '0.1,nan': expected a finite number in (0, inf), got 'nan'"),
    (["--lrs", "inf"], "argument --lrs: in 'inf': expected a finite number in (0, inf), got 'inf'"),
    (["--lrs", "0.1,-0.1"], "argument --lrs: in '0.1,-0.1': expected a finite number in (0, inf), got '-0.1'"),
    (["--lrs", "0.1,0.1"], "argument --lrs: a value is listed twice in '0.1,0.1'"),
    (["--lr-max", "nan"], "argument --lr-max: expected a finite number in (0, inf), got 'nan'"),
    (["--lr-extensions", "-1"], "argument --lr-extensions: expected an integer >= 0, got '-1'"),
    (["--lrs", "5", "--lr-max", "3"], "lr_max (--lr-max 3) is below the largest rate of the grid (--lrs: 5)"),
    (["--rho", "1"], "argument --rho: expected a finite number in [0, 1), got '1'"),
    (["--rho", "-0.1"], "argument --rho: expected a finite number in [0, 1), got '-0.1'"),
    (["--eps", "-0.001"], "argument --eps: expected a finite number in [0, inf), got '-0.001'"),
    (["--eps", "inf"], "argument --eps: expected a finite number in [0, inf), got 'inf'"),
    (["--momentum", "1"], "argument --momentum: expected a finite number in [0, 1), got '1'"),
    (["--jobs", "0"], "argument --jobs: expected an integer >= 1, got '0'"),
    (["--jobs", "2", "--progress"], "--progress draws one run's bars at a time: use it with --jobs 1"),
    (["--models", "cnn", "--methods", "wbnp"], "method 'wbnp' (whitening BNP) supports Linear layers only"),
])
def test_compare_usage_errors(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "run", lambda *a, **k: pytest.fail("trained despite a bad argument"))
    line = _usage_error(["compare", "--quick", "--out", str(tmp_path / "o"), *args], capsys)
    assert line.startswith("bnp compare: error: ") and message in line
    assert not (tmp_path / "o").exists()  # nothing written either


def test_an_output_directory_that_cannot_be_written_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = _usage_error(["compare", "--quick", "--out", str(blocker / "sub")], capsys)
    assert f"argument --out: cannot write to '{blocker / 'sub'}': '{blocker}' is a file, not a directory" in line
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        line = _usage_error(["hessian", "--out", str(locked / "out")], capsys)
        assert "argument --out: cannot write to" in line and "is not writable" in line


@pytest.mark.parametrize("args, message", [
    (["--models", "rnn"], "argument --models: unknown model 'rnn'; choose from mlp,cnn"),
    (["--methods", "fn"], "argument --methods: unknown method 'fn'; choose from none,bn,bnp"),
    (["--checkpoints", "0,-5"], "argument --checkpoints: in '0,-5': expected an integer >= 0, got '-5'"),
    (["--checkpoints", "10,10"], "argument --checkpoints: a value is listed twice in '10,10'"),
    (["--checkpoints", ""], "argument --checkpoints: expected a comma list of training steps >= 0"),
    (["--eval-size", "0"], "argument --eval-size: expected an integer >= 1, got '0'"),
    (["--eval-size", "5000"], "argument --eval-size: expected at most 1000"),
])
def test_hessian_usage_errors(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(hessian_study, "run", lambda *a, **k: pytest.fail("trained despite a bad argument"))
    line = _usage_error(["hessian", "--quick", "--out", str(tmp_path / "o"), *args], capsys)
    assert line.startswith("bnp hessian: error: ") and message in line


def _captured_config(module, monkeypatch):
    seen = {}

    def fake_run(config, *args, **kwargs):
        seen["config"] = config
        return {"runs": [], "summary": [], "config": {}, "complete": True}

    monkeypatch.setattr(module, "run", fake_run)
    monkeypatch.setattr(module, "_footnotes", lambda result: [], raising=False)
    return seen


def test_quick_changes_only_the_defaults_of_options_not_given(tmp_path, monkeypatch):
    seen = _captured_config(compare, monkeypatch)
    full, quick = compare.CompareConfig(), compare.CompareConfig.quick_config()
    # --seeds 3 and --batch-sizes 1,8,64 are the full run's defaults: given explicitly, they still win over --quick
    argv = ["compare", "--quick", "--epochs", "2", "--seeds", "3", "--batch-sizes", "1,8,64", "--out", str(tmp_path)]
    assert main(argv) == 0
    c = seen["config"]
    assert (c.epochs, c.seeds, c.batch_sizes) == (2, 3, (1, 8, 64))
    assert (c.n_train, c.lrs, c.hidden) == (quick.n_train, quick.lrs, quick.hidden)  # the rest: quick defaults
    assert quick.epochs != 2 and quick.seeds != 3
    assert main(["compare", "--epochs", "1", "--out", str(tmp_path)]) == 0  # without --quick: the full defaults
    c = seen["config"]
    assert c.epochs == 1 and (c.seeds, c.n_train, c.lrs) == (full.seeds, full.n_train, full.lrs)

    seen = _captured_config(hessian_study, monkeypatch)
    full_h = hessian_study.HessianConfig()
    assert main(["hessian", "--quick", "--eval-size", str(full_h.eval_size), "--out", str(tmp_path)]) == 0
    c = seen["config"]
    assert c.eval_size == full_h.eval_size != hessian_study.HessianConfig.quick_config().eval_size
    assert c.quick and c.checkpoints == hessian_study.HessianConfig.quick_config().checkpoints


def _fake_record(kind, method, batch_size, lr, seed, loss=1.0):
    return dict(model=kind, method=method, batch_size=batch_size, lr=lr, seed=seed, status="ok",
                expected_failure=False, error="", final_loss=loss, train_accuracy=0.5, test_accuracy=0.5,
                seconds=0.0, losses=[loss])


def test_results_are_written_as_rows_finish_and_kept_on_interrupt(tmp_path, monkeypatch, capsys):
    """Serial order: the seed-0 trials of both rows, then row none's second seed (the row is done and
    written), then row bnp's second seed, interrupted (Ctrl-C). The finished row stays on disk."""
    def fake_run_one(kind, method, batch_size, lr, seed, arrays, config):
        if method == "bnp" and seed == 1:
            raise KeyboardInterrupt
        return _fake_record(kind, method, batch_size, lr, seed, loss=1 + abs(lr - 0.03))

    monkeypatch.setattr(compare, "run_one", fake_run_one)
    out = tmp_path / "o"
    argv = ["compare", *TINY, "--seeds", "2", "--lrs", "0.1,0.03,0.01", "--jobs", "1", "--out", str(out)]
    assert main(argv) == 130
    assert "interrupted; the rows finished so far are in" in capsys.readouterr().err
    result = json.loads((out / "results.json").read_text())
    assert not result["complete"]
    assert [(r["method"], r["lr"], r["seeds"]) for r in result["summary"]] == [("none", 0.03, 2)]
    assert [(r["lr"], r["seed"]) for r in result["runs"]] == [(0.1, 0), (0.03, 0), (0.01, 0), (0.03, 1)]
    assert (out / "summary.csv").read_text().count("\n") == 2
    table = (out / "table.md").read_text()
    assert "| mlp | none | 16 | 0.03 |" in table and "incomplete: 1 of 2 rows finished." in table


def test_an_unexpected_failure_is_recorded_reported_and_sets_the_exit_status(tmp_path, monkeypatch, capsys):
    def fake_run_one(kind, method, batch_size, lr, seed, arrays, config):
        if method == "none" and seed == 1:
            raise RuntimeError("disk on fire")
        return _fake_record(kind, method, batch_size, lr, seed, loss=1 + abs(lr - 0.03))

    monkeypatch.setattr(compare, "run_one", fake_run_one)
    out = tmp_path / "o"
    argv = ["compare", *TINY, "--seeds", "2", "--lrs", "0.1,0.03,0.01", "--jobs", "1", "--out", str(out)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "failed unexpectedly: RuntimeError: disk on fire" in captured.err
    assert "1 run(s) failed unexpectedly" in captured.err
    assert "FAILED (unexpected) in 1 of 2 seeds: RuntimeError: disk on fire" in captured.out
    result = json.loads((out / "results.json").read_text())
    assert result["complete"] and [r["status"] for r in result["summary"]] == ["partial", "ok"]  # bnp still ran
    broken = [r for r in result["runs"] if r["status"] == "failed"]
    assert len(broken) == 1 and not broken[0]["expected_failure"] and "disk on fire" in broken[0]["traceback"]


def test_the_expected_failure_is_a_result_not_an_error(tmp_path, capsys):
    """BN at batch size 1 (one value per channel) fails at every rate: reported, exit status 0; the
    summary's missing numbers are JSON null, never the non-standard NaN or Infinity tokens."""
    out = tmp_path / "o"
    assert main(["compare", "--quick", "--models", "mlp", "--methods", "bn", "--batch-sizes", "1", "--jobs", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "failed (expected): BatchNorm1d(16, eps=1e-05, momentum=0.1, affine=True): batch_norm: expected more " \
           "than 1 value per channel" in printed
    assert "a result the experiment exists to show, not an error" in printed

    def no_constants(token):
        raise AssertionError(f"results.json holds the non-standard JSON token {token}")

    text = (out / "results.json").read_text()
    row = json.loads(text, parse_constant=no_constants)["summary"][0]
    assert row["status"] == "failed" and row["expected_failure"] and row["lr"] is None
    assert row["final_loss_mean"] is None and row["test_accuracy_std"] is None
    assert row["lrs_tried"] == [0.1, 0.01] and not row["lr_at_edge"]  # nothing to tune, nothing extended


def _subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.parametrize("argv, lines", [
    (["compare", *TINY, "--jobs", "1"], 4),  # the reader leaves after the header: the next row's line ends the run
    (["hessian", "--quick", "--models", "mlp"], 1),  # ... after the first line: the header ends it
])
def test_a_closed_pipe_ends_the_command_quietly(argv, lines, tmp_path):
    """``bnp compare | head -4``, ``bnp hessian | head -1``: no traceback, the status a shell gives SIGPIPE."""
    proc = subprocess.Popen([sys.executable, "-m", "bnp", *argv, "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_subprocess_env(), cwd=ROOT)
    read = [proc.stdout.readline() for _ in range(lines)]
    assert any(line.startswith("model method") for line in read) or argv[0] == "hessian"
    proc.stdout.close()
    status = proc.wait(timeout=120)
    err = proc.stderr.read()
    proc.stderr.close()
    assert err == "" and status == 141


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def test_ctrl_c_with_worker_processes_ends_quietly_and_keeps_the_finished_rows(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while two workers train: the parent
    alone handles it, ends the workers at once and exits with 130; no traceback, no leaked semaphore."""
    out = tmp_path / "o"
    argv = [sys.executable, "-m", "bnp", "compare", "--models", "mlp", "--jobs", "2", "--out", str(out)]
    proc = subprocess.Popen(argv,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_subprocess_env(), cwd=ROOT,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while not proc.stdout.readline().startswith("-----"):
        pass
    time.sleep(2.0)  # the workers are training now (the full mlp run takes a minute)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted; the rows finished so far are in" in err
    assert "Traceback" not in err and "leaked" not in err
    if (out / "results.json").exists():  # written after each finished row: complete JSON, never half a file
        assert not json.loads((out / "results.json").read_text())["complete"]


def _without_timings(path: Path) -> dict:
    result = json.loads(path.read_text())
    result.pop("execution")
    result["config"].pop("out")
    for r in result["runs"]:
        r.pop("seconds")
    for r in result["summary"]:
        r.pop("seconds_mean")
    return result


def test_results_are_identical_for_any_number_of_jobs_and_on_rerun(tmp_path):
    """Bit for bit (JSON floats are written exactly), timings aside: one process twice, then two workers."""
    argv = ["compare", "--quick", "--models", "mlp", "--methods", "none,bn,bnp", "--batch-sizes", "1,16",
            "--seeds", "2"]
    results = []
    for name, jobs in (("a", "1"), ("b", "1"), ("c", "2")):
        assert main([*argv, "--jobs", jobs, "--out", str(tmp_path / name)]) == 0
        results.append(_without_timings(tmp_path / name / "results.json"))
    assert results[0] == results[1] == results[2]
    tables = {(tmp_path / name / "table.md").read_text() for name in "abc"}
    assert len(tables) == 1  # no timings in it: a rerun writes the same text
    assert len(results[0]["runs"]) >= 3 * 2 * 2 and results[0]["complete"]
