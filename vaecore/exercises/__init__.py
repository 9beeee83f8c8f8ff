"""Self-checks for the course's exercises: one function per exercise, named after it.

Each ``check_*`` takes the student's function, runs it and the library's
reference on random inputs (fixed seed) and edge cases, and returns a
:class:`CheckResult` that displays as a pass or as a hint on what differs.
The checks of each chapter live in their own module here; every public
``check_*`` is re-exported, so a chapter cell reads
``from vaecore.exercises import check_bits_per_dim``.
"""
import importlib as _importlib
import pkgutil as _pkgutil

from ._check import CheckResult, diagnose, run_cases

__all__ = ["CheckResult", "diagnose", "run_cases"]

for _module in _pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        _mod = _importlib.import_module(f"{__name__}.{_module.name}")
        for _name in _mod.__all__:
            if _name in globals():
                raise ImportError(f"{_name} is defined by two exercise modules")
            globals()[_name] = getattr(_mod, _name)
            __all__.append(_name)
