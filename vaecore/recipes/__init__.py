"""Recipes of the model zoo (see :mod:`vaecore.zoo`), one module per chapter.

Each module defines ``RECIPES``, a dict from checkpoint name to
:class:`vaecore.zoo.Recipe`; this package merges them.
"""
import importlib as _importlib
import pkgutil as _pkgutil

RECIPES: dict = {}

for _module in _pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        _mod = _importlib.import_module(f"{__name__}.{_module.name}")
        _clash = set(_mod.RECIPES) & set(RECIPES)
        if _clash:
            raise ValueError(f"recipe names defined twice: {sorted(_clash)}")
        RECIPES.update(_mod.RECIPES)
