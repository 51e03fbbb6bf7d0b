"""bnp: Batch Normalization Preconditioning, from scratch, on NumPy or CuPy.

A small autograd that differentiates its own gradients, the layers of MLPs and
convnets, BN / BNP / FN side by side, explicit Hessians of small networks, and
the theory checked as property tests.
"""

from . import backend
from .autograd import Tensor, enable_grad, grad, hessian, hvp, is_grad_enabled, jacobian, no_grad, tensor
from .backend import get_backend, get_default_dtype, set_backend, set_default_dtype

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "grad", "no_grad", "enable_grad", "is_grad_enabled", "hvp", "hessian", "jacobian",
    "set_backend", "get_backend", "set_default_dtype", "get_default_dtype", "backend",
]
