"""bnp: Batch Normalization Preconditioning, from scratch, on NumPy or CuPy.

A small autograd that differentiates its own gradients, the layers of MLPs and
convnets, BN / BNP / FN side by side, explicit Hessians of small networks, and
the theory checked as property tests.

    import bnp
    model = bnp.nn.models.mlp([784, 256, 10])
    opt = bnp.optim.SGD(model.parameters(), lr=0.1)
    pre = bnp.BNP(model)
    loss = bnp.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); pre.step(); opt.step()
"""

from . import backend, checkpoint, curvature, data, functional, nn, optim, spectra, theory, train
from .autograd import Tensor, enable_grad, grad, hessian, hvp, is_grad_enabled, jacobian, no_grad, tensor
from .backend import get_backend, get_default_dtype, set_backend, set_default_dtype
from .checkpoint import load, save
from .errors import NonFiniteError
from .preconditioner import BNP
from .statistics_mode import frozen_statistics, statistics_frozen
from .train import evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "grad", "no_grad", "enable_grad", "is_grad_enabled", "hvp", "hessian", "jacobian",
    "set_backend", "get_backend", "set_default_dtype", "get_default_dtype", "backend",
    "functional", "nn", "optim", "checkpoint", "save", "load", "BNP", "data", "train", "fit", "evaluate",
    "theory", "curvature", "spectra", "frozen_statistics", "statistics_frozen", "NonFiniteError",
]
