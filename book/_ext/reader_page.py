"""What a reader's browser loads and shows on each page, beyond what the theme does.

- The install cell that opens every chapter (it installs ``vaecore`` in a fresh Colab
  runtime and does nothing elsewhere) is left out of the page and of the search index:
  its toggle no longer sits above the chapter's title. Only the text the book parses
  changes: the notebook on disk, and what Colab and ``pytest --nbval`` run, keep it.
- A script the extensions register twice is written into the page once: sphinx-thebe's
  configuration, declared twice, threw "Identifier 'THEBE_JS_URL' has already been
  declared" on every page.
- The theme starts in its ``auto`` colour mode, instead of logging "Got invalid theme
  mode" to the console on a reader's first visit.
- A notebook output that loads Font Awesome from a CDN (matplotlib's animation
  controls) uses the copy the theme serves, so the page asks nothing of the network.
"""
from __future__ import annotations

import json
import re

from docutils import nodes

FOLDER = "chapters/"
#: The chapters' first cell installs the course from git where ``vaecore`` is missing.
INSTALL_CELL = re.compile(r'find_spec\("vaecore"\) is None.*"git\+', re.S)
CDN_FONT_AWESOME = re.compile(
    r'<link\b[^>]*href="(?:https?:)?//[^"]*font-awesome[^"]*"[^>]*>\s*', re.I)


def without_install_cell(text: str) -> str:
    """The notebook ``text`` (JSON) with its first cell tagged ``remove-cell`` when that cell
    installs the course; otherwise ``text`` unchanged."""
    nb = json.loads(text)
    first = nb["cells"][0] if nb["cells"] else None
    if first is None or first["cell_type"] != "code" or not INSTALL_CELL.search("".join(first["source"])):
        return text
    tags = first.setdefault("metadata", {}).setdefault("tags", [])
    tags[:] = [t for t in tags if t not in ("hide-input", "hide-cell")] + ["remove-cell"]
    return json.dumps(nb, ensure_ascii=False)


def drop_install_cell(app, docname, source) -> None:
    if docname.startswith(FOLDER):
        source[0] = without_install_cell(source[0])


def drop_cdn_font_awesome(app, doctree) -> None:
    for raw in doctree.findall(nodes.raw):
        if "html" in raw.get("format", "").split() and CDN_FONT_AWESOME.search(raw.astext()):
            text = CDN_FONT_AWESOME.sub("", raw.astext())
            raw.children = [nodes.Text(text)]
            raw.rawsource = text


def script_key(script) -> tuple:
    """What makes two registered scripts the same: file and attributes (a body is one)."""
    if isinstance(script, str):
        return (script, ())
    attributes = script.attributes or {}
    return (str(script.filename or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts, seen = context.get("script_files", []), set()
    kept = []
    for script in scripts:
        key = script_key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def default_colour_mode(app, config) -> None:
    """The theme's ``default_mode`` (read from ``html_context``), unless the book sets one."""
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def setup(app):
    app.connect("config-inited", default_colour_mode)
    app.connect("source-read", drop_install_cell)
    app.connect("doctree-read", drop_cdn_font_awesome)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
