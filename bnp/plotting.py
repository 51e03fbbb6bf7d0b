"""The few lines of matplotlib bookkeeping that experiments and tutorials share.

Plotting is host-side only: callers pass plain NumPy arrays and lists.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any


def headless_pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: str | os.PathLike, dpi: int = 110) -> None:
    """Lay out, write and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def save_or_show(fig: Any, name: str, env: str = "BNP_TUTORIAL_FIGURES") -> None:
    """Tutorials: save to the folder named by ``$env`` if set, else show the
    figure when matplotlib has an interactive backend; close it either way."""
    import matplotlib
    import matplotlib.pyplot as plt

    folder = os.environ.get(env)
    if folder:
        path = Path(folder) / name
        fig.savefig(path, dpi=100, bbox_inches="tight")
        print("saved", path)
    elif matplotlib.get_backend().lower() != "agg":
        plt.show()
    plt.close(fig)
