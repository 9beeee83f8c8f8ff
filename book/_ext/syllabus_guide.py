"""The instructor guide's per-chapter sections, rendered from ``book/syllabus.yml``.

``book/instructor_guide.md`` holds the line ``<!-- syllabus -->``; when Sphinx reads
that page, the line is replaced by the Markdown of :func:`vaecourse.syllabus.guide_markdown`
(objectives, prerequisites, study time, and each exercise's kind, level, time and answer),
so the guide never holds a second copy of the syllabus.
"""
from __future__ import annotations

MARKER = "<!-- syllabus -->"
PAGE = "book/instructor_guide"


def insert_syllabus(app, docname, source) -> None:
    if docname != PAGE or MARKER not in source[0]:
        return
    from vaecourse.syllabus import guide_markdown
    source[0] = source[0].replace(MARKER, guide_markdown())


def setup(app):
    app.connect("source-read", insert_syllabus)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
