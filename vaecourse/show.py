"""How the chapters show tables and library code: as a table and as highlighted code.

A chapter that prints rows with ``print`` gets one block of fixed-width text that
is cut off, or wraps, once the rows are wider than the page's column. A
:class:`Table` is shown as an HTML table by Jupyter, Colab and the built book,
and as the same rows in aligned text wherever only text is shown (a terminal,
``print``, the comparison of a chapter's outputs by ``pytest --nbval``).

:func:`source` shows a library function or class as highlighted code without its
docstring: the docstring's reST (double backquotes, ``:func:`` roles, equation
names) reads badly on a page whose prose already shows the equation the code
implements, rendered.
"""
from __future__ import annotations

import ast
import html
import inspect
import textwrap
from typing import Any, Sequence

__all__ = ["Table", "table", "Source", "source"]


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


class Table:
    """Rows under a header, shown as an HTML table (notebook, book) or aligned text (``str``).

    ``rows`` is a sequence of sequences as long as ``header``. Numbers are
    formatted here: integers with thousands separators, floats with ``digits``
    decimals; anything else with ``str``. ``align`` gives each column's ``"l"``
    or ``"r"`` (default: right for columns whose cells are all numbers, left
    otherwise). ``notes`` are lines shown under the table.
    """

    def __init__(self, header: Sequence[str], rows: Sequence[Sequence[Any]], *,
                 digits: int = 2, align: str | None = None, notes: Sequence[str] = ()):
        self.header = [str(h) for h in header]
        if not self.header:
            raise ValueError("a table needs at least one column")
        rows = [list(r) for r in rows]
        for i, row in enumerate(rows):
            if len(row) != len(self.header):
                raise ValueError(f"row {i} has {len(row)} cells; the header has "
                                 f"{len(self.header)} columns: {self.header}")
        if align is None:
            numeric = [all(isinstance(r[j], (int, float)) and not isinstance(r[j], bool)
                           for r in rows) and bool(rows) for j in range(len(self.header))]
            align = "".join("r" if n else "l" for n in numeric)
        if len(align) != len(self.header) or set(align) - {"l", "r"}:
            raise ValueError(f"align must be one 'l' or 'r' per column ({len(self.header)}), "
                             f"got {align!r}")
        self.align = align
        self.cells = [[_cell(v, digits) for v in row] for row in rows]
        self.notes = [str(n) for n in notes]

    def __str__(self) -> str:
        widths = [max([len(h)] + [len(r[j]) for r in self.cells])
                  for j, h in enumerate(self.header)]

        def line(cells):
            return " | ".join(c.rjust(w) if a == "r" else c.ljust(w)
                              for c, w, a in zip(cells, widths, self.align)).rstrip()

        rule = "-+-".join("-" * w for w in widths)
        return "\n".join([line(self.header), rule, *map(line, self.cells), *self.notes])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        style = {"l": "text-align: left", "r": "text-align: right"}

        def row(tag, cells):
            return "<tr>" + "".join(f'<{tag} style="{style[a]}">{html.escape(c)}</{tag}>'
                                    for c, a in zip(cells, self.align)) + "</tr>"

        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return ('<table class="course-table">\n<thead>' + row("th", self.header)
                + "</thead>\n<tbody>\n" + "\n".join(row("td", r) for r in self.cells)
                + "\n</tbody>\n</table>\n" + notes)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], **options) -> Table:
    """:class:`Table` ``(header, rows, **options)``; the last line of a cell shows it."""
    return Table(header, rows, **options)


def _without_docstrings(code: str) -> str:
    """``code`` with the docstring of every module, class and function in it removed."""
    tree = ast.parse(code)
    drop: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                drop.append((body[0].lineno, body[0].end_lineno))
                if len(body) == 1:  # keep the body valid: a lone docstring becomes `...`
                    drop[-1] = drop[-1] + ("...",)
    lines = code.splitlines()
    for start, end, *keep in sorted(drop, reverse=True):
        indent = lines[start - 1][: len(lines[start - 1]) - len(lines[start - 1].lstrip())]
        lines[start - 1:end] = [indent + k for k in keep]
    return "\n".join(lines).rstrip() + "\n"


class Source:
    """Python code shown highlighted (Markdown code block) in a notebook or the book."""

    def __init__(self, code: str):
        self.code = code

    def __str__(self) -> str:
        return self.code

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.code}```\n"


def source(obj: Any, *, docstrings: bool = False) -> Source:
    """The source of a function, class or method ``obj``, without its docstrings by default.

    The code is what the library runs (``inspect.getsource``), dedented; each
    docstring is removed (a body that was only a docstring shows ``...``).
    """
    try:
        code = textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as e:
        raise TypeError(f"source() needs a function, class or method defined in a file, "
                        f"got {obj!r}: {e}") from None
    if not docstrings:
        code = _without_docstrings(code)
    return Source(code)
