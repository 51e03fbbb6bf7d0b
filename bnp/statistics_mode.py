"""``frozen_statistics``: run a model without changing what it has learned about its data.

BN, FN and BNP keep running statistics that every forward pass in training
mode updates. Code that runs the forward pass for another purpose (a Hessian,
a Hessian-vector product, a probe, a plot) should not move them. Inside
``with bnp.frozen_statistics():``

* BatchNorm and FullNorm in training mode still normalize with the
  statistics of the batch (BN with its batch mean and variance, FN with the
  running moments *as they would be* after this batch), differentiably, so
  derivatives are those of the training loss; but ``running_mean``,
  ``running_var`` and ``num_batches_tracked`` are left exactly as they were;
* BNP's forward hooks record nothing.

``bnp.hessian``, ``bnp.hvp``, ``bnp.jacobian`` and everything in
:mod:`bnp.curvature` run their ``loss_fn`` inside it. The name says what it
freezes: the statistics, not the parameters and not the graph (gradients
still flow; compare ``bnp.no_grad``).
"""

from __future__ import annotations

import contextlib
from typing import Any

_frozen = False


def statistics_frozen() -> bool:
    """True inside ``frozen_statistics()``: layers must not update running statistics."""
    return _frozen


class frozen_statistics(contextlib.ContextDecorator):
    """Context manager and decorator: no running statistic, buffer or counter changes inside.

    Re-entrant (the previous states are kept on a stack), like ``bnp.no_grad``.
    """

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        global _frozen
        self._previous.append(_frozen)
        _frozen = True

    def __exit__(self, *exc: Any) -> None:
        global _frozen
        _frozen = self._previous.pop()
