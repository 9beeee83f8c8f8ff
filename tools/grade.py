"""Grade a folder of submitted notebooks: run each one, collect every exercise check.

    python tools/grade.py SUBMISSIONS [--out grades] [--timeout 300] [--seed SECRET]
    make grade SUBMISSIONS=folder [GRADES=grades] [GRADE_ARGS="--seed SECRET"]

WARNING: this runs the students' code, with your rights. A notebook can read,
change or delete any file you can, use your network and any credentials it
finds (SSH keys, tokens, cloud logins). Grade only inside an isolated place: a
container or a throwaway virtual machine that holds the course and the
submissions and nothing else, with no credentials and no network, for example

    docker run --rm --network none -v "$PWD":/course -w /course IMAGE \\
        .venv/bin/python tools/grade.py submissions --out grades

(IMAGE: any image with Python 3.10+ where `make install` has run in /course).

Naming: each file in SUBMISSIONS is `<student>__<NN_slug>.ipynb`: the
student's name, two underscores, and the name of the chapter notebook it
answers, e.g. `ada_lovelace__05_first_vae.ipynb` for chapters/05_first_vae.ipynb.
Other files are listed as skipped.

Each notebook runs top to bottom in a fresh kernel of this environment, in an
empty temporary folder, with a time limit for the whole notebook (--timeout
seconds). A cell that raises does not stop the cells after it. Every exercise
check appends its outcome (passed, hint, message) as a JSON line to the file
that $VAECOURSE_CHECK_LOG names, set here for each notebook: the grade reads
those records, never the printed ✓ and ✗. An exercise whose check did not run
(its cell raised, was deleted, or the notebook stopped or ran out of time) is
a fail, with the reason as its hint; when a check ran twice, the last counts.

Hidden cases: with --seed SECRET, each student's checks draw their random
cases from a seed made of SECRET and the student's name ($VAECOURSE_CHECK_SEED
in the kernel): inputs no student has seen, different for each student, and
the same again when you grade again with the same SECRET. The fixed edge cases
stay as they are. Without --seed the cases are those of the book.

Writes OUT/grades.csv (student, chapter, exercise, result, hint, message: one
row per exercise), OUT/grades.md (a summary per student, the same rows, and
what went wrong in each notebook) and OUT/executed/, the notebooks as they ran.
A submission's code could also write false records: keep the check cells of
the student edition, and for a grade that counts, read its executed notebook.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import importlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TIMEOUT_S = 300
NAME = re.compile(r"(?P<student>[A-Za-z0-9][A-Za-z0-9._-]*?)__(?P<chapter>\d\d_[a-z0-9_]+)\.ipynb")
WARNING = ("WARNING: grading runs the students' code with your rights (files, network, "
           "credentials). Run it only in a container or a throwaway virtual machine with no "
           "credentials and no network; see `python tools/grade.py --help`.")
COLUMNS = ("student", "chapter", "exercise", "result", "hint", "message")


class Row(NamedTuple):
    student: str
    chapter: str
    exercise: str
    result: str  # "pass" or "fail"
    hint: str
    message: str


class Run(NamedTuple):
    """A notebook as it ran: the executed notebook, why it stopped early (or ""), seconds."""
    nb: nbformat.NotebookNode | None
    stopped: str
    seconds: float


def parse_name(filename: str) -> tuple[str, str] | None:
    """``(student, chapter)`` of ``<student>__<NN_slug>.ipynb``, or None."""
    match = NAME.fullmatch(filename)
    return (match["student"], match["chapter"]) if match else None


def check_module(chapter: str):
    """The module of checks of ``chapter`` (``05_first_vae`` → vaecourse.exercises.ch05_first_vae)."""
    return importlib.import_module(f"vaecourse.exercises.ch{chapter}")


def exercises(chapter: str) -> list[str]:
    """The exercises a chapter checks, in the order its module lists them."""
    module = check_module(chapter)
    return [getattr(module, n).exercise for n in module.__all__
            if hasattr(getattr(module, n), "exercise")]


def student_seed(secret: str, student: str) -> int:
    """A case seed from the teacher's secret and the student's name (31 bits)."""
    digest = hashlib.sha256(f"{secret}\0{student}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def execute(path: Path, env: dict, timeout: float) -> Run:
    """Run ``path`` in a fresh kernel in an empty folder; go on after a cell that raises."""
    start = time.monotonic()
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook: nothing runs
        return Run(None, f"the file is not a readable notebook ({type(exc).__name__}: {exc})", 0.0)
    stopped = ""
    with tempfile.TemporaryDirectory(prefix="grade-") as work:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                record_timing=False, store_widget_state=False,
                                resources={"metadata": {"path": work}})
        try:
            with client.setup_kernel(env=env):
                for index, cell in enumerate(nb.cells):
                    left = timeout - (time.monotonic() - start)
                    if left <= 0:
                        raise CellTimeoutError("the time limit")
                    client.timeout = max(1, int(left))
                    client.execute_cell(cell, index)
        except CellTimeoutError:
            stopped = f"the notebook ran past its time limit of {timeout:g} s"
        except DeadKernelError:
            stopped = "the kernel died (out of memory, or the code ended the process)"
        except Exception as exc:  # the kernel did not start, or nbclient failed
            stopped = f"the notebook could not run ({type(exc).__name__}: {exc})"
    return Run(nb, stopped, time.monotonic() - start)


def read_records(log: Path, module: str) -> dict[str, dict]:
    """The last record of each exercise of ``module`` in the JSON-lines ``log``."""
    records: dict[str, dict] = {}
    if not log.exists():
        return records
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("module") == module and "exercise" in record:
            records[record["exercise"]] = record
    return records


def cell_errors(nb) -> list[tuple[int, str]]:
    """``(cell number, "Name: value")`` of every code cell that raised, cells counted from 1."""
    out = []
    for number, cell in enumerate(nb.cells if nb is not None else [], 1):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                out.append((number, f"{output.get('ename')}: {output.get('evalue')}"))
    return out


def not_run_reason(exercise: str, run: Run) -> str:
    """Why the check of ``exercise`` left no record."""
    if run.nb is None:
        return f"not run: {run.stopped}"
    calls = [n for n, c in enumerate(run.nb.cells, 1)
             if c.cell_type == "code" and re.search(rf"\bcheck_{exercise}\s*\(", c.source)]
    if not calls:
        return f"not run: no cell calls check_{exercise}"
    errors = dict(cell_errors(run.nb))
    raised = [f"cell {n} raised {errors[n]}" for n in calls if n in errors]
    if raised:
        return "not run: " + "; ".join(raised)
    return f"not run: {run.stopped}" if run.stopped else "not run: the check left no record"


def grade_notebook(student: str, chapter: str, run: Run, records: dict[str, dict]) -> list[Row]:
    rows = []
    for exercise in exercises(chapter):
        record = records.get(exercise)
        if record is None:
            reason = not_run_reason(exercise, run)
            rows.append(Row(student, chapter, exercise, "fail", "not run", reason))
        else:
            rows.append(Row(student, chapter, exercise, "pass" if record.get("passed") is True
                            else "fail", str(record.get("hint", "")), str(record.get("message", ""))))
    return rows


def write_csv(rows: list[Row], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("\n", " "))


def write_markdown(rows: list[Row], notes: list[str], path: Path) -> None:
    students = sorted({r.student for r in rows})
    lines = ["# Grades", "", "| student | passed | of |", "| --- | --- | --- |"]
    for s in students:
        mine = [r for r in rows if r.student == s]
        lines.append(f"| {_cell(s)} | {sum(r.result == 'pass' for r in mine)} | {len(mine)} |")
    lines += ["", "## Exercises", "", "| " + " | ".join(COLUMNS) + " |",
              "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]
    if notes:
        lines += ["", "## Notebooks", ""] + [f"- {_cell(n)}" for n in notes]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def grade(submissions: Path, out: Path, timeout: float = DEFAULT_TIMEOUT_S,
          secret: str | None = None) -> list[Row]:
    """Grade every ``<student>__<NN_slug>.ipynb`` in ``submissions``; write the reports to ``out``."""
    chapters = {p.stem for p in (ROOT / "chapters").glob("*.ipynb")}
    rows: list[Row] = []
    notes: list[str] = []
    (out / "executed").mkdir(parents=True, exist_ok=True)
    for path in sorted(submissions.iterdir()):
        if not path.is_file():
            continue
        parsed = parse_name(path.name)
        if parsed is None or parsed[1] not in chapters:
            why = ("not named <student>__<NN_slug>.ipynb" if parsed is None
                   else f"no chapter {parsed[1]}")
            notes.append(f"{path.name}: skipped, {why}")
            print(f"{path.name}: skipped, {why}")
            continue
        student, chapter = parsed
        with tempfile.TemporaryDirectory(prefix="grade-log-") as folder:
            log = Path(folder) / "checks.jsonl"
            env = {**os.environ, "VAECOURSE_CHECK_LOG": str(log),
                   "VAECOURSE_CHECK_SEED": str(student_seed(secret, student)) if secret else "",
                   "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
            run = execute(path, env, timeout)
            records = read_records(log, check_module(chapter).__name__)
        mine = grade_notebook(student, chapter, run, records)
        rows += mine
        if run.nb is not None:
            nbformat.write(run.nb, out / "executed" / path.name)
        problems = [f"cell {n} raised {e}" for n, e in cell_errors(run.nb)]
        problems += [run.stopped] if run.stopped else []
        if problems:
            notes.append(f"{path.name}: " + "; ".join(problems))
        passed = sum(r.result == "pass" for r in mine)
        print(f"{path.name}: {passed}/{len(mine)} passed ({run.seconds:.1f} s)"
              + (f"; {run.stopped}" if run.stopped else ""))
    write_csv(rows, out / "grades.csv")
    write_markdown(rows, notes, out / "grades.md")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="folder of <student>__<NN_slug>.ipynb")
    parser.add_argument("--out", type=Path, default=Path("grades"),
                        help="folder for grades.csv, grades.md, executed/ (default: grades)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds per notebook (default: {DEFAULT_TIMEOUT_S})")
    parser.add_argument("--seed", metavar="SECRET", default=None,
                        help="draw each student's random cases from SECRET and their name")
    args = parser.parse_args(argv)
    print(WARNING, file=sys.stderr)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    rows = grade(args.submissions, args.out, args.timeout, args.seed)
    print(f"{sum(r.result == 'pass' for r in rows)}/{len(rows)} exercises passed; "
          f"wrote {args.out / 'grades.csv'} and {args.out / 'grades.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
