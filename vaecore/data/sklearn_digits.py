"""scikit-learn's 8x8 handwritten digits: a tiny dataset that ships with the library.

1797 images of 8x8 pixels with 17 grey levels (0..16), no download needed;
small enough to train a VAE in seconds on a CPU.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from vaecore.data.dataset import Dataset

__all__ = ["digits"]

_SPLITS = ("train", "test", "all")


@functools.lru_cache(maxsize=1)
def _load():
    """Pixels (1797, 1, 8, 8) float32 in [0, 1] and labels (1797,) int64, read-only."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _test_mask(y: np.ndarray) -> np.ndarray:
    """True for every fifth example of each class, in dataset order (a stratified split)."""
    rank = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        where = np.flatnonzero(y == label)
        rank[where] = np.arange(len(where))
    return rank % 5 == 4


def digits(split: str = "train") -> Dataset:
    """The scikit-learn digits (UCI optical digits) as a ``Dataset``.

    Returns ``x`` float32 (N, 1, 8, 8) in [0, 1] (grey level / 16), ``y`` int64
    (N,) the digit, ``classes`` ``('0', ..., '9')``. ``split="all"`` gives all
    1797 images; ``"test"`` the 5th, 10th, 15th, ... image of each digit in
    dataset order (355 images, 35 or 36 per digit) and ``"train"`` the other
    1442. The split is fixed by position, not by a random generator, so it never
    changes between library versions. Raises ``ValueError`` for an unknown split.
    """
    if not isinstance(split, str) or split not in _SPLITS:
        raise ValueError(f"digits: split must be one of {_SPLITS}, got {split!r}")
    x, y = _load()
    if split != "all":
        keep = _test_mask(y) == (split == "test")
        x, y = x[keep], y[keep]
    return Dataset(torch.tensor(x), torch.tensor(y), tuple("0123456789"))
