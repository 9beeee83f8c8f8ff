"""tools/grade.py: submissions run in fresh kernels, every check's record becomes a row.

The end-to-end tests grade short notebooks cut from chapters 2, 3 and 4 (the set-up
cell and the exercises, where the checks are): solved, as the student edition, with
one mistake, with an answer cell that does not parse, and one that runs too long.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from _tools import tool

ROOT = Path(__file__).resolve().parents[1]


grade = tool("grade")
student_edition = tool("student_edition")


def short_chapter(chapter: str) -> nbformat.NotebookNode:
    """The chapter's first three cells (install, goal, set-up) and everything from its
    first exercise on, outputs cleared: the exercises run as in the chapter, quickly."""
    nb = nbformat.read(ROOT / "chapters" / f"{chapter}.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if "```{exercise}" in c.source)
    nb.cells = nb.cells[:3] + nb.cells[first:]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def solution(nb, name: str):
    return next(c for c in nb.cells if "solution" in c.metadata.get("tags", [])
                and f"def {name}(" in c.source)


def code(source: str):
    return nbformat.v4.new_code_cell(source)


# Naming, seeds, records and reports, without a kernel
@pytest.mark.parametrize("filename, parsed", [
    ("ada__05_first_vae.ipynb", ("ada", "05_first_vae")),
    ("ada_lovelace__05_first_vae.ipynb", ("ada_lovelace", "05_first_vae")),
    ("a.b-c__11_evaluation.ipynb", ("a.b-c", "11_evaluation")),
    ("05_first_vae.ipynb", None), ("ada__first_vae.ipynb", None),
    ("ada__05_first_vae.py", None), ("__05_first_vae.ipynb", None),
])
def test_file_names_give_student_and_chapter(filename, parsed):
    assert grade.parse_name(filename) == parsed


def test_the_seed_depends_on_the_secret_and_the_student():
    seed = grade.student_seed("s3cret", "ada")
    assert seed == grade.student_seed("s3cret", "ada") and 0 <= seed < 2 ** 31
    assert seed != grade.student_seed("s3cret", "bob") != grade.student_seed("other", "bob")


def test_each_chapter_lists_its_exercises():
    assert grade.exercises("02_elbo") == ["iwae_from_log_weights", "log_normal", "wider_q_gap",
                                          "mean_field_fit"]
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        assert len(grade.exercises(path.stem)) >= 2, path.stem


def test_the_last_record_of_each_exercise_counts(tmp_path):
    log = tmp_path / "checks.jsonl"
    mine = "vaecourse.exercises.ch02_elbo"
    lines = [{"module": mine, "exercise": "log_normal", "passed": False, "hint": "sign", "message": "✗"},
             {"module": mine, "exercise": "log_normal", "passed": True, "hint": "", "message": "✓"},
             {"module": "vaecourse.exercises.ch03_kl_closed_forms", "exercise": "kl_bernoulli",
              "passed": True, "hint": "", "message": "✓"}]
    log.write_text("\n".join(map(json.dumps, lines)) + "\nnot json\n", encoding="utf-8")
    assert grade.read_records(log, mine) == {"log_normal": lines[1]}
    assert grade.read_records(tmp_path / "missing.jsonl", mine) == {}


def test_a_check_that_left_no_record_is_a_fail_with_its_reason():
    nb = nbformat.v4.new_notebook(cells=[code("check_log_normal(f)")])
    nb.cells[0].outputs = [nbformat.v4.new_output("error", ename="NameError",
                                                  evalue="name 'f' is not defined", traceback=[])]
    run = grade.Run(nb, "", 1.0)
    rows = grade.grade_notebook("ada", "02_elbo", run, {})
    assert [(r.exercise, r.result, r.hint) for r in rows][:2] == [
        ("iwae_from_log_weights", "fail", "not run"), ("log_normal", "fail", "not run")]
    assert len(rows) == len(grade.exercises("02_elbo")) and {r.hint for r in rows} == {"not run"}
    assert rows[0].message == "not run: no cell calls check_iwae_from_log_weights"
    assert rows[1].message == "not run: cell 1 raised NameError: name 'f' is not defined"
    stopped = grade.Run(nbformat.v4.new_notebook(cells=[code("check_log_normal(f)")]),
                        "the notebook ran past its time limit of 5 s", 5.0)
    assert grade.not_run_reason("log_normal", stopped).endswith("time limit of 5 s")
    assert grade.not_run_reason("log_normal", grade.Run(None, "the file is not a "
                                "readable notebook", 0.0)) == "not run: the file is not a readable notebook"


def test_reports_hold_one_row_per_exercise(tmp_path):
    rows = [grade.Row("ada", "02_elbo", "log_normal", "pass", "", "✓ log_normal: passed"),
            grade.Row("ada", "02_elbo", "iwae_from_log_weights", "fail", "sign", "✗ a | b")]
    grade.write_csv(rows, tmp_path / "grades.csv")
    grade.write_markdown(rows, ["x.ipynb: skipped, not named <student>__<NN_slug>.ipynb"],
                         tmp_path / "grades.md")
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == [list(grade.COLUMNS)] + [list(r) for r in rows]
    md = (tmp_path / "grades.md").read_text(encoding="utf-8")
    assert "| ada | 1 | 2 |" in md and "✗ a \\| b" in md and "&lt;student&gt;" in md


def test_help_and_docstring_warn_that_student_code_runs_and_say_how_to_isolate_it():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), "--help"],
                          capture_output=True, text=True, check=True)
    for text in (done.stdout, grade.__doc__):
        assert "WARNING: this runs the students' code" in text
        assert "container" in text and "no network" in text and "no credentials" in text
        assert "<student>__<NN_slug>.ipynb" in text and "--seed" in text


def test_a_missing_folder_is_refused_with_the_warning(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        grade.main([str(tmp_path / "nothing")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "WARNING: grading runs the students' code" in err and "is not a folder" in err


def test_make_grade_runs_the_tool():
    makefile = (ROOT / "Makefile").read_text()
    assert "\ngrade: install\n" in makefile and "tools/grade.py $(SUBMISSIONS)" in makefile


# Grading real notebooks, each in its own kernel
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    solved = short_chapter("02_elbo")
    solved.cells.append(code("import os\nprint(os.environ['VAECOURSE_CHECK_SEED'])"))
    nbformat.write(solved, folder / "alice__02_elbo.ipynb")
    nbformat.write(student_edition.student_notebook(short_chapter("02_elbo")),
                   folder / "bob__02_elbo.ipynb")
    mistake = short_chapter("03_kl_closed_forms")   # the mean term with a minus sign
    cell = solution(mistake, "kl_normal_normal")
    assert "+ mean_term" in cell.source
    cell.source = cell.source.replace("+ mean_term", "- mean_term")
    nbformat.write(mistake, folder / "carol__03_kl_closed_forms.ipynb")
    broken = short_chapter("04_reparameterization")  # the answer does not parse, and a
    solution(broken, "reparameterize").source += "\n    return (\n"   # later cell raises
    at = broken.cells.index(solution(broken, "score_function_grad"))
    broken.cells.insert(at, code("raise RuntimeError('a cell that raises')"))
    nbformat.write(broken, folder / "dave__04_reparameterization.ipynb")
    (folder / "notes.ipynb").write_text("{}", encoding="utf-8")
    out = tmp_path_factory.mktemp("grades")
    rows = grade.grade(folder, out, timeout=120, secret="s3cret")
    return {(r.student, r.exercise): r for r in rows}, out


@pytest.mark.slow
def test_a_solved_chapter_passes_every_check(graded):
    rows, out = graded
    for exercise in grade.exercises("02_elbo"):  # implement, derive and experiment alike
        assert rows["alice", exercise].result == "pass", rows["alice", exercise]
    executed = nbformat.read(out / "executed" / "alice__02_elbo.ipynb", as_version=4)
    printed = executed.cells[-1].outputs[0]["text"].strip()  # each student has a seed
    assert printed == str(grade.student_seed("s3cret", "alice"))


@pytest.mark.slow
def test_the_student_edition_passes_none(graded):
    rows, _ = graded
    for exercise in grade.exercises("02_elbo"):
        assert (rows["bob", exercise].result, rows["bob", exercise].hint) == ("fail", "todo")


@pytest.mark.slow
def test_one_mistake_shows_its_hint_and_the_rest_passes(graded):
    rows, _ = graded
    wrong = rows["carol", "kl_normal_normal"]
    assert wrong.result == "fail" and "the mean term has the wrong sign" in wrong.message
    assert rows["carol", "kl_bernoulli"].result == "pass"


@pytest.mark.slow
def test_a_broken_answer_meets_the_library_s_function_and_grading_goes_on(graded):
    """Chapter 4 imports reparameterize from the library: a failed answer cell leaves it,
    and the check refuses it. A cell that raises does not stop the cells after it."""
    rows, out = graded
    assert rows["dave", "reparameterize"].hint == "library"
    assert rows["dave", "score_function_grad"].result == "pass"
    md = (out / "grades.md").read_text(encoding="utf-8")
    assert "RuntimeError: a cell that raises" in md and "SyntaxError" in md
    assert "notes.ipynb: skipped" in md


@pytest.mark.slow
def test_the_reports_hold_every_graded_exercise(graded):
    rows, out = graded
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) == 16   # four notebooks, four exercises each
    assert {r["student"] for r in table} == {"alice", "bob", "carol", "dave"}


@pytest.mark.slow
def test_a_notebook_past_its_time_limit_is_stopped(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(cells=[code("import time\ntime.sleep(60)"),
                                         code("check_log_normal(f)")])
    nbformat.write(nb, folder / "eve__02_elbo.ipynb")
    rows = grade.grade(folder, tmp_path / "out", timeout=3)
    assert {r.hint for r in rows} == {"not run"}
    assert all("time limit of 3 s" in r.message for r in rows if r.exercise == "log_normal")
