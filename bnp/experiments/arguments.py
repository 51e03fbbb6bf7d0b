"""Command-line helpers shared by the ``bnp`` subcommands.

Argument types check a value when it is parsed, so that a bad argument is a
usage error (exit status 2, one line naming the value and what is allowed)
before any training starts, as argparse does for a bad integer. Each type
raises ``argparse.ArgumentTypeError``; argparse prefixes the option's name.

The subcommands register their options with ``default=argparse.SUPPRESS``:
an option is in the parsed namespace only when the user gave it, so that
``--quick`` changes only defaults. ``quiet_broken_pipe`` ends a command whose
reader went away (``bnp compare | head``) without a traceback.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
from pathlib import Path
from typing import Callable, Iterable

BROKEN_PIPE_STATUS = 141  # 128 + SIGPIPE: what a shell reports for a command killed by a closed pipe


def _items(text: str, what: str) -> list[str]:
    items = [v.strip() for v in text.split(",")]
    if not text.strip() or any(not v for v in items):
        raise argparse.ArgumentTypeError(f"expected a comma list of {what}, got {text!r}")
    return items


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (a batch size, a count of epochs or seeds)."""
    value = _number(text, int, "an integer >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def float_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Callable[[str], float]:
    """A finite float in the interval from ``low`` to ``high`` (``math.inf`` for no bound)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        value = _number(text, float, f"a finite number in {interval}")
        inside = math.isfinite(value) and (value > low if low_open else value >= low) and \
            (value < high if high_open else value <= high)
        if not inside:
            raise argparse.ArgumentTypeError(f"expected a finite number in {interval}, got {text!r}")
        return value

    return parse


positive_float = float_in(0.0, math.inf, low_open=True, high_open=True)


def list_of(item: Callable[[str], object], what: str, distinct: bool = False) -> Callable[[str], tuple]:
    """A non-empty comma list whose every item is parsed by ``item`` (one of the types above);
    ``distinct``: no value twice."""

    def parse(text: str) -> tuple:
        values = []
        for v in _items(text, what):
            try:
                values.append(item(v))
            except argparse.ArgumentTypeError as exc:
                raise argparse.ArgumentTypeError(f"in {text!r}: {exc}") from None
        if distinct and len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"a value is listed twice in {text!r}")
        return tuple(values)

    return parse


def choices(allowed: Iterable[str], what: str) -> Callable[[str], tuple[str, ...]]:
    """A non-empty comma list of names from ``allowed``, each at most once (``what``: the singular noun)."""
    allowed = tuple(allowed)

    def parse(text: str) -> tuple[str, ...]:
        names = _items(text, what + "s")
        unknown = [v for v in names if v not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {unknown[0]!r}; choose from {','.join(allowed)} (a comma list)")
        if len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f"{what} listed twice in {text!r}")
        return tuple(names)

    return parse


def writable_dir(text: str) -> str:
    """A directory that exists and is writable, or can be made (its nearest existing parent is a writable directory).

    Nothing is created here: the check must not leave traces when another argument is wrong.
    """
    if not text:
        raise argparse.ArgumentTypeError("expected a directory, got an empty path")
    path = Path(text).absolute()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write to {text!r}: {str(probe)!r} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write to {text!r}: directory {str(probe)!r} is not writable")
    return text


def integer(text: str) -> int:
    return _number(text, int, "an integer")


# comma lists without range checks (non-empty, every item well formed)
floats = list_of(float_in(-math.inf, math.inf), "finite numbers")
ints = list_of(integer, "integers")


def words(text: str) -> tuple[str, ...]:
    return tuple(_items(text, "names"))


def quiet_broken_pipe(main_from_args: Callable[..., int]) -> Callable[..., int]:
    """Wrap a subcommand so that a closed stdout (``bnp compare | head``) ends it quietly.

    As the Python documentation recommends: stdout is pointed at devnull so that
    the interpreter's final flush does not raise again, and the command returns
    the status a shell gives a command ended by SIGPIPE.
    """

    @functools.wraps(main_from_args)
    def wrapper(*args, **kwargs) -> int:
        try:
            status = main_from_args(*args, **kwargs)
            sys.stdout.flush()  # surface a broken pipe here, not in the interpreter's shutdown
            return status
        except BrokenPipeError:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):  # stdout without a file descriptor (a test's capture)
                pass
            return BROKEN_PIPE_STATUS

    return wrapper
