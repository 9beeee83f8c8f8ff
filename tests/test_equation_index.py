"""book/equations.md joins the docstrings' equation names to the book's numbered equations."""
import subprocess
import sys

from _tools import tool

equation_index = tool("equation_index")


def test_the_page_is_current():
    run = subprocess.run([sys.executable, str(equation_index.ROOT / "tools" / "equation_index.py"),
                          "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_every_equation_a_docstring_names_is_labelled_in_a_chapter():
    assert equation_index.dangling() == []


def test_the_index_finds_the_labels_and_who_cites_them():
    labels = equation_index.labels()
    assert len(labels) > 100 and labels["elbo"] == "02_elbo"
    cited = equation_index.citations(labels)
    assert "vaecore.elbo.negative_elbo" in cited["elbo"]


def test_a_misspelt_equation_name_is_reported(monkeypatch):
    monkeypatch.setattr(equation_index, "docstrings",
                        lambda: {"vaecore.x.f": "Implements Equation (elbo) and Equation (elbow)."})
    assert equation_index.dangling() == ["vaecore.x.f: Equation (elbow)"]
