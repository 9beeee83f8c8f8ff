"""book/_ext/bibliography_style.py: labels in the citations' author-year form, accents
decoded, repeated labels told apart, entries sorted by author and year."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from pybtex.database import parse_string

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bibliography_style", ROOT / "book/_ext/bibliography_style.py")
ext = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ext)

BIB = r"""
@article{one, author = {Williams, Ronald J.}, title = {A}, journal = {J}, year = {1992}}
@article{two, author = {Kingma, Diederik P. and Welling, Max}, title = {B}, journal = {J}, year = {2014}}
@article{three, author = {Kynk{\"a}{\"a}nniemi, Tuomas and Karras, Tero and Laine, Samuli}, title = {C}, journal = {J}, year = {2019}}
@article{von, author = {van den Oord, A{\"a}ron}, title = {D}, journal = {J}, year = {2016}}
@article{twin1, author = {Salimans, Tim and Kingma, Diederik P.}, title = {E}, journal = {J}, year = {2016}}
@article{twin2, author = {Salimans, Tim and Kingma, Diederik P.}, title = {F}, journal = {J}, year = {2016},
         eprint = {1606.04934}, archiveprefix = {arXiv}, doi = {10.1000/x}}
"""


def test_labels_read_as_the_author_year_citations():
    entries = parse_string(BIB, "bibtex").entries
    assert [ext.author_year(e) for e in entries.values()] == [
        "Williams, 1992", "Kingma and Welling, 2014", "Kynkäänniemi et al., 2019",
        "van den Oord, 2016", "Salimans and Kingma, 2016", "Salimans and Kingma, 2016"]


def test_the_style_sorts_by_author_tells_twins_apart_and_links_the_paper():
    entries = parse_string(BIB, "bibtex").entries
    formatted = list(ext.AuthorYearStyle().format_entries(entries.values()))
    assert [e.label for e in formatted] == [
        "Kingma and Welling, 2014", "Kynkäänniemi et al., 2019", "Salimans and Kingma, 2016a",
        "Salimans and Kingma, 2016b", "van den Oord, 2016", "Williams, 1992"]
    html = formatted[3].text.render_as("html")
    assert 'href="https://arxiv.org/abs/1606.04934"' in html and 'href="https://doi.org/10.1000/x"' in html


def test_the_book_selects_the_style():
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    assert "bibtex_default_style: author_year" in config and "bibliography_style: book/_ext" in config
