"""A submitted answer: whose function it is, and what a grader reads of its check.

Every public ``check_*`` of a chapter is decorated with :func:`exercise`, which

- refuses a function that is not the student's own (:func:`borrowed`): the
  library's function itself, one imported from any module (a notebook's own
  functions live in ``__main__``), one that uses the library's answer to the
  exercise, or one that only passes its arguments on to a library function;
- when a grader sets ``$VAECOURSE_CHECK_LOG`` to a file, appends the outcome to
  it as one JSON line (``tools/grade.py`` reads them; nothing is printed).

A check draws its random cases from :func:`rng`; ``$VAECOURSE_CHECK_SEED`` (an
integer; unset: 0) shifts every seed, so a grader can check each student on
inputs nobody has seen. Unset, both variables change nothing.
"""
from __future__ import annotations

import dis
import functools
import json
import os
import types
from typing import Callable

import torch

from ._check import CheckResult, _fail

__all__ = ["exercise", "borrowed", "rng"]

# Modules whose functions count as the student's own: a notebook runs its cells in __main__.
SUBMISSION_MODULES = frozenset({"__main__"})
LIBRARY_PACKAGES = ("vaecore", "vaecourse")
LOG_VARIABLE = "VAECOURSE_CHECK_LOG"
SEED_VARIABLE = "VAECOURSE_CHECK_SEED"


def rng(seed: int) -> torch.Generator:
    """The generator of a check's random cases: ``seed``, shifted by ``$VAECOURSE_CHECK_SEED``."""
    shift = os.environ.get(SEED_VARIABLE, "").strip()
    try:
        shift = int(shift) if shift else 0
    except ValueError:
        raise ValueError(f"${SEED_VARIABLE}: expected an integer, got {shift!r}") from None
    return torch.Generator().manual_seed((seed + shift) % 2 ** 63)


def _qualname(obj) -> str:
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    module = getattr(obj, "__module__", None)
    return f"{module}.{name}" if module else name


def _in_library(obj) -> bool:
    module = getattr(obj, "__module__", None)
    return isinstance(module, str) and module.split(".")[0] in LIBRARY_PACKAGES


def _code_names(code: types.CodeType) -> set[str]:
    """Every global and attribute name used by ``code`` and the code nested in it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _functions(fn) -> list[types.FunctionType]:
    """The Python functions behind a callable: itself, what it wraps, its ``__call__``."""
    out = []
    for f in (fn, getattr(fn, "__wrapped__", None), getattr(type(fn), "__call__", None)):
        if isinstance(f, types.FunctionType) and f not in out:
            out.append(f)
    if isinstance(fn, functools.partial):
        out += _functions(fn.func)
    return out


def _reachable(fn) -> list:
    """The objects ``fn``'s code can reach by name: its globals, closure cells, defaults,
    attributes of library modules (``vaecore.kl.kl_bernoulli``), partials' functions,
    and, recursively, the same for the notebook's own functions it uses."""
    found, seen, todo = [], set(), _functions(fn)
    while todo:
        f = todo.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        names = _code_names(f.__code__)
        values = [f.__globals__[n] for n in names if n in f.__globals__]
        for cell in f.__closure__ or ():
            try:
                values.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        values += list(f.__defaults__ or ()) + list((f.__kwdefaults__ or {}).values())
        frontier = values
        for _ in range(4):  # module.sub.module.function
            frontier = [getattr(m, n) for m in frontier
                        if isinstance(m, types.ModuleType) and _in_library_module(m)
                        for n in names if n in vars(m)]
            values = values + frontier
        for v in values:
            found.append(v)
            if isinstance(v, functools.partial):
                found.append(v.func)
            if getattr(v, "__module__", None) in SUBMISSION_MODULES:
                todo += _functions(v)
    return found


def _in_library_module(module: types.ModuleType) -> bool:
    return module.__name__.split(".")[0] in LIBRARY_PACKAGES


_LOAD_ONLY = {"RESUME", "NOP", "CACHE", "EXTENDED_ARG", "COPY_FREE_VARS", "MAKE_CELL",
              "PUSH_NULL", "PRECALL", "KW_NAMES", "BUILD_TUPLE", "BUILD_LIST", "BUILD_MAP",
              "BUILD_CONST_KEY_MAP", "LIST_EXTEND", "LIST_TO_TUPLE", "DICT_MERGE",
              "DICT_UPDATE", "RETURN_VALUE"}


def _only_calls_once(fn) -> bool:
    """Whether ``fn``'s body is ``return f(args)`` with its arguments passed on unchanged:
    nothing but loads, exactly one call, and the return of its result."""
    ops = [i.opname for i in dis.get_instructions(fn)]
    calls = [op for op in ops if op.startswith("CALL") and not op.startswith("CALL_INTRINSIC")]
    return (len(calls) == 1 and ops[-1] == "RETURN_VALUE"
            and all(op.startswith(("LOAD_", "CALL")) or op in _LOAD_ONLY for op in ops))


def borrowed(name: str, fn, library=()) -> CheckResult | None:
    """Why ``fn`` is not the student's own answer (a failed :class:`CheckResult`), or None.

    Refused: a function of ``vaecore``/``vaecourse`` itself; any function not
    defined in the notebook (its module is not ``__main__``); a notebook
    function that can reach one of ``library`` (the library's answers to this
    exercise) through its globals, closure or defaults; and a notebook function
    whose body only passes its arguments on to one library function.
    """
    if _in_library(fn):
        return _fail(name, "library", f"this is {_qualname(fn)}, the library's own function, "
                     "not one defined in your notebook. Did the cell that defines your answer "
                     "run without an error? Run it, then this check again.")
    if getattr(fn, "__module__", None) not in SUBMISSION_MODULES:
        return _fail(name, "library", f"this is {_qualname(fn)}, defined outside your notebook: "
                     "write the answer in a cell of the notebook, and pass that function.")
    reachable = _reachable(fn)
    for obj in reachable:
        if any(obj is lib for lib in library):
            return _fail(name, "library", f"your function uses {_qualname(obj)}, the library's "
                         "answer to this exercise, which the check compares yours with: write "
                         "the computation yourself.")
    if any(_only_calls_once(f) for f in _functions(fn)):
        for obj in reachable:
            if callable(obj) and _in_library(obj):
                return _fail(name, "library", "your function only passes its arguments on to "
                             f"{_qualname(obj)}: write the computation yourself.")
    return None


def _record(check: Callable, name: str, result: CheckResult) -> None:
    """Append the outcome to ``$VAECOURSE_CHECK_LOG`` as one JSON line, if it is set."""
    path = os.environ.get(LOG_VARIABLE)
    if not path:
        return
    line = json.dumps({"module": check.__module__, "exercise": name, "passed": bool(result.passed),
                       "hint": result.hint, "message": result.message}, ensure_ascii=False)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def exercise(*library: Callable) -> Callable:
    """Decorate a chapter's ``check_<name>(student_fn)``: refuse what :func:`borrowed` refuses
    (``library``: the library's functions that answer the exercise), then run the check,
    then record its outcome for a grader. The exercise's name is ``<name>``."""
    def wrap(check: Callable) -> Callable:
        name = check.__name__[len("check_"):] if check.__name__.startswith("check_") else check.__name__

        @functools.wraps(check)
        def checked(student, *args, **kwargs) -> CheckResult:
            result = borrowed(name, student, library)
            if result is None:
                result = check(student, *args, **kwargs)
            _record(check, name, result)
            return result

        checked.exercise = name
        return checked
    return wrap
