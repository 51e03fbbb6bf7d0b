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

Nothing non-finite is ever folded in (the guard of BNP, BN and FN alike): a
batch without samples is refused (:func:`batch_moments`), and a new estimate
that is not finite (NaN or inf in the input, or a square that overflows a
float32) raises :class:`bnp.errors.NonFiniteError` naming the layer *before*
it replaces the old one (:func:`check_finite`), so one bad batch never
poisons the statistics for good. The hyperparameters are checked where they
are given (:func:`check_rho`, :func:`check_eps`, :func:`check_momentum`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from . import backend
from .errors import NonFiniteError


# -- hyperparameter checks, shared by BNP, BN and FN -----------------------------------
def _real(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be a finite real number, got {value!r}")
    return float(value)


def check_rho(where: str, rho: Any) -> float:
    """``rho`` as a float in [0, 1), or a ValueError naming ``where``."""
    rho = _real(where, "rho", rho)
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"{where}: rho must lie in [0, 1), got {rho!r}")
    return rho


def check_eps(where: str, eps: Any) -> float:
    """``eps`` as a finite float >= 0, or a ValueError naming ``where``."""
    eps = _real(where, "eps", eps)
    if eps < 0:
        raise ValueError(f"{where}: eps must be >= 0, got {eps!r}")
    return eps


def check_momentum(where: str, momentum: Any, allow_none: bool = False, allow_zero: bool = True) -> float | None:
    """``momentum`` as a float in [0, 1] ((0, 1] without ``allow_zero``), or None if allowed."""
    if momentum is None and allow_none:
        return None
    momentum = _real(where, "momentum", momentum)
    low_ok = momentum >= 0 if allow_zero else momentum > 0
    if not (low_ok and momentum <= 1):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{where}: momentum must lie in {interval}{' or be None' if allow_none else ''}, "
                         f"got {momentum!r}")
    return momentum


# -- the guard against poisoned statistics -----------------------------------------------
def _column_means(rows: Any) -> Any:
    """``rows.mean(axis=0)`` for rows (m, n), to the bit, without NumPy's slow reduction over narrow rows.

    For C-contiguous rows with n > 1, NumPy's axis-0 reduction adds the rows
    one after the other, one short inner loop per row (12544 rows of 8
    channels: 0.2 ms); ``einsum`` adds them in the same order with a faster
    loop, and the division is the one ``mean`` does. Otherwise (n = 1, or rows
    that are a transposed view, as a conv input at batch size 1 gives) NumPy
    sums pairwise along memory, so ``mean`` is used as it is.
    """
    xp = backend.xp()
    if backend.get_backend() != "numpy" or rows.shape[1] == 1 or not rows.flags.c_contiguous:
        return rows.mean(axis=0)
    total = xp.einsum("ij->j", rows)
    return xp.true_divide(total, xp.intp(rows.shape[0]), out=total, casting="unsafe")


def _minus_row(rows: Any, row: Any, groups: int) -> Any:
    """``rows - row`` (each of the m rows minus the same n-vector), elementwise the same.

    The m rows are ``groups`` equal blocks (the samples of a batch): seen as
    ``groups`` long rows minus the vector tiled, NumPy's inner loop runs over
    a whole sample instead of n values (channels) at a time.
    """
    m, n = rows.shape
    if n > 64 or m % groups or m == groups or backend.get_backend() != "numpy" or not rows.flags.c_contiguous:
        return rows - row
    per = m // groups
    return (rows.reshape(groups, per * n) - backend.xp().tile(row, per)).reshape(m, n)


def batch_moments(data: Any, axes: tuple[int, ...], where: str, full: bool = False, groups: int = 1) -> tuple[Any, Any]:
    """Mean and biased variance of a batch over ``axes`` (quietly: the caller checks them).

    Shapes: data (..., n) reduced over ``axes`` to (n,); with ``full`` data is
    (rows, n) and the second result the covariance (n, n).
    Raises ValueError for a batch with no samples (its moments do not exist).
    Rows (m, n) reduced over axis 0 take a faster path with the same bits;
    ``groups`` says they are that many equal blocks (the samples of a batch).
    """
    count = 1
    for ax in axes:
        count *= data.shape[ax]
    if count == 0:
        raise ValueError(f"{where}: the batch has no samples (input of shape {tuple(data.shape)}); "
                         "its statistics do not exist, so nothing was folded into the running ones")
    rows = data.ndim == 2 and tuple(axes) == (0,)
    with backend.quiet_float_errors():
        if rows:
            mean = _column_means(data)
            centred = _minus_row(data, mean, groups)
        else:
            mean = data.mean(axis=axes)
            centred = data - mean.reshape(tuple(1 if ax in axes else s for ax, s in enumerate(data.shape)))
        if full:
            return mean, centred.T @ centred / count
        centred *= centred  # in place: this runs on every training forward pass
        return mean, _column_means(centred) if rows else centred.mean(axis=axes)


def check_finite(where: str, **arrays: Any) -> None:
    """Raise NonFiniteError naming ``where`` and the arrays with NaN or inf entries.

    One device synchronisation (a boolean read back) per call.
    """
    xp = backend.xp()
    values = list(arrays.values())
    ok = xp.isfinite(values[0]).all()
    for v in values[1:]:
        ok = ok & xp.isfinite(v).all()
    if bool(ok):
        return
    bad = []
    for name, v in arrays.items():
        count = int((~xp.isfinite(v)).sum())
        if count:
            bad.append(f"{name} has {count} non-finite of {v.size} entries")
    raise NonFiniteError(
        f"{where}: refusing non-finite statistics ({'; '.join(bad)}, dtype {values[0].dtype}): the input has "
        "NaN or inf entries, or values whose square overflows the dtype; the running statistics were left unchanged"
    )


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
        name: who owns the statistics, for error messages (BNP passes the layer).
    """

    def __init__(
        self,
        num_features: int,
        rho: float,
        bias_correction: bool = True,
        dtype: Any = None,
        full: bool = False,
        name: str = "RunningMoments",
    ):
        self.name = name
        self.rho = check_rho(name, rho)
        xp = backend.xp()
        dtype = dtype or backend.get_default_dtype()
        self.bias_correction = bias_correction
        self.mean = xp.zeros(num_features, dtype=dtype)
        self.full = full
        self.var = xp.zeros((num_features, num_features) if full else num_features, dtype=dtype)
        self.count = 0

    def weight(self) -> float:
        """The weight w_t of the batch about to be added (t = count + 1)."""
        return batch_weight(self.count, self.rho, self.bias_correction)

    def update(self, batch_mean: Any, batch_var: Any) -> None:
        """Fold in one batch's mean (n,) and biased variance (n,) (or covariance (n, n) if ``full``).

        Raises NonFiniteError, and changes nothing, if the new estimates would not be finite.
        """
        with backend.quiet_float_errors():
            mean, var = combine(self.mean, self.var, batch_mean, batch_var, self.weight(), self.full)
        check_finite(self.name, mean=mean, variance=var)
        self.mean, self.var = mean, var
        self.count += 1

    def observe(self, rows: Any, groups: int = 1) -> None:
        """Fold in a batch of samples, rows (N, n): its mean and variance (covariance if ``full``).
        ``groups``: the rows are that many equal blocks (a conv input's samples), for speed only."""
        mean, spread = batch_moments(rows, (0,), self.name, self.full, groups)
        self.update(mean.astype(self.mean.dtype, copy=False), spread.astype(self.var.dtype, copy=False))

    def state_dict(self) -> dict[str, Any]:
        xp = backend.xp()
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": xp.asarray(self.count)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mean, var = backend.asarray(state["mean"]), backend.asarray(state["var"])
        if mean.shape != self.mean.shape or var.shape != self.var.shape:
            raise ValueError(
                f"RunningMoments: expected statistics of shape {self.mean.shape}, got {mean.shape} and {var.shape}"
            )
        count = backend.to_numpy(backend.asarray(state["count"]))
        if count.shape != () or count.dtype.kind not in "iu" or int(count) < 0:
            raise ValueError(f"{self.name}: expected a count that is an integer >= 0, got {count!r}")
        mean, var = mean.astype(self.mean.dtype), var.astype(self.var.dtype)
        check_finite(f"{self.name} (load_state_dict)", mean=mean, variance=var)
        self.mean, self.var, self.count = mean, var, int(count)
