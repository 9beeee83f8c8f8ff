"""Test-suite plumbing shared by the unit tests and the chapters (nbval).

- Long items run first, so that with ``pytest -n 2 --dist loadfile
  --no-loadscope-reorder`` (how ``make test`` runs) the two workers finish
  together: the book build and the other tests marked ``slow``, then the
  chapters, then the unit tests. Items of one file keep their order and stay on
  one worker (nbval needs that: a chapter's cells share one kernel). Without
  ``--no-loadscope-reorder``, pytest-xdist hands out files by their number of
  tests instead, the largest first, and this order is lost.
- At the end, the time of every chapter (the sum of its cells) is printed
  beside the README's budget, so that drift is visible in every run. The
  budget is read, never asserted: a timed test would fail on a busy machine.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

# Seconds per chapter on one core: the README's budget ("Time budget").
CHAPTER_BUDGET_S = 25
CHAPTER_CAP_S = 40


def _rank(item) -> int:
    if item.get_closest_marker("book") or item.get_closest_marker("slow"):
        return 0
    return 1 if item.path.suffix == ".ipynb" else 2


def pytest_collection_modifyitems(config, items):
    items.sort(key=_rank)  # stable: the order inside each rank and file is kept


def pytest_terminal_summary(terminalreporter):
    per_file: dict[str, float] = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid = getattr(report, "nodeid", "")
            path = nodeid.split("::")[0]
            if path.endswith(".ipynb") and hasattr(report, "duration"):
                per_file[path] += report.duration
    if not per_file:
        return
    tr = terminalreporter
    tr.section("chapter durations (all cells, s)")
    over = 0
    for path, seconds in sorted(per_file.items()):
        flag = ""
        if seconds > CHAPTER_CAP_S:
            flag, over = f"  over the {CHAPTER_CAP_S} s cap", over + 1
        elif seconds > CHAPTER_BUDGET_S:
            flag = f"  over the {CHAPTER_BUDGET_S} s aim"
        tr.write_line(f"{seconds:7.1f}  {Path(path).name}{flag}")
    total = sum(per_file.values())
    tr.write_line(f"{total:7.1f}  all {len(per_file)} chapters "
                  f"(mean {total / len(per_file):.1f} s; budget in README.md)")
