"""Module: the base class of layers and networks, with PyTorch's bookkeeping.

A Module owns three kinds of named state, registered just by assigning
attributes in ``__init__``:

* parameters (``self.weight = Parameter(...)``): learned, returned by
  ``parameters()``, given gradients by ``backward()``;
* buffers (``self.register_buffer("running_mean", array)``): state that is
  saved and loaded but not learned, kept as raw backend arrays;
* sub-modules (``self.fc = Linear(...)``): their state is included under a
  dotted prefix, ``"fc.weight"``.

Calling a module runs ``forward`` and then its forward hooks (BNP collects
layer-input statistics through them).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any, Callable, Iterator, NamedTuple

from .. import backend
from ..autograd import Tensor
from .parameter import Parameter

Hook = Callable[["Module", tuple, Any], Any]
_hook_ids = itertools.count()


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: dict[int, Hook], key: int):
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of all layers and networks. Subclasses call ``super().__init__()``
    first, assign their parameters and sub-modules, and define ``forward``.

    Attributes:
        training: True in training mode (the default), False after ``eval()``.
            Only layers whose behaviour differs (BatchNorm) look at it.
    """

    training: bool

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dicts to exist first
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- running -------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        output = self.forward(*args, **kwargs)
        if not self._forward_hooks:  # the common case: nothing to copy or call
            return output
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, output)
            if replaced is not None:
                output = replaced
        return output

    def register_forward_hook(self, hook: Hook) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every forward pass.

        ``inputs`` is the tuple of positional arguments. A hook that returns
        something other than None replaces the output.
        """
        key = next(_hook_ids)
        self._forward_hooks[key] = hook
        return RemovableHandle(self._forward_hooks, key)

    # -- registration ----------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, (Parameter, Module)) and params is None:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning '{name}'")
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} to parameter '{name}' "
                    "(expected a Parameter or None)"
                )
            params[name] = None
        elif params is not None and name in self._buffers:
            self._buffers[name] = self._as_buffer(name, value)
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} to sub-module '{name}' "
                    "(expected a Module or None)"
                )
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            registry = d.get(store)
            if registry is not None and name in registry:
                return registry[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        """Remove ``name`` from wherever it is registered (before re-registering it)."""
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        self.__dict__.pop(name, None)

    @staticmethod
    def _as_buffer(name: str, value: Any) -> Any:
        if value is None or backend.is_array(value):
            return value
        if isinstance(value, Tensor):
            return value.data
        raise TypeError(f"buffer '{name}' must be a backend array (or None), got {type(value).__name__}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register a parameter; ``None`` marks an absent one (e.g. ``bias=False``)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, value: Any) -> None:
        """Register non-learned state (a backend array) saved in ``state_dict``."""
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before register_buffer('{name}')")
        value = self._as_buffer(name, value)
        self._forget(name)
        self._buffers[name] = value

    # -- traversal ---------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (name ``prefix``, ``""`` at the top) and all below it, depth first;
        a module reachable twice is listed once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{k}" if name else k, c) for k, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs in registration order, e.g. ``("0.weight", W)``.
        A parameter shared by two layers is listed once."""
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mod_name, m in modules:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for mod_name, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self) -> Iterator[Any]:
        for _, b in self.named_buffers():
            yield b

    # -- modes and gradients --------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all below it; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(): mode must be a bool, got {type(mode).__name__}")
        stack, seen = [self], set()  # modules() without building names: fit calls this every step
        while stack:
            m = stack.pop()
            if id(m) not in seen:
                seen.add(id(m))
                object.__setattr__(m, "training", mode)  # a plain attribute: no registry to consult
                stack.extend(c for c in m._modules.values() if c is not None)
        return self

    def eval(self) -> Module:
        """Evaluation mode (BatchNorm uses its running statistics); same as ``train(False)``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: to None (default), or to zeros in place."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None if set_to_none else Tensor(backend.xp().zeros_like(p.data))
            elif p.grad.requires_grad or p.grad._parents:  # a gradient with a graph (create_graph=True):
                p.grad = Tensor(backend.xp().zeros_like(p.grad.data))  # zeroing it in place would keep the graph
            else:
                p.grad.data[...] = 0
                p.grad._version += 1

    # -- saving and loading ---------------------------------------------------------------
    def _state_slots(self) -> OrderedDict[str, tuple[Module, str, str]]:
        """key -> (owning module, "param" or "buffer", attribute name), in state_dict order."""
        slots: OrderedDict[str, tuple[Module, str, str]] = OrderedDict()
        for mod_name, m in self.named_modules():
            for kind, registry in (("param", m._parameters), ("buffer", m._buffers)):
                for name, value in registry.items():
                    if value is not None:
                        slots[f"{mod_name}.{name}" if mod_name else name] = (m, kind, name)
        return slots

    def state_dict(self) -> OrderedDict[str, Any]:
        """Copies of every parameter's and buffer's array, by dotted name (e.g. ``"1.running_mean"``)."""
        state: OrderedDict[str, Any] = OrderedDict()
        for key, (m, kind, name) in self._state_slots().items():
            value = m._parameters[name].data if kind == "param" else m._buffers[name]
            state[key] = value.copy()
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state`` (NumPy or CuPy arrays, or Tensors) into this module.

        Values are moved to the active backend and cast to each slot's current
        dtype. Nothing is changed unless every key and shape is right.

        Raises:
            RuntimeError: with ``strict``, if keys are missing or unexpected.
            ValueError: if a shape differs from the module's.
        """
        slots = self._state_slots()
        missing = [k for k in slots if k not in state]
        unexpected = [k for k in state if k not in slots]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise RuntimeError(f"load_state_dict into {type(self).__name__}: " + "; ".join(parts))
        updates = []
        for key, (m, kind, name) in slots.items():
            if key not in state:
                continue
            current = m._parameters[name].data if kind == "param" else m._buffers[name]
            value = state[key].data if isinstance(state[key], Tensor) else state[key]
            array = backend.asarray(value)
            if tuple(array.shape) != tuple(current.shape):
                raise ValueError(
                    f"load_state_dict into {type(self).__name__}: '{key}' has shape {tuple(array.shape)} "
                    f"in the state but {tuple(current.shape)} in the module"
                )
            updates.append((m, kind, name, array.astype(current.dtype, copy=True)))
        for m, kind, name, array in updates:
            if kind == "param":
                m._parameters[name].data = array
                m._parameters[name]._version += 1  # graphs recorded before refuse to backpropagate
            else:
                m._buffers[name] = array
        return IncompatibleKeys(missing, unexpected)

    def _check_input_dtype(self, x: Tensor, expected: Any) -> None:
        """Refuse an input whose dtype differs from the layer's: mixing float32 and
        float64 would silently upcast the rest of the network (PyTorch refuses too)."""
        if x.dtype != expected:
            raise TypeError(
                f"{self!r}: expected input of dtype {expected}, got {x.dtype}; "
                "convert with x.astype(...) or make the tensor with bnp.tensor(..., dtype=...)"
            )

    # -- printing --------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its settings)."""
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
