"""Checkers for the classroom exercises in ``tutorials/exercises/``.

Each ``check_*`` function runs a student's function on a fixed set of seeded
random cases (no hypothesis: the same cases every time, so a class sees the
same verdict), compares it with the package's own reference, prints a short
pass/fail report with the worst error, and returns it as a :class:`Report`::

    from bnp import grading
    report = grading.check_bnp_update(my_update)   # prints "check_bnp_update: PASS (...)"
    assert report.passed

A student function that raises (``NotImplementedError`` from an unfinished
exercise, say) fails the case with the exception's message; the checker itself
never raises on a wrong answer.

Errors are relative: ``max |got - ref| / max |ref|`` per case and quantity
(absolute when the reference is exactly zero). The tolerances leave a few
orders of magnitude above float64 rounding; a correct answer computed in a
different but sensible order passes, a wrong formula does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy  # host-side random cases only; comparisons run on the backend

from . import backend
from .autograd import Tensor, grad, ops
from .preconditioner import precondition
from .theory import moment_matrix

__all__ = ["Report", "check_vjp", "check_bnp_update", "check_moment_matrix", "softplus_reference"]


# --------------------------------------------------------------------------- the report
@dataclass
class Report:
    """The outcome of one checker.

    Attributes:
        exercise: the checker's name.
        passed: every case passed.
        cases: number of cases run.
        failures: one line per failed case or property.
        worst_error: largest relative error seen over all comparisons that ran (inf if a case raised).
        tolerance: the largest relative error accepted.
        hint: printed under a failing report.
    """

    exercise: str
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    worst_error: float = 0.0
    tolerance: float = 0.0
    hint: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures and self.cases > 0

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        head = (f"{self.exercise}: {verdict}  ({self.cases} cases, worst relative error {self.worst_error:.2e}, "
                f"tolerance {self.tolerance:.0e})")
        if self.passed:
            return head
        lines = [head] + [f"  - {line}" for line in self.failures[:8]]
        if len(self.failures) > 8:
            lines.append(f"  ... and {len(self.failures) - 8} more")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    # -- bookkeeping used by the checkers ---------------------------------------------
    def compare(self, what: str, got: Any, ref: Any) -> None:
        """Record the relative error of ``got`` against ``ref``; a failure above tolerance."""
        if tuple(got.shape) != tuple(ref.shape):
            self.fail(f"{what}: expected shape {tuple(ref.shape)}, got {tuple(got.shape)}")
            return
        error = _relative_error(got, ref)
        self.worst_error = max(self.worst_error, error)
        if not error <= self.tolerance:  # also catches nan
            self.fail(f"{what}: relative error {error:.2e} (tolerance {self.tolerance:.0e})")

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def crashed(self, what: str, exc: BaseException) -> bool:
        """Record an exception raised by the student's code; True means "stop: nothing is written yet"."""
        self.worst_error = math.inf
        if isinstance(exc, NotImplementedError):
            self.fail(f"not implemented yet ({exc})" if str(exc) else "not implemented yet")
            return True
        self.fail(f"{what}: raised {type(exc).__name__}: {exc}")
        return False


def _relative_error(got: Any, ref: Any) -> float:
    xp = backend.xp()
    scale = float(xp.abs(ref).max()) if ref.size else 0.0
    diff = float(xp.abs(got - ref).max()) if ref.size else 0.0
    if math.isnan(diff):
        return math.inf
    return diff / scale if scale > 0 else diff


def _as_array(value: Any, what: str) -> Any:
    """The backend array of a student's return value (Tensor, array or nested lists)."""
    if isinstance(value, Tensor):
        return value.data
    if value is None:
        raise TypeError(f"{what} returned None; did you forget `return`?")
    return backend.asarray(value)


def _finish(report: Report, verbose: bool) -> Report:
    if verbose:
        print(report)
    return report


# --------------------------------------------------------------------------- exercise 1: a VJP
def softplus_reference(x: Tensor) -> Tensor:
    """``softplus(x) = log(1 + exp(x))`` as a composite of the package's primitives.

    Its derivatives (``sigmoid(x)``, then ``sigmoid(x) (1 - sigmoid(x))``) come
    from autograd. Fine for ``|x|`` up to a few hundred; the checker uses ``|x| < 12``.
    """
    return ops.log(1.0 + ops.exp(x))


_VJP_SHAPES = [(), (7,), (3, 4), (2, 3, 2)]


def check_vjp(
    student_fn: Callable[[Tensor], Tensor],
    reference: Callable[[Tensor], Tensor] = softplus_reference,
    seed: int = 0,
    tol: float = 1e-10,
    verbose: bool = True,
) -> Report:
    """Check a student's elementwise primitive (default: softplus) and its VJP.

    ``student_fn(x)`` takes a float64 Tensor of any shape and must return a
    Tensor of the same shape, recorded in the graph (``make_node``). For each
    case it checks, against ``reference`` differentiated by autograd:

    1. the values;
    2. the VJP ``J^T g`` for a random upstream gradient ``g``;
    3. a *batched* upstream gradient (extra leading axis, as ``bnp.hessian`` sends);
    4. second order: the gradient of ``<J^T g, v>``, which exists only if the
       VJP is written in Tensor operations (a VJP on raw arrays cuts the graph).

    Returns the :class:`Report` (also printed when ``verbose``).
    """
    report = Report("check_vjp", tolerance=tol,
                    hint="the VJP of an elementwise f is g * f'(x), written with Tensor ops "
                         "(e.g. ops.sigmoid(x)), never on .data arrays")
    rng = numpy.random.default_rng(seed)
    for shape in _VJP_SHAPES:
        report.cases += 1
        where = f"x of shape {shape}"
        x_host = rng.uniform(-6.0, 6.0, shape)
        g_host = rng.standard_normal(shape)
        v_host = rng.standard_normal(shape)
        G_host = rng.standard_normal((3,) + shape)
        stage = ["values"]  # which step was running, for the message if the student's code raises
        try:
            _check_vjp_case(report, where, stage, student_fn, reference, x_host, g_host, v_host, G_host)
        except Exception as exc:  # a student's bug is a failed case, never a crash of the checker
            if report.crashed(f"{where}: {stage[0]}", exc):
                break
    return _finish(report, verbose)


def _check_vjp_case(report: Report, where: str, stage: list[str], student_fn, reference, x_host, g_host, v_host,
                    G_host) -> None:
    x = Tensor(backend.asarray(x_host, dtype="float64"), requires_grad=True)
    g, v, G = (backend.asarray(a, dtype="float64") for a in (g_host, v_host, G_host))

    out, ref = student_fn(x), reference(x)
    if not isinstance(out, Tensor):
        report.fail(f"{where}: expected a Tensor, got {type(out).__name__}")
        return
    report.compare(f"{where}: values", out.data, ref.data)
    if not out.requires_grad:
        report.fail(f"{where}: the output is not recorded in the graph (build it with make_node(out, (x,), ...))")
        return

    stage[0] = "VJP"
    (got,) = grad(out, [x], grad_outputs=[g])
    (want,) = grad(reference(x), [x], grad_outputs=[g])
    report.compare(f"{where}: VJP", got.data, want.data)

    stage[0] = f"batched VJP (upstream gradient of shape {tuple(G.shape)})"
    (got,) = grad(student_fn(x), [x], grad_outputs=[G], is_grads_batched=True)
    (want,) = grad(reference(x), [x], grad_outputs=[G], is_grads_batched=True)
    report.compare(f"{where}: {stage[0]}", got.data, want.data)

    stage[0] = "second order"
    (first,) = grad(student_fn(x), [x], grad_outputs=[g], create_graph=True)
    if not first.requires_grad:
        report.fail(f"{where}: second order impossible: the VJP cut the graph (it must use Tensor ops, not .data)")
        return
    (got,) = grad(first, [x], grad_outputs=[v])
    (first_ref,) = grad(reference(x), [x], grad_outputs=[g], create_graph=True)
    (want,) = grad(first_ref, [x], grad_outputs=[v])
    report.compare(f"{where}: second order", got.data, want.data)


# --------------------------------------------------------------------------- exercise 2: the BNP update
# (out, n, mean offset, log10 range of the variances, eps)
_BNP_CASES = [
    (1, 1, 0.0, 0.0, 0.0),
    (3, 5, 2.0, 1.0, 0.0),
    (4, 2, -5.0, 2.0, 1e-3),
    (2, 7, 10.0, 3.0, 0.0),
    (6, 3, 0.5, 4.0, 1e-3),
    (5, 8, 3.0, 2.0, 1e-1),
]


def check_bnp_update(
    student_fn: Callable[[Any, Any, Any, Any, float], tuple[Any, Any]],
    seed: int = 0,
    tol: float = 1e-9,
    verbose: bool = True,
) -> Report:
    """Check a student's BNP gradient rewrite for one Linear layer (THEORY.md section 2).

    ``student_fn(grad_w, grad_b, mu, var, eps) -> (new_grad_w, new_grad_b)`` with
    backend arrays grad_w (out, n), grad_b (out,), mu (n,), var (n,), a float
    eps, must return::

        G_W' = (G_W - g_b mu^T) D^-2,   g_b' = g_b - G_W' mu,   D^2 = diag(var + eps)

    compared with :func:`bnp.preconditioner.precondition`. The student gets
    copies, so changing them in place is harmless.
    """
    report = Report("check_bnp_update", tolerance=tol,
                    hint="G_W' = (G_W - g_b mu^T) D^-2 with D^2 = var + eps, and g_b' = g_b - G_W' mu "
                         "uses the NEW G_W'")
    rng = numpy.random.default_rng(seed)
    for out, n, offset, decades, eps in _BNP_CASES:
        report.cases += 1
        where = f"grad_w ({out}, {n}), eps={eps:g}"
        gw, gb = rng.standard_normal((out, n)), rng.standard_normal(out)
        mu = offset + rng.standard_normal(n)
        var = 10.0 ** rng.uniform(-decades / 2, decades / 2, n)
        arrays = [backend.asarray(a, dtype="float64") for a in (gw, gb, mu, var)]
        want_w, want_b = precondition(*arrays, eps)
        try:
            result = student_fn(*[a.copy() for a in arrays], eps)
            if not (isinstance(result, (tuple, list)) and len(result) == 2):
                report.fail(f"{where}: expected a pair (new_grad_w, new_grad_b), got {type(result).__name__}")
                continue
            got_w, got_b = _as_array(result[0], "student_fn"), _as_array(result[1], "student_fn")
        except Exception as exc:
            if report.crashed(where, exc):
                break
            continue
        report.compare(f"{where}: new grad_w", got_w, want_w)
        report.compare(f"{where}: new grad_b", got_b, want_b)
    return _finish(report, verbose)


# --------------------------------------------------------------------------- exercise 3: the moment matrix
# (N, n, mean offset, spread of feature scales)
_MOMENT_CASES = [(1, 1, 0.0, 1.0), (1, 4, 2.0, 1.0), (2, 3, -1.0, 10.0), (7, 2, 5.0, 1.0), (50, 6, 3.0, 100.0),
                 (200, 4, 0.0, 1000.0)]


def check_moment_matrix(
    student_fn: Callable[[Any], Any],
    seed: int = 0,
    tol: float = 1e-12,
    verbose: bool = True,
) -> Report:
    """Check a student's input moment matrix ``M = (1/N) sum_k [a_k; 1][a_k; 1]^T`` (THEORY.md section 1).

    ``student_fn(a)`` takes a backend array a (N, n) and returns M (n+1, n+1),
    compared with :func:`bnp.theory.moment_matrix`. Cases include N = 1 (one
    sample: S = 0 but M is still defined) and badly scaled, off-centre features.
    """
    report = Report("check_moment_matrix", tolerance=tol,
                    hint="extend every input with a 1, then average the outer products: divide by N, not N - 1, "
                         "and do not subtract the mean")
    rng = numpy.random.default_rng(seed)
    for N, n, offset, spread in _MOMENT_CASES:
        report.cases += 1
        where = f"a ({N}, {n})"
        scales = spread ** numpy.linspace(-0.5, 0.5, n)
        a = backend.asarray(scales * (offset + rng.standard_normal((N, n))), dtype="float64")
        want = moment_matrix(a)
        try:
            got = _as_array(student_fn(a.copy()), "student_fn")
        except Exception as exc:
            if report.crashed(where, exc):
                break
            continue
        report.compare(f"{where}: M", got, want)
    return _finish(report, verbose)
