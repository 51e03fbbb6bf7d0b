"""Adam (Kingma & Ba, 2015) with bias correction, as ``torch.optim.Adam``.

With gradient ``g``, step count ``t`` (per parameter, from 1)::

    g = g + wd * p                                 (L2 penalty, not AdamW's decoupled decay)
    m = beta1 * m + (1 - beta1) * g                (first moment)
    v = beta2 * v + (1 - beta2) * g * g            (second moment)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

The bias corrections undo the pull of ``m`` and ``v`` towards their zero
start; ``eps`` is added after correcting ``v``, exactly as PyTorch does.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from .. import backend
from ..autograd import Tensor
from .optimizer import Optimizer, _check_nonnegative


class Adam(Optimizer):
    """Adam.

    Args:
        params: tensors to optimize (``model.parameters()``).
        lr: learning rate, >= 0.
        betas: decay rates (beta1, beta2) of the two moment averages, each in [0, 1).
        eps: added to the denominator for stability, >= 0.
        weight_decay: L2 penalty coefficient, added to the gradient.

    State per parameter: ``step`` (int), ``exp_avg`` (m), ``exp_avg_sq`` (v).
    """

    _scalar_state = ("step",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, _validated(dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)))

    def _set_hyperparameters(self, hyper: dict[str, Any]) -> None:
        self.defaults = _validated({k: hyper[k] for k in self.defaults})

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any]) -> None:
        h = self.defaults
        beta1, beta2 = h["betas"]
        if h["weight_decay"] != 0:
            grad = grad + h["weight_decay"] * p.data
        if not state:
            xp = backend.xp()
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (grad - m)  # = beta1 m + (1 - beta1) g, written as PyTorch's lerp
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        step_size = h["lr"] / (1 - beta1**t)
        denom = backend.xp().sqrt(v) / math.sqrt(1 - beta2**t) + h["eps"]
        p.data -= step_size * (m / denom)


def _validated(h: dict[str, Any]) -> dict[str, Any]:
    for name in ("lr", "eps", "weight_decay"):
        _check_nonnegative("Adam", name, h[name])
        h[name] = float(h[name])
    betas = tuple(h["betas"])
    if len(betas) != 2 or not all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {h['betas']!r}")
    h["betas"] = (float(betas[0]), float(betas[1]))
    return h
