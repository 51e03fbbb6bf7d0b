"""The course's chapters (tutorials/NN_name.md, MyST notebooks) run and assert their own
conclusions, in quick mode on every test run and in full mode under ``-m slow``; their
figures are produced by their code and committed; their text is clean.

Exercise and solution tests live in tests/test_grading.py.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "tutorials"


def _load_runner():
    spec = importlib.util.spec_from_file_location("tutorials_run", TUTORIALS / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


run = _load_runner()
CHAPTERS = run.chapters()
FIGURE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)")
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".pdf", ".npz", ".npy", ".gz", ".ico"}
# Exercises each chapter prepares (fixed by the course plan).
EXERCISES = {
    "01_autograd.md": ["softplus_vjp", "hvp_reverse_over_reverse"],
    "02_batch_normalization.md": ["batchnorm_backward"],
    "03_conditioning.md": ["moment_matrix"],
    "04_bnp.md": ["bnp_update", "bnp_transform", "whitening"],
    "05_small_batches.md": ["running_moments", "fn_gradient"],
    "06_convnets.md": ["im2col_conv", "bnp_update_conv"],
    "07_scale_invariance.md": ["effective_condition_number"],
}


# Written by the other course helpers at the same time (book2: chapters 05-08; graders: exercises/, solutions/).
# A link to one of them is checked like any other once the file exists; until then the test says so by skipping.
WRITTEN_ON_OTHER_BRANCHES = [*(name for name in EXERCISES if name[:2] >= "05"), "08_real_data_and_gpu.md",
                             "exercises/", "solutions/"]


def chapter_id(path: Path) -> str:
    return path.name


def prose(text: str) -> str:
    """Markdown without its fenced blocks and inline code (where `a[i](x)` is code, not a link)."""
    text = re.sub(r"^```.*?^```[ \t]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def referenced_figures(path: Path) -> list[str]:
    return FIGURE_LINK.findall(prose(path.read_text(encoding="utf-8")))


def control_characters(text: str) -> list[tuple[int, str]]:
    """(line, repr) of every control character other than newline: C0, DEL and C1.

    A CRLF line ending counts as a newline (CSV files are written with it, RFC 4180);
    a carriage return anywhere else does not."""
    found = []
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        for ch in line:
            if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
                found.append((number, repr(ch)))
    return found


def text_files() -> list[Path]:
    files = [p for folder in (TUTORIALS, ROOT / "docs") for p in folder.rglob("*") if p.is_file()]
    return sorted(p for p in files if p.suffix.lower() not in BINARY_SUFFIXES and "__pycache__" not in p.parts)


def test_there_are_chapters():
    # run.chapters() is what the parametrized tests below use: an empty list would make them vacuous
    assert [p.name for p in CHAPTERS][:4] == list(EXERCISES)[:4], "chapters 01-04 of the course plan must exist"


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_chapter_runs_quick_and_writes_its_figures(path, tmp_path):
    run.run_chapter(path, quick=True, figures=tmp_path)
    _check_figures(path, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_chapter_runs_full_and_writes_its_figures(path, tmp_path):
    run.run_chapter(path, quick=False, figures=tmp_path)
    _check_figures(path, tmp_path)


def _check_figures(path: Path, folder: Path) -> None:
    written = {p.name for p in folder.iterdir() if p.suffix == ".png"}
    referenced = {Path(link).name for link in referenced_figures(path)}
    assert referenced, f"{path.name} shows no figure (expected ![...](figures/{path.stem}_....png))"
    missing = referenced - written
    assert not missing, f"{path.name} references figures its code did not write: {sorted(missing)}"
    unreferenced = written - referenced
    assert not unreferenced, f"{path.name} wrote figures it never shows: {sorted(unreferenced)}"


@pytest.mark.parametrize("path", text_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_control_characters(path):
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        pytest.fail(f"{path.relative_to(ROOT)}: expected ASCII or UTF-8 text, got undecodable bytes ({err})")
    found = control_characters(text)
    assert not found, f"{path.relative_to(ROOT)}: control characters (line, char): {found[:10]}"


def test_the_control_character_check_sees_form_feeds_and_escapes():
    assert control_characters("a \\frac{1}{2}\nb") == []
    assert control_characters("caf\u00e9, \u03bc, \u2264\n") == [], "UTF-8 letters and symbols are fine"
    assert control_characters("x\n\frac") == [(2, repr("\f"))], "a form feed (what '\\f' becomes) is caught"
    assert control_characters("\x1b[0m\t\r") == [(1, repr("\x1b")), (1, repr("\t")), (1, repr("\r"))]
    assert control_characters("\x85") == [(1, repr("\x85"))], "C1 controls are caught"
    assert control_characters("a,b\r\nc,d\r\n") == [], "CRLF line endings are line endings"


@pytest.mark.parametrize("path", sorted(TUTORIALS.rglob("*.md")), ids=lambda p: str(p.relative_to(TUTORIALS)))
def test_links_and_figures_in_the_markdown_exist(path):
    text = prose(path.read_text(encoding="utf-8"))
    for link in FIGURE_LINK.findall(text):
        target = (path.parent / link).resolve()
        assert target.is_file(), f"{path.relative_to(ROOT)} shows {link}, which is not in the repository"
        if path.parent == TUTORIALS and re.match(r"\d\d_", path.name):
            assert re.fullmatch(rf"figures/{path.stem}[_.][\w.-]*png", link), \
                f"{path.name}: expected figures named figures/{path.stem}_*.png, got {link}"
    pending = []
    for link in LINK.findall(text):
        if "://" in link or link.startswith("mailto:"):
            continue
        target = (path.parent / link).resolve()
        if target.exists():
            continue
        relative = target.relative_to(TUTORIALS).as_posix() if target.is_relative_to(TUTORIALS) else ""
        if any(relative == p.rstrip("/") or relative.startswith(p.rstrip("/") + "/")
               for p in WRITTEN_ON_OTHER_BRANCHES):
            pending.append(link)
            continue
        pytest.fail(f"{path.relative_to(ROOT)} links to {link}, which does not exist")
    if pending:
        pytest.skip(f"links to files written on other branches, not merged here yet: {pending}")


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_chapter_is_a_myst_notebook(path):
    text = path.read_text(encoding="utf-8")
    header = run.front_matter(text, path.name)
    assert re.search(r"text_representation:\s*\{[^}]*format_name:\s*myst", header), \
        f"{path.name}: front matter must declare jupytext's text_representation with format_name: myst"
    assert re.search(r"extension:\s*\.md", header), f"{path.name}: front matter must declare extension: .md"
    assert re.search(r"kernelspec:\s*\{[^}]*name:\s*python3", header), f"{path.name}: kernelspec python3 expected"
    try:
        import yaml  # PyYAML comes with jupytext; without it the regular expressions above must do
    except ImportError:
        yaml = None
    if yaml is not None:
        meta = yaml.safe_load(header)
        assert meta["jupytext"]["text_representation"] == {"extension": ".md", "format_name": "myst"}, path.name
        assert meta["kernelspec"]["language"] == "python", path.name
    cells = run.code_cells(text, path.name)
    assert cells, f"{path.name}: no code cells"
    for cell in cells:
        compile(cell.source, f"{path.name}:{cell.line}", "exec")  # every cell is valid Python on its own
    assert "QUICK = os.environ.get(\"BNP_TUTORIAL_QUICK\") == \"1\"" in cells[0].source, \
        f"{path.name}: the first code cell must read QUICK from BNP_TUTORIAL_QUICK"
    lines = text.split("\n")
    title = next(line for line in lines[lines.index("---", 1) + 1:] if line.strip())
    assert title.startswith("# Chapter "), f"{path.name}: the notebook must open with its '# Chapter ...' title"


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_jupytext_reads_the_same_code_cells(path):
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(path)
    theirs = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    ours = [cell.source for cell in run.code_cells(path.read_text(encoding="utf-8"), path.name)]
    assert theirs == ours, f"{path.name}: jupytext and tutorials/run.py see different code cells"
    assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == "myst"
    assert any(cell.cell_type == "markdown" and "Objectives" in cell.source for cell in notebook.cells)


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_chapter_sections_answers_and_exercises(path):
    text = path.read_text(encoding="utf-8")
    for heading in ("**Objectives.**", "**Prerequisites.**", "**Time.**", "## Try it", "## Exercises"):
        assert heading in text, f"{path.name}: expected a {heading} section"
    time_line = text[text.index("**Time.**"):].split("\n\n")[0]
    assert "quick mode" in time_line and "full mode" in time_line, f"{path.name}: Time must give both run times"
    questions = re.findall(r"^\d+\. ", text[text.index("## Try it"):text.index("## Exercises")], flags=re.M)
    answers_file = TUTORIALS / "answers" / path.name
    assert answers_file.is_file(), f"{path.name}: its Try-it answers belong in tutorials/answers/{path.name}"
    answers = re.findall(r"^\d+\. ", answers_file.read_text(encoding="utf-8"), flags=re.M)
    assert len(answers) == len(questions) > 0, \
        f"{path.name}: {len(questions)} Try-it questions but {len(answers)} answers in {answers_file.name}"
    graded = re.findall(r"`bnp grade (\w+) tutorials/exercises/(\w+)\.py`", text)
    assert all(name == file for name, file in graded), f"{path.name}: `bnp grade NAME tutorials/exercises/NAME.py`"
    expected = EXERCISES.get(path.name, [])
    assert set(expected) <= {name for name, _ in graded}, \
        f"{path.name}: expected the exercises {expected} of the course plan, found {[n for n, _ in graded]}"
    if (TUTORIALS / "exercises" / "README.md").is_file():  # the graders' branch is merged
        for name, _ in graded:
            assert (TUTORIALS / "exercises" / f"{name}.py").is_file(), f"{path.name}: no skeleton for {name}"


def test_runner_reports_failures_at_the_markdown_line(tmp_path):
    chapter = tmp_path / "99_broken.md"
    chapter.write_text(
        "---\njupytext:\n  text_representation: {extension: .md, format_name: myst}\n---\n\n# Chapter 99\n\n"
        "```{code-cell} ipython3\nimport os\nvalue = os.environ['BNP_TUTORIAL_QUICK']\n```\n\nprose\n\n"
        "```{code-cell} ipython3\nassert value == '0', 'quick mode was not passed on'\nassert 1 == 2, 'planted'\n```\n"
    )
    with pytest.raises(AssertionError, match="planted") as info:
        run.run_chapter(chapter, quick=False)
    frame = info.traceback[-1]
    assert Path(frame.path) == chapter and frame.lineno + 1 == 17, "the traceback must point at line 17 of the .md"
    with pytest.raises(AssertionError, match="quick mode was not passed on"):
        run.run_chapter(chapter, quick=True)


def test_runner_rejects_malformed_notebooks():
    with pytest.raises(ValueError, match="front matter"):
        run.front_matter("# no front matter\n", "x.md")
    with pytest.raises(ValueError, match="never closed"):
        run.code_cells("```{code-cell} ipython3\nprint(1)\n", "x.md")
    with pytest.raises(ValueError, match="expected"):
        run.code_cells("```{code-cell} python\nprint(1)\n```\n", "x.md")
    cells = run.code_cells("text\n```{code-cell} ipython3\na = 1\nb = 2\n```\nmore\n```python\nnot run\n```\n", "x.md")
    assert cells == [run.Cell(3, "a = 1\nb = 2")], "only {code-cell} blocks run, with their first line number"
