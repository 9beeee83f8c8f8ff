"""The student edition: solutions become stubs that raise, outputs are cleared, nothing else changes."""
from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
spec = importlib.util.spec_from_file_location("student_edition", ROOT / "tools" / "student_edition.py")
student_edition = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student_edition)


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and "solution" in cell.metadata.get("tags", [])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_edition_stubs_solutions_and_changes_nothing_else(path):
    original = nbformat.read(path, as_version=4)
    student = student_edition.student_notebook(original)
    assert len(student.cells) == len(original.cells)
    stubs = 0
    for before, after in zip(original.cells, student.cells):
        assert after.cell_type == before.cell_type
        if after.cell_type == "code":
            assert after.outputs == [] and after.execution_count is None
        if not is_solution(before):
            assert after.source == before.source
            continue
        stubs += 1
        namespace: dict = {}
        exec(after.source, namespace)  # the stub must be valid Python
        functions = [v for k, v in namespace.items() if inspect.isfunction(v)]
        assert functions, after.source
        for fn in functions:
            args = [None] * len(inspect.signature(fn).parameters)
            with pytest.raises(NotImplementedError, match=f"Exercise {stubs}: "):
                fn(*args)
            # the signature is kept from the solution
            exec(before.source, ref := {})
            assert inspect.signature(ref[fn.__name__]) == inspect.signature(fn)
    assert stubs >= 2
    assert original.cells[0].source == student.cells[0].source


def test_stub_keeps_signature_and_docstring():
    source = 'def f(x, y=2):\n    """Add."""\n    return x + y\n'
    out = student_edition.stub(source, "Exercise 3: Adding")
    assert '"""Add."""' in out and "def f(x, y=2):" in out and "return x + y" not in out
    namespace: dict = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError, match="Exercise 3: Adding"):
        namespace["f"](1)


def test_a_solution_cell_without_a_function_is_an_error():
    with pytest.raises(ValueError, match="defines no function"):
        student_edition.stub("x = 1\n", "Exercise 1: x")


def test_command_writes_every_chapter(tmp_path):
    assert student_edition.main([str(ROOT / "chapters"), str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in CHAPTERS]


@pytest.fixture
def two_chapters(tmp_path):
    src = tmp_path / "chapters"
    src.mkdir()
    for path in CHAPTERS[:2]:
        (src / path.name).write_bytes(path.read_bytes())
    return src


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("destination", [".", "../chapters", "link to source"])
def test_refuses_to_write_over_the_chapters(two_chapters, capsys, destination):
    before = snapshot(two_chapters)
    if destination == "link to source":
        dst = two_chapters.parent / "student"
        dst.symlink_to(two_chapters, target_is_directory=True)
    else:
        dst = two_chapters / destination
    assert student_edition.main([str(two_chapters), str(dst)]) == 1
    assert "the chapters would be overwritten by their stubs" in capsys.readouterr().err
    assert snapshot(two_chapters) == before


def test_refuses_through_the_command_line_too(two_chapters):
    import subprocess
    import sys
    before = snapshot(two_chapters)
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "student_edition.py"),
                           str(two_chapters), str(two_chapters)], capture_output=True, text=True)
    assert done.returncode == 1 and "destination" in done.stderr and done.stdout == ""
    assert snapshot(two_chapters) == before


def test_a_subfolder_of_the_chapters_is_a_fine_destination(two_chapters):
    before = snapshot(two_chapters)
    assert student_edition.main([str(two_chapters), str(two_chapters / "student")]) == 0
    assert {p.name for p in (two_chapters / "student").iterdir()} == set(before)
    assert all((two_chapters / n).read_bytes() == b for n, b in before.items())


@pytest.mark.parametrize("source", ["missing", "empty"])
def test_missing_or_empty_source_is_an_error(tmp_path, capsys, source):
    src, dst = tmp_path / "chapters", tmp_path / "student"
    if source == "empty":
        src.mkdir()
    assert student_edition.main([str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert str(src) in err and ("does not exist" if source == "missing" else "no notebooks") in err
    assert not dst.exists()


EDITION = ROOT / "exercises"
REGENERATE = "`make student` (or: .venv/bin/python tools/student_edition.py chapters exercises)"


def test_every_chapter_has_its_committed_student_edition_and_nothing_else():
    editions = sorted(p.name for p in EDITION.glob("*.ipynb"))
    chapters = [p.name for p in CHAPTERS]
    assert editions == chapters, (
        f"exercises/ holds {sorted(set(editions) - set(chapters))} without a chapter and lacks "
        f"{sorted(set(chapters) - set(editions))}: delete the former, and run {REGENERATE}")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_committed_student_edition_is_up_to_date(path):
    """exercises/NN_slug.ipynb is what tools/student_edition.py writes from the chapter now."""
    committed = EDITION / path.name
    assert committed.is_file(), f"{committed.relative_to(ROOT)} is missing: run {REGENERATE}"
    regenerated = student_edition.student_notebook(nbformat.read(path, as_version=4))
    stale = nbformat.reads(committed.read_text(encoding="utf-8"), as_version=4)
    differ = [i for i, (a, b) in enumerate(zip(regenerated.cells, stale.cells)) if a != b]
    assert regenerated == stale, (
        f"{committed.relative_to(ROOT)} is stale: chapters/{path.name} changed "
        f"(cells {differ[:5] or 'count or metadata'}) and the student edition was not "
        f"written again. Run {REGENERATE} and commit exercises/.")
    assert committed.read_text(encoding="utf-8") == nbformat.writes(regenerated) + "\n", (
        f"{committed.relative_to(ROOT)} is not in nbformat's layout: run {REGENERATE}")


def printed(cell) -> str:
    """Everything a code cell printed or displayed, as text."""
    out = []
    for o in cell.get("outputs", []):
        out.append(o.get("text", "") if o["output_type"] == "stream"
                   else o.get("data", {}).get("text/plain", ""))
    return "".join("".join(t) if isinstance(t, list) else t for t in out)


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_student_edition_runs_top_to_bottom_with_every_exercise_unfinished(path):
    """Run All on the student edition reaches the end: no cell raises, and every check
    reports its exercise as not implemented yet (✗), none passes."""
    from nbclient import NotebookClient
    nb = student_edition.student_notebook(nbformat.read(path, as_version=4))
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    checks = [c for c in nb.cells if c.cell_type == "code" and re.search(r"^check_\w+\(", c.source, re.M)]
    stubs = sum(is_solution(c) for c in nbformat.read(path, as_version=4).cells)
    reports = [printed(c) for c in checks]
    assert checks and all("✗" in r and "✓" not in r for r in reports), reports
    assert sum(r.count("not implemented yet") for r in reports) >= stubs, reports
