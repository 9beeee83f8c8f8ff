"""The student edition: solutions become stubs that raise, outputs are cleared, nothing else changes."""
from __future__ import annotations

import importlib.util
import inspect
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
