"""The one-line setup every chapter calls: one thread, fixed seeds.

``setup()`` is the only function in vaecore whose purpose is a side effect: it
makes a chapter's outputs identical from run to run, so that ``pytest --nbval``
can compare them with the committed ones.
"""
from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["setup"]


def _inline_figures() -> None:
    """In a notebook, display returned ``Figure`` objects as PNG images."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to display into
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        shell.run_line_magic("matplotlib", "inline")


def setup(seed: int = 0, threads: int = 1) -> torch.Generator:
    """Use ``threads`` CPU threads and seed Python, NumPy and torch with ``seed``.

    In a notebook it also turns on inline figures, so a cell ending with a
    ``matplotlib.figure.Figure`` shows it.

    One thread makes floating-point reductions run in a fixed order, so two
    executions print the same numbers. Returns a ``torch.Generator`` seeded
    with ``seed`` for code that takes an explicit generator.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: expected an int, got {seed!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected a positive int, got {threads!r}")
    torch.set_num_threads(threads)
    _inline_figures()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
