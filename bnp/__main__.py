"""The ``bnp`` command line: ``compare``, ``hessian``, ``baseline``, ``grade`` and ``info``.

Also runs as ``python -m bnp ...``. Each subcommand lives in its own module
with ``add_parser(subparsers)`` and ``main_from_args(args) -> int``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__, backend
from .experiments import baseline, compare, hessian_study
from .experiments.arguments import quiet_broken_pipe
from .grading import cli as grade_cli


class _Info:
    """``bnp info``: version, backend and whether a GPU can be used."""

    @staticmethod
    def add_parser(sub) -> None:
        sub.add_parser("info", help="version, backend and GPU availability")

    @staticmethod
    def main_from_args(_: argparse.Namespace) -> int:
        print(f"bnp {__version__}; backend {backend.get_backend()}; default dtype {backend.get_default_dtype()}; "
              f"GPU available: {backend.gpu_available()}")
        return 0


SUBCOMMANDS = {
    "compare": compare,
    "hessian": hessian_study,
    "baseline": baseline,
    "grade": grade_cli,
    "info": _Info,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bnp", description="Batch Normalization Preconditioning, from scratch.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS.values():
        command.add_parser(sub)
    args = parser.parse_args(argv)
    return quiet_broken_pipe(SUBCOMMANDS[args.command].main_from_args)(args)  # `bnp ... | head` ends quietly


if __name__ == "__main__":
    sys.exit(main())
