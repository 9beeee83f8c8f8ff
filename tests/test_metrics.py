"""vaecore.metrics: the Fréchet distance against independent computations, k-NN coverage."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from vaecore.metrics import (fid, frechet_distance, gaussian_stats, nearest_distance,
                             precision_recall, sqrtm_psd)


def _random_spd(f: int, g: torch.Generator, jitter: float = 0.5) -> torch.Tensor:
    a = torch.randn(f, f, generator=g, dtype=torch.float64)
    return a @ a.T / f + jitter * torch.eye(f, dtype=torch.float64)


def _scipy_frechet(mu1, s1, mu2, s2) -> float:
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy())
    root = np.real(root)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1.numpy() + s2.numpy() - 2 * root))


@pytest.mark.parametrize("f", [1, 3, 10, 40])
def test_frechet_distance_matches_scipy_sqrtm(f):
    g = torch.Generator().manual_seed(f)
    mu1, mu2 = torch.randn(f, generator=g, dtype=torch.float64), torch.randn(f, generator=g, dtype=torch.float64)
    s1, s2 = _random_spd(f, g), _random_spd(f, g)
    got = frechet_distance(mu1, s1, mu2, s2).item()
    assert got == pytest.approx(_scipy_frechet(mu1, s1, mu2, s2), rel=1e-8, abs=1e-9)


def test_fid_of_feature_sets_matches_scipy_on_their_statistics():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 8, generator=g, dtype=torch.float64) @ _random_spd(8, g)
    fake = 0.7 * torch.randn(400, 8, generator=g, dtype=torch.float64) + 0.3
    mu_r, s_r = np.mean(real.numpy(), 0), np.cov(real.numpy(), rowvar=False)
    mu_f, s_f = np.mean(fake.numpy(), 0), np.cov(fake.numpy(), rowvar=False)
    want = _scipy_frechet(torch.from_numpy(mu_r), torch.from_numpy(s_r),
                          torch.from_numpy(mu_f), torch.from_numpy(s_f))
    assert fid(real, fake).item() == pytest.approx(want, rel=1e-8)
    assert fid(fake, real).item() == pytest.approx(want, rel=1e-8)  # symmetric


def test_frechet_distance_closed_form_for_diagonal_covariances():
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    v1, v2 = torch.rand(6, generator=g, dtype=torch.float64) + 0.1, torch.rand(6, generator=g, dtype=torch.float64) + 0.1
    want = ((mu1 - mu2) ** 2).sum() + ((v1.sqrt() - v2.sqrt()) ** 2).sum()
    torch.testing.assert_close(frechet_distance(mu1, torch.diag(v1), mu2, torch.diag(v2)), want)


def test_fid_of_a_set_with_itself_is_zero():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 20, generator=g) * 3 + 1
    assert fid(x, x).item() == pytest.approx(0.0, abs=1e-8)


def test_fid_grows_with_a_mean_shift_by_its_squared_norm():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 5, generator=g, dtype=torch.float64)
    values = []
    for step in (0.0, 0.5, 1.0, 2.0):
        shift = torch.full((5,), step, dtype=torch.float64)
        value = fid(x, x + shift).item()
        assert value == pytest.approx((shift ** 2).sum().item(), abs=1e-8)  # equal covariances
        values.append(value)
    assert values == sorted(values) and values[-1] > values[0]


def test_fid_is_stable_for_singular_covariances():
    """Fewer samples than features: singular covariances, still a real finite number >= 0."""
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(10, 50, generator=g), torch.randn(12, 50, generator=g)
    value = fid(a, b)
    assert value.dtype == torch.float64 and torch.isfinite(value) and value >= 0
    assert fid(a, a).item() == pytest.approx(0.0, abs=1e-6)


def test_sqrtm_psd_squares_back():
    g = torch.Generator().manual_seed(5)
    a = _random_spd(7, g)
    root = sqrtm_psd(a)
    torch.testing.assert_close(root @ root, a)
    torch.testing.assert_close(root, root.T)


def test_gaussian_stats_match_numpy():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(50, 4, generator=g, dtype=torch.float64)
    mu, cov = gaussian_stats(x)
    np.testing.assert_allclose(mu.numpy(), x.numpy().mean(0))
    np.testing.assert_allclose(cov.numpy(), np.cov(x.numpy(), rowvar=False))


@pytest.mark.parametrize("real, fake", [
    (torch.zeros(10), torch.zeros(10, 1)),             # 1-D
    (torch.zeros(10, 3), torch.zeros(10, 4)),          # different feature sizes
    (torch.zeros(1, 3), torch.zeros(10, 3)),           # a single row: no covariance
    (torch.zeros(10, 3, 1), torch.zeros(10, 3, 1)),    # 3-D
    (torch.full((5, 2), float("nan")), torch.zeros(5, 2)),
    (np.zeros((5, 2)), torch.zeros(5, 2)),             # not a tensor
])
def test_fid_rejects_bad_shapes(real, fake):
    with pytest.raises(ValueError):
        fid(real, fake)


def test_frechet_distance_rejects_mismatched_statistics():
    with pytest.raises(ValueError):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(2), torch.eye(2))


def test_precision_recall_of_identical_and_disjoint_sets():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(200, 3, generator=g)
    assert precision_recall(x, x, k=3) == (1.0, 1.0)
    far = x + 100.0
    assert precision_recall(x, far, k=3) == (0.0, 0.0)


def test_precision_recall_separate_sharpness_from_coverage():
    """Fakes on one half of the data: realistic (high precision), poor coverage (low recall)."""
    g = torch.Generator().manual_seed(8)
    real = torch.randn(1000, 2, generator=g)
    fake = torch.randn(1000, 2, generator=g)
    fake[:, 0] = fake[:, 0].abs() + 0.5  # only the right half
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.9 and recall < 0.6
    with pytest.raises(ValueError):
        precision_recall(real, fake, k=0)


def test_nearest_distance_finds_the_nearest_row():
    g = torch.Generator().manual_seed(9)
    ref = torch.randn(300, 1, 4, 4, generator=g)
    queries = ref[[5, 17, 250]] + 1e-3
    dist, idx = nearest_distance(queries, ref, batch_size=2)
    assert idx.tolist() == [5, 17, 250]
    torch.testing.assert_close(dist, torch.full((3,), 4e-3), rtol=0, atol=1e-4)  # cdist in float32
    with pytest.raises(ValueError):
        nearest_distance(torch.zeros(2, 3), torch.zeros(4, 5))
