"""Reading ``.npz`` data files without pickle, with errors that name the file."""

from __future__ import annotations

import os
import zipfile
from typing import Sequence

import numpy  # host-side file parsing

from .idx import DataFileError


def read_npz(path: str | os.PathLike, names: Sequence[str], hint: str = "") -> dict[str, numpy.ndarray]:
    """The arrays ``names`` of the ``.npz`` file at ``path``, read with ``allow_pickle=False``.

    A missing array, a truncated or corrupt archive, or an array that only
    pickle could read is a :class:`DataFileError` naming the file (and ending
    with ``hint``, e.g. what to do about it).
    """
    tail = f"; {hint}" if hint else ""
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            missing = set(names) - set(npz.files)
            if missing:
                raise DataFileError(f"{path}: missing arrays {sorted(missing)} (expected {', '.join(names)}){tail}")
            return {k: npz[k] for k in names}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataFileError(f"{path}: truncated or corrupt .npz file ({exc}){tail}") from exc
    except ValueError as exc:
        if isinstance(exc, DataFileError):
            raise
        raise DataFileError(f"{path}: unreadable without pickle ({exc}){tail}") from exc
