"""book/_ext/reader_page.py: the chapters' install cell left out of the page (kept in the
notebook), each script once, a colour mode from the start, no Font Awesome from a CDN."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils import nodes
from sphinx.builders.html._assets import _JavaScript

from _tools import tool

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
ext = tool("reader_page", "book/_ext")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_install_cell_is_removed_from_the_page_and_nothing_else_changes(path):
    text = path.read_text(encoding="utf-8")
    source = [text]
    ext.drop_install_cell(None, f"chapters/{path.stem}", source)
    before, after = json.loads(text), json.loads(source[0])
    assert after["cells"][0]["metadata"]["tags"] == ["remove-cell"]
    after["cells"][0]["metadata"] = before["cells"][0]["metadata"]
    assert after == before
    assert path.read_text(encoding="utf-8") == text


def test_a_first_cell_that_installs_nothing_and_other_pages_are_left_alone():
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": ["import torch\n"]}]}
    source = [json.dumps(nb)]
    ext.drop_install_cell(None, "chapters/99_other", source)
    assert json.loads(source[0]) == nb
    page = ["# Notation\n"]
    ext.drop_install_cell(None, "book/notation", page)
    assert page == ["# Notation\n"]


def test_a_script_registered_twice_is_written_once():
    body = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript("a.js"), _JavaScript(None, body=body), _JavaScript("b.js", defer="defer"),
               _JavaScript("", body=body), _JavaScript("a.js"), _JavaScript("b.js")]
    context = {"script_files": scripts}
    ext.drop_duplicate_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] is scripts
    assert [(s.filename, s.attributes) for s in scripts] == [
        ("a.js", {}), (None, {"body": body}), ("b.js", {"defer": "defer"}), ("b.js", {})]


def test_the_colour_mode_defaults_to_auto_unless_the_book_sets_one():
    config = SimpleNamespace(html_context={})
    ext.default_colour_mode(None, config)
    assert config.html_context == {"default_mode": "auto"}
    config = SimpleNamespace(html_context={"default_mode": "light"})
    ext.default_colour_mode(None, config)
    assert config.html_context == {"default_mode": "light"}


def test_font_awesome_from_a_cdn_is_dropped_from_an_output_and_the_rest_kept():
    html = ('\n<link rel="stylesheet"\nhref="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/'
            'css/font-awesome.min.css">\n<script>var x = 1;</script>')
    doctree = nodes.document(None, None)
    doctree += nodes.raw(html, html, format="html")
    doctree += nodes.raw("<b>kept</b>", "<b>kept</b>", format="html")
    ext.drop_cdn_font_awesome(None, doctree)
    texts = [raw.astext() for raw in doctree.findall(nodes.raw)]
    assert texts == ["\n<script>var x = 1;</script>", "<b>kept</b>"]
