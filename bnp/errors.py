"""The exception bnp raises when a value it would keep or apply is not finite."""

from __future__ import annotations


class NonFiniteError(FloatingPointError, ValueError):
    """A NaN or infinity reached a place where bnp refuses to keep it: running
    statistics (BNP, BN, FN), gradients before an optimizer step (``bnp.fit``).

    It is a ``FloatingPointError`` (what ``bnp.fit`` raises on divergence) and a
    ``ValueError`` (bad input data), so either ``except`` catches it. The state
    that would have been changed is left as it was.
    """
