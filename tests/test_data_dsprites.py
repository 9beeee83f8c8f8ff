"""Tests for vaecore.data.dsprites: the factor grid, its ranges, and the geometry of the sprites."""
import math

import pytest
import torch

from vaecore.data.dsprites import (FACTOR_NAMES, SPRITE_SHAPES, _pixel_centres, _rasterise,
                                   dsprites, render_sprites)


@pytest.fixture(scope="module")
def full():
    return dsprites()


def _distinct(x: torch.Tensor) -> int:
    """How many different images: four random integer hashes, exact in float32 (sums < 2^24)."""
    g = torch.Generator().manual_seed(0)
    weights = torch.randint(0, 2 ** 14, (x[0].numel(), 4), generator=g)
    return len(torch.unique(x.reshape(len(x), -1) @ weights.float(), dim=0))


def test_every_factor_combination_exactly_once_in_the_original_order(full):
    assert full.x.shape == (46_080, 1, 32, 32) and full.x.dtype == torch.float32
    assert full.factors.shape == (46_080, 5) and full.names == FACTOR_NAMES
    assert [len(v) for v in full.levels] == [3, 6, 10, 16, 16]
    key = full.factors @ torch.tensor([6 * 10 * 16 * 16, 10 * 16 * 16, 16 * 16, 16, 1])
    assert torch.equal(key, torch.arange(46_080))  # each combination once, pos_y fastest
    for j, level in enumerate(full.levels):
        assert torch.equal(full.values[:, j], level[full.factors[:, j]])


def test_factor_ranges_follow_the_published_ones(full):
    shape, scale, orientation, pos_x, pos_y = full.levels
    assert shape.tolist() == [0.0, 1.0, 2.0]
    assert torch.allclose(scale, torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9, 1.0], dtype=torch.float64))
    assert orientation[0] == 0 and orientation[-1] < 2 * math.pi
    assert torch.allclose(orientation.diff(), torch.tensor(math.pi / 5, dtype=torch.float64))
    for pos in (pos_x, pos_y):
        assert pos[0] == 0 and pos[-1] == 1
        assert torch.allclose(pos.diff(), torch.tensor(1 / 15, dtype=torch.float64))


def test_binary_nonempty_and_distinct_but_for_the_documented_symmetries(full):
    assert ((full.x == 0) | (full.x == 1)).all()
    assert full.x.sum((1, 2, 3)).min() >= 20  # the smallest sprite still covers 20 pixels
    # square (90°) and ellipse (180°) repeat after half a turn: 5 of their 10 angles
    assert _distinct(full.x) == (5 + 5 + 10) * 6 * 16 * 16 - 28


def test_symmetric_shapes_repeat_after_their_symmetry_and_the_heart_does_not():
    theta = torch.linspace(0.1, 6.0, 7, dtype=torch.float64)

    def draw(shape, turn):
        return render_sprites(shape, 0.9, theta + turn, 0.37, 0.61)

    differ = lambda a, b: (a - b).abs().sum((1, 2, 3))
    assert differ(draw(0, math.pi / 2), draw(0, 0.0)).max() <= 2   # square: a quarter turn
    assert differ(draw(1, math.pi), draw(1, 0.0)).max() <= 2       # ellipse: half a turn
    assert differ(draw(1, math.pi / 2), draw(1, 0.0)).min() > 20   # but not a quarter
    assert differ(draw(2, math.pi), draw(2, 0.0)).min() > 20       # the heart: no symmetry
    assert differ(draw(2, 2 * math.pi), draw(2, 0.0)).max() <= 2   # but a full turn


def test_a_larger_scale_covers_more_pixels_as_the_area_grows():
    scales = torch.linspace(0.5, 1.0, 6, dtype=torch.float64)
    area = {0: 2.0, 1: math.pi / 2, 2: 3.662 / 1.25 ** 2}  # each shape in its unit disc
    for shape in range(3):
        assert (render_sprites(shape, scales, 0.3, 0.5, 0.5).sum((1, 2, 3)).diff() > 0).all()
        counts = render_sprites(shape, scales, 0.3, 0.5, 0.5, size=128).sum((1, 2, 3))
        expected = area[shape] * (scales * 0.25 * 128) ** 2  # in pixels at 128 x 128
        assert ((counts.double() / expected - 1).abs() < 0.03).all(), (counts, expected)


def test_no_sprite_reaches_out_of_the_frame():
    grid = dsprites(orientations=10, positions=2)  # the corners: the extreme positions
    outer = (torch.arange(-8, 40, dtype=torch.float64) + 0.5) / 32  # 8 pixels around the frame
    padded = _rasterise(grid.values, outer, outer)
    assert padded[:, 8:40, 8:40].sum() == padded.sum()
    assert torch.equal(padded[:, 8:40, 8:40].float(), grid.x[:, 0])


def test_positions_move_the_sprite_and_shapes_sit_as_documented():
    x = render_sprites(2, 1.0, 0.0, torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]))
    centre = lambda img, dim: (img.sum(dim) * torch.arange(32)).sum() / img.sum() + 0.5
    cols = [centre(img[0], 0).item() for img in x]
    rows = [centre(img[0], 1).item() for img in x]
    assert cols[1] - cols[0] == pytest.approx(16, abs=0.5)    # pos_x: left to right
    assert rows[2] - rows[0] == pytest.approx(16, abs=0.5)    # pos_y: top to bottom
    fine = render_sprites(2, 1.0, 0.0, 0.0, 0.0, size=256)[0, 0]  # centre (64, 64), radius 64
    top, bottom = fine.nonzero()[:, 0].aminmax()
    assert bottom + 0.5 == pytest.approx(64 + 64, abs=1.5)  # the heart points down, its tip at r
    assert 64 - (top + 0.5) == pytest.approx(64 * (1.2365 - 0.25) / 1.25, abs=1.5)  # its lobes


def test_render_checks_its_arguments():
    assert render_sprites(0, 0.5, 0.0, 0.5, 0.5, size=64).shape == (1, 1, 64, 64)
    assert SPRITE_SHAPES == ("square", "ellipse", "heart")
    with pytest.raises(ValueError, match="shape"):
        render_sprites(3, 0.5, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="positive integer"):
        dsprites(positions=0)
    with pytest.raises(ValueError, match="at least 2"):
        dsprites(positions=1)
    assert _pixel_centres(4).tolist() == [0.125, 0.375, 0.625, 0.875]
