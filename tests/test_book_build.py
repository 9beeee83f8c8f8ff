"""The book builds from the committed outputs with no warning (as `make book` does), and
what the built pages hold: the buttons, MathJax served from the build alone, and the box
that opens each chapter."""
from __future__ import annotations

import html as html_lib
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest
import yaml
from bs4 import BeautifulSoup

from vaecourse import syllabus

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    """The book, built once for this file's tests, as `make book` builds it."""
    out = tmp_path_factory.mktemp("book")
    # As `make book` does: export the decoder that chapter 6's live explorer runs in the page.
    subprocess.run([sys.executable, "tools/export_explorer.py"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", ".", "--toc", "book/_toc.yml", "--config", "_config.yml",
           "-W", "--keep-going", "--path-output", str(out)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    return out / "_build" / "html"


def pages(html: Path) -> list[Path]:
    return sorted(html.rglob("*.html"))


@pytest.mark.book
def test_book_builds_without_warnings(html):
    for nb in CHAPTERS:
        page = (html / "chapters" / f"{nb.stem}.html").read_text()
        assert "colab.research.google.com" in page, f"{nb.stem}: no Colab button"
        assert f"/exercises/{nb.stem}.ipynb" in page, f"{nb.stem}: no Exercises in Colab button"
        assert "solution dropdown" in page, f"{nb.stem}: no hidden solution"
        assert "<img" in page, f"{nb.stem}: no figure rendered"
    assert (html / "book" / "bibliography.html").exists()
    explorer = html / "_static" / "explorer"
    assert any(explorer.glob("*/manifest.json")), "the live explorer's decoder was not exported"


@pytest.mark.book
def test_the_buttons_name_the_configured_repository(html):
    url = CONFIG["repository"]["url"]
    colab = "https://colab.research.google.com/github/" + url.removeprefix("https://github.com/")
    for nb in CHAPTERS:
        soup = BeautifulSoup((html / "chapters" / f"{nb.stem}.html").read_text(), "html.parser")
        links = {a["href"] for a in soup.find_all("a", href=True)}
        assert url in links, f"{nb.stem}: no repository button to {url}"
        assert f"{url}/issues/new?title=Issue%20on%20page%20%2Fchapters/{nb.stem}.html&body=Your%20issue%20content%20here." in links
        assert f"{colab}/blob/{CONFIG['repository']['branch']}/chapters/{nb.stem}.ipynb" in links


@pytest.mark.book
def test_the_pages_load_mathjax_only_from_the_build(html):
    served = html / "_static" / "mathjax"
    with_math = 0
    for path in pages(html):
        page = path.relative_to(html).as_posix()
        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        loaded = [s["src"] for s in soup.find_all("script", src=True)]
        loaded += [link["href"] for link in soup.find_all("link", href=True)]
        inline = " ".join(s.get_text() for s in soup.find_all("script", src=False))
        assert not re.search(r"(?:https?:)?//[^\s\"'<>]*mathjax", inline, re.I), \
            f"{page}: an inline script names MathJax on another host"
        mathjax = [url for url in loaded if "mathjax" in url.lower()]
        if soup.select(".math"):
            assert mathjax, f"{page} shows math but loads no MathJax"
        for url in mathjax:
            assert "://" not in url and not url.startswith("//"), f"{page} loads {url}"
            target = (path.parent / url.split("?")[0]).resolve()
            assert target == (served / "tex-chtml.js").resolve(), f"{page} loads {url}"
        with_math += bool(mathjax)
    assert with_math >= len(CHAPTERS)
    # What tex-chtml.js loads from beside itself: its fonts, and TeX packages on first use.
    fonts = {p.name for p in (served / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff")}
    assert {"MathJax_Main-Regular.woff", "MathJax_Math-Italic.woff", "MathJax_AMS-Regular.woff",
            "MathJax_Size4-Regular.woff", "MathJax_Zero.woff"} <= fonts
    extensions = {p.stem for p in (served / "input" / "tex" / "extensions").glob("*.js")}
    assert {"boldsymbol", "cancel", "mathtools", "color", "braket"} <= extensions
    assert "Apache License" in (served / "LICENSE").read_text(encoding="utf-8")


def plain(text: str) -> str:
    """Syllabus Markdown and page text alike: code and math marks dropped, quotes straight,
    spaces collapsed."""
    text = re.sub(r"\$([^$]+)\$", r"\\(\1\\)", text).replace("`", "")
    for curly, straight in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"'), ("…", "...")):
        text = text.replace(curly, straight)
    return " ".join(html_lib.unescape(text).split())


def chapter_numbers(text: str) -> set[int]:
    """The chapters that "Chapter 3", "Chapters 2 and 3", "Chapters 1 to 4" name."""
    found = set()
    for mention in re.findall(r"\bChapters? \d+(?:(?:, | and | to )\d+)*", text):
        numbers = [int(n) for n in re.findall(r"\d+", mention)]
        found |= set(range(numbers[0], numbers[-1] + 1)) if " to " in mention else set(numbers)
    return found


@pytest.mark.book
@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_opens_with_its_syllabus_box(html, nb):
    chapters = syllabus.load()
    entry = chapters[nb.stem]
    soup = BeautifulSoup((html / "chapters" / f"{nb.stem}.html").read_text(), "html.parser")
    title = soup.select_one("article section > h1")
    assert plain(title.get_text()).removesuffix("#") == plain(entry.title)
    box = title.find_next_sibling()
    assert box.name == "div" and "chapter-opening" in box["class"], "no box right under the title"
    assert plain(box.find(class_="admonition-title").get_text()) == "In this chapter"
    items = {}
    for heading in box.find_all("strong"):
        listed = heading.find_parent("p").find_next_sibling()
        if listed is not None and listed.name == "ul":
            items[heading.get_text()] = [plain(li.get_text()) for li in listed.find_all("li")]
    assert list(items) == ["What you will learn", "Prerequisites"]
    assert items["What you will learn"] == [plain(o) for o in entry.objectives]
    assert len(items["Prerequisites"]) == len(entry.prerequisites)
    for shown, written in zip(items["Prerequisites"], entry.prerequisites):
        # A mention of chapters is followed by their linked titles in parentheses.
        assert re.sub(r"(\bChapters? [\d ,andto]+?) \([^()]*\)", r"\1", shown) == plain(written)
    linked = {urljoin(f"chapters/{nb.stem}.html", a["href"]) for a in box.find_all("a", href=True)}
    named = {f"chapters/{ch.slug}.html" for ch in chapters.values()
             if int(ch.slug[:2]) in chapter_numbers(" ".join(entry.prerequisites))}
    assert named == linked, f"linked {sorted(linked)}, the prerequisites name {sorted(named)}"
    assert all((html / link).is_file() for link in linked)
    time = plain(box.get_text())
    assert f"about {syllabus._hours(entry.study_minutes)} to read and run the chapter" in time
