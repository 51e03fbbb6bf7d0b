"""Grader of chapter 7's exercise ``effective_condition_number``.

FILE defines ``effective_condition_number(H, w) -> float``: ``lambda_max /
lambda_min+`` of the Hessian ``H`` (n, n) of a scale-invariant loss restricted
to the orthogonal complement of the weight ``w`` (n,), i.e. of ``Q^T H Q`` for
an orthonormal basis Q of ``w``'s complement, eigenvalues below
``1e-10 lambda_max`` counting as zero.

Cases are built with a known answer: ``H = Q diag(lam) Q^T + Q c u^T + u c^T Q^T``
with ``u = w / |w|``: ``u^T H u = 0`` and ``H w = -g`` with ``g`` orthogonal to
``w``, as for any scale-invariant loss (``c = 0`` at a minimum); then
``Q^T H Q = diag(lam)`` exactly, and the answer is ``max lam / min lam > 0``
(lam spread over up to 8 decades, one more zero eigenvalue in some cases).
``w`` is scaled by ``10^k`` (k in -3, 0, 3, 6) and ``H`` by ``10^-2k`` (``H(cw) = H(w) / c^2``), so a
rank tolerance that is absolute fails. Scale and tolerance: float64
eigenvalues carry absolute errors ~ n u lambda_max, so ``kappa`` has a
relative error ~ n u kappa; the error is measured in units of
``kappa * n u max(kappa, 1)`` and the tolerance is 1000 of them (1e-4 relative
at kappa = 1e8, ~1e-12 at kappa ~ 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy
from hypothesis import strategies as st

from . import cases
from .hints import probe
from .runner import Checker, Exercise, Mismatch

__all__ = ["EffectiveConditionNumber"]

U = float(numpy.finfo(numpy.float64).eps) / 2


@dataclass(frozen=True)
class ScaleInvariantCase:
    n: int
    decades: int
    extra_zero: bool
    coupling: float
    w_exponent: int
    seed: int

    def arrays(self) -> dict[str, Any]:
        r = cases.rng(self.seed)
        u = r.standard_normal(self.n)
        u /= numpy.linalg.norm(u)
        basis = numpy.linalg.qr(numpy.column_stack([u, r.standard_normal((self.n, self.n - 1))]))[0]
        Q = basis[:, 1:]  # orthonormal basis of u's complement
        lam = 10.0 ** (-self.decades * numpy.linspace(0.0, 1.0, self.n - 1)) * r.uniform(0.5, 2.0, self.n - 1)
        if self.extra_zero and self.n > 2:
            lam[r.integers(1, self.n - 1)] = 0.0  # never the largest
            lam[0] = max(lam[0], 1.0)
        cvec = self.coupling * numpy.sqrt(lam.max()) * r.standard_normal(self.n - 1)
        H = (Q * lam) @ Q.T + numpy.outer(Q @ cvec, u) + numpy.outer(u, Q @ cvec)
        c = 10.0**self.w_exponent
        positive = lam[lam > 0]
        return {"H": (H + H.T) / 2 / c**2, "w": c * r.uniform(0.5, 2.0) * u,
                "kappa": float(positive.max() / positive.min()), "lam": lam}


class EffectiveConditionNumber(Exercise):
    name = "effective_condition_number"
    functions = ("effective_condition_number",)
    forbidden = ("bnp.spectra.effective_condition_number", "bnp.spectra.condition_number",
                 "bnp.spectra.kappa_from_eigenvalues")
    forbid_reason = "this exercise asks you to compute it yourself with NumPy's eigensolver"
    tolerances = {"kappa": 1e3}
    max_examples = 40

    def cases(self) -> Any:
        return st.builds(ScaleInvariantCase, n=st.integers(2, 6), decades=st.sampled_from((0, 2, 4, 8)),
                         extra_zero=st.booleans(), coupling=st.sampled_from((0.0, 1.0)),
                         w_exponent=st.sampled_from((0, -3, 3, 6)), seed=cases.seeds())

    def inputs(self, case: ScaleInvariantCase) -> dict[str, Any]:
        a = case.arrays()
        return {"H": a["H"], "w": a["w"], "expected kappa": a["kappa"]}

    def check(self, fns: SimpleNamespace, case: ScaleInvariantCase, c: Checker) -> None:
        a = case.arrays()
        value = fns.effective_condition_number(a["H"].copy(), a["w"].copy())
        got = c.array(value, "kappa")
        c.expect(got.size == 1, f"effective_condition_number must return one number, got an array of shape "
                 f"{got.shape}", "kappa", kind="type")
        kappa = a["kappa"]
        c.close("kappa", got.reshape(()), numpy.asarray(kappa), kappa * case.n * U * max(kappa, 1.0))

    def hint(self, case: ScaleInvariantCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        if failure.kind == "wrong":
            a = case.arrays()
            got = float(failure.detail["got"])
            eig = numpy.linalg.eigvalsh(a["H"])
            mags = numpy.abs(eig)
            candidates = {"of H itself (|lambda| ratio)": mags.max() / mags[mags > 1e-10 * mags.max()].min()}
            pos = eig[eig > 1e-10 * eig.max()]
            if pos.size:
                candidates["of H itself (lambda_max / lambda_min+)"] = eig.max() / pos.min()
            for what, value in candidates.items():
                if numpy.isfinite(value) and abs(got - value) <= 1e-6 * abs(value):
                    return (f"that is the condition number {what}: restrict H to the complement of w first "
                            "(Q^T H Q, Q an orthonormal basis of w's complement); away from a minimum H w != 0")
            if numpy.isinf(got) or got > 1e14:
                return ("infinite or huge: a zero eigenvalue was kept; drop w's own direction and count eigenvalues "
                        "below 1e-10 lambda_max as zero")
        return probe(case, passes, [
            (lambda k: k.w_exponent != 0, {"w_exponent": 0}, "fails when w and H are rescaled (w -> c w, H -> H / "
             "c^2): the answer must not change; use a rank tolerance RELATIVE to lambda_max, not an absolute one"),
            (lambda k: k.extra_zero, {"extra_zero": False}, "fails when H has another zero eigenvalue on w's "
             "complement: lambda_min+ is the smallest eigenvalue above 1e-10 lambda_max"),
            (lambda k: k.coupling > 0, {"coupling": 0.0}, "right only at a minimum (H w = 0): away from it H w = -g "
             "!= 0, and dropping H's smallest eigenvalue is not the restriction to w's complement"),
            (lambda k: k.decades > 4, {"decades": 4}, "fails only when the spectrum spans 8 decades: is your rank "
             "tolerance too large, or the computation losing digits (forming inverses)?"),
        ])
