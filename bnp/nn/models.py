"""Ready-made networks for the experiments: an MLP and a small convnet, and the
reference MLP and convnet of MNIST-1D (Greydanus & Kobak, ICML 2024).

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

from ..autograd import Tensor
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


class Residual(Module):
    """``x + block(x)``: a skip connection around ``block``, which must keep the shape.

    Shapes: (N, ...) -> (N, ...), the same.
    """

    def __init__(self, block: Module):
        super().__init__()
        if not isinstance(block, Module):
            raise TypeError(f"Residual: block must be a Module, got {type(block).__name__}")
        self.block = block

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        if y.shape != x.shape:
            raise ValueError(f"{self!r}: the block maps {x.shape} to {y.shape}; a residual needs the same shape")
        return x + y


def mnist1d_mlp(
    in_features: int = 40, hidden: int = 100, num_classes: int = 10, norm: str | None = None, rng: Any = None
) -> Sequential:
    """The MLP baseline of MNIST-1D (the ``MLPBase`` of the mnist1d repository's notebooks).

    ``Linear -> [norm] -> ReLU``, then a residual ``h + ReLU([norm](Linear(h)))``,
    then a Linear head: 15,210 parameters at the defaults.

    Shapes: (N, in_features) -> (N, num_classes).
    """
    make_norm, rng = _norm(norm, "mnist1d_mlp", 1), init.get_rng(rng)

    def hidden_layer(fan_in: int) -> list[Module]:
        layers: list[Module] = [Linear(fan_in, hidden, rng=rng)]
        return layers + ([make_norm(hidden)] if make_norm is not None else []) + [ReLU()]

    return Sequential(*hidden_layer(in_features), Residual(Sequential(*hidden_layer(hidden))),
                      Linear(hidden, num_classes, rng=rng))


def mnist1d_cnn(
    length: int = 40, channels: int = 25, num_classes: int = 10, norm: str | None = None, rng: Any = None
) -> Sequential:
    """The convnet baseline of MNIST-1D (the ``ConvBase`` of the mnist1d repository's notebooks).

    Three 1-D convolutions with stride 2 and padding 1 (kernels 5, 3, 3, each
    ``-> [norm] -> ReLU``), then flatten and a Linear head: 5,210 parameters at the defaults.
    A signal is a 1 x ``length`` image and each 1-D kernel a (1, k) Conv2d
    kernel, padded along the length only: the same cross-correlation as a 1-D
    convolution, and every layer that knows Conv2d (BN, FN, BNP) applies as is.

    Shapes: (N, 1, 1, length) -> (N, num_classes); the lengths after the
    convolutions are 19, 10, 5 for length 40 (``(L + 2 - k) // 2 + 1``).
    """
    make_norm, rng = _norm(norm, "mnist1d_cnn", 2), init.get_rng(rng)
    layers: list[Module] = []
    size, fan_in = int(length), 1
    for kernel in (5, 3, 3):
        if size + 2 < kernel:
            raise ValueError(f"mnist1d_cnn: length {length} is too short for the three strided convolutions")
        layers.append(Conv2d(fan_in, channels, (1, kernel), stride=(1, 2), padding=(0, 1), rng=rng))
        if make_norm is not None:
            layers.append(make_norm(channels))
        layers.append(ReLU())
        size, fan_in = (size + 2 - kernel) // 2 + 1, channels
    layers += [Flatten(), Linear(channels * size, num_classes, rng=rng)]
    return Sequential(*layers)
