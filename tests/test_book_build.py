"""The book builds from the committed outputs with no warning (as `make book` does), and
what the built pages hold: the buttons, MathJax served from the build alone, and the box
that opens each chapter."""
from __future__ import annotations

import copy
import functools
import html as html_lib
import importlib.util
import re
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
def html(book_html) -> Path:
    """The book as `make book` builds it (built once per run: tests/conftest.py)."""
    return book_html


def pages(html: Path) -> list[Path]:
    return sorted(html.rglob("*.html"))


@functools.lru_cache(maxsize=None)
def parsed(path: Path) -> BeautifulSoup:
    """A built page, parsed once for all the tests here (a chapter's page is a few MB of
    HTML, and four tests read each one). The tests only read it: one that changes a tag
    changes a copy."""
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


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
        soup = parsed(html / "chapters" / f"{nb.stem}.html")
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
        soup = parsed(path)
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
    soup = parsed(html / "chapters" / f"{nb.stem}.html")
    title = soup.select_one("article section > h1")
    heading = copy.copy(title)  # the page is shared: take the number off a copy
    number = heading.select_one(".section-number").extract()  # the numbered contents
    assert number.get_text().strip() == f"{int(nb.stem[:2])}."
    assert plain(heading.get_text()).removesuffix("#") == plain(entry.title)
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


@pytest.mark.book
def test_the_chapters_are_numbered_as_the_text_numbers_them(html):
    """Chapter N is numbered N in the sidebar and its equations N.1, N.2, ...; other pages
    carry no number."""
    soup = parsed(html / "book" / "intro.html")
    sidebar = {urljoin("book/intro.html", a["href"]): plain(a.get_text())
               for a in soup.select("nav.bd-docs-nav a.reference.internal")}
    for nb in CHAPTERS:
        number = int(nb.stem[:2])
        assert sidebar[f"chapters/{nb.stem}.html"].startswith(f"{number}. ")
        page = parsed(html / "chapters" / f"{nb.stem}.html")
        labels = [plain(e.get_text()) for e in page.select("span.eqno")]
        assert all(re.fullmatch(rf"\({number}\.\d+\)#?", label) for label in labels), labels[:5]
    assert not re.match(r"\d", sidebar["book/notation.html"])
    assert not re.match(r"\d", sidebar["book/bibliography.html"])


@pytest.mark.book
def test_the_bibliography_labels_read_as_the_citations_and_link_the_papers(html):
    """One citation style: the list's labels are the author-year the text cites (accents
    decoded, never the alpha "KW14"), and every entry with a DOI or an arXiv id links to it."""
    from pybtex.database import parse_file

    entries = parse_file(str(ROOT / "book" / "references.bib")).entries
    soup = parsed(html / "book" / "bibliography.html")
    items = {plain(c.select_one(".label").get_text()).strip("[]"): c
             for c in soup.select(".citation")}
    assert len(items) > 50, "the bibliography lists almost nothing"
    assert "Kingma and Welling, 2014" in items and "Kynkäänniemi et al., 2019" in items
    assert not any("{" in label or "\\" in label for label in items), sorted(items)
    text = " ".join(plain(c.get_text()) for c in items.values())
    spec = importlib.util.spec_from_file_location("style", ROOT / "book/_ext/bibliography_style.py")
    style = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(style)
    linked = 0
    for key, entry in entries.items():
        item = items.get(style.author_year(entry))  # None: a work no page cites
        links = {a["href"] for a in item.find_all("a", href=True)} if item else set()
        if item and "eprint" in entry.fields:
            assert f"https://arxiv.org/abs/{entry.fields['eprint']}" in links, key
        if item and "doi" in entry.fields:
            assert f"https://doi.org/{entry.fields['doi']}" in links, key
        linked += bool(links)
    assert linked >= 50, f"only {linked} entries link to the paper"
    assert "Schölkopf" in text and "Sch{" not in text
    chapter = (html / "chapters" / "02_elbo.html").read_text(encoding="utf-8")
    cited = re.findall(r'href="../book/bibliography.html#[^"]+"[^>]*>([^<]+)</a>', chapter)
    assert cited and set(cited) <= set(items), set(cited) - set(items)


@pytest.mark.book
def test_the_text_links_the_chapters_and_reports_it_names(html):
    def links(page: str) -> dict[str, set[str]]:
        soup = parsed(html / page)
        found: dict[str, set[str]] = {}
        for a in soup.select("article a.reference.internal"):
            found.setdefault(plain(a.get_text()).lower(), set()).add(urljoin(page, a["href"]))
        return found

    beta, gan = links("chapters/07_beta.html"), links("chapters/09_vae_vs_gan.html")
    assert beta["chapter 5"] == {"chapters/05_first_vae.html"}
    assert gan["report 003"] == {"book/source_reports.html#report-003"}
    assert "chapter 9" not in gan, "a chapter does not link to itself"
    reports = parsed(html / "book" / "source_reports.html")
    assert all(reports.find(id=f"report-00{n}") for n in range(5))
