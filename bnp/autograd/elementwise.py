"""Elementwise primitives with broadcasting, each with its VJP in Tensor ops.

Composite operations (minimum, sigmoid, mean, ...) live in ``ops.py`` and are built
from these; only the rules below are ever differentiated by hand.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ._util import as_tensor, check_same_backend
from .graph import make_node
from .reductions import sum_to
from .tensor import Tensor


def _binary(op: str, fn, a: Any, b: Any) -> tuple[Tensor, Tensor, Any]:
    a = as_tensor(a, b if isinstance(b, Tensor) else None, op)
    b = as_tensor(b, a, op)
    check_same_backend(op, a, b)
    try:
        out = fn(a.data, b.data)
    except ValueError:
        raise ValueError(f"{op}: operands could not be broadcast together: shapes {a.shape} and {b.shape}") from None
    return a, b, out


def add(a: Any, b: Any) -> Tensor:
    a, b, out = _binary("add", lambda x, y: x + y, a, b)
    return make_node(out, (a, b), (lambda g, o: sum_to(g, a.shape, o), lambda g, o: sum_to(g, b.shape, o)), "add")


def sub(a: Any, b: Any) -> Tensor:
    a, b, out = _binary("sub", lambda x, y: x - y, a, b)
    return make_node(out, (a, b), (lambda g, o: sum_to(g, a.shape, o), lambda g, o: sum_to(-g, b.shape, o)), "sub")


def mul(a: Any, b: Any) -> Tensor:
    a, b, out = _binary("mul", lambda x, y: x * y, a, b)
    return make_node(
        out, (a, b), (lambda g, o: sum_to(g * b, a.shape, o), lambda g, o: sum_to(g * a, b.shape, o)), "mul"
    )


def div(a: Any, b: Any) -> Tensor:
    a, b, out = _binary("div", lambda x, y: x / y, a, b)
    return make_node(
        out,
        (a, b),
        (lambda g, o: sum_to(g / b, a.shape, o), lambda g, o: sum_to(-(g * o) / b, b.shape, o)),
        "div",
    )


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; at ties each side gets half the gradient (as PyTorch)."""
    a, b, out = _binary("maximum", backend.xp().maximum, a, b)

    def weight(first: bool):
        def vjp(g: Tensor, o: Tensor) -> Tensor:
            wins = (a.data > b.data) if first else (a.data < b.data)
            w = Tensor(wins.astype(g.dtype) + 0.5 * (a.data == b.data).astype(g.dtype))
            return sum_to(g * w, (a if first else b).shape, o)

        return vjp

    return make_node(out, (a, b), (weight(True), weight(False)), "maximum")


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``condition`` holds, else ``b`` (the condition is not differentiated)."""
    cond = condition.data if isinstance(condition, Tensor) else backend.asarray(condition)
    cond = cond.astype(bool, copy=False)  # ~cond below must be logical, not bitwise, negation
    a, b, out = _binary("where", lambda x, y: backend.xp().where(cond, x, y), a, b)

    def pick(first: bool):
        def vjp(g: Tensor, o: Tensor) -> Tensor:
            mask = cond if first else ~cond
            return sum_to(g * Tensor(mask.astype(g.dtype)), (a if first else b).shape, o)

        return vjp

    return make_node(out, (a, b), (pick(True), pick(False)), "where")


def neg(a: Tensor) -> Tensor:
    return make_node(-a.data, (a,), (lambda g, o: -g,), "neg")


def pow(a: Tensor, p: float) -> Tensor:
    """``a ** p`` for a constant number ``p`` (tensor exponents: ``ops.rpow``)."""
    if isinstance(p, Tensor):
        return exp(mul(p, log(a)))
    p = float(p) if not isinstance(p, int) else p

    def vjp(g: Tensor, o: Tensor) -> Tensor:
        if p == 0:  # a constant; p * a**(-1) would give nan at a = 0
            return g * 0.0
        if p == 2:
            return g * (2 * a)
        return g * (p * pow(a, p - 1))

    return make_node(a.data**p, (a,), (vjp,), "pow")


def exp(a: Tensor) -> Tensor:
    return make_node(backend.xp().exp(a.data), (a,), (lambda g, o: g * o,), "exp")


def log(a: Tensor) -> Tensor:
    return make_node(backend.xp().log(a.data), (a,), (lambda g, o: g / a,), "log")


def sqrt(a: Tensor) -> Tensor:
    return make_node(backend.xp().sqrt(a.data), (a,), (lambda g, o: g / (2 * o),), "sqrt")


def tanh(a: Tensor) -> Tensor:
    return make_node(backend.xp().tanh(a.data), (a,), (lambda g, o: g * (1 - o * o),), "tanh")


def relu(a: Tensor) -> Tensor:
    """``max(a, 0)``; the derivative at 0 is taken as 0 (as PyTorch)."""
    return make_node(
        backend.xp().maximum(a.data, 0),
        (a,),
        (lambda g, o: g * Tensor((a.data > 0).astype(g.dtype)),),
        "relu",
    )


def abs(a: Tensor) -> Tensor:
    return make_node(
        backend.xp().abs(a.data), (a,), (lambda g, o: g * Tensor(backend.xp().sign(a.data)),), "abs"
    )
