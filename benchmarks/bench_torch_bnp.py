"""bnp.torch.BNP's overhead on a PyTorch training step over plain SGD, measured in one run.

    python benchmarks/bench_torch_bnp.py [--quick] [--threads 1] [--clock auto|cpu|wall] [--rounds N]

Models, float32: the 784-256-256-10 ReLU MLP at batch 128, and a small
ResNet-style convnet (a 3x3 stem, two residual blocks of two 3x3 convolutions,
a stride-2 convolution, global average pooling and a linear head; 1x28x28
inputs, batch 64). A step is forward, cross-entropy, backward, [BNP.step()],
SGD update. The plain and the BNP step alternate, so both see the same load;
each of several rounds takes the median per variant, and the table reports
the smallest median of the rounds (the least disturbed estimate on a shared
machine) and the overhead ratio. Target: at most 5 %. On CPU, and on CUDA too
when a GPU is present.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from common import limit_threads, parser, settings
from torch import nn

import bnp.torch as bt

TARGET = 0.05


class Block(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 convolutions, padding 1."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


def small_resnet(channels: int = 16, classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), Block(channels), Block(channels),
        nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * channels, classes))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def make_step(build: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, precondition: bool):
    torch.manual_seed(0)
    model = build().to(x.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    pre = bt.BNP(model) if precondition else None

    def step() -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if pre is not None:
            pre.step()
        opt.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize()  # the timer sees the whole step

    return step


def main() -> None:
    args = parser(__doc__).parse_args()
    cpu_timer = settings(args, repeats=30, quick_repeats=10)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, float32; {cpu_timer.describe(args.threads)} (wall time on CUDA)")
    print(f"{'model':34} {'device':6} {'SGD ms':>8} {'SGD+BNP ms':>11} {'ratio':>7}  target")
    with limit_threads(args.threads):
        for device in devices:
            g = torch.Generator().manual_seed(0)
            cases = [
                ("mlp 784-256-256-10, batch 128", mlp, torch.randn(128, 784, generator=g) + 1.0, 128),
                ("small resnet, batch 64, 1x28x28", small_resnet, torch.randn(64, 1, 28, 28, generator=g) + 1.0, 64),
            ]
            for name, build, x, n in cases:
                x, y = x.to(device), torch.randint(0, 10, (n,), generator=g).to(device)
                timer = cpu_timer if device.type == "cpu" else dataclasses.replace(cpu_timer, clock_name="wall")
                t = timer.measure({"plain": make_step(build, x, y, False), "bnp": make_step(build, x, y, True)})
                plain, with_bnp = 1e3 * t["plain"], 1e3 * t["bnp"]
                ratio = with_bnp / plain
                verdict = "ok" if ratio <= 1 + TARGET else "MISSED"
                print(f"{name:34} {device.type:6} {plain:8.3f} {with_bnp:11.3f} {ratio:7.3f}  <= "
                      f"{1 + TARGET:.2f} {verdict}")


if __name__ == "__main__":
    main()
