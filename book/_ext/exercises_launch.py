"""An "Exercises in Colab" entry in the launch menu of each chapter: its student edition.

sphinx-book-theme fills the launch menu (``html-page-context``, priority 501)
with a Colab link to the page's own notebook, ``chapters/NN_slug.ipynb`` in the
repository and branch of ``_config.yml``. At priority 502 this adds, after it,
the same link to ``exercises/NN_slug.ipynb``, the student edition written by
``tools/student_edition.py`` (``make student``), where that file exists.
"""
from __future__ import annotations

from pathlib import Path

EDITION = "exercises"


def add_exercises_button(app, pagename, templatename, context, doctree) -> None:
    folder, _, stem = pagename.partition("/")
    if folder != "chapters" or not (Path(app.srcdir) / EDITION / f"{stem}.ipynb").is_file():
        return
    chapter = f"/chapters/{stem}.ipynb"
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        buttons = group["buttons"]
        for i, button in enumerate(buttons):
            if button.get("text") == "Colab" and button.get("url", "").endswith(chapter):
                buttons.insert(i + 1, {
                    **button, "text": "Exercises in Colab", "label": "exercises-colab",
                    "tooltip": "Open the exercises (the student edition) in Colab",
                    "url": button["url"][:-len(chapter)] + f"/{EDITION}/{stem}.ipynb"})
                return


def setup(app):
    app.connect("html-page-context", add_exercises_button, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
