"""Self-checks for the course's exercises: one module per chapter, named after its notebook.

``vaecourse.exercises.ch05_first_vae`` holds the checks of
``chapters/05_first_vae.ipynb``; a chapter imports its own module only
(``from vaecourse.exercises.ch01_quickstart import check_bits_per_dim``), so
checking chapter 1 loads neither the model zoo nor any other chapter's code.
Each ``check_*`` takes the student's function, runs it and the library's
reference on random inputs (fixed seed) and edge cases, and returns a
:class:`CheckResult` that displays as a pass or as a hint on what differs
(the comparison and its hints are in ``_check``). A check refuses a function
that is not the student's own, such as the library's, and can record its
outcome for ``tools/grade.py`` (both in ``_submission``). Exercises whose answer
is a derived number or the outcome of a small experiment are checked with the
helpers of ``_answers``: the student's function returns the number, or trains or
changes something, and the check compares the number or measures the result.
"""
from ._check import CheckResult, diagnose, run_cases

__all__ = ["CheckResult", "diagnose", "run_cases"]
