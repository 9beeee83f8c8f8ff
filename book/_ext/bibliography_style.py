"""The bibliography in the citations' own style: author-year labels, LaTeX accents decoded.

The chapters cite author-year (``bibtex_reference_style: author_year`` in ``_config.yml``:
"Kingma and Welling, 2014", "Rezende et al., 2014"). This registers a pybtex style,
``author_year``, whose labels in the list of references read the same way, instead of the
alpha labels ("KW14") pybtex gives by default, and whose names are decoded from their
LaTeX ("Sch{\\"o}lkopf" is "Schölkopf"). Entries are sorted by author, year and title.
The entries themselves are formatted as pybtex's ``unsrt`` formats them, so a ``doi`` or
an arXiv ``eprint`` field becomes a link to the paper. ``_config.yml`` selects the style
(``bibtex_default_style: author_year``).

pybtex finds a plugin named by a string by reading the entry points of every installed
distribution, each time it is asked (tens of ms); sphinxcontrib-bibtex asks for the
``plaintext`` backend once per citation. The extension registers that backend (the class
its entry point names) at run time, where pybtex looks first, and renders names with it
directly: the build's 600-odd look-ups took about 13 s of its 42 s.
"""
from __future__ import annotations

from collections import Counter
from string import ascii_lowercase

from pybtex.backends.plaintext import Backend as PlainText
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle

NAME = "author_year"


def last_name(person) -> str:
    """A person's last name as a reader sees it: von part and accents included."""
    parts = person.rich_prelast_names + person.rich_last_names
    return " ".join(str(part.render(PlainText())) for part in parts)


def author_year(entry) -> str:
    """"Williams, 1992", "Kingma and Welling, 2014", "Rezende et al., 2014"."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [last_name(p) for p in people]
    if not names:
        who = entry.fields.get("key", entry.key)
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Author-year labels; two works with the same one get "2016a", "2016b"."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(e) for e in entries]
        repeated, seen = Counter(labels), Counter()
        for label in labels:
            if repeated[label] > 1:
                seen[label] += 1
                label += ascii_lowercase[seen[label] - 1]
            yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabelStyle
    default_sorting_style = SortingStyle


def setup(app):
    register_plugin("pybtex.style.formatting", NAME, AuthorYearStyle)
    # The class the installed entry point names, found without reading every entry point.
    register_plugin("pybtex.backends", "plaintext", PlainText, force=True)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
