"""Gradient checks for students and tests: analytic derivatives against
central finite differences, in float64, with a random upstream gradient.

Why a random upstream gradient: checking ``sum(f(x))`` only tests one
direction of the Jacobian, and for some functions (batch normalization) that
direction's gradient is exactly zero, so a wrong rule would pass.

Expected error: for smooth functions with entries of order one, central
differences with ``eps=1e-6`` in float64 agree with exact derivatives to
about 1e-9 (truncation ~eps**2, rounding ~1e-16/eps). The default tolerances
leave two orders of magnitude of room; failures are real bugs.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np  # host-side arithmetic on small check results only

from . import backend
from .autograd import Tensor, grad, tensor


class GradcheckError(AssertionError):
    """Raised when analytic and numerical derivatives disagree."""


def _as_inputs(inputs: Tensor | Sequence[Tensor]) -> list[Tensor]:
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    out = []
    for k, x in enumerate(inputs):
        if x.dtype.kind != "f":
            raise TypeError(f"gradcheck: input {k} must be floating, got {x.dtype}")
        out.append(tensor(backend.to_numpy(x.data).astype("float64"), requires_grad=True))
    return out


def _outputs(fn: Callable[..., Tensor | Sequence[Tensor]], xs: Sequence[Tensor]) -> list[Tensor]:
    out = fn(*xs)
    return [out] if isinstance(out, Tensor) else list(out)


def gradcheck(
    fn: Callable[..., Tensor | Sequence[Tensor]],
    inputs: Tensor | Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-7,
    rtol: float = 1e-5,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check ``fn``'s vector-Jacobian products against central differences.

    Args:
        fn: maps tensors (one per input) to a tensor or a sequence of tensors.
        inputs: the points of evaluation; copied to float64 leaves.
        eps: finite-difference step.
        atol, rtol: an entry passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
        seed: seeds the random upstream gradient.
        raise_exception: raise :class:`GradcheckError` on failure (else return False).

    Returns:
        True when every entry passes.
    """
    xs = _as_inputs(inputs)
    outs = _outputs(fn, xs)
    rng = np.random.default_rng(seed)
    ups = [rng.standard_normal(o.shape) for o in outs]
    differentiable = [(o, u) for o, u in zip(outs, ups, strict=True) if o.requires_grad]
    if differentiable:
        outs_d, ups_d = [o for o, _ in differentiable], [u for _, u in differentiable]
        analytic = grad(outs_d, xs, grad_outputs=ups_d, allow_unused=True)
    else:
        analytic = [None] * len(xs)

    def project(values: list[Tensor]) -> float:
        return float(sum(np.sum(backend.to_numpy(o.data) * u) for o, u in zip(values, ups, strict=True)))

    worst = (0.0, None)
    for k, x in enumerate(xs):
        a = np.zeros(x.shape) if analytic[k] is None else backend.to_numpy(analytic[k].data)
        host = backend.to_numpy(x.data).copy()
        for index in np.ndindex(*x.shape):
            saved = host[index]
            host[index] = saved + eps
            plus = project(_outputs(fn, _perturbed(xs, k, host)))
            host[index] = saved - eps
            minus = project(_outputs(fn, _perturbed(xs, k, host)))
            host[index] = saved
            numeric = (plus - minus) / (2 * eps)
            excess = abs(a[index] - numeric) - (atol + rtol * abs(numeric))
            if not np.isfinite(excess):  # nan or inf on either side is a failure, never a pass
                excess = np.inf
            if excess > worst[0] or worst[1] is None:
                worst = (excess, (k, index, a[index], numeric))
    if worst[1] is not None and worst[0] > 0:
        k, index, a_val, n_val = worst[1]
        msg = (
            f"gradcheck failed: input {k} entry {index}: analytic {a_val:.10g} vs numeric {n_val:.10g} "
            f"(abs error {abs(a_val - n_val):.3g}, allowed {atol + rtol * abs(n_val):.3g})"
        )
        if raise_exception:
            raise GradcheckError(msg)
        return False
    return True


def gradgradcheck(
    fn: Callable[..., Tensor | Sequence[Tensor]],
    inputs: Tensor | Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check second derivatives: the map ``x -> J(x)^T u`` (its gradient, built with
    ``create_graph=True``) is itself checked by :func:`gradcheck` against central
    differences. ``u`` is a fixed random upstream gradient.
    """
    xs = _as_inputs(inputs)
    rng = np.random.default_rng(seed + 1)
    ups = [rng.standard_normal(o.shape) for o in _outputs(fn, xs)]

    def first_derivative(*ys: Tensor) -> list[Tensor]:
        outs = _outputs(fn, ys)
        live = [(o, u) for o, u in zip(outs, ups, strict=True) if o.requires_grad]
        if not live:
            return [Tensor(backend.xp().zeros(y.shape)) for y in ys]
        gs = grad(
            [o for o, _ in live], list(ys), grad_outputs=[u for _, u in live], create_graph=True, allow_unused=True
        )
        return [Tensor(backend.xp().zeros(y.shape)) if g is None else g for g, y in zip(gs, ys, strict=True)]

    return gradcheck(
        first_derivative, xs, eps=eps, atol=atol, rtol=rtol, seed=seed + 2, raise_exception=raise_exception
    )


def _perturbed(xs: list[Tensor], k: int, host) -> list[Tensor]:
    # Fresh leaves that require grad: fn may itself differentiate (gradgradcheck).
    return [tensor(host.copy() if j == k else backend.to_numpy(x.data), requires_grad=True) for j, x in enumerate(xs)]
