"""Graders of chapter 1's exercises: ``softplus_vjp`` and ``hvp_reverse_over_reverse``.

softplus_vjp: FILE defines ``softplus(x)`` for a bnp Tensor as ONE new
primitive (``make_node``) whose VJP is written in Tensor operations. The
grader inspects the output's graph: one recorded node, its only parent the
input, an op name that is none of bnp's primitives (read from bnp/autograd's
``make_node`` calls), so that a composite of existing operations is refused;
then checks values, the VJP, a batched VJP (what ``bnp.hessian`` sends) and
the second derivative through the VJP applied under ``create_graph=True``.
References: ``softplus = logaddexp(0, x)``, ``sigma = exp(-logaddexp(0, -x))``,
``sigma' = sigma (1 - sigma)``, computed without cancellation.
Scales: values relative to ``|softplus| + 1``; derivatives relative to the
upstream vectors (``|g|``, ``|g v|``): ``sigma`` and ``sigma'`` are O(1) and
any formula for them (``(1 + tanh(x/2)) / 2`` included) is accurate to a few u
in absolute terms, not relatively where ``sigma ~ e^x`` is tiny. Tolerance
1e-12 (values, VJP), 1e-11 (second order).

hvp_reverse_over_reverse: FILE defines ``hvp(f, x, v)``, a Hessian-vector
product by two reverse passes, ``bnp.hvp`` / ``bnp.hessian`` refused. Test
functions ``f(x) = x^T A x / 2 + b^T x + sum_i c_i tanh(B_i x + d_i)`` have the
closed-form Hessian ``A + B^T diag(c tanh''(B x + d)) B``. Scale per entry:
``(|A| + |B|^T diag|c tanh''| |B|) |v|``; a few passes of O(n) flops stay
within ~1e-14 of it; tolerance 1e-10. A finite difference is off by ~1e-6.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy
from hypothesis import strategies as st

from . import cases
from .hints import matches, probe, shape_hint
from .runner import Checker, Exercise, Mismatch

__all__ = ["SoftplusVjp", "HvpReverseOverReverse", "bnp_primitive_ops"]


@functools.lru_cache(maxsize=1)
def bnp_primitive_ops() -> frozenset[str]:
    """The op names of bnp's primitives: the last argument of every ``make_node`` call in bnp/autograd/."""
    names: set[str] = set()
    for path in (Path(__file__).resolve().parent.parent / "autograd").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "make_node" and len(node.args) >= 4:
                last = node.args[-1]
                if isinstance(last, ast.Constant) and isinstance(last.value, str):
                    names.add(last.value)
    return frozenset(names)


def _stage(name: str, fn: Callable[[], Any]) -> Any:
    """Run one step of the check; a student's exception becomes a Mismatch that names the step."""
    try:
        return fn()
    except (Mismatch, NotImplementedError):
        raise
    except Exception as exc:
        from .runner import ForbiddenCall

        if isinstance(exc, ForbiddenCall):
            raise
        raise Mismatch("exception", f"{name}: raised {type(exc).__name__}: {exc}", detail={"stage": name}) from exc


# --------------------------------------------------------------------------- softplus_vjp
@dataclass(frozen=True)
class SoftplusCase:
    shape: tuple[int, ...]
    magnitude: float  # x uniform in [-magnitude, magnitude]
    seed: int

    def arrays(self) -> dict[str, Any]:
        r = cases.rng(self.seed)
        x = r.uniform(-self.magnitude, self.magnitude, self.shape)
        flat = x.reshape(-1)  # the extremes themselves, where exp overflows or log(1 + e^x) loses digits
        flat[:2] = [self.magnitude, -self.magnitude][: flat.size]
        return {"x": x, "g": r.standard_normal(self.shape),
                "v": r.standard_normal(self.shape), "G": r.standard_normal((3,) + self.shape)}


def _sigmoid(x: Any) -> Any:
    return numpy.exp(-numpy.logaddexp(0.0, -x))


class SoftplusVjp(Exercise):
    name = "softplus_vjp"
    functions = ("softplus",)
    tolerances = {"values": 1e-12, "VJP": 1e-12, "batched VJP": 1e-12, "second order": 1e-11}
    max_examples = 30

    def cases(self) -> Any:
        return st.builds(SoftplusCase, shape=st.sampled_from(((), (1,), (5,), (2, 3))),
                         magnitude=st.sampled_from((3.0, 30.0, 800.0)), seed=cases.seeds())

    def inputs(self, case: SoftplusCase) -> dict[str, Any]:
        return case.arrays()

    def check(self, fns: SimpleNamespace, case: SoftplusCase, c: Checker) -> None:
        from ..autograd import Tensor, grad

        a = case.arrays()
        x = Tensor(a["x"].copy(), requires_grad=True)
        out = fns.softplus(x)
        c.expect(isinstance(out, Tensor), f"softplus must return a bnp Tensor, got {type(out).__name__}", kind="type")
        c.expect(out.shape == x.shape, f"softplus(x) has shape {out.shape}, expected x's shape {x.shape}", "values",
                 kind="shape")
        ref = numpy.logaddexp(0.0, a["x"])
        c.close("values", c.array(out.data, "values"), ref, numpy.abs(ref) + 1.0)
        c.expect(out.requires_grad and bool(out._op), "the output is not recorded in the graph: return "
                 "make_node(out_array, (x,), (vjp,), 'softplus')", kind="structure")
        c.expect(out._op not in bnp_primitive_ops(), f"the output's node is bnp's primitive '{out._op}': softplus "
                 "is a composite of existing operations; write it as ONE new primitive with make_node and your own "
                 "VJP", kind="structure")
        c.expect(len(out._parents) == 1 and out._parents[0] is x, "the softplus node must have exactly one parent, "
                 f"the input x itself (got {len(out._parents)} parent(s)"
                 f"{'' if not out._parents or out._parents[0] is x else ', not x'})", kind="structure")
        s = _sigmoid(a["x"])
        (gx,) = _stage("VJP", lambda: grad(fns.softplus(x), [x], grad_outputs=[a["g"]]))
        c.close("VJP", c.array(gx, "VJP", x.shape), a["g"] * s, numpy.abs(a["g"]))
        (Gx,) = _stage("batched VJP (upstream gradients with an extra leading axis)",
                       lambda: grad(fns.softplus(x), [x], grad_outputs=[a["G"]], is_grads_batched=True))
        c.close("batched VJP", c.array(Gx, "batched VJP", a["G"].shape), a["G"] * s, numpy.abs(a["G"]))
        (first,) = _stage("VJP under create_graph=True",
                          lambda: grad(fns.softplus(x), [x], grad_outputs=[a["g"]], create_graph=True))
        c.expect(first.requires_grad, "second order impossible: the VJP cut the graph (it computes on .data arrays "
                 "or detaches); write it with Tensor operations such as ops.sigmoid(x)", "second order",
                 kind="structure")
        (second,) = _stage("second order", lambda: grad(first, [x], grad_outputs=[a["v"]]))
        c.close("second order", c.array(second, "second order", x.shape), a["g"] * a["v"] * s * (1.0 - s),
                numpy.abs(a["g"] * a["v"]))

    def hint(self, case: SoftplusCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        a = case.arrays()
        if failure.kind == "structure":
            return "see bnp/autograd/elementwise.py: tanh and exp are primitives written exactly this way"
        if failure.kind == "exception" and "batched" in failure.detail.get("stage", ""):
            return ("the upstream gradient g may carry extra leading axes: write the VJP as g * sigma(x) (it "
                    "broadcasts) and never reshape g to x's shape")
        if failure.kind == "wrong":
            q, got = failure.quantity, failure.detail["got"]
            s = _sigmoid(a["x"])
            if q == "VJP":
                if matches(got, a["g"] * numpy.exp(a["x"]), numpy.abs(a["g"]) * (1 + numpy.exp(a["x"]))):
                    return "the VJP uses exp(x): the derivative of log(1 + e^x) is e^x / (1 + e^x) = sigmoid(x)"
                if matches(got, a["g"] * (1 - s), numpy.abs(a["g"])):
                    return "the VJP uses sigmoid(-x) = 1 - sigmoid(x); softplus' = sigmoid(x)"
            if q == "second order" and matches(got, numpy.zeros_like(got), numpy.abs(a["g"] * a["v"])):
                return "the second derivative is 0: the VJP does not depend on x through Tensor ops"
        return probe(case, passes, [
            (lambda k: k.magnitude > 30, {"magnitude": 30.0}, "fails only for large |x| (up to 800): exp(x) "
             "overflows; compute softplus with xp.logaddexp(0, x) and the derivative with ops.sigmoid (stable)"),
            (lambda k: k.magnitude > 3, {"magnitude": 3.0}, "fails only for |x| around 30: log(1 + exp(x)) loses "
             "precision there; use xp.logaddexp(0, x)"),
            (lambda k: k.shape != (5,), {"shape": (5,)}, "fails for some shapes only (a 0-d tensor, or 2-D): "
             "keep the computation elementwise, no reshapes"),
        ])


# --------------------------------------------------------------------------- hvp_reverse_over_reverse
@dataclass(frozen=True)
class HvpCase:
    n: int
    units: int  # tanh terms (0: a quadratic)
    decades: int  # spread of A's eigenvalues
    x_scale: float  # |x| (large: tanh saturates)
    seed: int

    def arrays(self) -> dict[str, Any]:
        r = cases.rng(self.seed)
        Q = numpy.linalg.qr(r.standard_normal((self.n, self.n)))[0]
        lam = 10.0 ** (self.decades * (numpy.linspace(0.0, 1.0, self.n) - 0.5)) * r.choice([-1.0, 1.0], self.n)
        A = (Q * lam) @ Q.T
        return {"A": (A + A.T) / 2, "b": r.standard_normal(self.n), "B": r.standard_normal((self.units, self.n)),
                "c": r.standard_normal(self.units), "d": r.standard_normal(self.units),
                "x": self.x_scale * r.standard_normal(self.n), "v": r.standard_normal(self.n)}


def hvp_reference(a: dict[str, Any]) -> dict[str, Any]:
    t = numpy.tanh(a["B"] @ a["x"] + a["d"])
    curv = a["c"] * (-2.0 * t * (1.0 - t * t))  # c_i tanh''(z_i)
    H = a["A"] + a["B"].T @ (curv[:, None] * a["B"])
    scale = (numpy.abs(a["A"]) + numpy.abs(a["B"]).T @ (numpy.abs(curv)[:, None] * numpy.abs(a["B"]))) @ \
        numpy.abs(a["v"])
    grad = a["A"] @ a["x"] + a["b"] + a["B"].T @ (a["c"] * (1.0 - t * t))
    return {"Hv": H @ a["v"], "scale": scale, "H": H, "grad": grad}


def make_function(a: dict[str, Any]) -> Callable[[Any], Any]:
    """f(x) = x^T A x / 2 + b^T x + sum_i c_i tanh(B_i x + d_i), in bnp Tensor operations."""
    from ..autograd import Tensor, ops

    A, b, B, c, d = (Tensor(a[k]) for k in ("A", "b", "B", "c", "d"))

    def f(x: Any) -> Any:
        value = 0.5 * (x * (A @ x)).sum() + (b * x).sum()
        if a["B"].shape[0]:
            value = value + (c * ops.tanh(B @ x + d)).sum()
        return value

    return f


class HvpReverseOverReverse(Exercise):
    name = "hvp_reverse_over_reverse"
    functions = ("hvp",)
    forbidden = ("bnp.autograd.higher.hvp", "bnp.autograd.higher.hessian", "bnp.autograd.higher.jacobian",
                 "bnp.curvature.flat_hvp", "bnp.curvature.dense_hessian", "bnp.curvature.layer_block",
                 "bnp.curvature.neuron_block")
    forbid_reason = "this exercise asks for the two reverse passes themselves (bnp.hvp and bnp.hessian are refused)"
    tolerances = {"Hv": 1e-10}
    max_examples = 30

    def cases(self) -> Any:
        return st.builds(HvpCase, n=st.integers(1, 6), units=st.integers(0, 3), decades=st.sampled_from((0, 2, 4, 8)),
                         x_scale=st.sampled_from((0.1, 1.0, 10.0)), seed=cases.seeds())

    def inputs(self, case: HvpCase) -> dict[str, Any]:
        return case.arrays()

    def check(self, fns: SimpleNamespace, case: HvpCase, c: Checker) -> None:
        a = case.arrays()
        ref = hvp_reference(a)
        got = c.array(fns.hvp(make_function(a), a["x"].copy(), a["v"].copy()), "Hv", (case.n,))
        c.close("Hv", got, ref["Hv"], ref["scale"])

    def hint(self, case: HvpCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        if failure.kind == "shape":
            return shape_hint(failure.detail, "Hv") + " (return H v as an array of x's shape)"
        if failure.kind == "exception" and ("cannot be differentiated" in failure.message
                                            or "does not require grad" in failure.message):
            return ("the second bnp.grad needs a graph to differentiate: compute the first gradient with "
                    "create_graph=True, from x made with requires_grad=True")
        if failure.kind == "wrong":
            a = case.arrays()
            ref = hvp_reference(a)
            got = failure.detail["got"]
            if matches(got, ref["grad"], numpy.abs(ref["grad"]) + ref["scale"]):
                return "that is the gradient, not H v: differentiate <gradient, v> a second time"
            if matches(got, ref["H"] @ numpy.ones(case.n), numpy.abs(ref["H"]).sum(axis=1)):
                return ("that is H times a vector of ones: pass v as the upstream gradient (grad_outputs) of the "
                        "second pass")
            if failure.error is not None and 1e-10 < failure.error < 1e-3:
                return ("close but not exact: a finite-difference approximation? Reverse over reverse is exact up to "
                        "rounding: bnp.grad(f(x), x, create_graph=True), then bnp.grad of the gradient with v")
        return probe(case, passes, [
            (lambda k: k.units > 0, {"units": 0}, "right for a quadratic only: the tanh part's curvature is "
             "missing; is every step of your first gradient recorded (create_graph=True, no .data)?"),
            (lambda k: k.decades > 0, {"decades": 0}, "fails when the Hessian's eigenvalues spread over decades"),
        ])
