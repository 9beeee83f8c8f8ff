"""Guards on the committed chapters: table of contents, outputs, set-up cell, exercises."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())

COLAB_CELL = '''\
# In a fresh Colab runtime, install the course library; locally this does nothing.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("vaecore") is None:
    source = os.environ.get("VAECORE_SOURCE", "git+{url}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], check=True)'''


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def cells(path: Path, kind: str) -> list[dict]:
    return [c for c in load(path)["cells"] if c["cell_type"] == kind]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def toc_files(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root"):
                found.append(value)
            else:
                found += toc_files(value)
    elif isinstance(node, list):
        for item in node:
            found += toc_files(item)
    return found


def test_there_are_chapters():
    assert len(CHAPTERS) >= 1


def test_every_chapter_is_in_the_toc_and_vice_versa():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    listed = {f for f in toc_files(toc) if f.startswith("chapters/")}
    on_disk = {f"chapters/{p.stem}" for p in CHAPTERS}
    assert listed == on_disk
    for f in toc_files(toc):
        assert any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb")), f


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_committed_with_outputs_in_order(path):
    code = [c for c in cells(path, "code") if source(c).strip()]
    counts = [c["execution_count"] for c in code]
    assert None not in counts, "a code cell was never executed"
    assert counts == list(range(1, len(counts) + 1)), "cells not executed top to bottom once"
    split = [i for i, c in enumerate(code) for a, b in zip(c["outputs"], c["outputs"][1:])
             if a["output_type"] == b["output_type"] == "stream" and a["name"] == b["name"]]
    assert not split, (f"code cells {split} keep one printout in several stream outputs (the "
                       "book shows a box for each): execute with tools/execute_chapters.py")
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"error outputs: {[e['ename'] for e in errors]}"
    assert any(c["outputs"] for c in code), "no outputs at all"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_cell_installs_vaecore_in_colab(path):
    first = load(path)["cells"][0]
    assert first["cell_type"] == "code"
    # It installs this release's tag (tests/test_repository_url.py).
    url, release = CONFIG["repository"]["url"], "v" + __import__("vaecore").__version__
    assert source(first) == COLAB_CELL.format(url=f"{url}@{release}")
    assert first["outputs"] == []
    assert "hide-input" in first["metadata"].get("tags", []), "hide the set-up in the book"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_checked_exercises_with_hidden_solutions(path):
    md = "\n".join(source(c) for c in cells(path, "markdown"))
    exercises = re.findall(r"```\{exercise\}", md)
    assert len(exercises) >= 2, "at least two exercises per chapter"
    assert len(re.findall(r"```\{solution-start\}", md)) == len(exercises)
    assert md.count(":class: dropdown") >= len(exercises), "solutions must be collapsed"
    solutions = [c for c in cells(path, "code") if "solution" in c["metadata"].get("tags", [])]
    assert len(solutions) == len(exercises)
    checks = [c for c in cells(path, "code") if re.search(r"\bcheck_\w+\(", source(c))]
    assert len(checks) >= len(exercises)
    passed = [c for c in checks for o in c["outputs"]
              if "✓" in "".join(o.get("data", {}).get("text/plain", ""))]
    assert len(passed) >= len(exercises), "every reference solution passes its check"


def test_every_citation_is_in_the_bibliography():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    texts = [source(c) for p in CHAPTERS for c in cells(p, "markdown")]
    texts += [p.read_text() for p in (ROOT / "book").glob("*.md")]
    cited = {k.strip() for t in texts for group in re.findall(r"\{cite[tp]?\}`([^`]+)`", t)
             for k in group.split(",")}
    assert cited, "no citations found"
    assert cited <= keys, f"unknown keys: {sorted(cited - keys)}"


def test_equation_labels_named_by_the_library_exist_in_chapters():
    named = set()
    for py in (ROOT / "vaecore").rglob("*.py"):
        named |= set(re.findall(r"Equation \(([a-z0-9-]+)\)", py.read_text()))
    defined = set()
    for p in CHAPTERS:
        for c in cells(p, "markdown"):
            defined |= set(re.findall(r"\$\$\s*\(([a-z0-9-]+)\)", source(c)))
    assert named, "the library names no equation labels"
    assert named <= defined, f"labels named in vaecore but defined in no chapter: {sorted(named - defined)}"


COLUMN = 88  # characters of 12 px code in the book's desktop column (book/_static/course.css)


def shown_lines(cell: dict):
    """``(where, line)`` for each line a reader of the book sees in a code cell: its code
    (but the Colab cell's, which the page leaves out) and its printed or Markdown output.
    HTML and images lay themselves out."""
    tags = set(cell.get("metadata", {}).get("tags", []))
    if "remove-cell" in tags:
        return
    if "remove-input" not in tags and not source(cell).startswith(COLAB_CELL.split("\n")[0]):
        yield from (("code", line) for line in source(cell).split("\n"))
    if "remove-output" in tags:
        return
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "text" in output:
            text = "".join(output["text"])
        elif "text/markdown" in data:
            text = "".join(data["text/markdown"])
        elif not {"text/html", "image/png", "image/svg+xml"} & data.keys():
            text = "".join(data.get("text/plain", ""))
        else:
            continue
        yield from (("output", line) for line in text.split("\n"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_code_and_printed_output_fit_the_books_column(path):
    """Every line of code and printed output a reader sees fits 88 characters, the width of
    the text column at a desktop width (tests/test_rendered_book.py measures it in a browser;
    this is the same rule without one). Tables are shown with vaecourse.show.table."""
    long = [f"cell {i} {where} ({len(line)} characters): {line[:70]}"
            for i, cell in enumerate(load(path)["cells"]) if cell["cell_type"] == "code"
            for where, line in shown_lines(cell) if len(line) > COLUMN]
    assert not long, (f"{len(long)} lines longer than {COLUMN} characters; wrap the code, "
                      "show a table with vaecourse.show.table:\n" + "\n".join(long))
