"""Optimizers: plain and momentum SGD, and Adam, with PyTorch's update rules.

    opt = bnp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad(); loss.backward(); opt.step()

The BNP preconditioner (``bnp.BNP``) is not an optimizer: it rewrites the
gradients between ``backward()`` and ``step()`` and works with any of these.
"""

from .adam import Adam
from .optimizer import Optimizer, gradient_array
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "gradient_array"]
