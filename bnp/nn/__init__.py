"""Layers and networks with PyTorch's interface: Module, Parameter, Linear, Conv2d,
BatchNorm, pooling, activations, and ready-made models.

Functional forms (conv2d, batch_norm, ...) live in :mod:`bnp.functional`.
"""

from . import init, models
from .activation import ReLU, Sigmoid, Tanh
from .container import Sequential
from .conv import Conv2d
from .flatten import Flatten
from .linear import Linear
from .models import NORMS, Residual, mlp, mnist1d_cnn, mnist1d_mlp, small_cnn
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, FullNorm1d, FullNorm2d
from .parameter import Parameter
from .pooling import AvgPool2d, MaxPool2d

__all__ = [
    "Module", "Parameter", "Sequential", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "Tanh", "Sigmoid",
    "Flatten", "BatchNorm1d", "BatchNorm2d", "FullNorm1d", "FullNorm2d",
    "init", "models", "mlp", "small_cnn", "mnist1d_mlp", "mnist1d_cnn", "Residual", "NORMS",
]
