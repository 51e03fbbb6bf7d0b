"""Argument types shared by the ``bnp`` subcommands (comma lists of numbers and words)."""

from __future__ import annotations


def floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v)


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


def words(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())
