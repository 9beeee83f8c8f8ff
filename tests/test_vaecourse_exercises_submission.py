"""vaecourse/exercises/_submission.py: a check refuses what is not the student's own, records
its outcome for a grader, and draws its cases from a seed a grader may shift.

Answers here are written as a notebook writes them: executed in a namespace named
``__main__``, so they are the notebook's own functions.
"""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import nbformat
import pytest
import torch

from vaecore.importance import effective_sample_size
from vaecourse.exercises import _submission
from vaecourse.exercises.ch11_evaluation import check_effective_sample_size

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__"}
    exec(source, namespace)
    return namespace


GENUINE_ESS = """
import torch
def answer(log_w):
    shifted = log_w - log_w.max(dim=0).values
    return torch.exp(2 * torch.logsumexp(shifted, 0) - torch.logsumexp(2 * shifted, 0))
"""


@pytest.mark.parametrize("source, says", [
    ("from vaecore.importance import effective_sample_size as answer",
     "vaecore.importance.effective_sample_size, the library's own function"),
    ("from vaecore.importance import effective_sample_size\n"
     "def answer(*a):\n    return effective_sample_size(*a)", "the library's answer"),
    ("from vaecore.importance import effective_sample_size as ess\n"
     "answer = lambda log_w: ess(log_w)", "the library's answer"),
    ("import vaecore.importance as imp\n"
     "def answer(log_w):\n    '''Mine.'''\n    return imp.effective_sample_size(log_w)",
     "the library's answer"),
    ("from vaecore.importance import effective_sample_size\n"
     "def helper(log_w):\n    return effective_sample_size(log_w)\n"
     "def answer(log_w):\n    w = helper(log_w)\n    return w", "the library's answer"),
    ("from functools import partial\nfrom vaecore.importance import effective_sample_size\n"
     "answer = partial(effective_sample_size)", "defined outside your notebook"),
    ("from math import exp as answer", "defined outside your notebook"),
])
def test_a_borrowed_function_is_refused(source, says):
    result = check_effective_sample_size(notebook(source)["answer"])
    assert not result.passed and result.hint == "library" and says in result.message, result.message


def test_the_library_function_itself_is_refused():
    result = check_effective_sample_size(effective_sample_size)
    assert result.hint == "library" and "did the cell that defines your answer run" in \
        result.message.lower()


def test_a_function_defined_in_another_module_is_refused():
    def answer(log_w):  # defined here, in a test module, not in a notebook
        shifted = log_w - log_w.max(dim=0).values
        return torch.exp(2 * torch.logsumexp(shifted, 0) - torch.logsumexp(2 * shifted, 0))
    result = check_effective_sample_size(answer)
    assert result.hint == "library" and "defined outside your notebook" in result.message


def test_a_genuine_implementation_passes():
    result = check_effective_sample_size(notebook(GENUINE_ESS)["answer"])
    assert result.passed and "✓" in repr(result), result.message


def test_computing_with_another_library_function_is_allowed():
    """Only the exercise's own library answer is refused, not the library's other helpers."""
    answer = notebook("import math\nfrom vaecore.importance import log_mean_exp\n"
                      "def answer(log_w):\n"
                      "    k = log_w.shape[0]\n"
                      "    return k * (2 * log_mean_exp(log_w) - log_mean_exp(2 * log_w)).exp()")
    assert check_effective_sample_size(answer["answer"]).passed


def test_passing_the_arguments_on_to_any_library_function_is_refused():
    """With no library answer declared, a body that only forwards to vaecore is refused."""
    ns = notebook("from vaecore.units import bits_per_dim\n"
                  "def answer(*args):\n    return bits_per_dim(*args)\n"
                  "def fine(nats, d):\n    return 2 * bits_per_dim(nats, d)")
    refused = _submission.borrowed("x", ns["answer"])
    assert refused is not None and "only passes its arguments on to " \
        "vaecore.units.bits_per_dim" in refused.message
    assert _submission.borrowed("x", ns["fine"]) is None


def test_a_refused_function_is_never_called():
    ns = notebook("from vaecore.importance import effective_sample_size\ncalls = []\n"
                  "def answer(log_w):\n    calls.append(1)\n    return effective_sample_size(log_w)")
    assert check_effective_sample_size(ns["answer"]).hint == "library" and ns["calls"] == []


def test_the_seed_variable_shifts_every_random_case(monkeypatch):
    first = _submission.rng(3).initial_seed()
    monkeypatch.setenv("VAECOURSE_CHECK_SEED", "1000")
    assert _submission.rng(3).initial_seed() == first + 1000
    monkeypatch.setenv("VAECOURSE_CHECK_SEED", "not a number")
    with pytest.raises(ValueError, match="VAECOURSE_CHECK_SEED"):
        _submission.rng(3)


def test_a_check_appends_its_outcome_to_the_log(monkeypatch, tmp_path):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv("VAECOURSE_CHECK_LOG", str(log))
    check_effective_sample_size(notebook(GENUINE_ESS)["answer"])
    check_effective_sample_size(effective_sample_size)
    first, second = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert first == {"module": "vaecourse.exercises.ch11_evaluation",
                     "exercise": "effective_sample_size", "passed": True, "hint": "",
                     "message": "✓ effective_sample_size: passed on 5 cases."}
    assert second["passed"] is False and second["hint"] == "library"
    assert check_effective_sample_size.exercise == "effective_sample_size"


def test_nothing_is_written_without_the_log_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("VAECOURSE_CHECK_LOG", raising=False)
    monkeypatch.chdir(tmp_path)
    check_effective_sample_size(effective_sample_size)
    assert list(tmp_path.iterdir()) == []


def _free_names(fn, namespace: dict) -> set[str]:
    """Globals that ``fn`` (or a function nested in it) reads and the namespace lacks."""
    import builtins
    names, stack = set(), [fn.__code__]
    while stack:
        code = stack.pop()
        names |= set(code.co_names)
        stack += [c for c in code.co_consts if hasattr(c, "co_names")]
    return {n for n in names if n not in namespace and not hasattr(builtins, n)
            and n in _assigned_in_chapter(namespace["__chapter__"])}


def _assigned_in_chapter(path: Path) -> set[str]:
    """Names that the chapter's non-solution code cells define or import."""
    import ast
    names = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or "solution" in cell.metadata.get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def chapter_checks(path: Path):
    """(check, answer, needs) for every check cell of a chapter, answers from its solution cells.

    ``needs``: the chapter's own variables the answer reads (its data, a helper of the
    chapter); such an answer can only run inside the executed chapter.
    """
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    namespace = notebook("import math\nimport torch\nimport torch.nn.functional as F\n"
                         "F64 = torch.float64\n")
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            exec(cell.source, namespace)
    namespace["__chapter__"] = path
    slug = path.stem.split("_", 1)
    module = importlib.import_module(f"vaecourse.exercises.ch{slug[0]}_{slug[1]}")
    calls = re.findall(r"^(check_\w+)\((\w+)\)", "\n".join(code), re.M)
    return [(getattr(module, check), namespace[answer], _free_names(namespace[answer], namespace))
            for check, answer in calls]


def _printed(path: Path, call: str) -> str:
    """What the chapter's committed check cell that runs ``call`` printed."""
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and re.search(
        rf"^{re.escape(call)}$", c.source, re.M))
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for o in cell.outputs)


@pytest.mark.parametrize("seed", ["", "7919"])
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_s_solutions_pass_their_checks_whatever_the_seed(path, seed, monkeypatch):
    """Solutions run alone, outside the chapter; one that reads the chapter's own variables
    (an experiment on its data) is checked where it can run: in the executed chapter, whose
    committed output nbval reproduces, and by tools/grade.py, which runs whole notebooks."""
    monkeypatch.setenv("VAECOURSE_CHECK_SEED", seed)
    checks = chapter_checks(path)
    assert len(checks) >= 2
    for check, answer, needs in checks:
        if needs:
            call = f"check_{check.exercise}({answer.__name__})"
            assert "✓" in _printed(path, call), (call, needs)
            continue
        result = check(answer)
        assert result.passed, result.message
