"""The learning-rate search of ``bnp compare``: the best of a grid, extended past an edge.

Each (model, method, batch size) gets the learning rate with the lowest score
(the final training loss on seed 0; a diverged or failed run scores +inf)
among the grid values tried. A grid tells nothing about rates beyond its
ends, so when the best is at an end the grid grows in that direction:

* **Factor.** Upward by ``f_up = largest / second largest`` value of the
  given grid, downward by ``f_down = second smallest / smallest``: the ratio
  of the neighbouring grid values at that end. For the default grid
  {0.003, 0.01, 0.03, 0.1, 0.3} that is x3 upward (0.9, 2.7) and /3.33
  downward (0.0009, 0.00027, 8.1e-05). The k-th new value is
  ``edge * f**k``, rounded to 6 significant digits (so that 0.3 * 3 reads 0.9).
* **Limits.** At most ``max_extensions`` new values per side, and never a rate
  above ``lr_max``. One value is added at a time, and the search goes on until
  the best is inside the grid or a limit stops it.
* **Edge flag.** ``at_edge`` is true only when a limit stopped the search while
  the best was still at an end (the best rate may lie beyond what was tried).
* **Nothing finite.** If every rate diverged, smaller rates are the cure, so
  the grid grows downward as if the smallest were best. If every rate failed
  for a reason other than divergence (BN at batch size 1), there is nothing to
  tune: no extension, ``best`` is None.
* **Ties** go to the rate tried first (the given grid in its order, then the
  extensions). A grid of one value fixes the rate: no factor, no extension.
"""

from __future__ import annotations

import math
from typing import Sequence


def _round(x: float) -> float:
    return float(f"{x:.6g}")


class LrSearch:
    """The state of one row's search. Feed it every trial's score with ``record``;
    ``next_lr()`` is the next rate to try (or None once the search is over).

    Args:
        lrs: the given grid (distinct positive rates, any order).
        max_extensions: most new values per side (>= 0).
        lr_max: no rate above this is tried (>= max(lrs)).
    """

    def __init__(self, lrs: Sequence[float], max_extensions: int = 3, lr_max: float = math.inf):
        lrs = tuple(float(v) for v in lrs)
        if not lrs or len(set(lrs)) != len(lrs) or not all(math.isfinite(v) and v > 0 for v in lrs):
            raise ValueError(f"LrSearch: expected distinct finite positive learning rates, got {lrs}")
        if max_extensions < 0:
            raise ValueError(f"LrSearch: max_extensions must be >= 0, got {max_extensions}")
        if not lr_max >= max(lrs):
            raise ValueError(f"LrSearch: lr_max {lr_max} is below the grid's largest rate {max(lrs)}")
        self.given, self.max_extensions, self.lr_max = lrs, max_extensions, lr_max
        low = sorted(lrs)
        self.factor_down = low[1] / low[0] if len(low) > 1 else None
        self.factor_up = low[-1] / low[-2] if len(low) > 1 else None
        self.tried: list[float] = list(lrs)
        self.scores: dict[float, float] = {}
        self.diverged: dict[float, bool] = {}
        self.extensions = {"up": 0, "down": 0}

    def record(self, lr: float, score: float, diverged: bool = False) -> None:
        """The score of the trial at ``lr`` (lower is better; +inf for a run that diverged or failed)."""
        if lr not in self.tried:
            raise ValueError(f"LrSearch: {lr} is not a rate of this search ({self.tried})")
        self.scores[lr] = score if math.isfinite(score) else math.inf
        self.diverged[lr] = diverged

    @property
    def complete(self) -> bool:
        """Every rate tried so far has its score."""
        return all(lr in self.scores for lr in self.tried)

    @property
    def best(self) -> float | None:
        """The rate with the lowest finite score (first tried on ties); None if none is finite."""
        self._check_complete()
        finite = [lr for lr in self.tried if math.isfinite(self.scores[lr])]
        return min(finite, key=lambda lr: self.scores[lr]) if finite else None

    def _wanted(self) -> tuple[str | None, float | None]:
        """The direction the grid should grow in, and the candidate rate (None: the best is inside)."""
        best = self.best
        if best is None:
            if not all(self.diverged[lr] for lr in self.tried):
                return None, None
            direction = "down"
        elif best == max(self.tried):
            direction = "up"
        elif best == min(self.tried):
            direction = "down"
        else:
            return None, None
        if self.factor_up is None:  # one-value grid
            return None, None
        k = self.extensions[direction] + 1
        if direction == "up":
            return direction, _round(max(self.given) * self.factor_up ** k)
        return direction, _round(min(self.given) / self.factor_down ** k)

    def _allowed(self, direction: str, candidate: float) -> bool:
        return (self.extensions[direction] < self.max_extensions and candidate not in self.tried
                and (direction == "down" or candidate <= self.lr_max))

    def next_lr(self) -> float | None:
        """The next rate to try (added to ``tried``), or None when the search is over."""
        self._check_complete()
        direction, candidate = self._wanted()
        if direction is None or not self._allowed(direction, candidate):
            return None
        self.extensions[direction] += 1
        self.tried.append(candidate)
        return candidate

    @property
    def at_edge(self) -> bool:
        """The search is over with the best still at an end of the grid, stopped by a limit."""
        self._check_complete()
        direction, candidate = self._wanted()
        return direction is not None and not self._allowed(direction, candidate)

    def _check_complete(self) -> None:
        if not self.complete:
            missing = [lr for lr in self.tried if lr not in self.scores]
            raise RuntimeError(f"LrSearch: no score yet for the rates {missing}")
