"""Graders of chapter 5's exercises: ``running_moments`` and ``fn_gradient``.

running_moments. After batches 1..T with weight of the past ``rho``, the
bias-corrected average gives batch t the weight
``c_t = (1 - rho) rho^(T-t) / (1 - rho^T)`` (they sum to 1; rho = 0 keeps the
last batch). The reference, written directly from that (and tested against
``bnp.BNP``'s statistics in tests/test_grading.py), is the weighted mean and
variance of all samples seen, each sample of batch t weighing ``c_t / N_t``::

    mean = sum_t c_t mean_k x_tk,     var = sum_t c_t mean_k (x_tk - mean)^2

Scales and tolerances: the mean is compared relative to ``sum_t c_t mean|x_t|``
(a few flops per batch: 1e-12); the variance relative to itself (plus
``1e-14 max_t mean|x_t|^2``, a few roundings of any ``x^2`` seen, so that an exact 0 is allowed them). Centred formulas
carry a relative error of ~ u |mean| / std, ~1e-10 at the cases' largest ratio
1e6; the tolerance 1e-7 leaves a factor 1000, while ``E[x^2] - E[x]^2`` is off
by ~ u ratio^2 ~ 1e-4 there.

fn_gradient. Full Normalization's training step normalizes with running
moments ``(m, v)`` but differentiates the batch moments as if they had those
values (bnp.functional.full_norm): with ``s = sqrt(v + eps)``, ``xh = (x - m) / s`` and
``g = dout * gamma`` the compositional gradient is::

    dx = (g - mean_k g - xh mean_k(g xh)) / s,   dgamma = sum_k dout xh,   dbeta = sum_k dout

BN's formula, evaluated at the running moments (the variance's derivative is
``d m2_B - 2 m d m1_B = 2 (x - m) / N``). Scales and tolerances as in
``batchnorm_backward``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy
from hypothesis import strategies as st

from . import cases
from .batchnorm import batchnorm_reference
from .hints import matches, probe, shape_hint
from .runner import Checker, Exercise, Mismatch

__all__ = ["RunningMoments", "FnGradient", "running_moments_reference", "fn_gradient_reference"]

RHOS = (0.0, 0.5, 0.9, 0.99)


# --------------------------------------------------------------------------- running_moments
@dataclass(frozen=True)
class StreamCase:
    sizes: tuple[int, ...]  # N_t of each batch
    d: int
    mean_ratio: float
    decades: int
    rho: float
    seed: int

    def batches(self) -> list[numpy.ndarray]:
        r = cases.rng(self.seed)
        scale = cases.feature_scales(self.d, self.decades)
        centre = r.choice([-1.0, 1.0], self.d) * self.mean_ratio * scale
        # each batch's mean drifts by about one standard deviation: the spread between batches counts
        return [centre + scale * (r.standard_normal(self.d) + r.standard_normal((n, self.d))) for n in self.sizes]


def batch_weights(count: int, rho: float, corrected: bool = True) -> numpy.ndarray:
    """c_t for t = 1..count (bias-corrected, summing to 1), or the uncorrected (1 - rho) rho^(T-t)."""
    powers = rho ** numpy.arange(count - 1, -1, -1, dtype=float)
    if rho == 0.0:
        powers = numpy.r_[numpy.zeros(count - 1), 1.0]
    c = (1.0 - rho) * powers
    return c / (1.0 - rho**count) if corrected else c


def running_moments_reference(batches: list[numpy.ndarray], rho: float, corrected: bool = True,
                              pooled: bool = False) -> dict[str, numpy.ndarray]:
    """Weighted mean and variance of all samples (and scales). ``pooled``: batches averaged, not their variance
    about the running mean (a known wrong answer)."""
    c = batch_weights(len(batches), rho, corrected)
    means = numpy.stack([b.mean(axis=0) for b in batches])
    mean = c @ means
    var = sum(ct * ((b - mean) ** 2).mean(axis=0) for ct, b in zip(c, batches, strict=True))
    batch_vars = numpy.stack([((b - b.mean(axis=0)) ** 2).mean(axis=0) for b in batches])
    sizes = numpy.stack([numpy.abs(b).mean(axis=0) for b in batches])
    mscale = c @ sizes
    return {"mean": mean, "var": var, "mean_scale": mscale, "var_scale": var + 1e-14 * sizes.max(axis=0) ** 2,
            "var_of_batch_vars": c @ batch_vars}


class RunningMoments(Exercise):
    name = "running_moments"
    functions = ("running_moments",)
    forbidden = ("bnp.running_moments.RunningMoments.update", "bnp.running_moments.combine",
                 "bnp.running_moments.batch_weight", "bnp.preconditioner.BNP._observe",
                 "bnp.functional.batch_norm")
    forbid_reason = "this exercise asks you to keep the running moments yourself (bnp.running_moments is the reference)"
    tolerances = {"mean": 1e-12, "var": 1e-7}

    def cases(self) -> Any:
        return st.builds(StreamCase, sizes=st.lists(cases.batch_sizes(6), min_size=1, max_size=6).map(tuple),
                         d=st.integers(1, 3), mean_ratio=st.sampled_from(cases.MEAN_RATIOS),
                         decades=st.sampled_from(cases.DECADES), rho=st.sampled_from(RHOS), seed=cases.seeds())

    def inputs(self, case: StreamCase) -> dict[str, Any]:
        return {"batches": case.batches(), "rho": case.rho}

    def check(self, fns: SimpleNamespace, case: StreamCase, c: Checker) -> None:
        batches = case.batches()
        ref = running_moments_reference(batches, case.rho)
        result = fns.running_moments([b.copy() for b in batches], case.rho)
        mean, var = c.unpack(result, "running_moments", ("mean", "var"))
        mean, var = c.array(mean, "mean", (case.d,)), c.array(var, "var", (case.d,))
        c.close("mean", mean, ref["mean"], ref["mean_scale"])
        c.close("var", var, ref["var"], ref["var_scale"])

    def hint(self, case: StreamCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        if failure.kind == "shape":
            return shape_hint(failure.detail, failure.quantity) + " (one mean and one variance per feature)"
        if failure.kind == "wrong":
            q, got = failure.quantity, failure.detail["got"]
            batches = case.batches()
            ref = running_moments_reference(batches, case.rho)
            scale = ref[f"{q}_scale"]
            T = len(batches)
            if case.rho > 0 and T < 50:
                raw = running_moments_reference(batches, case.rho, corrected=False)
                if matches(got, raw[q], scale):
                    return (f"no bias correction: after t = {T} batches divide by 1 - rho^t = "
                            f"{1 - case.rho**T:.3g} (or use the weight (1 - rho) / (1 - rho^t) for batch t)")
            if 0.0 < case.rho and T > 1:
                flipped = running_moments_reference(batches, 1.0 - case.rho)
                if case.rho != 0.5 and matches(got, flipped[q], scale):
                    return "rho is the weight of the PAST: m <- rho m + (1 - rho) m_batch"
            squares = max(float((b * b).max()) for b in batches)
            if q == "var" and float(numpy.abs(got - ref["var"]).max()) <= 1e-13 * squares:
                return ("var is off by a few roundings of x^2, much more than of the variance itself: "
                        "E[x^2] - E[x]^2 cancels; centre before squaring (spread about the running mean)")
            if q == "var" and matches(got, ref["var_of_batch_vars"], scale):
                return ("you averaged the batch variances: that leaves out the spread between batch means (and is 0 "
                        "for batches of one sample); keep the variance about the running mean, "
                        "v <- (1-w)(v + (m - m')^2) + w(v_B + (m_B - m')^2)")
        return probe(case, passes, [
            (lambda k: len(k.sizes) > 1 and len(set(k.sizes)) > 1, {"sizes": (case.sizes[0],) * len(case.sizes)},
             "fails only when batches differ in size: each BATCH has weight c_t (BNP averages batches, not samples)"),
            (lambda k: 1 in k.sizes, {"sizes": tuple(max(n, 4) for n in case.sizes)}, "fails when a batch has one "
             "sample: its batch variance is 0 (biased) or undefined (unbiased); the stream still has a variance"),
            (lambda k: k.mean_ratio > 1, {"mean_ratio": 1.0}, f"fails when the mean is large ({case.mean_ratio:g} "
             "standard deviations): did you centre? E[x^2] - E[x]^2 cancels"),
            (lambda k: k.rho > 0, {"rho": 0.0}, "fails only when rho > 0: check the weights and the bias "
             "correction 1 / (1 - rho^t)"),
            (lambda k: len(k.sizes) > 1, {"sizes": case.sizes[-1:]}, "fails only with several batches: check how "
             "a batch is folded into the running estimates"),
        ])


# --------------------------------------------------------------------------- fn_gradient
@dataclass(frozen=True)
class FNCase(cases.BatchCase):
    running: int = 0  # 0: the batch's own moments; 1: near them; 2: far from them
    eps: float = 1e-5

    def arrays(self) -> dict[str, numpy.ndarray]:
        x = self.x()
        r = cases.rng(self.seed + 3)
        scale = cases.feature_scales(self.d, self.decades)
        mean, var = x.mean(axis=0), ((x - x.mean(axis=0)) ** 2).mean(axis=0)
        if self.running == 1:
            mean, var = mean + 0.5 * scale * r.standard_normal(self.d), var * r.uniform(0.5, 2.0, self.d) + \
                0.1 * scale**2
        elif self.running == 2:
            mean, var = mean + 3.0 * scale * r.standard_normal(self.d), scale**2 * 10 ** r.uniform(-1, 1, self.d)
        return {"x": x, "dout": r.standard_normal((self.n, self.d)), "running_mean": mean, "running_var": var,
                "gamma": r.uniform(0.5, 2.0, self.d) * r.choice([-1.0, 1.0], self.d)}


def fn_gradient_reference(a: dict[str, numpy.ndarray], eps: float) -> dict[str, numpy.ndarray]:
    """The compositional gradient (and scales): batchnorm's backward with the running moments."""
    s = numpy.sqrt(a["running_var"] + eps)
    xh = (a["x"] - a["running_mean"]) / s
    g = a["dout"] * a["gamma"]
    return {"dx": (g - g.mean(axis=0) - xh * (g * xh).mean(axis=0)) / s,
            "dgamma": (a["dout"] * xh).sum(axis=0), "dbeta": a["dout"].sum(axis=0),
            "dx_scale": (numpy.abs(g) + numpy.abs(g).mean(axis=0) + numpy.abs(xh) * numpy.abs(g * xh).mean(axis=0)) / s,
            "dgamma_scale": numpy.abs(a["dout"] * xh).sum(axis=0), "dbeta_scale": numpy.abs(a["dout"]).sum(axis=0),
            "dx_constants": g / s, "dx_uncentred_var": (g - g.mean(axis=0) - a["x"] * (g * xh).mean(axis=0) / s) / s}


class FnGradient(Exercise):
    name = "fn_gradient"
    functions = ("fn_gradient",)
    forbidden = ("bnp.functional.full_norm", "bnp.nn.FullNorm1d.forward",
                 "bnp.nn.FullNorm2d.forward", "bnp.functional.batch_norm", "bnp.autograd.graph.grad",
                 "bnp.autograd.graph.backward", "bnp.autograd.tensor.Tensor.backward")
    forbid_reason = ("this exercise asks for FN's gradient derived by hand in NumPy (not bnp's full_norm, "
                     "FullNorm1d/2d or autograd)")
    tolerances = {"dx": 1e-7, "dgamma": 1e-7, "dbeta": 1e-12}

    def cases(self) -> Any:
        return st.builds(FNCase, n=cases.batch_sizes(12), d=st.integers(1, 3),
                         mean_ratio=st.sampled_from(cases.MEAN_RATIOS), decades=st.sampled_from(cases.DECADES),
                         seed=cases.seeds(), running=st.sampled_from((0, 1, 2)), eps=st.sampled_from((1e-5, 1e-2)))

    def inputs(self, case: FNCase) -> dict[str, Any]:
        return {**case.arrays(), "eps": case.eps}

    def check(self, fns: SimpleNamespace, case: FNCase, c: Checker) -> None:
        a = case.arrays()
        ref = fn_gradient_reference(a, case.eps)
        n, d = case.n, case.d
        result = fns.fn_gradient(a["x"].copy(), a["dout"].copy(), a["running_mean"].copy(), a["running_var"].copy(),
                                 a["gamma"].copy(), case.eps)
        dx, dgamma, dbeta = c.unpack(result, "fn_gradient", ("dx", "dgamma", "dbeta"))
        dx, dgamma, dbeta = c.array(dx, "dx", (n, d)), c.array(dgamma, "dgamma", (d,)), c.array(dbeta, "dbeta", (d,))
        c.close("dbeta", dbeta, ref["dbeta"], ref["dbeta_scale"])
        c.close("dgamma", dgamma, ref["dgamma"], ref["dgamma_scale"])
        c.close("dx", dx, ref["dx"], ref["dx_scale"])

    def hint(self, case: FNCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        if failure.kind == "shape":
            return shape_hint(failure.detail, failure.quantity) + " (axis 0 is the batch)"
        if failure.kind == "wrong":
            a = case.arrays()
            q, got = failure.quantity, failure.detail["got"]
            ref = fn_gradient_reference(a, case.eps)
            scale = ref[f"{q}_scale"]
            bn = batchnorm_reference(a["x"], a["gamma"], numpy.zeros(case.d), case.eps, a["dout"])
            if case.running > 0 and matches(got, bn[q], scale):
                return ("you used the batch's own mean and variance: FN normalizes with the RUNNING moments and "
                        "differentiates the batch moments as if they had those values")
            if q == "dx" and matches(got, ref["dx_constants"], scale):
                return ("dx = dout * gamma / s treats the moments as constants (eval mode); in training FN "
                        "differentiates the batch moments m1, m2 (the compositional gradient)")
            if q == "dx" and matches(got, ref["dx_uncentred_var"], scale):
                return ("the variance is m2 - m1^2: its derivative is d m2 - 2 m d m1 = 2 (x - m) / N, not 2 x / N")
        return probe(case, passes, [
            (lambda k: k.running > 0, {"running": 0}, "right only when the running moments equal the batch's: "
             "normalize (and differentiate) with the running moments, not the batch statistics"),
            (lambda k: k.n == 1, {"n": 4}, "fails only when N = 1"),
            (lambda k: k.mean_ratio > 1, {"mean_ratio": 1.0}, "fails when the mean is large: did you centre with "
             "the running mean (x - m) before multiplying?"),
            (lambda k: k.decades > 0, {"decades": 0}, "error grows with the spread of scales: divide by "
             "s = sqrt(v + eps), the standard deviation"),
        ])
