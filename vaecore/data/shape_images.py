"""A procedural dataset of filled shapes: rectangles, circles and triangles.

Every image holds one white shape on black, at a random position and size;
the class is the shape. Known generative factors (class, position, width,
height, orientation) make it a good test bed for what a VAE's latent space
captures. Shapes are rasterised with vectorised numpy masks: a pixel is on
when its centre lies inside the shape.

- rectangle: axis-aligned, width and height drawn independently;
- circle: its diameter is the drawn width;
- triangle: one side lies along an edge of its bounding box and the opposite
  corner on the facing edge (pointing up, down, left or right), so it fills
  half of its bounding box.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

from vaecore._checks import check_positive_int
from vaecore.data.dataset import Dataset

__all__ = ["SHAPE_CLASSES", "shapes"]

SHAPE_CLASSES = ("rectangle", "circle", "triangle")
_MIN_EXTENT, _MAX_EXTENT = 0.35, 0.85  # shape size as a fraction of the image side


def _rectangle(u, v, rng):
    """Inside test in box coordinates ``u, v`` in [0, 1] across the bounding box."""
    return (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)


def _circle(u, v, rng):
    return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25


def _triangle(u, v, rng):
    """Base on one edge of the box, apex at a random point of the opposite edge."""
    m = len(u)
    apex = rng.uniform(0, 1, (m, 1, 1)).astype(np.float32)
    turn = rng.integers(0, 4, (m, 1, 1))
    a = np.where(turn >= 2, v, u)          # along the base
    b = np.where(turn >= 2, u, v)          # from apex (0) to base (1)
    b = np.where(turn % 2 == 1, 1 - b, b)
    return (b >= 0) & (b <= 1) & (a >= apex * (1 - b)) & (a <= apex + (1 - apex) * b)


def _draw(label: int, m: int, size: int, rng) -> np.ndarray:
    """``m`` boolean masks (m, size, size) of the shape class ``label``."""
    width = rng.uniform(_MIN_EXTENT, _MAX_EXTENT, (m, 1, 1)) * size
    height = width if label == 1 else rng.uniform(_MIN_EXTENT, _MAX_EXTENT, (m, 1, 1)) * size
    left = rng.uniform(0, 1, (m, 1, 1)) * (size - width)
    top = rng.uniform(0, 1, (m, 1, 1)) * (size - height)
    centres = np.arange(size, dtype=np.float32) + 0.5
    u = ((centres[None, None, :] - left) / width).astype(np.float32)
    v = ((centres[None, :, None] - top) / height).astype(np.float32)
    inside = (_rectangle, _circle, _triangle)[label]
    return inside(np.broadcast_to(u, (m, size, size)), np.broadcast_to(v, (m, size, size)), rng)


def _check_args(n, size, noise) -> None:
    check_positive_int("n", n)
    check_positive_int("size", size)
    if size < 8:
        raise ValueError(f"size: expected at least 8 pixels, got {size}")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not noise >= 0:
        raise ValueError(f"noise: expected a standard deviation >= 0, got {noise!r}")


def shapes(n: int = 10000, *, size: int = 32, seed=0, noise: float = 0.0) -> Dataset:
    """``n`` images of one filled rectangle, circle or triangle each, classes balanced.

    Returns a ``Dataset``: ``x`` float32 (n, 1, size, size) in [0, 1] (shape 1,
    background 0, plus Gaussian pixel noise of standard deviation ``noise``
    clipped to [0, 1]); ``y`` int64 (n,) with ``classes`` ``("rectangle",
    "circle", "triangle")``, each class n // 3 or n // 3 + 1 times in random
    order. Each shape spans 35 % to 85 % of the image side. The same ``seed``
    (an int or a ``numpy.random.Generator``) gives the same images. Raises
    ``ValueError`` for n < 1, size < 8 or noise < 0.
    """
    _check_args(n, size, noise)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    x = np.zeros((n, size, size), dtype=np.float32)
    for label in range(len(SHAPE_CLASSES)):
        where = np.flatnonzero(y == label)
        x[where] = _draw(label, len(where), size, rng)
    if noise > 0:
        x += np.float32(noise) * rng.standard_normal(x.shape, dtype=np.float32)
        np.clip(x, 0, 1, out=x)
    return Dataset(torch.from_numpy(x[:, None]), torch.from_numpy(y.astype(np.int64)),
                   SHAPE_CLASSES)
