"""Helpers that turn a shrunk failing case into a hint: probes and recognised wrong answers."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

import numpy

__all__ = ["probe", "matches", "shape_hint"]

Probe = tuple[Callable[[Any], bool], dict[str, Any], str]


def probe(case: Any, passes: Callable[[Any], bool], probes: Iterable[Probe],
          valid: Callable[[Any], bool] = lambda case: True) -> str:
    """The text of the first probe that applies to ``case`` and whose changed case passes.

    A probe ``(applies, changes, text)`` says: if ``applies(case)`` and FILE
    passes ``replace(case, **changes)``, the failure is due to what the
    changes undo, and ``text`` says so. Changed cases that are not ``valid``
    (a kernel larger than the padded image, say) are skipped.
    """
    for applies, changes, text in probes:
        if applies(case):
            other = dataclasses.replace(case, **changes)
            if other != case and valid(other) and passes(other):
                return text
    return ""


def matches(got: Any, alternative: Any, scale: Any, tol: float = 1e-6) -> bool:
    """Whether ``got`` agrees with a known wrong answer (entrywise, relative to ``scale``)."""
    got, alternative = numpy.asarray(got, dtype=float), numpy.asarray(alternative, dtype=float)
    if got.shape != alternative.shape or not numpy.isfinite(got).all():
        return False
    scale = numpy.maximum(numpy.broadcast_to(numpy.abs(scale), got.shape), numpy.finfo(float).tiny)
    with numpy.errstate(all="ignore"):
        return bool(numpy.max(numpy.abs(got - alternative) / scale, initial=0.0) <= tol)


def shape_hint(detail: dict[str, Any], quantity: str) -> str:
    """A hint for a wrong shape: transposed, a kept axis, a reduction over the wrong axis."""
    got, want = detail.get("got_shape"), detail.get("want_shape")
    if got is None or want is None:
        return ""
    if tuple(reversed(got)) == tuple(want) and got != want:
        return f"{quantity} is transposed: expected {want}, got {got}"
    if len(got) == len(want) + 1 and 1 in got:
        return f"{quantity} keeps an axis of length 1: expected {want}, got {got} (drop keepdims or reshape)"
    if len(got) == len(want) and len(want) == 1:
        return f"{quantity} has the wrong length: did you reduce over the wrong axis? expected {want}, got {got}"
    return f"{quantity}: expected shape {want}, got {got}"
