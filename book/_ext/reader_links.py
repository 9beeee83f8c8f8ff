"""What the prose points to, linked: "chapter 5" to chapter 5, "report 003" to its description.

The text names chapters by number ("as chapter 5 showed") and the source reports by theirs
("report 003"). When Sphinx reads a page, each such mention in running text becomes a
cross-reference: a chapter to its page (numbered as in the sidebar), a report to its
section of ``book/source_reports.md`` (labels ``report-000`` to ``report-004``). Text that
is already a link, code, math, a heading or a caption is left as it is, and so is a
chapter's mention of itself. The notebooks are not changed.
"""
from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes

MENTION = re.compile(r"\b(?:[Cc]hapter (?P<chapter>\d{1,2})|[Rr]eport (?P<report>00[0-4]))\b")
SKIP = (nodes.reference, nodes.literal, nodes.literal_block, nodes.math, nodes.math_block,
        nodes.title, nodes.caption, nodes.raw, nodes.target, addnodes.pending_xref,
        nodes.citation_reference, nodes.FixedTextElement)


def chapter_pages(srcdir: str) -> dict[int, str]:
    """``{number: docname}`` of the chapters, ``chapters/NN_slug``."""
    return {int(p.stem[:2]): f"chapters/{p.stem}"
            for p in sorted(Path(srcdir, "chapters").glob("[0-9][0-9]_*.ipynb"))}


def skipped(node: nodes.Node) -> bool:
    return any(isinstance(parent, SKIP) for parent in _ancestors(node))


def _ancestors(node):
    while node is not None:
        yield node
        node = node.parent


def link(text: str, docname: str, chapters: dict[int, str]) -> list[nodes.Node]:
    """``text`` split into plain text and cross-references, for each mention that resolves."""
    out, at = [], 0
    for match in MENTION.finditer(text):
        if match["chapter"]:
            target = chapters.get(int(match["chapter"]))
            if target is None or target == docname:
                continue
            ref = addnodes.pending_xref("", refdomain="std", reftype="doc",
                                        reftarget=f"/{target}", refexplicit=True, refdoc=docname)
        else:
            ref = addnodes.pending_xref("", refdomain="std", reftype="ref",
                                        reftarget=f"report-{match['report']}", refexplicit=True,
                                        refdoc=docname)
        ref += nodes.inline(match.group(0), match.group(0))
        out += [nodes.Text(text[at:match.start()]), ref]
        at = match.end()
    if not out:
        return []
    return out + [nodes.Text(text[at:])]


def link_mentions(app, doctree) -> None:
    docname = app.env.docname
    chapters = chapter_pages(app.srcdir)
    for text in list(doctree.findall(nodes.Text)):
        if text.parent is None or skipped(text.parent):
            continue
        parts = link(str(text), docname, chapters)
        if parts:
            text.parent.replace(text, parts)


def setup(app):
    app.connect("doctree-read", link_mentions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
