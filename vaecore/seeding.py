"""Seeded construction that leaves the caller's random stream alone.

``torch.nn`` layers draw their initial weights from torch's global generator.
:func:`local_seed` runs a block on a forked copy of that generator, seeded
with ``seed``: the block sees the same numbers as after
``torch.manual_seed(seed)``, and the caller's global generator is exactly
where it was before the block. Building a model this way is reproducible and
has no side effect on the code around it.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["local_seed"]


@contextmanager
def local_seed(seed: int) -> Iterator[None]:
    """Run the block with torch's global CPU generator seeded with ``seed``, then restore it."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: expected an int, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
