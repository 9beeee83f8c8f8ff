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


# Run All of a student edition, without running every chapter a second time. The edition
# is its chapter with the solution cells stubbed (the first test above), and every solution
# comes after the chapter's first {exercise} (student_notebook refuses one before). So the
# cells above that point are the chapter's own, run by nbval in `make test`, and only the
# exercise section (the first {exercise} to the end, stubs included) runs differently. It is
# run in a fresh kernel after the chapter's set-up cell alone (imports and
# `notebook.setup()`: one thread, the seeds, a default dtype), which gives it the process-wide
# state Run All gives it. The static test below makes the rest equivalent: the section reads
# no name that the cells above it bind, so their values cannot change what it does.


def exercise_section(nb) -> int:
    """Index of the chapter's first cell with an ``{exercise}``: the exercise section starts there."""
    return next(i for i, cell in enumerate(nb.cells)
                if cell.cell_type == "markdown" and student_edition.EXERCISE.search(cell.source))


def setup_cell(nb):
    """The chapter's set-up cell: the code cell that calls ``notebook.setup(``."""
    return next(c for c in nb.cells if c.cell_type == "code" and "notebook.setup(" in c.source)


def python_of(cell) -> str:
    """The cell's source as Python (IPython magics and shell escapes translated)."""
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(cell.source)


def global_names(source: str) -> tuple[set[str], set[str]]:
    """(names the code reads from the module namespace, names it binds there), at every depth
    for reads (a function body reads its globals when called) and at the top for binds."""
    import symtable
    top = symtable.symtable(source, "<cell>", "exec")
    binds = {s.get_name() for s in top.get_symbols()
             if s.is_assigned() or s.is_imported() or s.is_namespace()}
    reads, todo = set(), [top]
    while todo:
        table = todo.pop()
        todo += table.get_children()
        for s in table.get_symbols():
            if s.is_referenced() and (table is top or s.is_global()):
                reads.add(s.get_name())
    return reads, binds


def read_from_above(student) -> dict[str, str]:
    """The names the exercise section of ``student`` reads before binding them itself that a
    cell above the section binds, each with the first line of the first cell reading it."""
    first = exercise_section(student)
    above = set()
    for cell in student.cells[:first]:
        if cell.cell_type == "code":
            source = python_of(cell)
            assert "import *" not in source, f"a star import above the exercises: {source}"
            above |= global_names(source)[1]
    bound, found = set(), {}
    for cell in student.cells[first:]:
        if cell.cell_type != "code":
            continue
        reads, binds = global_names(python_of(cell))
        for name in sorted((reads - bound - binds) & above):
            found.setdefault(name, cell.source.splitlines()[0])
        bound |= binds
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_exercise_section_reads_nothing_the_chapter_above_it_binds(path):
    """The student edition's exercise section reads no name bound by the cells above it: each
    name it reads it binds first itself (its own imports), or it is a builtin that no cell
    above rebinds. Otherwise the section run alone would not be the one Run All reaches."""
    chapter = nbformat.read(path, as_version=4)
    student = student_edition.student_notebook(chapter)
    assert not any(is_solution(c) for c in chapter.cells[:exercise_section(student)])
    found = read_from_above(student)
    assert not found, (
        f"{path.name}: the exercise section reads names that the chapter above binds "
        f"{found}: import or define them in the section (the student edition's exercise "
        "section is tested alone)")


def test_a_section_that_reads_a_name_from_above_is_seen():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    nb = new_notebook(cells=[
        new_code_cell("import torch\nscale, len = 2.0, max\n%matplotlib inline"),
        new_markdown_cell("```{exercise} Scale\n```"),
        new_code_cell("import math\ndef f(x):\n    return scale * math.sqrt(x)\n"),
        new_code_cell("print(len([k for k in range(3)]), torch.pi)")])
    reader = "print(len([k for k in range(3)]), torch.pi)"
    assert read_from_above(nb) == {"scale": "import math", "len": reader, "torch": reader}
    nb.cells[2].source = "import math, torch\nscale = 3.0\n" + nb.cells[2].source
    nb.cells[3].source = "print(sum([k for k in range(3)]), torch.pi)"
    assert read_from_above(nb) == {}


def test_the_static_check_sees_a_name_borrowed_from_above():
    reads, binds = global_names("import math\ndef f(x):\n    return scale * math.sqrt(x)\n"
                                "y = f(2) + len([k for k in range(3)])\n")
    assert {"scale", "math", "f", "len", "range"} <= reads and "x" not in reads
    assert binds == {"math", "f", "y"}


def run_exercise_section(chapter, folder):
    """The student edition of ``chapter`` with its set-up cell and exercise section executed
    in a fresh kernel in ``folder``; raises where a cell raises."""
    from nbclient import NotebookClient
    nb = student_edition.student_notebook(chapter)
    nb.cells = [setup_cell(nb)] + nb.cells[exercise_section(nb):]
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def run_exercise_sections(chapters, folder) -> dict[str, list]:
    """The set-up cell and exercise section of every chapter's student edition, executed one
    after another in one kernel in ``folder`` (the modules they import are imported once):
    before each chapter ``%reset -f`` empties the namespace and the state a chapter may
    change for the process (torch's default dtype) is put back, as in a fresh kernel; each
    set-up cell seeds and sets the threads itself. ``{chapter: its cells}``; raises where a
    cell raises, naming its chapter."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell, new_notebook
    cells, spans = [], {}
    for path in chapters:
        nb = student_edition.student_notebook(nbformat.read(path, as_version=4))
        start = len(cells)
        fresh = new_code_cell("%reset -f\nimport torch\ntorch.set_default_dtype(torch.float32)")
        cells += [fresh, setup_cell(nb), *nb.cells[exercise_section(nb):]]
        spans[path.stem] = (start, len(cells))
    for i, cell in enumerate(cells):  # the chapters' cell ids repeat across chapters
        cell.id = f"cell-{i}"
    run = new_notebook(cells=cells, metadata=nb.metadata)
    try:
        NotebookClient(run, timeout=600, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(folder)}}).execute()
    except CellExecutionError as error:
        failed = next((i for i, c in enumerate(run.cells)
                       if c.cell_type == "code" and not c.execution_count), len(run.cells))
        stem = next((s for s, (a, b) in spans.items() if a <= failed - 1 < b), "?")
        raise AssertionError(f"{stem}: a cell of its exercise section raised") from error
    return {stem: run.cells[a + 1:b] for stem, (a, b) in spans.items()}


@pytest.mark.slow
def test_the_student_editions_run_to_the_end_with_every_exercise_unfinished():
    """Run All on each chapter's student edition reaches the end: from its first exercise on
    (above it the cells are the chapter's, executed by nbval), no cell raises, and every check
    reports its exercise as not implemented yet (✗), none passes; the cells after each check
    run. All chapters run in one kernel, one after another, their namespaces emptied between
    them (a kernel and the course's imports per chapter took about half of the time)."""
    sections = run_exercise_sections(CHAPTERS, CHAPTERS[0].parent)
    for path in CHAPTERS:
        chapter = nbformat.read(path, as_version=4)
        code = [c for c in sections[path.stem] if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{path.stem}: a cell did not run"
        checks = [c for c in code if re.search(r"^check_\w+\(", c.source, re.M)]
        stubs = sum(is_solution(c) for c in chapter.cells)
        reports = [printed(c) for c in checks]
        assert checks and all("✗" in r and "✓" not in r for r in reports), (path.stem, reports)
        assert sum(r.count("not implemented yet") for r in reports) >= stubs, (path.stem, reports)


@pytest.mark.slow
def test_a_cell_that_calls_an_unfinished_exercise_stops_the_run(tmp_path):
    """What the test above is for: a cell after a stub that calls it outside a check raises
    in the student edition (while the solved chapter runs), and the run stops there."""
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    solution = new_code_cell("def double(x):\n    return 2 * x\n", metadata={"tags": ["solution"]})
    chapter = new_notebook(cells=[
        new_code_cell("from vaecore import notebook\ngenerator = notebook.setup(seed=0)"),
        new_markdown_cell("```{exercise} Double\n```"), solution,
        new_code_cell("print(double(21))")])
    with pytest.raises(CellExecutionError, match="Exercise 1: Double"):
        run_exercise_section(chapter, tmp_path)
