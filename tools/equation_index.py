"""Write book/equations.md: every labelled equation of the chapters, by name.

The library's docstrings name the equation a function implements by its label, as in
"Equation (kl-std-normal)"; the book shows the same equation numbered by chapter, as
(3.4). The page this tool writes joins the two: each label, its number and chapter
(rendered by the book), and the library functions and classes whose docstrings cite it.

    python tools/equation_index.py           # rewrite book/equations.md
    python tools/equation_index.py --check   # exit 1 if it is not current (a test runs this)
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "equations.md"
LABEL = re.compile(r"\$\$\s*\(([A-Za-z0-9_-]+)\)")
CITED = re.compile(r"\(([a-z0-9]+(?:-[a-z0-9]+)*)\)")


def labels() -> dict[str, str]:
    """``{label: chapter stem}`` for every ``$$ ... $$ (label)`` in the chapters' text."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] != "markdown":
                continue
            for label in LABEL.findall("".join(cell["source"])):
                if label in found:
                    raise SystemExit(f"equation label {label!r} is used in {found[label]} and "
                                     f"{path.stem}: labels must be unique in the book")
                found[label] = path.stem
    return found


def docstrings() -> dict[str, str]:
    """``{qualified name: docstring}`` of every module, class and function of the packages."""
    found: dict[str, str] = {}
    for package in ("vaecore", "vaecourse"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            tree = ast.parse(path.read_text(encoding="utf-8"))

            def visit(node, prefix):
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                        name = f"{prefix}.{child.name}"
                        if not child.name.startswith("_"):
                            found[name] = ast.get_docstring(child) or ""
                            visit(child, name)

            found[module] = ast.get_docstring(tree) or ""
            visit(tree, module)
    return found


def citations(known: dict[str, str]) -> dict[str, list[str]]:
    """``{label: [qualified names whose docstring cites it]}``."""
    cited: dict[str, list[str]] = {label: [] for label in known}
    for name, text in docstrings().items():
        for label in sorted(set(CITED.findall(text)) & known.keys()):
            cited[label].append(name)
    return cited


def dangling() -> list[str]:
    """Docstrings that cite "Equation (x)" where no chapter labels an equation ``x``."""
    known = labels()
    return [f"{name}: Equation ({label})" for name, text in docstrings().items()
            for label in re.findall(r"[Ee]quations? \(([a-z0-9-]+)\)", text)
            if label not in known]


def page(known: dict[str, str] | None = None) -> str:
    """The page's Markdown for the labels ``known`` (default: :func:`labels`)."""
    known = labels() if known is None else known
    cited = citations(known)
    lines = [
        "# Equations by name",
        "",
        "<!-- Written by tools/equation_index.py from the chapters and the library's",
        "     docstrings; do not edit by hand (a test checks that it is current). -->",
        "",
        "The library's docstrings name the equation that a function implements by its",
        "label, as in *Equation (kl-std-normal)*; the chapters number the same equation by",
        "chapter. This table joins the two: each label, the equation's number (a link to it),",
        "its chapter, and the functions and classes whose documentation cites it.",
        "",
        "| label | equation | chapter | cited by |",
        "| --- | --- | --- | --- |",
    ]
    for label, chapter in known.items():
        users = ", ".join(f"`{name}`" for name in cited[label])
        lines.append(f"| `{label}` | {{eq}}`{label}` | {{doc}}`../chapters/{chapter}` "
                     f"| {users} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if book/equations.md is not what this tool writes")
    args = parser.parse_args(argv)
    known = labels()
    text = page(known)
    if args.check:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE.relative_to(ROOT)} is not current: run python tools/equation_index.py",
                  file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}: {len(known)} equations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
