"""Writing experiment results: standard JSON and files that are never seen half-written."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(obj: Any) -> Any:
    """``obj`` with NumPy scalars as Python numbers and every non-finite float as None (JSON null)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def json_text(result: Any) -> str:
    """Standard JSON (no NaN or Infinity tokens: non-finite numbers are null), indented, one final newline."""
    return json.dumps(json_safe(result), indent=1, allow_nan=False) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a crash) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
