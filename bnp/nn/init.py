"""Initial values of weights and biases, drawn on the host and seedable.

The scheme (used by Linear and Conv2d): PyTorch's default. With ``fan_in`` the
number of inputs of one output unit (``in_features``, or ``C*kh*kw`` for a
convolution), every weight and every bias is drawn independently from::

    U(-1/sqrt(fan_in), 1/sqrt(fan_in))        (variance 1 / (3 fan_in))

Why this one: the project compares BN, BNP and FN with the *same* networks
that readers would build in PyTorch, so the starting point should be the one
they know; our layers then match ``torch.nn`` in distribution. It is not the
variance-preserving choice for ReLU networks (He: variance 2 / fan_in), so
signals shrink layer by layer in a deep unnormalized network; that is part of
what normalization and preconditioning are meant to fix, and we do not want
to hide it with a tuned start. :func:`kaiming_normal_` (He-normal) is here for
anyone who wants the other choice.

Randomness: values are drawn with a host ``numpy.random.Generator`` (so the
same seed gives the same network on NumPy and on CuPy), then moved to the
active backend with ``backend.asarray`` and cast to the default dtype. The
module generator starts from seed 0, so runs are reproducible unless you
reseed; ``manual_seed(seed)`` resets it; every layer also takes ``rng=`` (a
seed or a Generator) to draw from instead.
"""

from __future__ import annotations

import math
from typing import Any

import numpy  # host-side random numbers only; tensors live on the backend

from .. import backend
from ..autograd import Tensor

_rng = numpy.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reset the module generator: layers built afterwards are reproducible."""
    global _rng
    _rng = numpy.random.default_rng(seed)


def get_rng(rng: Any = None) -> numpy.random.Generator:
    """The generator to draw from: ``rng`` itself, a new one seeded with it (an int), or the module's."""
    if rng is None:
        return _rng
    if isinstance(rng, numpy.random.Generator):
        return rng
    if isinstance(rng, (int, numpy.integer)):
        return numpy.random.default_rng(int(rng))
    raise TypeError(f"init: rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def _fill(t: Tensor, host: numpy.ndarray) -> Tensor:
    """Give ``t`` the host values (as its new data), on the active backend, in ``t``'s dtype."""
    t.data = backend.asarray(host.astype(t.dtype, copy=False))
    t._version += 1
    return t


def fan_in(weight: Tensor) -> int:
    """Inputs per output unit: ``in`` for (out, in), ``C*kh*kw`` for (out, C, kh, kw)."""
    if weight.ndim < 2:
        raise ValueError(f"fan_in: weight must have at least 2 dimensions, got shape {weight.shape}")
    return int(math.prod(weight.shape[1:]))


def default_bound(fan: int) -> float:
    """``1/sqrt(fan_in)``: the half-width of PyTorch's default uniform initialization."""
    return 1.0 / math.sqrt(fan) if fan > 0 else 0.0


def uniform_(t: Tensor, low: float, high: float, rng: Any = None) -> Tensor:
    """Fill ``t`` with U(low, high) values; returns ``t``."""
    return _fill(t, get_rng(rng).uniform(low, high, size=t.shape))


def normal_(t: Tensor, std: float = 1.0, rng: Any = None) -> Tensor:
    """Fill ``t`` with N(0, std^2) values; returns ``t``."""
    return _fill(t, get_rng(rng).normal(0.0, std, size=t.shape))


def default_init_(weight: Tensor, bias: Tensor | None = None, rng: Any = None) -> None:
    """PyTorch's default for Linear and Conv2d: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    rng = get_rng(rng)  # resolve once: an int seed must not restart for the bias
    bound = default_bound(fan_in(weight))
    uniform_(weight, -bound, bound, rng)
    if bias is not None:
        uniform_(bias, -bound, bound, rng)


def kaiming_normal_(weight: Tensor, rng: Any = None) -> Tensor:
    """He-normal: N(0, 2 / fan_in), which keeps the second moment of ReLU activations constant."""
    return normal_(weight, math.sqrt(2.0 / fan_in(weight)), rng)


__all__ = [
    "manual_seed", "get_rng", "fan_in", "default_bound", "uniform_", "normal_", "default_init_",
    "kaiming_normal_",
]
