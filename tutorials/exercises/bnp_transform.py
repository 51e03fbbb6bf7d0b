"""Exercise bnp_transform: the BNP transform P and the standardized layer's Hessian P^T H P.

Prepared by chapter 04_bnp (the reparametrization theta = P theta_hat). Grade it with::

    bnp grade bnp_transform tutorials/exercises/bnp_transform.py

Task. Write

    bnp_transform(mean, var, eps) -> P
        mean, var: (n,) statistics of a layer's input; eps: float.
        P: (n+1, n+1) = [[D^-1, 0], [-mean^T D^-1, 1]], D = diag(sqrt(var + eps)),
        so that P^T [a; 1] = [D^-1 (a - mean); 1]: a neuron theta = P theta_hat
        sees standardized inputs.

    transformed_hessian(H, P) -> H_hat
        H: (out*(n+1), out*(n+1)), the Hessian of a loss over a whole layer's
        parameters, neuron-major (neuron 0's n weights and bias, then neuron 1's, ...).
        P: (n+1, n+1) from bnp_transform.
        H_hat: the Hessian of the standardized network, (I_out kron P)^T H (I_out kron P).

NumPy arrays in and out. The grader refuses bnp.theory.bnp_transform (and the
other pieces of P in bnp.theory / bnp.preconditioner).

Hints.
- Which side gets the transpose: theta = P theta_hat, so d2L/dtheta_hat^2 = P^T H P.
- Every neuron's (n+1)-block is transformed by the same P: np.kron(np.eye(out), P),
  or reshape H to (out, n+1, out, n+1) and use np.einsum.
"""

from __future__ import annotations

import numpy as np


def bnp_transform(mean: np.ndarray, var: np.ndarray, eps: float) -> np.ndarray:
    """P = [[D^-1, 0], [-mean^T D^-1, 1]]. Shapes: (n,), (n,) -> (n+1, n+1)."""
    raise NotImplementedError("write bnp_transform")


def transformed_hessian(H: np.ndarray, P: np.ndarray) -> np.ndarray:
    """(I kron P)^T H (I kron P). Shapes: H (out*(n+1), out*(n+1)), P (n+1, n+1) -> like H."""
    raise NotImplementedError("write transformed_hessian")
