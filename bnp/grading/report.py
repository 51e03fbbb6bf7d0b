"""What a grader says: the verdict, the cases run, the first failure (shrunk) and a hint.

A :class:`Report` prints as a few lines of text (``str(report)``) or as a
dictionary for autograders (``report.to_dict()``, what ``bnp grade --json``
prints). Numbers in it are *scaled errors*: ``max |got - ref| / scale`` with a
scale per entry that each grader states (the size of the terms the entry is
computed from), so a tolerance reads as a multiple of float64 rounding
(``u = 2**-53 ~ 1.1e-16``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy

__all__ = ["Failure", "Report", "format_value"]

_MAX_ENTRIES = 24  # arrays up to this size are printed in full in a report


@dataclass
class Failure:
    """The first failing case, after shrinking.

    Attributes:
        kind: "wrong" (a value off), "shape", "type", "structure" (graph, interface),
            "exception" (the FILE raised), "not_implemented", "forbidden" (called
            bnp's own implementation), "import" (FILE could not be imported),
            "missing" (FILE lacks a function).
        message: one line that says what went wrong.
        quantity: which output (``"dx"``, ``"P"``), if any.
        error: its scaled error, if it was a comparison.
        tolerance: the tolerance it was held to.
        case: the case's parameters (shrunk), as a dictionary.
        inputs: the case's arrays as nested lists (small ones), or their shapes.
    """

    kind: str
    message: str
    quantity: str = ""
    error: float | None = None
    tolerance: float | None = None
    case: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """The outcome of ``bnp grade NAME FILE``.

    Attributes:
        exercise: the exercise's name.
        file: the graded file.
        passed: every case passed and nothing forbidden was called.
        cases_run: cases checked (hypothesis examples, shrinking included).
        tolerances: the tolerance of every compared quantity.
        worst_errors: the largest scaled error seen per quantity over the cases that passed it.
        failure: the first failure, shrunk (None when passed).
        hint: what the failing case suggests.
        notes: extra lines (how cases were drawn).
    """

    exercise: str
    file: str
    passed: bool = False
    cases_run: int = 0
    tolerances: dict[str, float] = field(default_factory=dict)
    worst_errors: dict[str, float] = field(default_factory=dict)
    failure: Failure | None = None
    hint: str = ""
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def record(self, errors: dict[str, float]) -> None:
        for quantity, error in errors.items():
            if not math.isnan(error):
                self.worst_errors[quantity] = max(self.worst_errors.get(quantity, 0.0), error)

    def _errors_line(self) -> str:
        parts = [f"{q} {e:.1e} (tol {self.tolerances[q]:.0e})" if q in self.tolerances else f"{q} {e:.1e}"
                 for q, e in self.worst_errors.items()]
        return "worst scaled errors: " + ", ".join(parts) if parts else ""

    def __str__(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.exercise}  ({self.file}): {self.cases_run} cases"
        lines = [head]
        if self.passed:
            lines.append("  " + self._errors_line())
        else:
            f = self.failure
            assert f is not None
            lines.append(f"  {f.message}")
            if f.case:
                lines.append("  first failing case (shrunk): " + ", ".join(f"{k}={format_value(v)}"
                                                                          for k, v in f.case.items()))
            for name, value in f.inputs.items():
                lines.append(f"    {name} = {format_value(value)}")
            if self.hint:
                lines.append(f"  hint: {self.hint}")
            if self.worst_errors:
                lines.append("  before it, " + self._errors_line())
        lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        failure = None
        if self.failure is not None:
            f = self.failure
            failure = {"kind": f.kind, "message": f.message, "quantity": f.quantity, "error": _finite(f.error),
                       "tolerance": f.tolerance, "case": _jsonable(f.case), "inputs": _jsonable(f.inputs)}
        return {"name": self.exercise, "file": self.file, "passed": self.passed, "cases_run": self.cases_run,
                "tolerances": self.tolerances, "worst_errors": {k: _finite(v) for k, v in self.worst_errors.items()},
                "failure": failure, "hint": self.hint}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _finite(x: float | None) -> float | str | None:
    """JSON has no inf or nan: write them as strings."""
    if x is None or math.isfinite(x):
        return x
    return str(x)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, numpy.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (numpy.floating, float)):
        return _finite(float(value))
    if isinstance(value, numpy.integer):
        return int(value)
    return value


def format_value(value: Any) -> str:
    """A short text for a case parameter or an input array (arrays: in full when small)."""
    if isinstance(value, numpy.ndarray):
        if value.size <= _MAX_ENTRIES:
            return numpy.array2string(value, precision=4, separator=", ", max_line_width=100).replace("\n", "")
        return f"array of shape {value.shape}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], numpy.ndarray):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(value)


def inputs_for_report(arrays: dict[str, Any]) -> dict[str, Any]:
    """Arrays as they should appear in a report: small ones in full, large ones by shape."""
    out: dict[str, Any] = {}
    for name, a in arrays.items():
        if isinstance(a, list):
            a_list = [numpy.asarray(b) for b in a]
            total = sum(b.size for b in a_list)
            out[name] = a_list if total <= _MAX_ENTRIES else f"{len(a_list)} arrays of shapes " + \
                ", ".join(str(b.shape) for b in a_list[:6]) + (" ..." if len(a_list) > 6 else "")
        elif isinstance(a, numpy.ndarray):
            out[name] = a if a.size <= _MAX_ENTRIES else f"array of shape {a.shape}"
        else:
            out[name] = a
    return out
