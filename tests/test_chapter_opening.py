"""book/_ext/chapter_opening.py: each chapter's opening box, from book/syllabus.yml, under
its title in the text the book parses; the notebook itself is not changed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vaecourse import syllabus

from _tools import tool

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
ext = tool("chapter_opening", "book/_ext")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_box_goes_under_the_title_and_nothing_else_changes(path):
    text = path.read_text(encoding="utf-8")
    source = [text]
    ext.insert_opening(None, f"chapters/{path.stem}", source)
    before, after = json.loads(text), json.loads(source[0])
    i = next(i for i, c in enumerate(before["cells"]) if c["cell_type"] == "markdown")
    title, _, rest = "".join(before["cells"][i]["source"]).partition("\n")
    box = syllabus.opening_markdown(path.stem)
    assert after["cells"][i]["source"] == f"{title}\n\n{box}\n{rest.lstrip()}"
    after["cells"][i]["source"] = before["cells"][i]["source"]
    assert after == before
    assert path.read_text(encoding="utf-8") == text


def test_pages_outside_chapters_are_left_as_they_are():
    source = ["# Notation\n"]
    ext.insert_opening(None, "book/notation", source)
    assert source == ["# Notation\n"]


def test_a_chapter_without_a_title_first_is_refused():
    nb = {"cells": [{"cell_type": "code", "source": "x = 1"},
                    {"cell_type": "markdown", "source": "Some text\n# Title"}]}
    with pytest.raises(ValueError, match="title"):
        ext.with_opening(json.dumps(nb), "box")
