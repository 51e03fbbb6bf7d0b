"""Graders for the course's exercises (``tutorials/exercises/``): ``bnp grade NAME FILE``.

Each grader imports FILE in isolation, draws cases with hypothesis (seeded,
so a report is reproducible) from strategies that reach the hard cases,
compares FILE's answers with a reference written in the grader, and reports
the first failing case shrunk, with a hint derived from it. From Python::

    from bnp import grading
    report = grading.grade("batchnorm_backward", "my_batchnorm.py")
    print(report); assert report.passed

Graders need hypothesis (``pip install -e '.[course]'``); the list of
exercises does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .registry import EXERCISES, ExerciseInfo, info, names

__all__ = ["EXERCISES", "ExerciseInfo", "grade", "names", "info", "grader"]


def grader(name: str) -> Any:
    """The grader object of exercise ``name`` (KeyError for an unknown name)."""
    from .registry import load

    return load(name)


def grade(name: str, path: str | Path, max_examples: int | None = None) -> Any:
    """Grade FILE ``path`` for exercise ``name``; returns a :class:`bnp.grading.report.Report`."""
    from .runner import grade as run

    return run(grader(name), path, max_examples=max_examples)
