"""bnp.torch.BNP under DistributedDataParallel: k processes on local batches equal one process on their union.

The test starts two processes itself (gloo backend, CPU, 127.0.0.1 only, a free
port, bounded time): this file run as a script is the worker. Each process
records the statistics and the preconditioned gradients after every step; the
test compares them, in float64, with one process on the concatenated batches.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import bnp.torch as bt  # noqa: E402  (needs torch)

ROOT = Path(__file__).resolve().parents[1]
WORLD = 2
TIMEOUT_S = 120
TOL = 1e-10

# name -> (model, BNP options, per step the local batch sizes of the processes, forward passes per step)
SCENARIOS = {
    "conv-channel-equal": ("conv", {"rho": 0.9}, [(4, 4), (3, 3), (2, 2)], 1),
    "conv-channel-group": ("conv", {"rho": 0.9, "process_group": "new"}, [(2, 5), (4, 4)], 1),  # an explicit group
    "conv-patch-unequal": ("conv", {"rho": 0.9, "conv_statistics": "patch"}, [(3, 5), (1, 6), (6, 1)], 1),
    "mlp-whiten-unequal": ("mlp", {"rho": 0.0, "whiten": True}, [(2, 7), (5, 1), (4, 4)], 1),
    "mlp-uncorrected-unequal": ("mlp", {"rho": 0.9, "bias_correction": False}, [(1, 3), (6, 2), (2, 5)], 1),
    "mlp-two-forwards": ("mlp", {"rho": 0.9}, [(4, 6), (3, 2)], 2),  # held statistics pool the passes
}


def _model(kind: str) -> torch.nn.Sequential:
    torch.manual_seed(0)
    tn = torch.nn
    if kind == "mlp":
        model = tn.Sequential(tn.Linear(5, 6), tn.ReLU(), tn.Linear(6, 4, bias=False), tn.Tanh(), tn.Linear(4, 3))
    else:
        model = tn.Sequential(tn.Conv2d(2, 4, 3, stride=2, padding=1), tn.ReLU(),
                              tn.Conv2d(4, 3, 3, padding=1, bias=False), tn.ReLU(), tn.Flatten(), tn.Linear(27, 3))
    return model.double()


def _data(kind: str, sizes: list[tuple[int, ...]], seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One global batch per step (off-centre, badly scaled), the processes' parts in rank order."""
    rng = np.random.default_rng(seed)
    batches = []
    for parts in sizes:
        n = sum(parts)
        if kind == "mlp":
            x = rng.standard_normal((n, 5)) * np.array([1.0, 10.0, 0.1, 3.0, 1.0]) + 4.0
        else:
            x = rng.standard_normal((n, 2, 6, 5)) * np.array([1.0, 5.0])[None, :, None, None] + 3.0
        batches.append((torch.tensor(x), torch.tensor(rng.integers(0, 3, n))))
    return batches


def _train(model, pre, batches, totals, forwards: int, run_forward, backward: bool) -> list[list[torch.Tensor]]:
    """Steps of SGD with BNP; per step the statistics and (if ``backward``) the preconditioned gradients.

    ``totals``: the global batch size of each step (the loss is a mean over the global batch).
    """
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    records = []
    for (x, y), total in zip(batches, totals, strict=True):
        opt.zero_grad()
        outputs = [run_forward(chunk) for chunk in torch.tensor_split(x, forwards)]
        if backward:
            # sum over the local samples / global batch, times WORLD: DDP's average is then the global mean
            scale = (WORLD if torch.distributed.is_initialized() else 1) / total
            loss = torch.nn.functional.cross_entropy(torch.cat(outputs), y, reduction="sum") * scale
            loss.backward()
        pre.step()
        record = []
        for layer in pre.layers:
            record += list(pre.statistics(layer))
            if backward:
                record += [p.grad.clone() for p in layer.parameters()]
        records.append(record)
        if backward:
            opt.step()
    return records


def _worker(rank: int, port: int, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                         world_size=WORLD, timeout=timedelta(seconds=TIMEOUT_S / 2))
    collectives = 0
    all_gather = torch.distributed.all_gather

    def counting_all_gather(*args, **kwargs):
        nonlocal collectives
        collectives += 1
        return all_gather(*args, **kwargs)

    results = {}
    for name, (kind, options, sizes, forwards) in SCENARIOS.items():
        model = _model(kind)
        backward = forwards == 1
        wrapped = torch.nn.parallel.DistributedDataParallel(model) if backward else model
        if options.get("process_group") == "new":
            options = {**options, "process_group": torch.distributed.new_group(list(range(WORLD)))}
        pre = bt.BNP(model, **options)
        local = []
        for (x, y), parts in zip(_data(kind, sizes), sizes, strict=True):
            start = sum(parts[:rank])
            local.append((x[start:start + parts[rank]], y[start:start + parts[rank]]))
        torch.distributed.all_gather = counting_all_gather
        collectives = 0
        records = _train(model, pre, local, [sum(p) for p in sizes], forwards, wrapped, backward)
        torch.distributed.all_gather = all_gather
        results[name] = records
        results[f"{name}.collectives"] = [torch.tensor(collectives)]
    # statistics held but not merged yet are an error, not a silently stale answer
    model = _model("mlp")
    pre = bt.BNP(model)
    model(_data("mlp", [(2, 2)])[0][0][2 * rank:2 * rank + 2])
    try:
        pre.statistics(model[0])
        results["pending-error"] = [torch.tensor(0)]
    except RuntimeError as error:
        results["pending-error"] = [torch.tensor(int("not yet merged" in str(error)))]
    pre.step()
    results["after-step"] = list(pre.statistics(model[0]))
    torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only, whatever the host name resolves to
    workers = [subprocess.Popen([sys.executable, __file__, str(rank), str(port), str(out)], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in range(WORLD)]
    logs = []
    try:
        for worker in workers:
            logs.append(worker.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        pytest.fail(f"the {WORLD} DDP workers did not finish within {TIMEOUT_S} s")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for rank, (worker, log) in enumerate(zip(workers, logs, strict=True)):
        assert worker.returncode == 0, f"rank {rank} failed:\n{log}"
    return [torch.load(out / f"rank{rank}.pt", weights_only=True) for rank in range(WORLD)]


def _single_process(name: str) -> list[list[torch.Tensor]]:
    kind, options, sizes, forwards = SCENARIOS[name]
    model = _model(kind)
    pre = bt.BNP(model, **{k: v for k, v in options.items() if k != "process_group"})
    return _train(model, pre, _data(kind, sizes), [sum(p) for p in sizes], 1, model, forwards == 1)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_ddp_equals_one_process_on_the_whole_batch(distributed_results, name):
    expected = _single_process(name)
    for rank, results in enumerate(distributed_results):
        assert len(results[name]) == len(expected)
        for step, (got, want) in enumerate(zip(results[name], expected, strict=True)):
            assert len(got) == len(want)
            for k, (a, b) in enumerate(zip(got, want, strict=True)):
                assert a.dtype == torch.float64
                scale = max(b.abs().max().item(), 1e-300)
                error = (a - b).abs().max().item() / scale
                assert error <= TOL, f"rank {rank}, step {step}, entry {k}: relative error {error:.3g}"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_one_collective_per_step(distributed_results, name):
    steps = len(SCENARIOS[name][2])
    for results in distributed_results:
        assert int(results[f"{name}.collectives"][0]) == steps


def test_statistics_not_yet_merged_raise(distributed_results):
    model = _model("mlp")
    pre = bt.BNP(model)
    model(_data("mlp", [(2, 2)])[0][0])
    expected = pre.statistics(model[0])
    for results in distributed_results:
        assert int(results["pending-error"][0]) == 1
        for got, want in zip(results["after-step"], expected, strict=True):
            assert (got - want).abs().max() <= TOL * want.abs().max()


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
