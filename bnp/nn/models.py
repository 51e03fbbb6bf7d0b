"""Ready-made networks for the experiments: an MLP and a small convnet.

Normalization layers are chosen by name from the plain mapping ``NORMS``
(name -> factories for (N, C) and for (N, C, H, W) inputs); a new kind is one
entry::

    NORMS["mine"] = (MyNorm1d, MyNorm2d)
    model = mlp([784, 256, 10], norm="mine")

A norm layer goes right after each hidden Linear / Conv2d and before its
activation (as in the BN paper); the output layer is never normalized.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from . import init
from .activation import ReLU, Sigmoid, Tanh
from .container import Sequential
from .conv import Conv2d
from .flatten import Flatten
from .linear import Linear
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, FullNorm1d, FullNorm2d
from .pooling import MaxPool2d

NormFactory = Callable[[int], Module]

# name -> (factory for (N, C) inputs, factory for (N, C, H, W) inputs); factory(num_features) -> Module
NORMS: dict[str, tuple[NormFactory, NormFactory]] = {
    "bn": (BatchNorm1d, BatchNorm2d),
    "fn": (FullNorm1d, FullNorm2d),
}

ACTIVATIONS: dict[str, Callable[[], Module]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def _norm(norm: str | None, where: str, dims: int) -> NormFactory | None:
    if norm is None or norm == "none":
        return None
    if norm not in NORMS:
        raise ValueError(f"{where}: unknown norm {norm!r}; known: None, {', '.join(repr(k) for k in sorted(NORMS))}")
    return NORMS[norm][0 if dims == 1 else 1]


def _activation(name: str, where: str) -> Callable[[], Module]:
    if name not in ACTIVATIONS:
        raise ValueError(f"{where}: unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]


def mlp(
    sizes: Sequence[int], activation: str = "relu", norm: str | None = None, bias: bool = True, rng: Any = None
) -> Sequential:
    """A fully connected network: ``Linear -> [norm] -> activation`` per hidden layer, then a Linear.

    Args:
        sizes: ``[in, hidden_1, ..., out]`` (at least two entries).
        activation: "relu", "tanh" or "sigmoid".
        norm: None or a registered name ("bn", ...), applied to every hidden layer.
        bias: whether the Linear layers have biases.
        rng: seed or Generator for the initial weights (default: :mod:`bnp.nn.init`'s).

    Shapes: (N, sizes[0]) -> (N, sizes[-1]) logits.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp: sizes must list at least an input and an output size, all positive; got {sizes}")
    act, make_norm, rng = _activation(activation, "mlp"), _norm(norm, "mlp", 1), init.get_rng(rng)
    layers: list[Module] = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers.append(Linear(fan_in, fan_out, bias=bias, rng=rng))
        if make_norm is not None:
            layers.append(make_norm(fan_out))
        layers.append(act())
    layers.append(Linear(sizes[-2], sizes[-1], bias=bias, rng=rng))
    return Sequential(*layers)


def small_cnn(
    in_channels: int = 1,
    num_classes: int = 10,
    norm: str | None = None,
    image_size: int = 28,
    channels: Sequence[int] = (8, 16),
    rng: Any = None,
) -> Sequential:
    """Two ``conv3x3(padding 1) -> [norm] -> ReLU -> maxpool 2`` stages, then flatten and a Linear head.

    Args:
        in_channels: channels of the input images.
        num_classes: outputs of the head.
        norm: None or a registered name ("bn", ...), after each convolution.
        image_size: side of the (square) input images; fixes the head's input size.
        channels: output channels of the two convolutions.
        rng: seed or Generator for the initial weights.

    Shapes: (N, in_channels, image_size, image_size) -> (N, num_classes); the head
    sees ``channels[1] * (image_size // 4) ** 2`` features.
    """
    c1, c2 = (int(c) for c in channels)
    if image_size < 4:
        raise ValueError(f"small_cnn: image_size must be at least 4 (two 2x2 poolings), got {image_size}")
    make_norm, rng = _norm(norm, "small_cnn", 2), init.get_rng(rng)
    layers: list[Module] = []
    for cin, cout in ((in_channels, c1), (c1, c2)):
        layers.append(Conv2d(cin, cout, 3, padding=1, rng=rng))
        if make_norm is not None:
            layers.append(make_norm(cout))
        layers += [ReLU(), MaxPool2d(2)]
    side = image_size // 2 // 2
    layers += [Flatten(), Linear(c2 * side * side, num_classes, rng=rng)]
    return Sequential(*layers)
