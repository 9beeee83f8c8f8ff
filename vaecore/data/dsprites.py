r"""dSprites at 32 × 32, generated here: every combination of five known factors exactly once.

dSprites (Matthey, Higgins, Hassabis and Lerchner, 2017,
https://github.com/deepmind/dsprites-dataset) holds 737,280 binary 64 × 64
images of one white sprite on black, one image per combination of its
factors. Its README gives the factors' values:

===========  ====================================  =======================================
factor       the original                          here (the default grid)
===========  ====================================  =======================================
color        white                                 white (not a factor here)
shape        square, ellipse, heart                square, ellipse, heart
scale        6 values linearly spaced in [0.5, 1]  the same 6 values
orientation  40 values in [0, 2π]                  10 values :math:`2\pi k / 10`, k = 0..9
position x   32 values in [0, 1]                   16 values linearly spaced in [0, 1]
position y   32 values in [0, 1]                   16 values linearly spaced in [0, 1]
===========  ====================================  =======================================

so 3 × 6 × 10 × 16 × 16 = 46,080 images of 32 × 32 pixels. Where ours differ:
the original's 40 orientations span the closed interval [0, 2π], and its
first and last are reported to draw the same image (issue 7 of its
repository); ours stop short of 2π, so no two orientations coincide. The README gives no pixel sizes; ours are: a sprite of scale
:math:`s` fits in a disc of radius :math:`s \cdot 0.25` of the image side
around its centre, and the centre runs over :math:`[0.25, 0.75]` of the side
as the position runs over :math:`[0, 1]`, so no sprite is ever clipped. In
a sprite's own unit disc the square has half-side :math:`1/\sqrt 2`, the
ellipse semi-axes 1 and 1/2, and the heart is :math:`(x^2 + y^2 - 1)^3 \le
x^2 y^3` with :math:`(x, y) = 1.25\,(u, v) + (0, 0.25)`, whose tip touches the
disc. The sprite is turned counter-clockwise by its orientation (the heart
points down at 0); ``pos_x`` runs left to right and ``pos_y`` top to bottom.
A pixel is on when its centre lies inside the sprite.

As in the original, the square (90°) and the ellipse (180°) are symmetric:
orientations :math:`\theta` and :math:`\theta + \pi` draw the same image for
them, so the 46,080 images hold 30,720 different factor combinations up to
symmetry. Of these, 28 pairs draw the same pixels: axis-aligned squares of
scales 0.5 and 0.6 at positions where the two sizes cover the same pixel
centres, so 30,692 images are distinct. Images are ordered as in the
original: the last factor (``pos_y``) varies fastest.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from vaecore._checks import check_positive_int

__all__ = ["SPRITE_SHAPES", "FACTOR_NAMES", "Sprites", "dsprites", "render_sprites"]

SPRITE_SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
_RADIUS = 0.25  # a scale-1 sprite's radius, as a fraction of the image side
_CHUNK = 4096   # images rasterised at a time (bounds the temporaries' memory)


class Sprites(NamedTuple):
    """Images and their factors.

    ``x``: float32 ``(N, 1, size, size)``, 0 or 1; ``factors``: int64 ``(N, 5)``,
    the index of each factor's value in ``levels``; ``values``: float64
    ``(N, 5)``, the values themselves (shape as its index 0, 1, 2);
    ``names``: the five factor names; ``levels``: one float64 tensor of the
    possible values per factor.
    """
    x: torch.Tensor
    factors: torch.Tensor
    values: torch.Tensor
    names: tuple[str, ...]
    levels: tuple[torch.Tensor, ...]


def _inside(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether the points ``(u, v)`` of a sprite's unit disc lie inside the shape ``shape``."""
    if shape == 0:
        return torch.maximum(u.abs(), v.abs()) <= 1 / math.sqrt(2)
    if shape == 1:
        return u ** 2 + (2 * v) ** 2 <= 1
    x, y = 1.25 * u, 1.25 * v + 0.25
    return (x ** 2 + y ** 2 - 1) ** 3 <= x ** 2 * y ** 3


def _rasterise(values: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Masks ``(N, len(py), len(px))`` of the sprites ``values`` ``(N, 5)`` at pixel centres.

    ``px`` and ``py`` are in units of the image side, ``py`` measured from the top.
    """
    masks = torch.zeros(len(values), len(py), len(px), dtype=torch.bool)
    for shape in range(len(SPRITE_SHAPES)):
        rows = (values[:, 0] == shape).nonzero()[:, 0]
        for chunk in rows.split(_CHUNK):
            _, scale, theta, pos_x, pos_y = (c[:, None, None] for c in values[chunk].unbind(1))
            # centre in [R, 1 - R]; $(u, v) = R_{-\theta}\,(p - c) / (s R)$, y up
            dx = (px[None, None, :] - (_RADIUS + pos_x * (1 - 2 * _RADIUS))).float()
            dy = ((_RADIUS + pos_y * (1 - 2 * _RADIUS)) - py[None, :, None]).float()
            r = scale * _RADIUS
            cos, sin = (torch.cos(theta) / r).float(), (torch.sin(theta) / r).float()
            masks[chunk] = _inside(shape, cos * dx + sin * dy, cos * dy - sin * dx)
    return masks


def _pixel_centres(size: int) -> torch.Tensor:
    return (torch.arange(size, dtype=torch.float64) + 0.5) / size


def render_sprites(shape, scale, orientation, pos_x, pos_y, *, size: int = 32) -> torch.Tensor:
    """Images of sprites with any factor values: float32 ``(N, 1, size, size)``, 0 or 1.

    Each argument is a tensor ``(N,)`` or a number (broadcast): ``shape`` an
    index into ``SPRITE_SHAPES``, ``scale`` in ``(0, 1]`` (larger sprites
    can be clipped), ``orientation`` in radians, ``pos_x`` and ``pos_y`` in
    ``[0, 1]``. The geometry is the module's, so a traversal between grid
    values draws what :func:`dsprites` would.
    """
    check_positive_int("size", size)
    columns = torch.broadcast_tensors(*(torch.as_tensor(c, dtype=torch.float64)
                                        for c in (shape, scale, orientation, pos_x, pos_y)))
    values = torch.stack([c.reshape(-1) for c in columns], 1)
    if not set(values[:, 0].unique().tolist()) <= {0.0, 1.0, 2.0}:
        raise ValueError(f"shape: expected indices 0, 1, 2 into {SPRITE_SHAPES}")
    centres = _pixel_centres(size)
    return _rasterise(values, centres, centres).to(torch.float32)[:, None]


def dsprites(*, orientations: int = 10, positions: int = 16, size: int = 32) -> Sprites:
    r"""Every combination of the factors once: 46,080 images of 32 × 32 with the defaults.

    3 shapes × 6 scales (:math:`0.5, 0.6, \dots, 1`) × ``orientations``
    angles :math:`2\pi k / \text{orientations}` × ``positions`` × ``positions``
    positions linearly spaced in :math:`[0, 1]`, ordered with ``pos_y``
    fastest. Deterministic (no random numbers); a few seconds on one CPU core.

    Returns:
        :class:`Sprites`: ``x`` ``(N, 1, size, size)`` float32 in {0, 1},
        ``factors`` ``(N, 5)`` int64 indices, ``values`` ``(N, 5)`` float64,
        ``names`` = ``FACTOR_NAMES``, ``levels`` (one tensor of values per factor).
    """
    for name, value in (("orientations", orientations), ("positions", positions), ("size", size)):
        check_positive_int(name, value)
    if positions < 2:
        raise ValueError(f"positions: expected at least 2, got {positions}")
    levels = (torch.arange(3, dtype=torch.float64),
              torch.linspace(0.5, 1.0, 6, dtype=torch.float64),
              2 * math.pi * torch.arange(orientations, dtype=torch.float64) / orientations,
              torch.linspace(0.0, 1.0, positions, dtype=torch.float64),
              torch.linspace(0.0, 1.0, positions, dtype=torch.float64))
    factors = torch.cartesian_prod(*(torch.arange(len(v)) for v in levels))
    values = torch.stack([v[i] for v, i in zip(levels, factors.unbind(1))], 1)
    x = render_sprites(*values.unbind(1), size=size)
    return Sprites(x, factors, values, FACTOR_NAMES, levels)
