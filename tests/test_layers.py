"""The two layers: vaecore (the library) and vaecourse (the course), and their import graph.

The import graph of both packages, module-level and function-level imports
alike, as ``tools``' import-cycle hook walks it: no cycle, and no library
module that imports the course layer. The library names no chapter, no
report and no checkpoint (its docstrings name equation labels, which
``test_chapters`` maps to chapters).
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vaecore", "vaecourse")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = m.split(".") if path.name == "__init__.py" else m.split(".")[:-1]
                pkg = base[: len(base) - (node.level - 1)] if node.level else []
                mod = ".".join(pkg + ([node.module] if node.module else []))
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and not m.startswith(t + ".") and not t.startswith(m + "."):
                    graph[m].add(t)
    return graph


def cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10_000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_library_never_imports_the_course_layer():
    graph = import_graph()
    wrong = sorted(f"{m} -> {t}" for m, ts in graph.items() if m.startswith("vaecore")
                   and not m.startswith("vaecourse") for t in ts if t.startswith("vaecourse"))
    assert wrong == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


COURSE_WORDS = re.compile(r"[Cc]hapter \d|\bch\d\d_|chapters/|[Rr]eport \d{3}|vaecourse|"
                          r"vaecore\.zoo|vaecore\.recipes|vaecore\.exercises|"
                          r"\b(?:mnist|mnist32|cifar-bh|shapes)-(?:mlp|conv|resnet|lenet|cnn)")


def test_the_library_names_no_chapter_report_or_checkpoint():
    named = [f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
             for path in (ROOT / "vaecore").rglob("*.py")
             for i, line in enumerate(path.read_text().splitlines(), 1)
             if COURSE_WORDS.search(line)]
    assert named == []


def test_importing_a_first_chapter_check_loads_no_zoo_and_no_later_chapter():
    code = ("import sys, vaecourse.exercises.ch01_quickstart; "
            "print(sorted(m for m in sys.modules if m.startswith('vaecourse')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert eval(out) == ["vaecourse", "vaecourse.exercises", "vaecourse.exercises._answers",
                         "vaecourse.exercises._check", "vaecourse.exercises._submission",
                         "vaecourse.exercises.ch01_quickstart"]


@pytest.mark.parametrize("path", sorted((ROOT / "chapters").glob("0[1-4]_*.ipynb")),
                         ids=lambda p: p.stem)
def test_the_first_four_chapters_load_and_download_no_weights(path):
    import json
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                     if c["cell_type"] == "code")
    for word in ("zoo", "vaecourse.store", "vaecourse.chapters", "load_checkpoint"):
        assert word not in code


def test_every_chapter_module_and_check_module_is_named_after_its_notebook():
    stems = {p.stem for p in (ROOT / "chapters").glob("*.ipynb")}
    for folder in ("chapters", "exercises"):
        for module in (ROOT / "vaecourse" / folder).glob("ch*.py"):
            assert module.stem[2:4] + "_" + module.stem[5:] in stems, module
    checks = {m.stem for m in (ROOT / "vaecourse" / "exercises").glob("ch*.py")}
    assert checks == {f"ch{s}" for s in stems}, "every chapter has its module of checks"
