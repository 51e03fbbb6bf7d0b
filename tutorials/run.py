"""Run the course's chapters and (re)generate their figures.

A chapter is a MyST Markdown notebook (``tutorials/NN_name.md``, jupytext's
"md:myst" format). Running it means executing its code cells in order, in one
fresh namespace, as a notebook kernel would; the working directory does not
matter. Tracebacks point at the lines of the ``.md`` file.

    python tutorials/run.py                          # every chapter, full mode
    python tutorials/run.py --quick 01 03            # chapters 01 and 03, quick mode
    python tutorials/run.py --figures tutorials/figures   # regenerate the committed figures

Quick mode sets ``BNP_TUTORIAL_QUICK=1`` (smaller sizes, same assertions);
``--figures DIR`` sets ``BNP_TUTORIAL_FIGURES=DIR``, where
``bnp.plotting.save_or_show`` writes every figure. The time each chapter took
is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TUTORIALS = Path(__file__).resolve().parent
CODE_CELL = "```{code-cell} ipython3"
FENCE = "```"


@dataclass(frozen=True)
class Cell:
    """One code cell: its source and the line of the ``.md`` file where the source starts (1-based)."""

    line: int
    source: str


def chapters() -> list[Path]:
    """The course's chapters, in order: ``tutorials/[0-9][0-9]_*.md``."""
    return sorted(TUTORIALS.glob("[0-9][0-9]_*.md"))


def front_matter(text: str, where: str) -> str:
    """The YAML block between the two ``---`` lines that open a MyST notebook."""
    lines = text.split("\n")
    if not lines or lines[0] != "---":
        raise ValueError(f"{where}: a MyST notebook starts with a '---' line (YAML front matter), got {lines[0]!r}")
    try:
        end = lines.index("---", 1)
    except ValueError:
        raise ValueError(f"{where}: the YAML front matter opened on line 1 is never closed by '---'") from None
    return "\n".join(lines[1:end])


def code_cells(text: str, where: str) -> list[Cell]:
    """The code cells of a MyST notebook, in order.

    A cell opens with a line ``{CODE_CELL}`` and closes with a line ``{FENCE}``.
    An unclosed cell, or a code cell in another language, is an error.
    """
    cells: list[Cell] = []
    lines = text.split("\n")
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("```{code-cell}") and line.strip() != CODE_CELL:
            raise ValueError(f"{where}:{k + 1}: expected {CODE_CELL!r}, got {line!r}")
        if line.strip() == CODE_CELL:
            start = k + 1
            try:
                end = lines.index(FENCE, start)
            except ValueError:
                raise ValueError(f"{where}:{k + 1}: code cell never closed by a {FENCE!r} line") from None
            cells.append(Cell(start + 1, "\n".join(lines[start:end])))
            k = end
        k += 1
    return cells


def run_chapter(path: str | os.PathLike, quick: bool = False, figures: str | os.PathLike | None = None) -> float:
    """Execute a chapter's code cells in one fresh namespace; return the seconds it took.

    Sets ``BNP_TUTORIAL_QUICK`` and (when ``figures`` is given)
    ``BNP_TUTORIAL_FIGURES`` for the run, selects matplotlib's file-only Agg
    backend, and restores the environment and bnp's default dtype afterwards.
    A failing cell raises its own exception; the traceback names the ``.md`` line.
    """
    import matplotlib

    import bnp

    path = Path(path).resolve()
    text = path.read_text(encoding="utf-8")
    front_matter(text, str(path))
    cells = code_cells(text, str(path))
    if not cells:
        raise ValueError(f"{path}: no code cells ({CODE_CELL!r} ... {FENCE!r}) found")
    matplotlib.use("Agg")
    env = {"BNP_TUTORIAL_QUICK": "1" if quick else "0", "MPLBACKEND": "Agg"}
    if figures is not None:
        Path(figures).mkdir(parents=True, exist_ok=True)
        env["BNP_TUTORIAL_FIGURES"] = str(Path(figures).resolve())
    saved_env = {key: os.environ.get(key) for key in [*env, "BNP_TUTORIAL_FIGURES"]}
    saved_dtype = bnp.get_default_dtype()
    namespace = {"__name__": "__main__", "__file__": str(path)}
    os.environ.pop("BNP_TUTORIAL_FIGURES", None)
    os.environ.update(env)
    start = time.perf_counter()
    try:
        for cell in cells:
            # Pad with newlines so that line numbers in tracebacks are those of the .md file.
            code = compile("\n" * (cell.line - 1) + cell.source, str(path), "exec")
            exec(code, namespace)  # noqa: S102  (running the chapter is the point)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        bnp.set_default_dtype(saved_dtype)
        import matplotlib.pyplot as plt

        plt.close("all")
    return time.perf_counter() - start


def _select(names: list[str]) -> list[Path]:
    """Chapters by path, by number ("03") or by file name ("03_conditioning.md")."""
    every = chapters()
    if not names:
        return every
    chosen = []
    for name in names:
        if Path(name).is_file():
            chosen.append(Path(name))
            continue
        matches = [p for p in every if p.name == name or p.stem == name or p.name[:2] == name.zfill(2)]
        if len(matches) != 1:
            known = ", ".join(p.name for p in every)
            raise SystemExit(f"run.py: no single chapter matches {name!r}; chapters: {known}")
        chosen.append(matches[0])
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the course's chapters (MyST notebooks) and time them.")
    parser.add_argument("chapters", nargs="*", help="chapter files, numbers (01) or names; default: all")
    parser.add_argument("--quick", action="store_true", help="quick mode (BNP_TUTORIAL_QUICK=1)")
    parser.add_argument("--figures", metavar="DIR", help="save the figures into DIR (BNP_TUTORIAL_FIGURES)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    total = 0.0
    for path in _select(args.chapters):
        print(f"== {path.name} ({mode} mode)", flush=True)
        seconds = run_chapter(path, quick=args.quick, figures=args.figures)
        total += seconds
        print(f"== {path.name}: {seconds:.1f} s ({mode} mode)", flush=True)
    print(f"== total: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
