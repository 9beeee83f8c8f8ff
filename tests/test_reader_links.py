"""book/_ext/reader_links.py: "chapter N" and "report 00N" in running text become
cross-references to the chapter and to the report's section; code, math, headings, links
and a chapter's mention of itself stay as they are."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

from docutils import nodes
from sphinx import addnodes

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("reader_links", ROOT / "book/_ext/reader_links.py")
ext = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ext)


def page(*children) -> nodes.document:
    doctree = nodes.document(None, None)
    doctree += list(children)
    return doctree


def test_mentions_in_prose_become_references_and_the_rest_is_kept():
    chapters = ext.chapter_pages(str(ROOT))
    assert chapters[5] == "chapters/05_first_vae" and len(chapters) >= 11
    text = "As Chapter 5 showed, and report 003 got wrong (chapter 3; chapter 99; report 009)."
    doctree = page(nodes.paragraph("", text),
                   nodes.title("", "Chapter 5 in a heading"),
                   nodes.paragraph("", "", nodes.literal("", "chapter 5 in code")),
                   nodes.paragraph("", "", nodes.reference("", "chapter 5 already linked")))
    app = SimpleNamespace(env=SimpleNamespace(docname="chapters/03_kl_closed_forms"), srcdir=str(ROOT))
    ext.link_mentions(app, doctree)
    refs = list(doctree.findall(addnodes.pending_xref))
    assert [(r["reftype"], r["reftarget"], r.astext()) for r in refs] == [
        ("doc", "/chapters/05_first_vae", "Chapter 5"), ("ref", "report-003", "report 003")]
    assert doctree.children[0].astext() == text  # the words a reader sees are unchanged
    assert [c.astext() for c in doctree.children[1:]] == [
        "Chapter 5 in a heading", "chapter 5 in code", "chapter 5 already linked"]


def test_every_report_the_text_can_name_has_a_label_on_the_reports_page():
    text = (ROOT / "book" / "source_reports.md").read_text(encoding="utf-8")
    for n in range(5):
        assert f"(report-00{n})=\n## Report 00{n}:" in text
    assert "file: book/source_reports" in (ROOT / "book" / "_toc.yml").read_text(encoding="utf-8")
