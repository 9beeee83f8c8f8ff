"""Fixtures of the unit tests (the root conftest.py orders and times the whole suite)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _answers_written_in_the_test_count_as_the_notebook_s(request, monkeypatch):
    """The tests of a chapter's checks (``test_vaecourse_exercises_chNN_*``) pass functions
    defined in the test module where a student passes functions defined in the notebook
    (``__main__``): let the checks accept both there, and only there."""
    name = request.module.__name__
    if re.match(r"test_vaecourse_exercises_ch\d\d_", name.rpartition(".")[2]):
        from vaecourse.exercises import _submission
        monkeypatch.setattr(_submission, "SUBMISSION_MODULES", frozenset({"__main__", name}))


@pytest.fixture(scope="session")
def book_html(tmp_path_factory) -> Path:
    """The book, built once per test run as `make book` builds it: its HTML folder.

    The tests of the built pages (test_book_build.py, test_rendered_book.py) share it. Under
    pytest-xdist the workers share one temporary folder: the first to need the book builds it
    there, holding a lock, and the others wait for it and read its outcome.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    out, outcome = shared / "book", shared / "book" / "outcome.json"
    with FileLock(str(shared / "book.lock")):
        if not outcome.exists():
            out.mkdir(exist_ok=True)
            # As `make book` does: export the decoder that chapter 6's live explorer runs.
            export = subprocess.run([sys.executable, "tools/export_explorer.py"], cwd=ROOT,
                                    capture_output=True, text=True, timeout=300)
            jb = Path(sys.executable).with_name("jupyter-book")
            build = subprocess.run([str(jb), "build", ".", "--toc", "book/_toc.yml", "--config",
                                    "_config.yml", "-W", "--keep-going", "--path-output", str(out)],
                                   cwd=ROOT, capture_output=True, text=True, timeout=900)
            outcome.write_text(json.dumps({
                "export": [export.returncode, export.stdout + export.stderr],
                "build": [build.returncode, build.stdout + build.stderr]}), encoding="utf-8")
    result = json.loads(outcome.read_text(encoding="utf-8"))
    code, log = result["export"]
    assert code == 0, f"tools/export_explorer.py failed: {log[-3000:]}"
    code, log = result["build"]
    assert code == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    return out / "_build" / "html"
