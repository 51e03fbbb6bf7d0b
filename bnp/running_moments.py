"""Running (exponentially weighted) estimates of a mean and a variance.

Both BNP and Full Normalization estimate the moments of a layer's input over
the whole data from a stream of batches. Two details matter:

* The second moment is averaged, not the batch variance: a batch of one
  sample has variance 0, yet a stream of such batches has a perfectly good
  variance. We keep the variance *about the running mean*, combined with each
  batch's by the parallel-variance formula (Chan, Golub & LeVeque)::

      v' = (1-w) (v + (m - m')^2) + w (v_B + (m_B - m')^2),   m' = m + w (m_B - m)

  which equals ``E[a^2] - E[a]^2`` of the weighted stream exactly, without the
  cancellation that formula suffers when |mean| >> std (ReLU outputs, large
  input offsets) in float32.
* Bias correction: with ``rho`` the decay, the weight of step t is
  ``w_t = (1 - rho) / (1 - rho**t)`` (1 at the first step). This is exactly the
  bias-corrected EMA of Adam, written as an update of the corrected value; the
  first batch's own statistics are used at step 1, and ``rho = 0`` always
  gives the current batch's statistics.
"""

from __future__ import annotations

from typing import Any

from . import backend


def batch_weight(count: int, rho: float, bias_correction: bool = True) -> float:
    """Weight of the next batch after ``count`` earlier ones: ``(1-rho)/(1-rho**(count+1))``."""
    if bias_correction:
        return (1.0 - rho) / (1.0 - rho ** (count + 1))
    return 1.0 - rho


def combine(mean: Any, var: Any, batch_mean: Any, batch_var: Any, w: float, full: bool = False) -> tuple[Any, Any]:
    """Weighted combination of running and batch moments (the formula above).

    Shapes: mean, batch_mean (n,); var, batch_var (n,) or (n, n) when ``full``.
    Returns the new (mean, var).
    """

    def square(d: Any) -> Any:
        return d[:, None] * d[None, :] if full else d * d

    new_mean = mean + w * (batch_mean - mean)
    new_var = (1 - w) * (var + square(mean - new_mean)) + w * (batch_var + square(batch_mean - new_mean))
    return new_mean, new_var


class RunningMoments:
    """Per-feature running mean and variance of a stream of batches.

    Args:
        num_features: length of the mean and variance vectors.
        rho: decay in [0, 1): weight of the past (0 = only the last batch).
        bias_correction: correct the start-up bias of the average (see module doc).
        dtype: dtype of the estimates (the parameters' dtype).
        full: keep the full covariance matrix (n, n) instead of the variances.
    """

    def __init__(
        self, num_features: int, rho: float, bias_correction: bool = True, dtype: Any = None, full: bool = False
    ):
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must lie in [0, 1), got {rho}")
        xp = backend.xp()
        dtype = dtype or backend.get_default_dtype()
        self.rho = float(rho)
        self.bias_correction = bias_correction
        self.mean = xp.zeros(num_features, dtype=dtype)
        self.full = full
        self.var = xp.zeros((num_features, num_features) if full else num_features, dtype=dtype)
        self.count = 0

    def weight(self) -> float:
        """The weight w_t of the batch about to be added (t = count + 1)."""
        return batch_weight(self.count, self.rho, self.bias_correction)

    def update(self, batch_mean: Any, batch_var: Any) -> None:
        """Fold in one batch's mean (n,) and biased variance (n,) (or covariance (n, n) if ``full``)."""
        self.mean, self.var = combine(self.mean, self.var, batch_mean, batch_var, self.weight(), self.full)
        self.count += 1

    def state_dict(self) -> dict[str, Any]:
        xp = backend.xp()
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": xp.asarray(self.count)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mean, var = backend.asarray(state["mean"]), backend.asarray(state["var"])
        if mean.shape != self.mean.shape or var.shape != self.var.shape:
            raise ValueError(
                f"RunningMoments: expected statistics of shape {self.mean.shape}, got {mean.shape} and {var.shape}"
            )
        self.mean, self.var = mean.astype(self.mean.dtype), var.astype(self.var.dtype)
        self.count = int(backend.to_numpy(backend.asarray(state["count"])))
