"""The book builds from the committed outputs with no warning (as `make book` does)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.book
def test_book_builds_without_warnings(tmp_path):
    # As `make book` does: export the decoder that chapter 6's live explorer runs in the page.
    subprocess.run([sys.executable, "tools/export_explorer.py"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", ".", "--toc", "book/_toc.yml", "--config", "_config.yml",
           "-W", "--keep-going", "--path-output", str(tmp_path)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    html = tmp_path / "_build" / "html"
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    for nb in chapters:
        page = (html / "chapters" / f"{nb.stem}.html").read_text()
        assert "colab.research.google.com" in page, f"{nb.stem}: no Colab button"
        assert f"/exercises/{nb.stem}.ipynb" in page, f"{nb.stem}: no Exercises in Colab button"
        assert "solution dropdown" in page, f"{nb.stem}: no hidden solution"
        assert "<img" in page, f"{nb.stem}: no figure rendered"
    assert (html / "book" / "bibliography.html").exists()
    explorer = html / "_static" / "explorer"
    assert any(explorer.glob("*/manifest.json")), "the live explorer's decoder was not exported"
