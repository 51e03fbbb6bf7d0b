"""``bnp grade NAME FILE``: grade an exercise; ``bnp grade --list``: the exercises.

Exit status: 0 if FILE passes, 1 if it fails (wrong answers, an exception, an
import or syntax error in FILE), 2 for a usage error (unknown NAME, missing
FILE, hypothesis not installed), so autograders can use it directly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .registry import EXERCISES, names

INSTALL_HINT = ("bnp grade needs hypothesis (it draws and shrinks the test cases): "
                "pip install -e '.[course]'  (or: pip install 'hypothesis>=6.70')")


def add_parser(sub) -> None:
    p = sub.add_parser("grade", help="grade a course exercise: bnp grade NAME FILE (or --list)",
                       description="Grade FILE for exercise NAME: exit 0 if it passes, 1 if it fails, "
                       "2 for a usage error.")
    p.add_argument("name", nargs="?", metavar="NAME", help="the exercise (see --list)")
    p.add_argument("file", nargs="?", metavar="FILE", help="the Python file with your solution")
    p.add_argument("--list", action="store_true", help="list the exercises and exit")
    p.add_argument("--json", action="store_true", help="print a machine-readable report")
    p.add_argument("--examples", type=int, default=None, help="hypothesis examples to draw (default: per grader)")


def _usage(message: str) -> int:
    print(f"bnp grade: {message}", file=sys.stderr)
    return 2


def list_text() -> str:
    width = max(len(e.name) for e in EXERCISES)
    return "\n".join(f"{e.name:<{width}}  {e.chapter:<24} {e.summary}" for e in EXERCISES)


def main_from_args(args: argparse.Namespace) -> int:
    if args.list:
        print(list_text())
        return 0
    if args.name is None or args.file is None:
        return _usage("expected NAME and FILE (bnp grade NAME FILE), or --list")
    if args.name not in names():
        return _usage(f"unknown exercise {args.name!r}; run 'bnp grade --list' (known: {', '.join(names())})")
    path = Path(args.file)
    if not path.is_file():
        return _usage(f"no such file: {path}")
    if args.examples is not None and args.examples < 1:
        return _usage(f"--examples must be at least 1, got {args.examples}")
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return _usage(INSTALL_HINT)
    from . import grade

    report = grade(args.name, path, max_examples=args.examples)
    print(report.to_json() if args.json else report)
    return 0 if report.passed else 1
