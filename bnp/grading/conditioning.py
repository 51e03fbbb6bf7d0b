"""Grader of chapter 3's exercise ``moment_matrix``.

FILE defines ``moment_matrix(a) -> M``: a (N, n) NumPy array of layer inputs,
M (n+1, n+1) = (1/N) sum_k [a_k; 1][a_k; 1]^T (THEORY section 1), the
constant 1 last.

Scale and tolerance: entry (i, j) is a mean of N products, so any summation
order is within ``N u mean_k |at_ki| |at_kj|`` of the exact value (u = 1.1e-16,
N <= 32: 4e-15 of that scale); the tolerance is 1e-12 of it. A per-entry scale
matters here: with feature scales spread over six decades, a wrong entry of a
small feature would hide behind a normwise relative error.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

import numpy

from . import cases
from .hints import matches, probe, shape_hint
from .runner import Checker, Exercise, Mismatch

__all__ = ["MomentMatrix", "moment_matrix_reference"]


def _extend(a: numpy.ndarray) -> numpy.ndarray:
    return numpy.concatenate([a, numpy.ones((a.shape[0], 1))], axis=1)


def moment_matrix_reference(a: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray]:
    """(M, the scale of each entry: mean_k |at_ki| |at_kj|)."""
    at = _extend(a)
    return at.T @ at / a.shape[0], numpy.abs(at).T @ numpy.abs(at) / a.shape[0]


class MomentMatrix(Exercise):
    name = "moment_matrix"
    functions = ("moment_matrix",)
    forbidden = ("bnp.theory.moment_matrix", "bnp.theory.moment_matrix_from_stats", "bnp.theory.extend",
                 "bnp.theory.transformed_moment_matrix", "bnp.theory.batch_statistics")
    forbid_reason = "this exercise asks you to build the moment matrix yourself from the array"
    tolerances = {"M": 1e-12}
    max_examples = 40

    def cases(self) -> Any:
        return cases.batch_cases(max_n=32, max_d=5)

    def inputs(self, case: cases.BatchCase) -> dict[str, Any]:
        return {"a": case.x()}

    def check(self, fns: SimpleNamespace, case: cases.BatchCase, c: Checker) -> None:
        a = case.x()
        ref, scale = moment_matrix_reference(a)
        got = c.array(fns.moment_matrix(a.copy()), "M", (case.d + 1, case.d + 1))
        c.close("M", got, ref, scale)

    def hint(self, case: cases.BatchCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        if failure.kind == "shape":
            n, d = case.n, case.d
            got = failure.detail.get("got_shape")
            if got == (d, d) == (n, n):
                return ("M must be (n+1, n+1): extend every input to [a_k; 1], then average the outer products, "
                        "at.T @ at / N")
            if got == (d, d):
                return "M has no row and column for the constant 1: extend every input to [a_k; 1] first"
            if got == (n, n) or got == (n + 1, n + 1):
                return "M is (n+1, n+1): average the outer products at_k at_k^T, i.e. at.T @ at / N, not at @ at.T"
            return shape_hint(failure.detail, "M")
        if failure.kind == "wrong":
            a = case.x()
            got = failure.detail["got"]
            ref, scale = moment_matrix_reference(a)
            n = case.n
            perm = numpy.r_[case.d, numpy.arange(case.d)]
            first = _extend(a)[:, perm]
            centred, _ = moment_matrix_reference(a - a.mean(axis=0))
            alternatives = [(first.T @ first / n, "the constant 1 goes last: at_k = [a_k; 1]"),
                            (centred, "do not subtract the mean: M is the uncentred second moment of [a; 1]")]
            if n > 1:
                alternatives[:0] = [(ref * n / (n - 1), "divide by N, not N - 1: M is a plain average"),
                                    (ref * n, "you summed the outer products: divide by N")]
            for alt, text in alternatives:
                if matches(got, alt, scale):
                    return text
        return probe(case, passes, [
            (lambda k: k.mean_ratio > 1, {"mean_ratio": 0.0}, "fails only when the mean is non-zero: M is "
             "[[S + mu mu^T, mu], [mu^T, 1]]; did you centre the inputs?"),
            (lambda k: k.n == 1, {"n": 4}, "fails only when N = 1"),
            (lambda k: k.d > 1, {"d": 1}, "fails only with several features: check which axis you average over"),
        ])
