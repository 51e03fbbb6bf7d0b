"""Stochastic gradient descent with momentum, dampening, weight decay and Nesterov.

The update is PyTorch's ``torch.optim.SGD``, step for step. With gradient
``g``, weight decay ``wd``, momentum ``mu`` and dampening ``d``::

    g = g + wd * p                                  (L2 penalty, in the gradient)
    b = g                      at the first step    (the buffer starts at g, undamped)
    b = mu * b + (1 - d) * g   afterwards
    g = g + mu * b  if nesterov  else  b
    p = p - lr * g
"""

from __future__ import annotations

from typing import Any, Iterable

from ..autograd import Tensor
from .optimizer import Optimizer, _check_nonnegative


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum).

    Args:
        params: tensors to optimize (``model.parameters()``).
        lr: learning rate, >= 0.
        momentum: momentum factor ``mu`` in [0, 1) is usual; >= 0 required.
        dampening: scales the new gradient in the buffer by ``1 - dampening``.
        weight_decay: L2 penalty coefficient, added to the gradient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        hyper = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, _validated(hyper))

    def _set_hyperparameters(self, hyper: dict[str, Any]) -> None:
        self.defaults = _validated({k: hyper[k] for k in self.defaults})

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any]) -> None:
        h = self.defaults
        if h["weight_decay"] != 0:
            grad = grad + h["weight_decay"] * p.data
        if h["momentum"] != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = grad.copy()  # a copy: the buffer is updated in place later
                state["momentum_buffer"] = buf
            else:
                buf *= h["momentum"]
                buf += (1 - h["dampening"]) * grad
            grad = grad + h["momentum"] * buf if h["nesterov"] else buf
        p.data -= h["lr"] * grad  # in place: the same array object, new values


def _validated(h: dict[str, Any]) -> dict[str, Any]:
    for name in ("lr", "momentum", "dampening", "weight_decay"):
        _check_nonnegative("SGD", name, h[name])
        h[name] = float(h[name])
    h["nesterov"] = bool(h["nesterov"])
    if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
        raise ValueError(
            f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum={h['momentum']}, "
            f"dampening={h['dampening']}"
        )
    return h
