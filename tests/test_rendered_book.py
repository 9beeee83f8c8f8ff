"""The built book as a reader sees it, in a real headless Chromium with the network blocked.

Every page of the book (tests/conftest.py builds it once per run) is loaded from a local
server, once in a 1280 px desktop window and once in a 390 px phone viewport, and measured
by ``rendered_book_probe.js`` after MathJax has typeset it. Any request that would leave the
machine is failed and recorded. The checks:

- every equation is typeset: no raw TeX, no TeX error box (offline, from the book's MathJax);
- every internal link leads to a file of the build, and to an anchor on it when it names one;
  every image loads;
- nothing is written to the console as an error, no script throws, nothing asks the network;
- a display equation fits where it can be seen, or its box scrolls and shows its scrollbar;
- a figure in the text has a caption and alt text of its own (not its file's path);
- a block of code or printed output fits the column (no line scrolls sideways).

Without Chromium the checks skip and say why; with ``VAECORE_REQUIRE_BROWSER=1`` (``.ci/run``)
they fail instead.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from _chromium import Browser, Site, browser_or_skip

HERE = Path(__file__).resolve().parent
PROBE = (HERE / "rendered_book_probe.js").read_text(encoding="utf-8")
# A desktop window and a phone. Both draw scrollbars over the content only while it scrolls,
# as phones and macOS do by default: such a scrollbar is no cue that a box scrolls.
WIDTHS = {1280: 900, 390: 844}
LOAD_LIMIT_S = 300

pytestmark = pytest.mark.book


def book_pages(html: Path) -> list[str]:
    """The pages a reader can open: every HTML file but the theme's templates and redirects."""
    return sorted(
        p.relative_to(html).as_posix() for p in html.rglob("*.html")
        if p.relative_to(html).parts[0] not in ("_static", "_sources")
        and 'http-equiv="refresh"' not in p.read_text(encoding="utf-8")[:2000].lower())


def read_book(html: Path, browser_path: str, profile: Path) -> tuple[dict, dict]:
    """Every page of ``html`` loaded once, measured at each width of WIDTHS in turn.

    Returns ``{(page, width): what the probe found}`` and ``{page: the browser's events}``.
    MathJax's HTML output does not depend on the width, so a page is typeset once and only
    laid out again (the style sheets' media queries follow the new width).
    """
    readings, events = {}, {}
    (first, height), *others = WIDTHS.items()
    # A page loads in seconds; the limit is for a machine busy with other work.
    with Site(html) as site, Browser(browser_path, profile, timeout=LOAD_LIMIT_S) as browser:
        browser.open_offline(site.origin)
        for page in book_pages(html):
            browser.viewport(first, height, mobile=True)
            try:
                browser.load(f"{site.origin}/{page}")
            except TimeoutError:
                raise TimeoutError(f"{page} did not load in {LOAD_LIMIT_S} s") from None
            readings[page, first] = browser.evaluate(f"({PROBE})()")
            for width, height in others:
                browser.viewport(width, height, mobile=True)
                readings[page, width] = browser.evaluate(f"({PROBE})()")
            events[page] = list(browser.events)
    return readings, events


@pytest.fixture(scope="module")
def book_in_browser(request, tmp_path_factory) -> tuple[dict, dict, Path]:
    """:func:`read_book` of the built book, in the system's Chromium (checked for first, so
    that a run without one skips before it builds the book)."""
    path = browser_or_skip("the rendered book (equations, links, figures, code, console)")
    book_html = request.getfixturevalue("book_html")
    started = time.monotonic()
    found = read_book(book_html, path, tmp_path_factory.mktemp("chromium"))
    print(f"\n{len(found[1])} pages read at {len(WIDTHS)} widths in "
          f"{time.monotonic() - started:.1f} s")
    for width in WIDTHS:
        at = [r for (page, w), r in found[0].items() if w == width]
        figures = [i for r in at for i in r["images"] if i["inText"]]
        print(f"at {width} px: {sum(len(r['clipped']) for r in at)} of "
              f"{sum(len(r['equations']) for r in at)} display equations cut off without a cue, "
              f"{sum(len(r['scrolled']) for r in at)} scrolling with one; "
              f"{sum(len(r['wideCode']) for r in at)} of {sum(r['codeBlocks'] for r in at)} "
              f"code or output blocks wider than the column, "
              f"{sum(len(r['longCode']) for r in at)} with lines longer than it; "
              f"{sum(not (i['caption'] and i['alt']) for i in figures)} of {len(figures)} figures "
              f"without caption or alt text; {sum(len(r['rawTex']) for r in at)} raw TeX")
    return (*found, book_html)


@pytest.fixture(scope="module")
def readings(book_in_browser) -> dict:
    return book_in_browser[0]


@pytest.fixture(scope="module")
def site(book_in_browser) -> Path:
    """The built book's HTML folder, the one the browser read."""
    return book_in_browser[2]


def console_errors(events: list) -> list[str]:
    """Errors the page logged, threw, or met loading a resource; requests the browser blocked.

    The browser asks for /favicon.ico on its own, whatever the page says; the book names no
    icon, so that request's 404 is no error of a page.
    """
    errors = []
    for method, params in events:
        if str(params.get("entry", params.get("response", {})).get("url", "")).endswith(
                "/favicon.ico"):
            continue
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            errors.append(f"console.{params['type']}: {text[:200]}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            errors.append(f"uncaught: {text.splitlines()[0][:200] if text else details}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            errors.append(f"{entry['source']}: {entry['text'][:200]} {entry.get('url', '')}")
        elif method == "Fetch.requestPaused" and not params["request"]["url"].startswith(
                "http://127.0.0.1"):
            errors.append(f"asked the network for {params['request']['url']}")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            errors.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
    return errors


def per_width(readings: dict, width: int, key: str) -> dict[str, list]:
    """``{page: items}`` of one list the probe returns, at one width, pages with none left out."""
    return {page: r[key] for (page, w), r in readings.items() if w == width and r[key]}


def listing(found: dict[str, list], limit: int = 60) -> str:
    lines = [f"{page}: {item}" for page, items in found.items() for item in items]
    more = f"\n... and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def count(found: dict[str, list]) -> int:
    return sum(len(items) for items in found.values())


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_was_read_and_typeset_its_math_offline(readings, site, width):
    pages = book_pages(site)
    assert len(pages) >= 20 and all((page, width) in readings for page in pages)
    assert sum(len(r["equations"]) for (p, w), r in readings.items() if w == width) > 100, \
        "the probe found almost no display equations: is MathJax typesetting?"
    raw = per_width(readings, width, "rawTex")
    assert not raw, f"{count(raw)} places show raw TeX or a TeX error:\n{listing(raw)}"


def test_no_console_error_and_no_request_to_the_network(book_in_browser):
    errors = {page: console_errors(found) for page, found in book_in_browser[1].items()}
    errors = {page: found for page, found in errors.items() if found}
    assert not errors, f"{count(errors)} console errors:\n{listing(errors)}"


def test_internal_links_and_images_resolve(readings, site):
    ids = {page: set(r["ids"]) for (page, w), r in readings.items()}
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(next(iter(readings.values()))["url"]))
    broken, checked = [], set()
    for (page, width), reading in readings.items():
        for href in reading["links"]:
            if not href.startswith(origin + "/") or (page, href) in checked:
                continue
            checked.add((page, href))
            target, _, anchor = unquote(href[len(origin) + 1:]).partition("#")
            target = target.split("?")[0] or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (site / target).is_file():
                broken.append(f"{page}: link to {target}, which the build does not hold")
            elif anchor and target in ids and anchor not in ids[target]:
                broken.append(f"{page}: link to {target}#{anchor}, which has no such anchor")
        for image in reading["images"]:
            if not image["loaded"]:
                broken.append(f"{page} at {width} px: image {image['src']} did not load")
    for redirect in sorted(set(site.glob("*.html")) - {site / p for p in ids}):
        target = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"',
                           redirect.read_text(encoding="utf-8"), re.I)
        if target and not (site / target.group(1)).is_file():
            broken.append(f"{redirect.name}: redirects to {target.group(1)}, which is missing")
    assert len(checked) > 1000, f"only {len(checked)} internal links found"
    assert not broken, f"{len(broken)} broken links or images:\n" + "\n".join(sorted(set(broken)))


DESKTOP, PHONE = WIDTHS


@pytest.mark.parametrize("width", WIDTHS)
def test_display_equations_fit_or_scroll_with_a_cue(readings, width):
    clipped = per_width(readings, width, "clipped")
    total = sum(len(r["equations"]) for (p, w), r in readings.items() if w == width)
    assert not clipped, (f"{count(clipped)} of {total} display equations are cut off "
                         f"without a scroll cue at {width} px:\n{listing(clipped)}")


def test_display_equations_fit_a_desktop_column_without_scrolling(readings):
    """On a phone a long equation may scroll (with its scrollbar shown); on a desktop it is
    broken over rows to fit."""
    scrolled = per_width(readings, DESKTOP, "scrolled")
    total = sum(len(r["equations"]) for (p, w), r in readings.items() if w == DESKTOP)
    assert not scrolled, (f"{count(scrolled)} of {total} display equations are wider than the "
                          f"column at {DESKTOP} px:\n{listing(scrolled)}")


def test_figures_have_a_caption_and_alt_text(readings):
    width = next(iter(WIDTHS))  # the same images at every width
    missing, figures = {}, 0
    for (page, w), reading in readings.items():
        for image in (i for i in reading["images"] if i["inText"] and w == width):
            figures += 1
            lacks = [name for name in ("caption", "alt") if not image[name]]
            if lacks:
                missing.setdefault(page, []).append(f"no {' and no '.join(lacks)}: {image['where']}")
    kinds = Counter(item.split(":")[0] for items in missing.values() for item in items)
    assert not missing, (f"{count(missing)} of {figures} figures lack a caption or alt text "
                         f"({dict(kinds)}):\n{listing(missing)}")


def test_code_and_output_never_scroll_sideways_on_a_phone(readings):
    """Nothing in a block of code or output is out of sight on a phone: below desktop widths
    the style sheet wraps long lines (book/_static/course.css). At a desktop width lines are
    not wrapped, and the next test requires them to fit."""
    wide = per_width(readings, PHONE, "wideCode")
    blocks = sum(r["codeBlocks"] for (p, w), r in readings.items() if w == PHONE)
    assert not wide, (f"{count(wide)} of {blocks} blocks of code or output are wider than the "
                      f"column at {PHONE} px:\n{listing(wide)}")


def test_code_and_output_lines_fit_a_desktop_column_unwrapped(readings):
    """At a desktop width every line of code and printed output fits the column as written
    (88 characters): code is formatted to the column, and tables are shown as tables."""
    long = per_width(readings, DESKTOP, "longCode")
    blocks = sum(r["codeBlocks"] for (p, w), r in readings.items() if w == DESKTOP)
    assert not long, (f"{count(long)} of {blocks} blocks of code or output have lines longer "
                      f"than the column at {DESKTOP} px:\n{listing(long)}")
