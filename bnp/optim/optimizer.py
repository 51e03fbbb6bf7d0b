"""The optimizer base class: a list of parameters, hyperparameters and per-parameter state.

An optimizer owns no gradients: ``loss.backward()`` fills ``p.grad`` and
``step()`` reads it. Updates are written in place into ``p.data`` with
backend arrays, outside the autograd graph (nothing is recorded), so any
other reference to a parameter sees the new values.

State is kept per parameter *index* (the order of ``params``), so that a
``state_dict()`` made from one model loads into a fresh copy of it. It holds
only arrays, numbers and strings: it can be written by ``bnp.checkpoint.save``
without pickle.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from .. import backend
from ..autograd import Tensor


class Optimizer:
    """Base class of the optimizers.

    Args:
        params: an iterable of tensors that require gradients (e.g.
            ``model.parameters()``), each listed once.
        defaults: the hyperparameters by name (``lr``, ``momentum``, ...).
            They are stored in ``self.defaults`` and may be changed between
            steps, e.g. ``opt.defaults["lr"] = 0.01`` or ``opt.lr = 0.01``.

    Subclasses implement ``_update(p, grad, state)`` for one parameter and
    list in ``_scalar_state`` the state entries that are numbers, not arrays.
    """

    _scalar_state: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor], defaults: dict[str, Any]):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of tensors (e.g. model.parameters()), got one Tensor")
        self.params: list[Tensor] = list(params)
        if not self.params:
            raise ValueError(f"{name}: got an empty parameter list")
        seen: set[int] = set()
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, expected a bnp.Tensor")
            if not p.requires_grad:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) does not require gradients")
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: parameter {i} has dtype {p.dtype}, expected a floating dtype")
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) appears more than once")
            seen.add(id(p))
        self.defaults: dict[str, Any] = dict(defaults)
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    # -- the learning rate, the hyperparameter changed most often -----------------
    @property
    def lr(self) -> float:
        return self.defaults["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        _check_nonnegative(type(self).__name__, "lr", value)
        self.defaults["lr"] = float(value)

    # -- the training-loop interface ---------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients before the next ``backward()``.

        ``set_to_none=True`` drops them (no memory, and ``step()`` then skips
        parameters that get no new gradient); ``False`` fills them with zeros.
        """
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            elif p.grad.requires_grad or p.grad._parents:  # a gradient with a graph (create_graph=True):
                p.grad = Tensor(backend.xp().zeros_like(p.grad.data))  # zeroing it in place would keep the graph
            else:
                p.grad.data[...] = 0
                p.grad._version += 1

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for i, (p, state) in enumerate(zip(self.params, self.state, strict=True)):
            if p.grad is None:
                continue
            grad = gradient_array(p, f"{type(self).__name__}.step(): parameter {i}")
            self._update(p, grad, state)
            p._version += 1  # graphs recorded before this step refuse to backpropagate (autograd/tensor.py)

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- checkpoints -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"type", "num_params", "hyperparameters", "state": {"0": {...}, ...}}``.

        Arrays are copies (a later ``step()`` does not change a saved state);
        parameters without state yet (no step taken) are left out.
        """
        xp = backend.xp()
        state = {}
        for i, s in enumerate(self.state):
            if s:
                state[str(i)] = {k: (xp.array(v, copy=True) if backend.is_array(v) else v) for k, v in s.items()}
        return {
            "type": type(self).__name__,
            "num_params": len(self.params),
            "hyperparameters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.defaults.items()},
            "state": state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and per-parameter state from ``state_dict()``.

        Accepts the output of ``bnp.checkpoint.load`` as well (string keys,
        NumPy arrays that are moved to the active backend). Arrays take the
        dtype of their parameter.
        """
        name = type(self).__name__
        kind = _plain(state_dict.get("type"))
        if kind != name:
            raise ValueError(f"{name}.load_state_dict: the state was saved by {kind!r}, not {name!r}")
        count = int(_plain(state_dict["num_params"]))
        if count != len(self.params):
            raise ValueError(
                f"{name}.load_state_dict: state for {count} parameters, this optimizer has {len(self.params)}"
            )
        hyper = {k: _plain(v) for k, v in state_dict["hyperparameters"].items()}
        missing = set(self.defaults) - set(hyper)
        if missing:
            raise ValueError(f"{name}.load_state_dict: hyperparameters {sorted(missing)} are missing")
        new_state: list[dict[str, Any]] = [{} for _ in self.params]
        for key, s in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(self.params):
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, but there are {len(self.params)}")
            p = self.params[i]
            for k, v in s.items():
                if k in self._scalar_state:
                    new_state[i][k] = _plain(v)
                elif backend.is_array(v):
                    arr = backend.asarray(v).astype(p.dtype, copy=True)
                    if arr.shape != p.data.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state '{k}' of parameter {i} has shape {arr.shape}, "
                            f"the parameter has shape {p.shape}"
                        )
                    new_state[i][k] = arr
                else:
                    new_state[i][k] = v
        self._set_hyperparameters(hyper)
        self.state = new_state

    def _set_hyperparameters(self, hyper: dict[str, Any]) -> None:
        """Validate and store hyperparameters (subclasses re-run their checks)."""
        self.defaults.update({k: hyper[k] for k in self.defaults})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


def gradient_array(p: Tensor, where: str) -> Any:
    """``p.grad`` as a backend array of ``p``'s shape and dtype.

    A gradient assigned by hand may be a Tensor, a backend array or a list; it
    is stored back as a Tensor (so ``p.grad.data`` works for every reader). A
    different shape, a non-numeric dtype, or anything else is refused.
    """
    g = p.grad
    if not isinstance(g, Tensor):
        if not (backend.is_array(g) or isinstance(g, (list, tuple))):
            raise TypeError(f"{where}: .grad must be a Tensor or an array of shape {p.shape}, "
                            f"got {type(g).__name__}")
        g = Tensor(backend.asarray(g))
        p.grad = g
    if g.shape != p.shape:
        raise ValueError(f"{where}: gradient of shape {g.shape} for a parameter of shape {p.shape}")
    if g.dtype.kind not in "fiu":
        raise TypeError(f"{where}: gradient of dtype {g.dtype}, expected a floating array")
    if g.dtype != p.dtype:
        g = Tensor(g.data.astype(p.dtype))
        p.grad = g
    return g.data


def _plain(value: Any) -> Any:
    """A 0-d array (as NumPy writes Python numbers) back to a Python number; lists to tuples."""
    if backend.is_array(value) and value.ndim == 0:
        return value.item()
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def _check_nonnegative(where: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}")
