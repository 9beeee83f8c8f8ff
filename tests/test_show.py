"""vaecourse.show: tables as HTML and aligned text; library code without its docstrings."""
import ast
import html.parser

import pytest

from vaecore.kl import kl_normal_std_normal
from vaecourse import show


def test_a_table_shows_the_same_cells_as_text_and_as_html():
    t = show.table(["model", "NLL", "params"], [["VAE", 86.7612, 1234567], ["IWAE", 84.5, 12]],
                      notes=["k = 5000"])
    text = str(t).splitlines()
    assert text[0].split(" | ") == ["model", "  NLL", "   params"]
    assert text[2] == "VAE   | 86.76 | 1,234,567" and text[3] == "IWAE  | 84.50 |        12"
    assert text[-1] == "k = 5000"
    cells = []

    class Cells(html.parser.HTMLParser):
        def handle_data(self, data):
            if data.strip():
                cells.append(data)

    Cells().feed(t._repr_html_())
    assert cells == ["model", "NLL", "params", "VAE", "86.76", "1,234,567", "IWAE", "84.50", "12",
                     "k = 5000"]
    assert "text-align: right" in t._repr_html_() and repr(t) == str(t)


def test_a_table_escapes_html_and_refuses_ragged_rows_and_bad_alignment():
    assert "&lt;b&gt;" in show.table(["a"], [["<b>"]])._repr_html_()
    with pytest.raises(ValueError, match="row 1 has 1 cells; the header has 2"):
        show.table(["a", "b"], [[1, 2], [3]])
    with pytest.raises(ValueError, match="one 'l' or 'r' per column"):
        show.table(["a", "b"], [[1, 2]], align="lx")
    with pytest.raises(ValueError, match="at least one column"):
        show.table([], [])


def test_source_is_the_library_code_without_docstrings():
    shown = show.source(kl_normal_std_normal)
    assert '"""' not in shown.code and "def kl_normal_std_normal" in shown.code
    ast.parse(shown.code)  # still valid Python
    assert shown._repr_markdown_().startswith("```python\n") and str(shown) == shown.code
    # the code that runs is the code shown: the same statements, docstrings aside
    full = show.source(kl_normal_std_normal, docstrings=True).code
    body = [ast.dump(s) for s in ast.parse(full).body[0].body[1:]]
    assert body == [ast.dump(s) for s in ast.parse(shown.code).body[0].body]


def test_a_body_that_was_only_a_docstring_keeps_its_place():
    code = show._without_docstrings('class A:\n    """Doc."""\n\n    def f(self):\n'
                                        '        """Only a docstring,\n        two lines."""\n')
    assert code == "class A:\n\n    def f(self):\n        ...\n"
    with pytest.raises(TypeError, match="needs a function, class or method"):
        show.source(3)
