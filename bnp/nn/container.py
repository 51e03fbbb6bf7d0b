"""Sequential: modules applied one after the other."""

from __future__ import annotations

from typing import Any, Iterator

from .module import Module


class Sequential(Module):
    """``Sequential(a, b, c)(x) == c(b(a(x)))``. Sub-modules are named "0", "1", ...,
    so parameters are called ``"0.weight"``, ``"0.bias"``, ...

    Supports ``len``, iteration, ``model[i]`` (negative too) and ``model[i:j]``
    (a new Sequential sharing the same layers).
    """

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(layer).__name__}, not a Module")
            setattr(self, str(i), layer)

    def forward(self, x: Any) -> Any:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def append(self, layer: Module) -> Sequential:
        """Add a layer at the end; returns self."""
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.append: expected a Module, got {type(layer).__name__}")
        setattr(self, str(len(self)), layer)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        try:
            return layers[index]
        except (IndexError, TypeError):
            raise IndexError(f"Sequential: index {index!r} out of range for {len(layers)} layers") from None
