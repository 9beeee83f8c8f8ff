"""Write the student edition of the chapters: solutions become stubs.

    python tools/student_edition.py chapters exercises      # what `make student` runs

The edition is committed in ``exercises/`` (the book's "Exercises in Colab"
button opens it), and ``tests/test_student_edition.py`` fails when a chapter
changed and its edition was not written again: run the command above then.

Every code cell tagged ``solution`` is replaced by a stub that keeps each
function's signature and docstring and raises
``NotImplementedError("Exercise N: <title>")``; all outputs and execution
counts are cleared. Nothing else changes, so the checks run as in the book.
The command refuses (exit status 1, nothing written) a missing or empty source
folder and a destination whose files would be the chapters themselves.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat

EXERCISE = re.compile(r"```\{exercise\}\s*(.*)")


def exercise_titles(nb) -> list[str]:
    """Titles of the chapter's ``{exercise}`` directives, in order."""
    titles = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            titles += [m.strip() or "exercise" for m in EXERCISE.findall(cell.source)]
    return titles


def stub(source: str, label: str) -> str:
    """The solution's functions with their bodies replaced by a raise."""
    tree = ast.parse(source)
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if not defs:
        raise ValueError(f"solution cell for {label!r} defines no function:\n{source}")
    lines = source.splitlines()
    parts = []
    for node in defs:
        body_start = node.body[0]
        head = lines[node.lineno - 1 - len(node.decorator_list):body_start.lineno - 1]
        doc = ast.get_docstring(node, clean=False)
        if doc is not None:
            head = lines[node.lineno - 1 - len(node.decorator_list):body_start.end_lineno]
        indent = " " * (body_start.col_offset)
        parts.append("\n".join(head + [f"{indent}# Your code here.",
                                       f"{indent}raise NotImplementedError({label!r})"]))
    return "\n\n\n".join(parts)


def student_notebook(nb):
    """Return a copy of ``nb`` with solutions stubbed and outputs cleared."""
    nb = nbformat.from_dict(nb)
    titles = exercise_titles(nb)
    seen = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            seen += len(EXERCISE.findall(cell.source))
        if cell.cell_type != "code":
            continue
        if "solution" in cell.metadata.get("tags", []):
            if seen == 0:
                raise ValueError("a solution cell comes before any {exercise}")
            cell.source = stub(cell.source, f"Exercise {seen}: {titles[seen - 1]}")
        cell.outputs = []
        cell.execution_count = None
    return nb


def _refusal(src: Path, dst: Path, chapters: list[Path]) -> str | None:
    """Why writing the student edition of ``src`` to ``dst`` must not start, or None."""
    if not src.is_dir():
        return f"source folder {src} does not exist (expected a folder of chapter notebooks)"
    if not chapters:
        return f"source folder {src} holds no notebooks (*.ipynb); nothing to write"
    if (dst.exists() and dst.resolve() == src.resolve()) or any(
            (dst / p.name).exists() and (dst / p.name).samefile(p) for p in chapters):
        return (f"destination {dst} is the source folder {src}: the chapters would be "
                "overwritten by their stubs; choose another destination folder")
    return None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__)
        return 2
    src, dst = Path(argv[0]), Path(argv[1])
    chapters = sorted(src.glob("*.ipynb")) if src.is_dir() else []
    refusal = _refusal(src, dst, chapters)
    if refusal:
        print(f"student_edition: {refusal}", file=sys.stderr)
        return 1
    dst.mkdir(parents=True, exist_ok=True)
    for path in chapters:
        nbformat.write(student_notebook(nbformat.read(path, as_version=4)), dst / path.name)
        print(f"wrote {dst / path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
