"""Tests for vaecore.latent: slerp geometry, per-dimension KL, activity, batched encoding."""
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaecore.kl import kl_normal_std_normal
from vaecore.latent import (active_units, encode_dataset, kl_per_dimension,
                            posterior_mean_variance, slerp)
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.vae import VAE


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_slerp_hits_its_end_points():
    z0, z1 = _randn(4, 6, seed=1), _randn(4, 6, seed=2)
    torch.testing.assert_close(slerp(z0, z1, 0.0), z0)
    torch.testing.assert_close(slerp(z0, z1, 1.0), z1)


def test_slerp_stays_on_the_circle_between_equal_norm_vectors():
    z0, z1 = _randn(5, 10, seed=3), _randn(5, 10, seed=4)
    z1 = z1 / z1.norm(dim=1, keepdim=True) * z0.norm(dim=1, keepdim=True)
    for t in (0.1, 0.25, 0.5, 0.9):
        torch.testing.assert_close(slerp(z0, z1, t).norm(dim=1), z0.norm(dim=1))


def test_slerp_moves_at_constant_angular_speed():
    # in the plane: from angle 0 to angle 90 degrees, t = 1/3 is at 30 degrees
    z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    want = torch.tensor([[math.cos(math.pi / 6), math.sin(math.pi / 6)]], dtype=torch.float64)
    torch.testing.assert_close(slerp(z0, z1, 1 / 3), want)


def test_slerp_of_parallel_or_zero_vectors_is_finite_and_linear():
    z0 = _randn(3, 4, seed=5)
    for z1 in (3 * z0, -z0, torch.zeros_like(z0)):
        got = slerp(z0, z1, 0.4)
        assert torch.isfinite(got).all()
    torch.testing.assert_close(slerp(z0, 3 * z0, 0.4), 0.6 * z0 + 0.4 * 3 * z0)


def test_slerp_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        slerp(_randn(2, 3), _randn(2, 4), 0.5)


def test_kl_per_dimension_matches_torch_distributions_and_sums_to_the_library_kl():
    mu, logvar = _randn(7, 5, seed=6) * 2, _randn(7, 5, seed=7)
    want = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    got = kl_per_dimension(mu, logvar)
    assert got.shape == (7, 5)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got.sum(1), kl_normal_std_normal(mu, logvar))
    assert (kl_per_dimension(torch.zeros(2, 3), torch.zeros(2, 3)) == 0).all()


def test_posterior_mean_variance_divides_by_n_and_finds_the_active_units():
    scales = torch.tensor([1.0, 0.5, 0.05, 0.0], dtype=torch.float64)
    mu = _randn(50_000, 4, seed=8) * scales + 2.0
    var = posterior_mean_variance(mu)
    assert var.shape == (4,)
    torch.testing.assert_close(var, ((mu - mu.mean(0)) ** 2).mean(0))
    torch.testing.assert_close(var, scales ** 2, rtol=0.03, atol=1e-12)
    assert active_units(mu).tolist() == [True, True, False, False]
    assert active_units(mu, threshold=1e-3).tolist() == [True, True, True, False]


def test_encode_dataset_batches_agree_with_one_pass():
    torch.manual_seed(0)
    model = VAE(MLPEncoder((1, 4, 4), 3, hidden=(8,)), MLPDecoder(3, (1, 4, 4), hidden=(8,))).eval()
    x = torch.rand(25, 1, 4, 4, generator=torch.Generator().manual_seed(9))
    mu, logvar = encode_dataset(model, x, batch_size=7)
    with torch.no_grad():
        want = model.encode(x)
    torch.testing.assert_close(mu, want.mu)
    torch.testing.assert_close(logvar, want.logvar)
    assert not mu.requires_grad
