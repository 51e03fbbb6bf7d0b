"""Train a PyTorch MLP with and without bnp.torch.BNP on bnp's synthetic data.

    PYTHONPATH=. python examples/torch_bnp.py

The data (``bnp.data.synthetic``) have the two defects BNP undoes: every
feature's mean is 3 standard deviations off zero, and the feature scales span
a factor of 100. The network is a 20-64-64-4 ReLU MLP in float32, trained
with plain SGD for 2 epochs at batch sizes 1 and 64, the protocol of
``bnp compare``: for each method and batch size the learning rate is the one
of (0.3, 0.1, 0.03, 0.01, 0.003) with the smallest final training loss (the
loss over the whole training set at the final weights); the table shows that
loss and the test accuracy. BNP needs only two lines::

    pre = bnp.torch.BNP(model)
    loss.backward(); pre.step(); optimizer.step()
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

import bnp.data
import bnp.torch

LRS = (0.3, 0.1, 0.03, 0.01, 0.003)
EPOCHS = 2


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))


def train(data, batch_size: int, lr: float, use_bnp: bool, seed: int = 0) -> tuple[float, float]:
    """(final training loss, test accuracy) after EPOCHS of SGD; (inf, nan) if the loss diverged."""
    X, y = torch.tensor(data.X_train, dtype=torch.float32), torch.tensor(data.y_train)
    model = make_model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    pre = bnp.torch.BNP(model) if use_bnp else None
    order = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(y), generator=order).split(batch_size):
            loss = nn.functional.cross_entropy(model(X[batch]), y[batch])
            if not math.isfinite(loss.item()):
                return math.inf, math.nan
            optimizer.zero_grad()
            loss.backward()
            if pre is not None:
                pre.step()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        final = nn.functional.cross_entropy(model(X), y).item()
        predictions = model(torch.tensor(data.X_test, dtype=torch.float32)).argmax(1)
        accuracy = (predictions == torch.tensor(data.y_test)).float().mean().item()
    return (final, accuracy) if math.isfinite(final) else (math.inf, math.nan)


def main() -> None:
    torch.set_num_threads(1)
    data = bnp.data.synthetic(n_train=1500, n_test=500, mean_shift=3.0, scale_spread=100.0, seed=0)
    print(f"{data.name}: {len(data.y_train)} train / {len(data.y_test)} test samples, 20 features, 4 classes")
    print(f"MLP 20-64-64-4, plain SGD, {EPOCHS} epochs, best lr of {LRS} by final training loss")
    print(f"{'method':8} {'batch':>5} {'lr':>6} {'final train loss':>17} {'test accuracy':>14} {'seconds':>8}")
    for batch_size in (1, 64):
        for method, use_bnp in (("SGD", False), ("SGD+BNP", True)):
            start = time.perf_counter()
            trials = {lr: train(data, batch_size, lr, use_bnp) for lr in LRS}
            lr = min(trials, key=lambda r: trials[r][0])
            final, accuracy = trials[lr]
            print(f"{method:8} {batch_size:5d} {lr:6g} {final:17.4f} {accuracy:14.3f} "
                  f"{time.perf_counter() - start:8.1f}")


if __name__ == "__main__":
    main()
