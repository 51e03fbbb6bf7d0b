"""Every tutorial chapter and every exercise solution runs end to end (quick mode) and
asserts its own conclusions; unfinished exercises run and report FAIL without crashing."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
CHAPTERS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
EXERCISES = sorted((TUTORIALS / "exercises").glob("[0-9][0-9]_*.py"))
SOLUTIONS = sorted((TUTORIALS / "exercises" / "solutions").glob("[0-9][0-9]_*.py"))


@pytest.fixture
def quick(monkeypatch, tmp_path):
    """Quick sizes, a non-interactive matplotlib, figures into tmp_path; returns that folder."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("BNP_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("BNP_TUTORIAL_FIGURES", str(tmp_path))
    return tmp_path


def test_the_tutorials_are_there():
    assert [p.name[:2] for p in CHAPTERS] == ["01", "02", "03"]
    assert len(EXERCISES) >= 2
    assert [p.name for p in SOLUTIONS] == [p.name for p in EXERCISES], "every exercise has one solution, same name"


@pytest.mark.parametrize("path", CHAPTERS + EXERCISES + SOLUTIONS, ids=lambda p: str(p.relative_to(TUTORIALS)))
def test_percent_format_and_readme_entry(path):
    text = path.read_text()
    assert text.startswith("# %% [markdown]\n"), "a tutorial opens with a markdown cell"
    assert "\n# %%\n" in text, "and has code cells"
    readme = (TUTORIALS / "README.md").read_text()
    assert str(path.relative_to(TUTORIALS)) in readme, "tutorials/README.md lists every file"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_runs_and_its_assertions_hold(path, quick):
    runpy.run_path(str(path), run_name="__main__")
    if "save_or_show(" in path.read_text():  # a chapter with a figure saves it where it is told
        assert any(p.name.startswith(path.name[:3]) and p.suffix == ".png" for p in quick.iterdir())


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_passes_its_checker(path, quick):
    namespace = runpy.run_path(str(path), run_name="__main__")
    assert namespace["report"].passed


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_unfinished_exercise_runs_and_fails_politely(path, quick, capsys):
    assert "# TODO (student)" in path.read_text()
    namespace = runpy.run_path(str(path), run_name="__main__")
    report = namespace["report"]
    assert not report.passed
    assert any("not implemented" in line for line in report.failures)
    assert "FAIL" in capsys.readouterr().out
