"""Batch Normalization Preconditioning (BNP): the optimizer-side twin of BN.

BNP leaves the forward pass alone. For every Linear and Conv2d layer it keeps
running statistics (mean ``mu`` and variance ``s^2``, per input feature) of
the layer's *input*, and before each optimizer step rewrites the gradients of
the layer's weight and bias with ``P P^T`` (THEORY.md section 2)::

    G_W' = (G_W - g_b mu^T) D^-2,      g_b' = g_b - G_W' mu,      D^2 = s^2 + eps

This is exactly gradient descent on a reparametrized network whose layers see
standardized inputs ``D^-1 (a - mu)``; it removes the dependence of the
Hessian's conditioning on input means and scales, without batch statistics in
the forward pass, so it works at batch size 1.

Usage, like a K-FAC preconditioner:

    opt = bnp.optim.SGD(model.parameters(), lr=0.1)
    pre = bnp.BNP(model)
    loss.backward(); pre.step(); opt.step()

Choices made here (and why):

* Layers without a bias cannot absorb the centring term, so only the scaling
  part of ``P`` applies, with the *uncentred* second moment:
  ``G_W' = G_W D0^-2``, ``D0^2 = s^2 + mu^2 + eps`` (Jacobi scaling of the
  block's moment matrix ``E[a a^T]``).
  A bias that receives no gradient (frozen) counts as absent: it cannot
  absorb the centring either.
* Convolutions: by default statistics are per input channel, pooled over the
  batch and all spatial positions (BN's convention) and repeated over the
  kernel offsets. ``conv_statistics="patch"`` instead keeps statistics of
  every entry of the im2col patch vectors (zero padding included), for which
  the identities of THEORY.md hold exactly.
* ``whiten=True`` (Linear layers only) replaces ``D^2`` by the full input
  covariance ``S + eps I``: the input-side K-FAC factor, ``P^T M P = I``.
* Statistics are gathered only in training mode, from every forward call
  (not inside :class:`bnp.frozen_statistics`, which the second-order tools
  use); with ``rho=0`` they are those of the last batch seen. A batch that
  would make them non-finite, or has no samples, is refused with an error
  naming the layer (:mod:`bnp.running_moments`).
* Near-constant inputs with ``eps = 0``: the variance is floored at the
  resolution of the feature's own second moment, ``D^2 >= u (s^2 + mu^2)``
  (``u`` the dtype's machine epsilon; a variance below it is rounding noise
  of the statistics) and at the dtype's ``tiny``, and an identically zero
  feature (``s = mu = 0``) is not scaled (``D = 1``); so ``.grad`` stays finite. ``whiten=True`` floors the
  ridge alike: ``max(eps, u trace(S + mu mu^T))``.
* One preconditioner per layer: a layer listed twice, a layer that is not in
  ``model``, or a layer that another BNP already preconditions is refused
  (gradients preconditioned twice would be silently wrong); ``remove()``
  releases the layers.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

from . import backend
from .autograd import Tensor, no_grad
from .autograd.im2col import unfold
from .nn import Conv2d, Linear
from .optim.optimizer import gradient_array
from .running_moments import RunningMoments, check_eps, check_rho
from .statistics_mode import statistics_frozen

# layer -> the BNP that preconditions it (weak keys: a layer that is gone needs no entry)
_OWNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def precondition(
    grad_w: Any, grad_b: Any | None, mean: Any, var: Any, eps: float, overwrite: bool = False
) -> tuple[Any, Any | None]:
    """Apply ``P P^T`` to one layer's gradients (a pure function on backend arrays)::

        G_W' = (G_W - g_b mu^T) D^-2,   g_b' = g_b - G_W' mu,   D^2 = var + eps

    and, for a layer without bias, ``G_W' = G_W D0^-2`` with ``D0^2 = var + mu^2 + eps``.

    Args:
        grad_w: (out, n) for Linear, or (out, C, kh, kw) for Conv2d.
        grad_b: (out,) or None for a layer without bias.
        mean, var: (n,) per input feature; for Conv2d (C,) per channel (shared by
            the kh*kw kernel offsets) or (C*kh*kw,) per patch entry.
        eps: added to the variance.
        overwrite: the results may reuse the memory of ``grad_w`` and ``grad_b``
            (BNP does this with the gradients it owns, to keep its cost small).

    Returns:
        the preconditioned (grad_w, grad_b), same shapes.
    """
    out, n = grad_w.shape[0], mean.shape[0]
    G = grad_w.reshape(out, n, -1)  # (out, n, k): k kernel offsets share each statistic (k = 1 for Linear)
    if not overwrite:
        G = G.copy()
    second = var + mean * mean
    if grad_b is None:
        G *= _floored_reciprocal(second + eps, second)[:, None]  # G_W D0^-2
        return G.reshape(grad_w.shape), None
    g_b = grad_b if overwrite else grad_b.copy()
    G -= g_b[:, None, None] * mean[:, None]  # G_W - g_b mu^T
    G *= _floored_reciprocal(var + eps, second)[:, None]  # (...) D^-2
    g_b -= _sum_offsets(G) @ mean  # g_b - G_W' mu
    return G.reshape(grad_w.shape), g_b


def _floored_reciprocal(d2: Any, second: Any) -> Any:
    """``1 / max(d2, u * second, tiny)`` per feature, and 1 where ``d2 = second = 0`` (see module doc).

    ``u * second`` (u the machine epsilon) is the rounding level of a variance
    computed from values of second moment ``second``: below it a variance is
    noise. ``tiny`` (the smallest normal number) keeps ``1 / d2`` finite when
    the feature itself is subnormally small.
    """
    xp = backend.xp()
    info = xp.finfo(d2.dtype)
    floored = xp.maximum(xp.maximum(d2, info.eps * second), info.tiny)
    return 1.0 / xp.where((d2 > 0) | (second > 0), floored, 1)


def _sum_offsets(G: Any) -> Any:
    """(out, n, k) -> (out, n): the bias sees the sum over kernel offsets (a view when k = 1)."""
    return G[:, :, 0] if G.shape[2] == 1 else G.sum(axis=2)


def precondition_whitened(grad_w: Any, grad_b: Any | None, mean: Any, cov: Any, eps: float) -> tuple[Any, Any]:
    """``P P^T`` with the full covariance: ``G_W' = (G_W - g_b mu^T)(S + eps I)^-1``.

    Shapes: grad_w (out, n), grad_b (out,) or None, mean (n,), cov (n, n).
    Without a bias the uncentred moment ``S + mu mu^T`` is used.
    """
    xp = backend.xp()
    n = mean.shape[0]
    second = cov + xp.outer(mean, mean)
    ridge = max(eps, float(xp.finfo(cov.dtype).eps * xp.trace(second))) or 1.0  # floor (module doc); 0 matrix: 1
    eye = xp.eye(n, dtype=cov.dtype)
    if grad_b is None:
        return xp.linalg.solve(second + ridge * eye, grad_w.T).T, None
    g = xp.linalg.solve(cov + ridge * eye, (grad_w - xp.outer(grad_b, mean)).T).T
    return g, grad_b - g @ mean


class BNP:
    """Batch Normalization Preconditioning for the Linear and Conv2d layers of a model.

    Args:
        model: a ``bnp.nn.Module``; its Linear and Conv2d layers are preconditioned.
        rho: decay of the running statistics (0 = this batch's statistics only).
        eps: added to the variances (guards near-constant inputs, e.g. dead ReLUs).
        bias_correction: correct the start-up bias of the running averages.
        layers: an explicit subset of layers (default: all Linear and Conv2d).
        conv_statistics: ``"channel"`` (default) or ``"patch"`` (see module doc).
        whiten: use the full input covariance (Linear layers only).

    The defaults ``rho=0.99``, ``eps=1e-3`` were chosen by the experiment in
    ``bnp compare`` (see README); they are the project's choice, not the paper's.
    """

    def __init__(
        self,
        model: Any,
        rho: float = 0.99,
        eps: float = 1e-3,
        bias_correction: bool = True,
        layers: Iterable[Any] | None = None,
        conv_statistics: str = "channel",
        whiten: bool = False,
    ):
        self.rho, self.eps = check_rho("BNP", rho), check_eps("BNP", eps)
        for name, flag in (("bias_correction", bias_correction), ("whiten", whiten)):
            if not isinstance(flag, bool):
                raise TypeError(f"BNP: {name} must be a bool, got {flag!r}")
        if conv_statistics not in ("channel", "patch"):
            raise ValueError(f"BNP: conv_statistics must be 'channel' or 'patch', got {conv_statistics!r}")
        if not hasattr(model, "named_modules"):
            raise TypeError(f"BNP: model must be a bnp.nn.Module, got {type(model).__name__}")
        self.bias_correction, self.conv_statistics, self.whiten = bias_correction, conv_statistics, whiten
        self._names = {id(m): name for name, m in model.named_modules()}
        chosen = list(layers) if layers is not None else [m for m in model.modules() if isinstance(m, (Linear, Conv2d))]
        seen: set[int] = set()
        for k, m in enumerate(chosen):
            if not isinstance(m, (Linear, Conv2d)):
                raise TypeError(f"BNP: can only precondition Linear and Conv2d layers, got {type(m).__name__} "
                                f"(layers[{k}])")
            if id(m) not in self._names:
                raise ValueError(f"BNP: layers[{k}] ({m!r}) is not a layer of the model")
            if id(m) in seen:
                raise ValueError(f"BNP: layer {self._name(m)} is listed more than once (layers[{k}])")
            seen.add(id(m))
            owner = _OWNERS.get(m)
            if owner is not None and owner() is not None:
                raise ValueError(f"BNP: layer {self._name(m)} is already preconditioned by another BNP; "
                                 "call remove() on that one first (its gradients would be preconditioned twice)")
            if whiten and isinstance(m, Conv2d):
                raise ValueError(f"BNP: whiten=True supports Linear layers only; {self._name(m)} is a Conv2d")
        if not chosen:
            raise ValueError("BNP: the model has no Linear or Conv2d layer to precondition")
        self.layers = chosen
        self._moments: dict[int, RunningMoments] = {}
        self._handles = [m.register_forward_hook(self._observe) for m in chosen]
        me = weakref.ref(self)
        for m in chosen:
            _OWNERS[m] = me

    # -- statistics ------------------------------------------------------------
    def _name(self, layer: Any) -> str:
        return f"'{self._names.get(id(layer), '?')}' ({layer!r})"

    def _features(self, layer: Any) -> tuple[int, bool]:
        """(number of statistics, whether they are per patch entry)."""
        if isinstance(layer, Conv2d):
            if self.conv_statistics == "patch":
                kh, kw = layer.kernel_size
                return layer.in_channels * kh * kw, True
            return layer.in_channels, False
        return layer.in_features, False

    def _observe(self, layer: Any, inputs: tuple, output: Any) -> None:
        if not layer.training or statistics_frozen():
            return
        a = inputs[0].data
        n, patches = self._features(layer)
        if patches:
            with no_grad():
                cols = unfold(Tensor(a), layer.kernel_size, layer.stride, layer.padding).data  # (N, n, L)
            rows = cols.transpose(0, 2, 1).reshape(-1, n)
        elif a.ndim == 4:
            rows = a.transpose(0, 2, 3, 1).reshape(-1, n)  # channels last: pool batch and positions
        else:
            rows = a.reshape(-1, n)
        moments = self._moments.get(id(layer))
        if moments is None:
            moments = self._new_moments(layer)
            # stored only once it holds a batch: step() never sees empty statistics
            moments.observe(rows, groups=a.shape[0])
            self._moments[id(layer)] = moments
        else:
            moments.observe(rows, groups=a.shape[0])

    def _new_moments(self, layer: Any) -> RunningMoments:
        n, _ = self._features(layer)
        return RunningMoments(n, self.rho, self.bias_correction, dtype=layer.weight.dtype, full=self.whiten,
                              name=f"BNP, layer {self._name(layer)}")

    def statistics(self, layer: Any) -> tuple[Any, Any]:
        """The current (mean, variance) estimates for ``layer`` as backend arrays
        (the covariance matrix instead of the variance with ``whiten=True``)."""
        moments = self._moments.get(id(layer))
        if moments is None:
            raise KeyError(f"BNP: no statistics yet for layer {self._name(layer)}; run a forward pass in training mode")
        return moments.mean, moments.var

    # -- the update --------------------------------------------------------------
    def step(self) -> None:
        """Rewrite ``.grad`` of every preconditioned weight and bias in place."""
        for layer in self.layers:
            w, b = layer.weight, layer.bias
            if w.grad is None:
                continue
            gradient_array(w, f"BNP.step(): layer {self._name(layer)}, weight")
            if b is not None and b.grad is not None:
                gradient_array(b, f"BNP.step(): layer {self._name(layer)}, bias")
            if id(layer) not in self._moments:
                raise RuntimeError(
                    f"BNP.step(): no input statistics for layer {self._name(layer)}; "
                    "run a forward pass in training mode (model.train()) before step()"
                )
            mean, var = self.statistics(layer)
            gb = None if b is None or b.grad is None else b.grad.data
            if self.whiten:
                gw, gb = precondition_whitened(w.grad.data, gb, mean, var, self.eps)
            else:
                gw, gb = precondition(w.grad.data, gb, mean, var, self.eps, overwrite=True)
            w.grad.data = gw
            w.grad._version += 1
            if gb is not None:
                b.grad.data = gb
                b.grad._version += 1

    def remove(self) -> None:
        """Detach the forward hooks (statistics stop updating) and release the layers,
        so that another BNP may precondition them."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for m in self.layers:
            owner = _OWNERS.get(m)
            if owner is not None and owner() is self:
                del _OWNERS[m]

    # -- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Statistics by layer name (arrays and numbers only: safe for ``bnp.save``)."""
        state: dict[str, Any] = {}
        for layer in self.layers:
            if id(layer) in self._moments:
                for key, value in self._moments[id(layer)].state_dict().items():
                    state[f"{self._names[id(layer)]}.{key}"] = value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for layer in self.layers:
            name = self._names[id(layer)]
            if f"{name}.mean" not in state:
                continue
            moments = self._new_moments(layer)
            moments.load_state_dict({k: state[f"{name}.{k}"] for k in ("mean", "var", "count")})
            self._moments[id(layer)] = moments
