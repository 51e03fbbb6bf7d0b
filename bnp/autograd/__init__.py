"""Reverse-mode automatic differentiation over NumPy/CuPy arrays, to any order."""

from . import ops
from .graph import ZERO_DERIVATIVE, enable_grad, grad, is_grad_enabled, make_node, no_grad
from .higher import hessian, hvp, jacobian
from .tensor import Tensor, tensor

__all__ = ["Tensor", "tensor", "grad", "no_grad", "enable_grad", "is_grad_enabled", "hvp", "hessian", "jacobian", "ops",
           "make_node", "ZERO_DERIVATIVE"]
