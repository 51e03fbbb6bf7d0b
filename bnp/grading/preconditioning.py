"""Graders of chapter 4's exercises: ``bnp_update``, ``bnp_transform``, ``whitening``.

References are written here from THEORY section 2 (and tested against
``bnp.preconditioner`` and ``bnp.theory`` in tests/test_grading.py)::

    G_W' = (G_W - g_b mu^T) D^-2,   g_b' = g_b - G_W' mu,   D^2 = diag(var + eps)
    P = [[D^-1, 0], [-mu^T D^-1, 1]]

Scales: each entry is compared relative to the size of the terms it is made
of: ``(|G_W| + |g_b| |mu|^T) D^-2`` for G_W', ``|g_b| + |G_W'| |mu|`` for g_b',
``|P|`` for P and ``|P|^T |H| |P|`` for ``P^T H P`` (whose entries, for inputs
with a large mean, are O(1) differences of O(|mu|^2) terms: the scale is what
any order of summation is accurate to). A few flops per entry, or sums of at
most ~20 terms, stay within ~1e-14 of their scale; the tolerances are 1e-12
(updates, P) and 1e-11 (``P^T H P``).

Whitening: a whitening transform is not unique (any ``A`` with
``A^T (S + eps I) A = I``: Cholesky, symmetric square root, ...), so the grader
checks that property and the structure of P, not the matrix. The rounding
error of any backward-stable whitening is ~ ``n u kappa`` with
``kappa = cond(S + eps I)`` (up to 1e8 in the cases): errors there are
measured in units of ``kappa`` and the tolerance is 1e-12 of it.
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

__all__ = ["BnpUpdate", "BnpTransform", "Whitening", "bnp_update_reference", "bnp_transform_reference"]

EPSILONS = (0.0, 1e-3, 1.0)
_BNP_FORBIDDEN = ("bnp.preconditioner.precondition", "bnp.preconditioner.precondition_whitened",
                  "bnp.preconditioner.BNP.step", "bnp.theory.bnp_pp_t", "bnp.theory.bnp_transform",
                  "bnp.theory.whitening_transform", "bnp.theory.standardize", "bnp.theory.transformed_moment_matrix")


# --------------------------------------------------------------------------- bnp_update (Linear)
@dataclass(frozen=True)
class UpdateCase:
    out: int
    n: int
    mean_ratio: float
    decades: int
    eps: float
    seed: int

    def arrays(self) -> dict[str, Any]:
        return cases.gradient_and_statistics(self.seed, (self.out, self.n), self.n, self.mean_ratio, self.decades,
                                             self.eps)


def bnp_update_reference(grad_w: Any, grad_b: Any, mean: Any, var: Any, eps: float) -> dict[str, Any]:
    """BNP's update for a Linear layer (or, with grad_w (out, C, kh, kw), a Conv2d layer with channel statistics)
    and the scale of every entry."""
    out = grad_w.shape[0]
    c = mean.shape[0]
    g = grad_w.reshape(out, c, -1)
    d2 = (var + eps).reshape(1, c, 1)
    mu = mean.reshape(1, c, 1)
    new_w = (g - grad_b.reshape(out, 1, 1) * mu) / d2
    new_b = grad_b - (new_w * mu).sum(axis=(1, 2))
    w_scale = (numpy.abs(g) + numpy.abs(grad_b).reshape(out, 1, 1) * numpy.abs(mu)) / d2
    b_scale = numpy.abs(grad_b) + (numpy.abs(new_w) * numpy.abs(mu)).sum(axis=(1, 2))
    return {"grad_w": new_w.reshape(grad_w.shape), "grad_b": new_b, "grad_w_scale": w_scale.reshape(grad_w.shape),
            "grad_b_scale": b_scale}


def check_update(fn: Callable[..., Any], a: dict[str, Any], c: Checker, name: str) -> None:
    ref = bnp_update_reference(a["grad_w"], a["grad_b"], a["mean"], a["var"], a["eps"])
    result = fn(a["grad_w"].copy(), a["grad_b"].copy(), a["mean"].copy(), a["var"].copy(), a["eps"])
    gw, gb = c.unpack(result, name, ("grad_w", "grad_b"))
    gw = c.array(gw, "grad_w", a["grad_w"].shape)
    gb = c.array(gb, "grad_b", a["grad_b"].shape)
    c.close("grad_w", gw, ref["grad_w"], ref["grad_w_scale"])
    c.close("grad_b", gb, ref["grad_b"], ref["grad_b_scale"])


def update_hint(case: Any, failure: Mismatch, passes: Callable[[Any], bool], a: dict[str, Any]) -> str:
    """Hints shared by bnp_update and bnp_update_conv."""
    if failure.kind == "shape":
        return shape_hint(failure.detail, failure.quantity)
    if failure.kind == "wrong":
        q, got = failure.quantity, failure.detail["got"]
        ref = bnp_update_reference(a["grad_w"], a["grad_b"], a["mean"], a["var"], a["eps"])
        scale = ref[f"{q}_scale"]
        sqrt = bnp_update_reference(a["grad_w"], a["grad_b"], a["mean"], numpy.sqrt(a["var"] + a["eps"]), 0.0)
        no_eps = bnp_update_reference(a["grad_w"], a["grad_b"], a["mean"], a["var"], 0.0)
        if matches(got, sqrt[q], scale):
            return "you divided by D = sqrt(var + eps); BNP's update divides by D^2 = var + eps (P P^T has D^-2)"
        if a["eps"] > 0 and matches(got, no_eps[q], scale):
            return "you left out eps: D^2 = var + eps"
        if q == "grad_b":
            if matches(got, a["grad_b"], scale):
                return "grad_b is unchanged: BNP also rewrites it, g_b' = g_b - G_W' mu"
            old = a["grad_b"] - (a["grad_w"].reshape(a["grad_w"].shape[0], a["mean"].shape[0], -1)
                                 * a["mean"].reshape(1, -1, 1)).sum(axis=(1, 2))
            if matches(got, old, scale):
                return "g_b' = g_b - G_W' mu uses the NEW weight gradient G_W', not the old G_W"
    return probe(case, passes, [
        (lambda k: k.mean_ratio > 0, {"mean_ratio": 0.0}, "fails only when the mean is non-zero: check the centring "
         "terms (G_W - g_b mu^T, and g_b' = g_b - G_W' mu)"),
        (lambda k: k.decades > 0, {"decades": 0}, "error grows with the spread of scales: did you divide by the "
         "variance var + eps (D^2), not the standard deviation?"),
        (lambda k: k.eps > 0, {"eps": 0.0}, "fails only when eps > 0: D^2 = var + eps"),
    ])


class BnpUpdate(Exercise):
    name = "bnp_update"
    functions = ("bnp_update",)
    forbidden = _BNP_FORBIDDEN
    forbid_reason = "this exercise asks you to write BNP's update yourself (bnp.preconditioner is the reference)"
    tolerances = {"grad_w": 1e-12, "grad_b": 1e-12}

    def cases(self) -> Any:
        return st.builds(UpdateCase, out=st.integers(1, 4), n=st.integers(1, 5),
                         mean_ratio=st.sampled_from(cases.MEAN_RATIOS), decades=st.sampled_from(cases.DECADES),
                         eps=st.sampled_from(EPSILONS), seed=cases.seeds())

    def inputs(self, case: UpdateCase) -> dict[str, Any]:
        return case.arrays()

    def check(self, fns: SimpleNamespace, case: UpdateCase, c: Checker) -> None:
        check_update(fns.bnp_update, case.arrays(), c, "bnp_update")

    def hint(self, case: UpdateCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        text = update_hint(case, failure, passes, case.arrays())
        if not text and case.out != case.n:
            text = probe(case, passes, [(lambda k: True, {"out": case.n}, "fails only when out != n: check which "
                                         "axis of grad_w (out, n) the statistics (n,) broadcast along")])
        return text


# --------------------------------------------------------------------------- bnp_transform
@dataclass(frozen=True)
class TransformCase:
    out: int
    n: int
    samples: int
    mean_ratio: float
    decades: int
    eps: float
    seed: int

    def arrays(self) -> dict[str, Any]:
        """mean, var of a batch a, and H = (1/N) sum_k C_k (x) at_k at_k^T, a layer's Hessian block (neuron-major)."""
        batch = cases.BatchCase(self.samples, self.n, self.mean_ratio, self.decades, self.seed).x()
        r = cases.rng(self.seed + 7)
        mean = batch.mean(axis=0)
        var = ((batch - mean) ** 2).mean(axis=0) + cases.feature_scales(self.n, self.decades) ** 2 * 0.1
        B = r.standard_normal((self.samples, self.out, self.out))
        C = B @ B.transpose(0, 2, 1) / self.out
        at = numpy.concatenate([batch, numpy.ones((self.samples, 1))], axis=1)
        k = self.out * (self.n + 1)
        H = numpy.einsum("kij,kp,kq->ipjq", C, at, at).reshape(k, k) / self.samples
        return {"mean": mean, "var": var, "eps": self.eps, "H": (H + H.T) / 2}


def bnp_transform_reference(mean: Any, var: Any, eps: float) -> numpy.ndarray:
    n = mean.shape[0]
    d_inv = 1.0 / numpy.sqrt(var + eps)
    P = numpy.zeros((n + 1, n + 1))
    P[:n, :n] = numpy.diag(d_inv)
    P[n, :n] = -mean * d_inv
    P[n, n] = 1.0
    return P


def transformed_hessian_reference(H: Any, P: Any) -> tuple[numpy.ndarray, numpy.ndarray]:
    """((I (x) P)^T H (I (x) P), the scale |I (x) P|^T |H| |I (x) P|)."""
    out = H.shape[0] // P.shape[0]
    big = numpy.kron(numpy.eye(out), P)
    return big.T @ H @ big, numpy.abs(big).T @ numpy.abs(H) @ numpy.abs(big)


class BnpTransform(Exercise):
    name = "bnp_transform"
    functions = ("bnp_transform", "transformed_hessian")
    forbidden = _BNP_FORBIDDEN
    forbid_reason = "this exercise asks you to build P yourself (bnp.theory.bnp_transform is the reference)"
    tolerances = {"P": 1e-12, "P^T H P": 1e-11}

    def cases(self) -> Any:
        return st.builds(TransformCase, out=st.integers(1, 3), n=st.integers(1, 4), samples=cases.batch_sizes(8),
                         mean_ratio=st.sampled_from(cases.MEAN_RATIOS), decades=st.sampled_from(cases.DECADES),
                         eps=st.sampled_from(EPSILONS), seed=cases.seeds())

    def inputs(self, case: TransformCase) -> dict[str, Any]:
        return case.arrays()

    def check(self, fns: SimpleNamespace, case: TransformCase, c: Checker) -> None:
        a = case.arrays()
        n = case.n
        ref_P = bnp_transform_reference(a["mean"], a["var"], a["eps"])
        P = c.array(fns.bnp_transform(a["mean"].copy(), a["var"].copy(), a["eps"]), "P", (n + 1, n + 1))
        c.close("P", P, ref_P, numpy.abs(ref_P))
        ref_H, scale = transformed_hessian_reference(a["H"], ref_P)
        got = c.array(fns.transformed_hessian(a["H"].copy(), ref_P.copy()), "P^T H P", a["H"].shape)
        c.close("P^T H P", got, ref_H, scale)

    def hint(self, case: TransformCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        if failure.kind == "shape":
            return shape_hint(failure.detail, failure.quantity)
        if failure.kind == "wrong":
            a = case.arrays()
            got = failure.detail["got"]
            P = bnp_transform_reference(a["mean"], a["var"], a["eps"])
            if failure.quantity == "P":
                d = numpy.sqrt(a["var"] + a["eps"])
                D = numpy.diag(d)
                wrong_scale = P.copy()
                wrong_scale[:-1, :-1], wrong_scale[-1, :-1] = D, -a["mean"] / d
                for alt, text in ((P.T, "P is transposed: the centring -mu^T D^-1 is the last ROW (P^T at = "
                                   "[D^-1 (a - mu); 1])"),
                                  (bnp_transform_reference(-a["mean"], a["var"], a["eps"]),
                                   "the sign of the mean is wrong: P^T [a; 1] must be [D^-1 (a - mu); 1]"),
                                  (bnp_transform_reference(a["mean"], a["var"], 0.0), "you left out eps: D = "
                                   "sqrt(var + eps)"),
                                  (bnp_transform_reference(a["mean"], (a["var"] + a["eps"]) ** 2, 0.0),
                                   "D is the standard deviation sqrt(var + eps), not the variance"),
                                  (wrong_scale, "P has D^-1 (divide by the standard deviation), not D")):
                    if matches(got, alt, numpy.abs(P) + numpy.abs(alt)):
                        return text
            else:
                ref, scale = transformed_hessian_reference(a["H"], P)
                out = case.out
                big = numpy.kron(numpy.eye(out), P)
                if matches(got, big @ a["H"] @ big.T, scale + numpy.abs(big) @ numpy.abs(a["H"]) @ numpy.abs(big.T)):
                    return "you computed P H P^T; the standardized network's Hessian is P^T H P (theta = P theta_hat)"
        return probe(case, passes, [
            (lambda k: k.out > 1, {"out": 1}, "fails only with several neurons: every neuron's block is transformed, "
             "(I_out kron P)^T H (I_out kron P), with H neuron-major (each neuron's n weights, then its bias)"),
            (lambda k: k.mean_ratio > 0, {"mean_ratio": 0.0}, "fails only when the mean is non-zero: check the row "
             "-mu^T D^-1 of P"),
            (lambda k: k.eps > 0, {"eps": 0.0}, "fails only when eps > 0: D = sqrt(var + eps)"),
            (lambda k: k.decades > 0, {"decades": 0}, "error grows with the spread of scales: D^-1 = 1 / sqrt(var + "
             "eps), the standard deviation, not the variance"),
        ])


# --------------------------------------------------------------------------- whitening
@dataclass(frozen=True)
class WhiteningCase:
    out: int
    n: int
    mean_ratio: float
    cond_decades: int
    magnitude: int
    correlated: bool
    eps: float
    seed: int

    def arrays(self) -> dict[str, Any]:
        """cov = Q diag(lam) Q^T with lam over ``cond_decades`` decades, times 10**magnitude; a random rotation Q
        (or none: a diagonal covariance)."""
        r = cases.rng(self.seed)
        lam = 10.0 ** (self.magnitude - self.cond_decades * numpy.linspace(0.0, 1.0, self.n)) * r.uniform(0.5, 2.0,
                                                                                                    self.n)
        Q = numpy.linalg.qr(r.standard_normal((self.n, self.n)))[0] if self.correlated else numpy.eye(self.n)
        cov = (Q * lam) @ Q.T
        cov = (cov + cov.T) / 2
        std = numpy.sqrt(numpy.diag(cov))
        return {"grad_w": r.standard_normal((self.out, self.n)), "grad_b": r.standard_normal(self.out),
                "mean": r.choice([-1.0, 1.0], self.n) * self.mean_ratio * std, "cov": cov,
                "eps": self.eps * 10.0**self.magnitude}


def _kappa(C: numpy.ndarray) -> float:
    w = numpy.linalg.eigvalsh(C)
    return float(w[-1] / w[0]) if w[0] > 0 else numpy.inf


class Whitening(Exercise):
    name = "whitening"
    functions = ("whitening_transform", "whitened_update")
    forbidden = _BNP_FORBIDDEN
    forbid_reason = "this exercise asks you to write whitening BNP yourself (bnp.preconditioner is the reference)"
    tolerances = {"A^T (S + eps I) A - I": 1e-12, "last column of P": 1e-12, "last row of P": 1e-12,
                  "grad_w": 1e-12, "grad_b": 1e-12}

    def cases(self) -> Any:
        return st.builds(WhiteningCase, out=st.integers(1, 3), n=st.integers(1, 4),
                         mean_ratio=st.sampled_from(cases.MEAN_RATIOS), cond_decades=st.sampled_from((0, 2, 4, 8)),
                         magnitude=st.sampled_from((0, -3, 3)), correlated=st.booleans(),
                         eps=st.sampled_from((0.0, 1e-3)), seed=cases.seeds())

    def inputs(self, case: WhiteningCase) -> dict[str, Any]:
        return case.arrays()

    def check(self, fns: SimpleNamespace, case: WhiteningCase, c: Checker) -> None:
        a = case.arrays()
        n = case.n
        C = a["cov"] + a["eps"] * numpy.eye(n)
        kappa = _kappa(C)
        P = c.array(fns.whitening_transform(a["mean"].copy(), a["cov"].copy(), a["eps"]), "P", (n + 1, n + 1))
        A = P[:n, :n]
        c.close("last column of P", P[:, n], numpy.r_[numpy.zeros(n), 1.0], 1.0)
        c.close("A^T (S + eps I) A - I", A.T @ C @ A, numpy.eye(n), kappa)
        c.close("last row of P", P[n, :n], -(a["mean"] @ A), numpy.abs(a["mean"]) @ numpy.abs(A))
        # the update: (G_W - g_b mu^T) C^-1 and g_b - G_W' mu; rounding ~ u kappa of the entries' size
        gw_ref = numpy.linalg.solve(C, (a["grad_w"] - numpy.outer(a["grad_b"], a["mean"])).T).T
        gb_ref = a["grad_b"] - gw_ref @ a["mean"]
        result = fns.whitened_update(a["grad_w"].copy(), a["grad_b"].copy(), a["mean"].copy(), a["cov"].copy(),
                                     a["eps"])
        gw, gb = c.unpack(result, "whitened_update", ("grad_w", "grad_b"))
        gw = c.array(gw, "grad_w", a["grad_w"].shape)
        gb = c.array(gb, "grad_b", a["grad_b"].shape)
        c.close("grad_w", gw, gw_ref, kappa * numpy.abs(gw_ref).max(axis=1, keepdims=True))
        c.close("grad_b", gb, gb_ref, kappa * (numpy.abs(a["grad_b"]) + numpy.abs(gw_ref) @ numpy.abs(a["mean"])))

    def hint(self, case: WhiteningCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        if failure.kind == "shape":
            return shape_hint(failure.detail, failure.quantity)
        q = failure.quantity
        if failure.kind == "wrong":
            if q == "last column of P":
                return "the bias must stay a bias: P's last column is [0, ..., 0, 1] (the centring is the last row)"
            if q == "last row of P":
                return "the last row of P is -mu^T A, so that P^T [a; 1] = [A^T (a - mu); 1]"
            if q == "A^T (S + eps I) A - I":
                a = case.arrays()
                got = failure.detail["got"]
                C = a["cov"] + a["eps"] * numpy.eye(case.n)
                L = numpy.linalg.cholesky(C)
                if matches(got, L.T @ C @ L, numpy.abs(L.T) @ numpy.abs(C) @ numpy.abs(L)):
                    return "A is the Cholesky factor L itself; whitening needs its inverse transpose, A = L^-T"
                if a["eps"] > 0:
                    A0 = numpy.linalg.inv(numpy.linalg.cholesky(a["cov"])).T
                    if matches(got, A0.T @ C @ A0, 1.0, 1e-6):
                        return "you left out eps: whiten S + eps I"
        return probe(case, passes, [
            (lambda k: k.correlated, {"correlated": False}, "right for a diagonal covariance only: whitening uses the "
             "full covariance (e.g. A = L^-T with S + eps I = L L^T), not its diagonal"),
            (lambda k: k.mean_ratio > 0, {"mean_ratio": 0.0}, "fails only when the mean is non-zero: the centring "
             "(last row -mu^T A, and G_W - g_b mu^T, g_b' = g_b - G_W' mu)"),
            (lambda k: k.eps > 0, {"eps": 0.0}, "fails only when eps > 0: whiten S + eps I"),
            (lambda k: k.cond_decades > 2, {"cond_decades": 2}, "fails only for a near-singular covariance: avoid "
             "forming inverses of products; solve with the Cholesky factor (or numpy.linalg.solve)"),
            (lambda k: k.magnitude != 0, {"magnitude": 0}, "fails only when the covariance is far from 1 in size: "
             "is a tolerance or constant in your code absolute rather than relative?"),
        ])
