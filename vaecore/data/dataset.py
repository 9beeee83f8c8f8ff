"""``Dataset``: a whole dataset held in memory as two tensors.

Datasets in this course are small, so they live in memory and batches are
slices by index (much faster than per-sample ``__getitem__`` pipelines).
Images are ``x``: float32, shape ``(N, C, H, W)``, values in ``[0, 1]``;
labels are ``y``: int64, shape ``(N,)``, with ``classes[y[i]]`` the name of
example ``i``'s class.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

__all__ = ["Dataset", "from_uint8"]


class Dataset(NamedTuple):
    """Images ``x`` (N, C, H, W) float32 in [0, 1], labels ``y`` (N,) int64, class names."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]

    def __repr__(self) -> str:
        names = self.classes if len(self.classes) <= 4 else (
            *self.classes[:2], "...", self.classes[-1])
        return (f"Dataset(x={self.x.dtype} {tuple(self.x.shape)}, "
                f"y={self.y.dtype} {tuple(self.y.shape)}, classes={names})")


def from_uint8(images: np.ndarray, labels: np.ndarray, classes) -> Dataset:
    """Build a ``Dataset`` from uint8 images ``(N, C, H, W)`` and integer labels ``(N,)``.

    Pixels are divided by 255. The tensors returned are new (never views of
    ``images`` or ``labels``), so callers may modify them freely.
    """
    x = np.divide(images, np.float32(255), dtype=np.float32)
    y = np.asarray(labels).astype(np.int64)
    return Dataset(torch.from_numpy(x), torch.from_numpy(y), tuple(classes))
