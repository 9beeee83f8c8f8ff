"""Tests for vaecore.data.shape_images: balanced, seeded shapes of the right geometry."""
import math

import numpy as np
import pytest
import torch

from vaecore.data import SHAPE_CLASSES, shapes


def _fill_of_bounding_box(x: torch.Tensor) -> torch.Tensor:
    """Fraction of each image's bounding box (of pixels > 0.5) that is on, shape (N,)."""
    mask = x[:, 0] > 0.5
    idx = torch.arange(mask.shape[-1])

    def extent(any_on):
        first = torch.where(any_on, idx, 10**6).min(1).values
        return torch.where(any_on, idx, -1).max(1).values - first + 1

    return mask.sum((1, 2)) / (extent(mask.any(2)) * extent(mask.any(1)))


@pytest.fixture(scope="module")
def ds():
    return shapes(900, size=32, seed=0)


def test_shapes_dtypes_values(ds):
    assert ds.x.shape == (900, 1, 32, 32) and ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and ds.classes == SHAPE_CLASSES
    assert set(ds.x.unique().tolist()) == {0.0, 1.0}


def test_balanced_and_shuffled(ds):
    assert torch.bincount(ds.y).tolist() == [300, 300, 300]
    assert torch.bincount(shapes(10, seed=1).y).tolist() in ([4, 3, 3], [3, 4, 3], [3, 3, 4])
    assert not torch.equal(ds.y[:9], torch.arange(9) % 3)


def test_geometry_matches_label(ds):
    fill = _fill_of_bounding_box(ds.x)
    rect, circle, tri = (fill[ds.y == k] for k in range(3))
    torch.testing.assert_close(rect, torch.ones_like(rect))
    assert abs(circle.mean() - math.pi / 4) < 0.02 and circle.min() > 0.66
    assert abs(tri.mean() - 0.5) < 0.05 and tri.max() < 0.64
    area = ds.x.sum((1, 2, 3)) / 32**2
    assert area.min() > 0.35**2 / 2 * 0.8 and area.max() <= 0.85**2 + 0.05


def test_circles_are_round(ds):
    circles = ds.x[ds.y == 1, 0]
    widths = (circles.sum(1) > 0).sum(1)
    heights = (circles.sum(2) > 0).sum(1)
    assert (widths - heights).abs().max() <= 1


def test_seeded(ds):
    again = shapes(900, size=32, seed=0)
    torch.testing.assert_close(again.x, ds.x)
    torch.testing.assert_close(again.y, ds.y)
    assert not torch.equal(shapes(900, size=32, seed=1).x, ds.x)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    torch.testing.assert_close(shapes(30, seed=rng_a).x, shapes(30, seed=rng_b).x)


def test_noise_is_clipped_and_centred():
    clean = shapes(300, size=16, seed=2)
    noisy = shapes(300, size=16, seed=2, noise=0.1)
    torch.testing.assert_close(noisy.y, clean.y)
    assert noisy.x.min() >= 0 and noisy.x.max() <= 1
    inside = (noisy.x - clean.x)[(clean.x == 0) | (clean.x == 1)]
    assert 0.02 < inside.abs().mean() < 0.06  # E max(0, N(0, 0.1^2)) = 0.1 / sqrt(2 pi) = 0.04


def test_other_size():
    ds = shapes(6, size=12, seed=3)
    assert ds.x.shape == (6, 1, 12, 12) and (ds.x.sum((1, 2, 3)) > 0).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n"), ({"n": 2.5}, "n"), ({"size": 4}, "size"), ({"noise": -0.1}, "noise"),
    ({"noise": "a"}, "noise")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shapes(**{"n": 3, **kwargs})
