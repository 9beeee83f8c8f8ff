"""book/_ext/exercises_launch.py: each chapter's launch menu opens its student edition in Colab."""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import yaml

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("exercises_launch",
                                              ROOT / "book" / "_ext" / "exercises_launch.py")
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)

COLAB = "https://colab.research.google.com/github/vaecore/vae-course/blob/main"


def context(page: str) -> dict:
    """The launch menu as sphinx-book-theme 1.x builds it for ``page``."""
    colab = {"type": "link", "text": "Colab", "tooltip": "Launch on Colab",
             "icon": "_static/images/logo_colab.png", "url": f"{COLAB}/{page}.ipynb"}
    return {"header_buttons": [{"type": "group", "label": "launch-buttons", "buttons": [colab]}]}


def run(page: str, srcdir: Path = ROOT) -> list[dict]:
    ctx = context(page)
    launch.add_exercises_button(SimpleNamespace(srcdir=str(srcdir)), page, "page.html", ctx, None)
    return ctx["header_buttons"][0]["buttons"]


def test_a_chapter_gets_a_button_to_its_student_edition():
    colab, exercises = run("chapters/05_first_vae")
    assert colab["url"] == f"{COLAB}/chapters/05_first_vae.ipynb"
    assert exercises["url"] == f"{COLAB}/exercises/05_first_vae.ipynb"
    assert exercises["text"] == "Exercises in Colab" and exercises["icon"] == colab["icon"]
    assert (ROOT / "exercises" / "05_first_vae.ipynb").is_file()


def test_other_pages_and_chapters_without_an_edition_get_none(tmp_path):
    assert len(run("book/notation")) == 1
    assert len(run("chapters/05_first_vae", srcdir=tmp_path)) == 1
    ctx = {"header_buttons": []}
    before = copy.deepcopy(ctx)
    launch.add_exercises_button(SimpleNamespace(srcdir=str(ROOT)), "chapters/05_first_vae",
                                "page.html", ctx, None)
    assert ctx == before


def test_the_book_loads_the_extension_after_the_theme_s_launch_buttons():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["sphinx"]["local_extensions"]["exercises_launch"] == "book/_ext"
    assert config["launch_buttons"]["colab_url"] and "exercises/*" in config["exclude_patterns"]
    connected = []
    launch.setup(SimpleNamespace(connect=lambda *a, **k: connected.append((a, k))))
    assert connected == [(("html-page-context", launch.add_exercises_button), {"priority": 502})]
