"""Put the live latent-space explorer into the latent-space chapter, once.

    python tools/add_explorer_cell.py [chapters/06_latent_space.ipynb]

Inserts, right after the chapter's ipywidgets cell, a Markdown cell (id
``latent-explorer``) holding ``<div class="latent-explorer" ...>``, which the
book's ``_static/latent-explorer.js`` turns into the explorer; in Jupyter and
Colab the div shows one line pointing to the sliders. The ipywidgets cell gets
the tag ``remove-output``: its code stays in the book, its empty widget output
does not, and in a notebook it works as before. Running it again changes
nothing (an outdated explorer cell is brought up to date in place). No output,
execution count or other cell is touched. Exit status 1, nothing written, when
the notebook has no single ipywidgets cell.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "06_latent_space.ipynb"
CELL_ID = "latent-explorer"
TAG = "remove-output"
SOURCE = """\
In the web version of this book the page itself runs the decoder of the $D = 2$ model:
drag the point over the test codes to decode any $z$ in $[-3, 3]^2$, and walk between two
test digits along the straight line and along slerp {eq}`slerp`. In two dimensions the
codes do not lie on a shell ({eq}`norm-concentration` needs many dimensions), so slerp
between two codes of different norms is no arc of a circle: between nearly opposite
codes, such as the 2 and the 7 it starts with, it swings far outside the test codes
(compare the norms), while the straight line stays among them.

<div class="latent-explorer" data-model="mnist-mlp-bernoulli-z2-e30">
<p><em>The live explorer appears here in the web version of the book; in a notebook, use
the sliders of the cell above.</em></p>
</div>"""


def widget_cell_index(nb) -> int:
    """Index of the one code cell that builds the ipywidgets explorer."""
    found = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and "widgets.FloatSlider" in c.source]
    if len(found) != 1:
        raise ValueError(f"expected one code cell with widgets.FloatSlider, found {len(found)}")
    return found[0]


def add_explorer_cell(nb) -> bool:
    """Tag the widget cell and insert or update the explorer cell in ``nb``; True if it changed."""
    i = widget_cell_index(nb)
    changed = False
    tags = nb.cells[i].metadata.setdefault("tags", [])
    if TAG not in tags:
        tags.append(TAG)
        changed = True
    existing = [c for c in nb.cells if c.get("id") == CELL_ID]
    if existing:
        if existing[0].source != SOURCE:
            existing[0].source, changed = SOURCE, True
        return changed
    cell = nbformat.v4.new_markdown_cell(SOURCE)
    cell.id = CELL_ID
    nb.cells.insert(i + 1, cell)
    return True


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else CHAPTER
    try:
        nb = nbformat.read(path, as_version=4)
        changed = add_explorer_cell(nb)
    except (OSError, ValueError) as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    if not changed:
        print(f"{path}: the explorer cell is already there; nothing written")
        return 0
    nbformat.validate(nb)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".ipynb.tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    os.chmod(tmp, path.stat().st_mode)
    os.replace(tmp, path)
    print(f"{path}: explorer cell written after the ipywidgets cell, which is tagged {TAG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
