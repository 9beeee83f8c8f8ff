"""Load a script of tools/ (or benchmarks/) as a module, for the tests that exercise it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tool(name: str, folder: str = "tools"):
    """The module ``ROOT/<folder>/<name>.py``, executed once per call."""
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
