"""One version, one URL, one title: every copy agrees with its single source.

The version's source is ``vaecore.__version__``; the title's and the repository
URL's is ``_config.yml``. Their copies: ``CITATION.cff``, the book's footer
(``html.extra_footer``), the newest entry of ``CHANGELOG.md``, the BibTeX entry
of ``book/cite.md``, and a section of ``book/errata.md`` for every release after
the first.
"""
from __future__ import annotations

import datetime
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
CFF = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
RELEASE = re.compile(r"^## (\d+\.\d+\.\d+) \((\d{4}-\d{2}-\d{2})\)$", re.M)


def package_version() -> str:
    """``__version__`` as setuptools reads it (pyproject.toml: attr = vaecore.__version__)."""
    text = (ROOT / "vaecore" / "__init__.py").read_text(encoding="utf-8")
    (version,) = re.findall(r'^__version__ = "([^"]+)"$', text, re.M)
    return version


def releases() -> list[tuple[str, str]]:
    """(version, date) of every CHANGELOG entry, newest first."""
    return RELEASE.findall((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))


def as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_package_version_is_the_one_imported():
    import vaecore

    assert vaecore.__version__ == package_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", package_version())


def test_citation_file_has_the_required_fields_and_agrees_with_its_sources():
    assert CFF["cff-version"] == "1.2.0"
    assert CFF["message"].strip() and CFF["type"] == "software"
    assert CFF["title"] == CONFIG["title"]
    assert CFF["version"] == package_version()
    assert CFF["repository-code"] == CONFIG["repository"]["url"]
    assert CFF["authors"] == [{"name": "The vaecore course authors"}]
    assert CFF["license"] == "MIT"
    datetime.date.fromisoformat(str(CFF["date-released"]))


def test_every_page_of_the_book_shows_the_version():
    footer = CONFIG["html"]["extra_footer"]
    assert re.findall(r"Version (\d+\.\d+\.\d+)\.", footer) == [package_version()]


def test_changelog_starts_with_this_version_released_on_the_citation_date():
    entries = releases()
    assert entries, "no '## X.Y.Z (YYYY-MM-DD)' entry in CHANGELOG.md"
    assert entries[0] == (package_version(), str(CFF["date-released"]))
    versions = [as_tuple(v) for v, _ in entries]
    assert versions == sorted(set(versions), reverse=True), "entries newest first, each once"
    dates = [datetime.date.fromisoformat(d) for _, d in entries]
    assert dates == sorted(dates, reverse=True)


def test_every_release_says_what_changed_in_conclusions_and_numbers():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    bodies = RELEASE.split(text)[3::3]  # the text after each release heading
    assert len(bodies) == len(releases())
    for (version, _), body in zip(releases(), bodies):
        assert "### Chapters: conclusions and numbers" in body, version


def test_errata_has_a_section_for_every_release_after_the_first():
    errata = (ROOT / "book" / "errata.md").read_text(encoding="utf-8")
    later = [version for version, _ in releases()[:-1]]
    assert later, "CHANGELOG.md has a single release"
    for version in later:
        assert re.search(rf"^## {re.escape(version)} ", errata, re.M), version


def test_citation_page_names_this_version_and_the_repository():
    page = (ROOT / "book" / "cite.md").read_text(encoding="utf-8")
    assert re.findall(r"version = \{([^}]*)\}", page) == [package_version()]
    assert set(re.findall(r"version (\d+\.\d+\.\d+)", page)) == {package_version()}
    assert re.findall(r"url\s*= \{([^}]*)\}", page) == [CONFIG["repository"]["url"]]
    assert re.findall(r"title\s*= \{([^}]*)\}", page) == [CONFIG["title"]]


def test_licences_are_stated_for_code_and_text():
    code = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert code.startswith("MIT License\n\nCopyright (c) ")
    assert "The vaecore course authors" in code.splitlines()[2]
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license\s*=\s*(\{\s*text\s*=\s*)?"MIT"', pyproject, re.M)
    text = (ROOT / "LICENSE-text.md").read_text(encoding="utf-8")
    assert "Creative Commons Attribution 4.0 International" in text
    assert "https://creativecommons.org/licenses/by/4.0/" in text
    assert "The vaecore course authors" in text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "[LICENSE](LICENSE)" in readme and "[LICENSE-text.md](LICENSE-text.md)" in readme
