"""Grading one FILE against one exercise: import it in isolation, search for a failing case, report it.

The search is ``hypothesis.find`` over the exercise's strategy of cases, with
a fixed seed (``derandomize=True``, no example database), a bounded number of
examples, no deadline, and the generate and shrink phases: the first failing
case found is shrunk to a simplest one, and the report shows that one. The
same FILE therefore gets the same report every time.

While a FILE is imported and graded, bnp's own implementation of what the
exercise asks for is patched to raise (and to record the call, so that a
solution that swallows the exception is still caught): see
:class:`Refusals`. Grading runs on the NumPy backend in float64 and restores
the caller's backend and default dtype afterwards.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import itertools
import math
import sys
import traceback
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Sequence

import numpy

from .. import backend
from .report import Failure, Report, inputs_for_report

__all__ = ["Mismatch", "Checker", "Exercise", "Refusals", "ForbiddenCall", "grade", "load_file"]

SHRINK_BUDGET = 120  # new cases tried while shrinking; the best one found so far is reported
_counter = itertools.count()


# --------------------------------------------------------------------------- what a check raises
class Mismatch(Exception):
    """A case failed: raised by :class:`Checker` (never by the student's code)."""

    def __init__(self, kind: str, message: str, quantity: str = "", error: float | None = None,
                 tolerance: float | None = None, detail: dict[str, Any] | None = None):
        super().__init__(message)
        self.kind, self.message, self.quantity = kind, message, quantity
        self.error, self.tolerance = error, tolerance
        self.detail = detail or {}


class ForbiddenCall(Exception):
    """Raised by a patched bnp entry point during grading."""


class Checker:
    """Compares one case's outputs with the reference, quantity by quantity.

    ``close`` measures ``max |got - ref| / scale`` entrywise, with ``scale``
    the size of the terms each entry is computed from (the grader states it),
    and raises :class:`Mismatch` above the quantity's tolerance.
    """

    def __init__(self, tolerances: dict[str, float]):
        self.tolerances = tolerances
        self.errors: dict[str, float] = {}

    def array(self, value: Any, quantity: str, shape: Sequence[int] | None = None) -> numpy.ndarray:
        """The student's ``value`` as a float64 NumPy array, of ``shape`` if given."""
        from ..autograd import Tensor

        if value is None:
            raise Mismatch("type", f"{quantity} is None: did you forget to return it?", quantity)
        if isinstance(value, Tensor):
            value = value.data
        try:
            got = numpy.asarray(backend.to_numpy(value) if backend.is_array(value) else value, dtype=numpy.float64)
        except (TypeError, ValueError) as exc:
            raise Mismatch("type", f"{quantity} is not an array of numbers ({type(value).__name__}: {exc})",
                           quantity) from None
        if shape is not None and tuple(got.shape) != tuple(shape):
            raise Mismatch("shape", f"{quantity} has shape {tuple(got.shape)}, expected {tuple(shape)}", quantity,
                           detail={"got_shape": tuple(got.shape), "want_shape": tuple(shape)})
        return got

    def unpack(self, result: Any, function: str, names: Sequence[str]) -> tuple[Any, ...]:
        """A tuple of ``len(names)`` results, or a Mismatch that says what came back instead."""
        if not isinstance(result, (tuple, list)) or len(result) != len(names):
            got = f"a {type(result).__name__}" + (f" of length {len(result)}" if isinstance(result, (tuple, list))
                                                   else "")
            raise Mismatch("type", f"{function} must return a tuple ({', '.join(names)}), got {got}")
        return tuple(result)

    def close(self, quantity: str, got: numpy.ndarray, ref: numpy.ndarray, scale: Any,
              detail: dict[str, Any] | None = None) -> float:
        tol = self.tolerances[quantity]
        ref = numpy.asarray(ref, dtype=numpy.float64)
        scale = numpy.broadcast_to(numpy.asarray(scale, dtype=numpy.float64), ref.shape)
        # an entry whose scale is 0 must come out exactly 0; measure it against the largest scale's rounding
        floor = max(numpy.finfo(numpy.float64).tiny, 1e-16 * float(scale.max(initial=0.0)))
        with numpy.errstate(all="ignore"):
            diff = numpy.abs(got - ref)
            error = float(numpy.max(diff / numpy.maximum(scale, floor))) if ref.size else 0.0
        if math.isnan(error) or not bool(numpy.isfinite(got).all()):
            error = math.inf
        self.errors[quantity] = max(self.errors.get(quantity, 0.0), error)
        if not error <= tol:
            what = "has non-finite entries (inf or nan)" if math.isinf(error) else \
                f"is wrong: scaled error {error:.1e} > tolerance {tol:.0e}"
            raise Mismatch("wrong", f"{quantity} {what}", quantity, error, tol,
                           detail={"got": got, "ref": ref, **(detail or {})})
        return error

    def expect(self, condition: bool, message: str, quantity: str = "", kind: str = "structure") -> None:
        if not condition:
            raise Mismatch(kind, message, quantity)


# --------------------------------------------------------------------------- the exercise protocol
class Exercise:
    """One exercise's grader. Subclasses set the attributes and write ``cases``, ``check`` and ``hint``.

    Attributes:
        name: the exercise's name (``bnp grade NAME``).
        functions: the names FILE must define.
        forbidden: dotted paths of bnp entry points patched to raise while grading.
        forbid_reason: why (printed when one is called).
        tolerances: quantity -> largest accepted scaled error.
        max_examples: hypothesis examples drawn (before shrinking).
    """

    name = ""
    functions: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    forbid_reason = "this exercise asks you to write it yourself"
    tolerances: dict[str, float] = {}
    max_examples = 40
    fallback_hint = "work the small case above by hand (or with finite differences) and compare"

    def cases(self) -> Any:  # a hypothesis SearchStrategy of cases
        raise NotImplementedError

    def check(self, fns: SimpleNamespace, case: Any, c: Checker) -> None:
        raise NotImplementedError

    def inputs(self, case: Any) -> dict[str, Any]:
        """The case's arrays, for the report."""
        return {}

    def describe(self, case: Any) -> dict[str, Any]:
        return dataclasses.asdict(case) if dataclasses.is_dataclass(case) else {"case": case}

    def hint(self, case: Any, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        """What the shrunk failing ``case`` suggests; ``passes(other_case)`` runs the FILE on a variant."""
        return ""


# --------------------------------------------------------------------------- refusing bnp's implementation
def _resolve(path: str) -> tuple[Any, str] | None:
    """(owner, attribute) for a dotted path such as ``bnp.nn.BatchNorm1d.forward``; None if absent."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:-1]:
                owner = getattr(owner, attr)
            getattr(owner, parts[-1])
        except AttributeError:
            return None
        return owner, parts[-1]
    return None


_INHERITED = object()  # marks a method that the class inherited (undo = delete the shadowing attribute)


class Refusals:
    """Context manager: the given bnp entry points raise :class:`ForbiddenCall` and record the call.

    A module-level function is replaced in every loaded ``bnp`` module that
    holds it (``from .theory import moment_matrix`` copies included); a method
    is replaced on its class. Paths that do not exist (yet) are skipped.
    """

    def __init__(self, paths: Sequence[str], reason: str):
        self.paths, self.reason = tuple(paths), reason
        self.calls: list[str] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def _refusal(self, label: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(label)
            raise ForbiddenCall(f"{label} is bnp's own implementation: {self.reason}")

        refused.__name__ = label.rsplit(".", 1)[-1]
        return refused

    def __enter__(self) -> Refusals:
        for path in self.paths:
            found = _resolve(path)
            if found is None:
                continue
            owner, attr = found
            if isinstance(owner, type):  # a method, possibly inherited: shadow it on this class
                self._undo.append((owner, attr, owner.__dict__.get(attr, _INHERITED)))
                setattr(owner, attr, self._refusal(path))
                continue
            original, refusal = getattr(owner, attr), self._refusal(path)
            for name, module in list(sys.modules.items()):
                if (name == "bnp" or name.startswith("bnp.")) and getattr(module, attr, None) is original:
                    self._undo.append((module, attr, original))
                    setattr(module, attr, refusal)
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, attr, original in reversed(self._undo):
            if original is _INHERITED:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
        self._undo.clear()


# --------------------------------------------------------------------------- loading FILE
def load_file(path: str | Path, functions: Sequence[str]) -> tuple[SimpleNamespace | None, Mismatch | None]:
    """Import FILE under a fresh module name (never kept in ``sys.modules``) and take its ``functions``.

    Returns (namespace of the functions, None), or (None, the reason it failed):
    a syntax error, an exception while importing, a missing function.
    """
    path = Path(path)
    name = f"_bnp_graded_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None, Mismatch("import", f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up while it runs
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        return None, Mismatch("import", f"{path} has a syntax error at line {exc.lineno}: {exc.msg}")
    except (Exception, SystemExit) as exc:  # a FILE that raises (or calls sys.exit) while importing
        where = _where(exc, path)
        return None, Mismatch("import", f"importing {path} raised {type(exc).__name__}: {exc}{where}")
    finally:
        sys.modules.pop(name, None)
    missing = [f for f in functions if not callable(getattr(module, f, None))]
    if missing:
        return None, Mismatch("missing", f"{path} does not define {', '.join(missing)} "
                              f"(the exercise needs {', '.join(functions)})")
    return SimpleNamespace(**{f: getattr(module, f) for f in functions}), None


def _where(exc: BaseException, path: Path) -> str:
    """`` (line N of FILE, in FUNC)`` for the innermost frame of the traceback inside FILE."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    if not frames:
        return ""
    f = frames[-1]
    return f" (line {f.lineno} of {path.name}, in {f.name})"


# --------------------------------------------------------------------------- running cases
class _Session:
    def __init__(self, exercise: Exercise, fns: SimpleNamespace, refusals: Refusals, path: Path, report: Report):
        self.exercise, self.fns, self.refusals, self.path, self.report = exercise, fns, refusals, path, report
        self.verdicts: dict[Any, bool] = {}
        self.new_after_failure = 0
        self.last_failing: Any = None

    def run(self, case: Any) -> tuple[dict[str, float], Mismatch | None]:
        c = Checker(self.exercise.tolerances)
        self.refusals.calls.clear()
        failure: Mismatch | None = None
        try:
            self.exercise.check(self.fns, case, c)
        except Mismatch as m:
            failure = m
        except ForbiddenCall:
            failure = None  # reported below from the record of calls
        except NotImplementedError as exc:
            failure = Mismatch("not_implemented",
                               f"not written yet: NotImplementedError({exc}){_where(exc, self.path)}")
        except Exception as exc:
            failure = Mismatch("exception", f"raised {type(exc).__name__}: {exc}{_where(exc, self.path)}",
                               detail={"exception": type(exc).__name__})
        if self.refusals.calls:
            called = sorted(set(self.refusals.calls))
            failure = Mismatch("forbidden", f"called {', '.join(called)}: {self.refusals.reason}",
                               detail={"called": called})
        return c.errors, failure

    def fails(self, case: Any) -> bool:
        """The predicate hypothesis.find minimizes; cached so replays are consistent."""
        if case in self.verdicts:
            return self.verdicts[case]
        if self.last_failing is not None:
            if self.new_after_failure >= SHRINK_BUDGET:
                return False  # enough shrinking: the best case so far stands
            self.new_after_failure += 1
        self.report.cases_run += 1
        errors, failure = self.run(case)
        if failure is None:
            self.report.record(errors)
        else:
            self.last_failing = case
        self.verdicts[case] = failure is not None
        return failure is not None

    def passes(self, case: Any) -> bool:
        """For hints: does FILE pass this variant of the failing case? (not counted)"""
        try:
            return self.run(case)[1] is None
        except Exception:
            return False


def _hypothesis_settings(max_examples: int) -> Any:
    from hypothesis import HealthCheck, Phase, Verbosity, settings

    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    phases=(Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck),
                    verbosity=Verbosity.quiet, print_blob=False)


@dataclasses.dataclass
class _Environment:
    backend: str
    dtype: Any


def _enter_environment() -> _Environment:
    env = _Environment(backend.get_backend(), backend.get_default_dtype())
    backend.set_backend("numpy")
    backend.set_default_dtype("float64")
    return env


def _exit_environment(env: _Environment) -> None:
    backend.set_backend(env.backend)
    backend.set_default_dtype(env.dtype)


def _failure_from(m: Mismatch, exercise: Exercise, case: Any) -> Failure:
    return Failure(kind=m.kind, message=m.message, quantity=m.quantity, error=m.error, tolerance=m.tolerance,
                   case=exercise.describe(case) if case is not None else {},
                   inputs=inputs_for_report(exercise.inputs(case)) if case is not None else {})


_GENERIC_HINTS = {
    "not_implemented": "write the body of each function the exercise names; the skeleton's docstring says "
                       "what each takes and returns",
    "forbidden": "the exercise is to build this yourself from NumPy (or Tensor) operations; bnp's version is "
                 "what the grader compares you with",
    "import": "run `python FILE` to see the error; fix it first",
    "missing": "keep the function names and signatures of the skeleton",
    "type": "return exactly what the skeleton's docstring says (NumPy arrays, and tuples where it says so)",
}


def _fallback(exercise: Exercise, m: Mismatch) -> str:
    if m.kind == "exception":
        return _EXCEPTION_HINT
    if m.kind == "wrong" and m.error is not None and 1e-10 < m.error < 1e-4:
        return ("the error is small but far above float64 rounding: float32 somewhere, or a cancellation "
                "(subtracting large, nearly equal numbers)?")
    return exercise.fallback_hint


_EXCEPTION_HINT = "call your functions on the inputs above (python -i FILE) to see where and why they raise"


def grade(exercise: Exercise, path: str | Path, max_examples: int | None = None) -> Report:
    """Grade FILE ``path`` against ``exercise``: the report (never raises for a wrong or broken FILE)."""
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    path = Path(path)
    report = Report(exercise.name, str(path), tolerances=dict(exercise.tolerances))
    examples = max_examples or exercise.max_examples
    report.notes.append(f"cases: {examples} drawn by hypothesis with a fixed seed, the first failure shrunk; "
                        "scaled error = max |got - ref| / scale, scale per entry as the grader states")
    env = _enter_environment()
    try:
        with warnings.catch_warnings(), numpy.errstate(all="ignore"), \
                Refusals(exercise.forbidden, exercise.forbid_reason) as refusals:
            warnings.simplefilter("ignore")
            fns, problem = load_file(path, exercise.functions)
            if problem is None and refusals.calls:
                problem = Mismatch("forbidden", f"called {', '.join(sorted(set(refusals.calls)))} while importing: "
                                   f"{refusals.reason}")
            if problem is not None:
                report.failure = _failure_from(problem, exercise, None)
                report.hint = _GENERIC_HINTS.get(problem.kind, "").replace("FILE", str(path))
                return report
            assert fns is not None
            session = _Session(exercise, fns, refusals, path, report)
            try:
                case = find(exercise.cases(), session.fails, settings=_hypothesis_settings(examples))
            except NoSuchExample:
                report.passed = True
                return report
            except Exception:  # e.g. hypothesis's Flaky for a FILE whose answers change between runs
                case = session.last_failing
                if case is None:
                    raise
            _, mismatch = session.run(case)
            if mismatch is None:  # flaky FILE: passes on this rerun; report the recorded failure anyway
                mismatch = Mismatch("wrong", "the answer changed between two runs of the same case (flaky)")
            report.failure = _failure_from(mismatch, exercise, case)
            report.hint = (_GENERIC_HINTS.get(mismatch.kind) or _safe_hint(exercise, case, mismatch, session.passes)
                           or _fallback(exercise, mismatch).replace("FILE", str(path)))
            return report
    finally:
        _exit_environment(env)


def _safe_hint(exercise: Exercise, case: Any, mismatch: Mismatch, passes: Callable[[Any], bool]) -> str:
    try:
        return exercise.hint(case, mismatch, passes)
    except Exception as exc:  # a hint must never turn a report into a crash
        return f"(no hint: {type(exc).__name__} while deriving it)"


def iter_first(items: Iterator[str]) -> str:
    """The first non-empty hint of several candidates."""
    return next((h for h in items if h), "")
