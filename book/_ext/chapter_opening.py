"""Each chapter opens with a box: what you will learn, prerequisites, estimated study time.

The box is read from ``book/syllabus.yml`` (:func:`vaecourse.syllabus.opening_markdown`)
when Sphinx reads a chapter, and inserted right under the chapter's title, the first line
``# ...`` of its first Markdown cell. Only the text the book parses changes: the notebook
on disk, its outputs and what ``pytest --nbval`` executes stay as they are, and the
syllabus stays the one place for these facts (the instructor guide reads it too).
"""
from __future__ import annotations

import json

FOLDER = "chapters/"


def with_opening(text: str, box: str) -> str:
    """The notebook ``text`` (JSON) with ``box`` (MyST) under the title of its first Markdown cell."""
    nb = json.loads(text)
    cell = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    source = "".join(cell["source"]) if cell else ""
    if not source.startswith("# "):
        raise ValueError("the first Markdown cell does not start with the chapter's title (# ...)")
    title, _, rest = source.partition("\n")
    cell["source"] = f"{title}\n\n{box}\n{rest.lstrip(chr(10))}"
    return json.dumps(nb, ensure_ascii=False)


def insert_opening(app, docname, source) -> None:
    if not docname.startswith(FOLDER):
        return
    from vaecourse.syllabus import opening_markdown
    source[0] = with_opening(source[0], opening_markdown(docname[len(FOLDER):]))


def setup(app):
    app.connect("source-read", insert_opening)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
