"""Grader of chapter 2's exercise ``batchnorm_backward`` (CS231n's interface, NumPy, training mode).

FILE defines ``batchnorm_forward(x, gamma, beta, eps) -> (out, cache)`` and
``batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta)``; x (N, D), gamma,
beta (D,), the batch mean and the biased batch variance (divided by N).

Reference (written here, tested against ``bnp.functional.batch_norm`` and
autograd in tests/test_grading.py), with ``xh = (x - mu) / s``,
``s = sqrt(var + eps)`` and ``g = dout * gamma``::

    out = gamma xh + beta,   dbeta = sum_k dout_k,   dgamma = sum_k dout_k xh_k,
    dx = (g - mean_k g - xh mean_k(g xh)) / s

Scales and tolerances. Every entry is compared relative to the size of the
terms it is made of (``|gamma||xh| + |beta|`` for out,
``(|g| + mean|g| + |xh| mean|g xh|) / s`` for dx, ``sum |dout||xh|`` for dgamma,
``sum |dout|`` for dbeta). Entries that go through ``x - mu`` carry a relative
error of about ``u * |mu| / std``, u = 1.1e-16: ~1e-10 at the cases' largest
ratio 1e6, for the reference and for any centred solution alike. The
tolerance 1e-7 leaves a factor ~1000 above that, and sits far below the error
of the uncentred variance ``E[x^2] - E[x]^2`` there (~u * ratio^2 ~ 1e-4).
dbeta is a plain sum: 1e-12 (N <= 16 terms, error <= N u).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy
from hypothesis import strategies as st

from . import cases
from .hints import matches, probe, shape_hint
from .runner import Checker, Exercise, Mismatch

__all__ = ["BatchnormBackward", "batchnorm_reference"]


@dataclass(frozen=True)
class BNCase(cases.BatchCase):
    eps: float = 1e-5

    def arrays(self) -> dict[str, numpy.ndarray]:
        r = cases.rng(self.seed + 1)
        return {"x": self.x(), "gamma": r.uniform(0.5, 2.0, self.d) * r.choice([-1.0, 1.0], self.d),
                "beta": r.standard_normal(self.d), "dout": r.standard_normal((self.n, self.d))}


def batchnorm_reference(x: numpy.ndarray, gamma: numpy.ndarray, beta: numpy.ndarray, eps: float,
                        dout: numpy.ndarray, correction: int = 0, use_eps: bool = True) -> dict[str, numpy.ndarray]:
    """out, dx, dgamma, dbeta and their scales (``correction=1``: the unbiased variance, a known wrong answer)."""
    n = x.shape[0]
    mu = x.mean(axis=0)
    xc = x - mu
    with numpy.errstate(all="ignore"):
        var = (xc * xc).sum(axis=0) / (n - correction)
        s = numpy.sqrt(var + (eps if use_eps else 0.0))
        xh = xc / s
        g = dout * gamma
        dx = (g - g.mean(axis=0) - xh * (g * xh).mean(axis=0)) / s
        return {
            "out": gamma * xh + beta, "dx": dx, "dgamma": (dout * xh).sum(axis=0), "dbeta": dout.sum(axis=0),
            "out_scale": numpy.abs(gamma * xh) + numpy.abs(beta),
            "dx_scale": (numpy.abs(g) + numpy.abs(g).mean(axis=0) + numpy.abs(xh) * numpy.abs(g * xh).mean(axis=0)) / s,
            "dgamma_scale": numpy.abs(dout * xh).sum(axis=0), "dbeta_scale": numpy.abs(dout).sum(axis=0),
            # known wrong answers, for hints
            "dx_constant_stats": g / s, "dx_no_var_term": (g - g.mean(axis=0)) / s,
            "dx_no_mean_term": (g - xh * (g * xh).mean(axis=0)) / s,
        }


class BatchnormBackward(Exercise):
    name = "batchnorm_backward"
    functions = ("batchnorm_forward", "batchnorm_backward")
    forbidden = ("bnp.functional.batch_norm", "bnp.nn.BatchNorm1d.forward", "bnp.nn.BatchNorm2d.forward",
                 "bnp.autograd.graph.grad", "bnp.autograd.graph.backward", "bnp.autograd.tensor.Tensor.backward")
    forbid_reason = ("this exercise asks for batch normalization and its backward pass written by hand in NumPy "
                     "(not bnp's batch_norm, BatchNorm1d/2d or autograd)")
    tolerances = {"out": 1e-7, "dx": 1e-7, "dgamma": 1e-7, "dbeta": 1e-12}
    max_examples = 40
    fallback_hint = "compare your backward pass with finite differences on the shrunk case above"

    def cases(self) -> Any:
        return st.builds(BNCase, n=cases.batch_sizes(16), d=st.integers(1, 4),
                         mean_ratio=st.sampled_from(cases.MEAN_RATIOS), decades=st.sampled_from(cases.DECADES),
                         seed=cases.seeds(), eps=st.sampled_from((1e-5, 1e-2)))

    def inputs(self, case: BNCase) -> dict[str, Any]:
        return case.arrays()

    def check(self, fns: SimpleNamespace, case: BNCase, c: Checker) -> None:
        a = case.arrays()
        ref = batchnorm_reference(a["x"], a["gamma"], a["beta"], case.eps, a["dout"])
        n, d = case.n, case.d
        result = fns.batchnorm_forward(a["x"].copy(), a["gamma"].copy(), a["beta"].copy(), case.eps)
        out, cache = c.unpack(result, "batchnorm_forward", ("out", "cache"))
        out = c.array(out, "out", (n, d))
        c.close("out", out, ref["out"], ref["out_scale"])
        grads = c.unpack(fns.batchnorm_backward(a["dout"].copy(), cache), "batchnorm_backward",
                         ("dx", "dgamma", "dbeta"))
        dx, dgamma, dbeta = (c.array(v, q, s) for v, q, s in zip(grads, ("dx", "dgamma", "dbeta"),
                                                                  ((n, d), (d,), (d,)), strict=True))
        c.close("dbeta", dbeta, ref["dbeta"], ref["dbeta_scale"])
        c.close("dgamma", dgamma, ref["dgamma"], ref["dgamma_scale"])
        c.close("dx", dx, ref["dx"], ref["dx_scale"])

    def hint(self, case: BNCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        if failure.kind == "shape":
            return shape_hint(failure.detail, failure.quantity) + " (axis 0 is the batch: sum over axis=0)"
        if failure.kind == "wrong":
            a = case.arrays()
            got = failure.detail["got"]
            q = failure.quantity
            unbiased = batchnorm_reference(a["x"], a["gamma"], a["beta"], case.eps, a["dout"], correction=1)
            no_eps = batchnorm_reference(a["x"], a["gamma"], a["beta"], case.eps, a["dout"], use_eps=False)
            ref = batchnorm_reference(a["x"], a["gamma"], a["beta"], case.eps, a["dout"])
            scale = ref[f"{q}_scale"]
            if case.n > 1 and matches(got, unbiased[q], scale):
                return (f"{q} is what the unbiased variance (divide by N - 1) gives: training mode uses the biased "
                        f"batch variance (divide by N); here {q} is off by about a factor (N-1)/N = "
                        f"{(case.n - 1) / case.n:.3g}")
            if matches(got, no_eps[q], scale):
                return "you left out eps: the standard deviation is sqrt(var + eps)"
            if q == "dx":
                for key, text in (("dx_constant_stats", "dx = dout * gamma / s treats the batch mean and variance as "
                                   "constants; both depend on x: add the terms through them"),
                                  ("dx_no_var_term", "dx is missing the term through the variance: "
                                   "- xh * mean(dout * gamma * xh) / s"),
                                  ("dx_no_mean_term", "dx is missing the term through the mean: "
                                   "- mean(dout * gamma) / s")):
                    if matches(got, ref[key], scale):
                        return text
                if matches(-got, ref["dx"], scale) or matches(got, -ref["dx"], scale):
                    return "dx has the wrong sign"
            if q in ("dgamma", "dbeta") and case.n > 1 and matches(got * case.n, ref[q], ref[f"{q}_scale"]):
                return f"{q} is the mean over the batch; it is the sum (the loss sums over the batch)"
        return probe(case, passes, [
            (lambda k: k.n == 1, {"n": 4}, "fails only when N = 1: a batch of one sample has variance 0, so the "
             "output is beta and dx is 0; divide by N (biased variance), never by N - 1"),
            (lambda k: k.mean_ratio > 1, {"mean_ratio": 1.0}, f"fails when the mean is large ({case.mean_ratio:g} "
             "standard deviations): did you centre? E[x^2] - E[x]^2 cancels; compute the mean of (x - mu)^2"),
            (lambda k: k.decades > 0, {"decades": 0}, "error grows with the spread of feature scales: did you divide "
             "by the standard deviation sqrt(var + eps), not the variance, at every step?"),
            (lambda k: k.d > 1, {"d": 1}, "fails only with several features: reduce over the batch (axis=0), "
             "never over the features"),
            (lambda k: k.eps != 1e-5, {"eps": 1e-5}, "fails only for the larger eps: is eps added to the variance "
             "everywhere (sqrt(var + eps))?"),
        ])
