"""Tests for vaecore.kl: oracles from torch.distributions in float64, properties, errors."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vaecore.kl import (entropy_bernoulli, kl_bernoulli, kl_mc, kl_normal_normal,
                        kl_normal_std_normal)
from vaecore.likelihoods import log_prob_normal

SHAPES = [(5, 3), (4, 2, 3, 3)]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(shape, g):
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _normal(mu, logvar):
    """Independent Normal over all non-batch dims: its KL is summed per example."""
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), mu.dim() - 1)


@pytest.mark.parametrize("shape", SHAPES)
def test_kl_normal_std_normal_matches_torch(shape):
    g = _gen(1)
    mu, logvar = _randn(shape, g), _randn(shape, g)
    expected = kl_divergence(_normal(mu, logvar), _normal(torch.zeros_like(mu), torch.zeros_like(mu)))
    out = kl_normal_std_normal(mu, logvar)
    assert out.shape == (shape[0],)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("shape", SHAPES)
def test_kl_normal_normal_matches_torch(shape):
    g = _gen(2)
    mu_q, logvar_q, mu_p, logvar_p = (_randn(shape, g) for _ in range(4))
    expected = kl_divergence(_normal(mu_q, logvar_q), _normal(mu_p, logvar_p))
    torch.testing.assert_close(kl_normal_normal(mu_q, logvar_q, mu_p, logvar_p), expected)


def test_kl_normal_normal_broadcasts_prior_and_reduces_to_std_normal():
    g = _gen(3)
    mu, logvar = _randn((6, 4), g), _randn((6, 4), g)
    mu_p, logvar_p = _randn((4,), g), _randn((4,), g)
    expected = kl_divergence(_normal(mu, logvar), _normal(mu_p.expand(6, 4), logvar_p.expand(6, 4)))
    torch.testing.assert_close(kl_normal_normal(mu, logvar, mu_p, logvar_p), expected)
    zeros = torch.zeros(4, dtype=torch.float64)
    torch.testing.assert_close(kl_normal_normal(mu, logvar, zeros, zeros),
                               kl_normal_std_normal(mu, logvar))
    torch.testing.assert_close(kl_normal_normal(mu, logvar, 0.0, 0.0),
                               kl_normal_std_normal(mu, logvar))


def test_kl_known_constants():
    one = torch.ones(1, 1, dtype=torch.float64)
    torch.testing.assert_close(kl_normal_std_normal(2 * one, 0 * one),
                               torch.tensor([2.0], dtype=torch.float64))
    # KL(N(0, e^2) || N(0, 1)) = 0.5 * (e^2 - 1 - 2)
    out = kl_normal_std_normal(0 * one, 2 * one)
    assert abs(out.item() - 0.5 * (math.e ** 2 - 3)) < 1e-12
    assert abs(out.item() - 2.194528) < 1e-6


@pytest.mark.parametrize("shape", SHAPES)
def test_kl_nonnegative_and_zero_at_prior(shape):
    g = _gen(4)
    mu, logvar = 3 * _randn(shape, g), 3 * _randn(shape, g)
    assert (kl_normal_std_normal(mu, logvar) >= 0).all()
    assert (kl_normal_normal(mu, logvar, mu.flip(0), logvar.flip(0)) >= 0).all()
    assert (kl_bernoulli(mu, logvar) >= 0).all()
    zeros = torch.zeros(shape, dtype=torch.float64)
    torch.testing.assert_close(kl_normal_std_normal(zeros, zeros), torch.zeros(shape[0], dtype=torch.float64))
    torch.testing.assert_close(kl_normal_normal(mu, logvar, mu, logvar), torch.zeros(shape[0], dtype=torch.float64))
    torch.testing.assert_close(kl_bernoulli(mu, mu), torch.zeros(shape[0], dtype=torch.float64))


@pytest.mark.parametrize("shape", SHAPES)
def test_kl_bernoulli_matches_torch(shape):
    g = _gen(5)
    q, p = 2 * _randn(shape, g), 2 * _randn(shape, g)
    n_event = len(shape) - 1
    expected = kl_divergence(Independent(Bernoulli(logits=q), n_event), Independent(Bernoulli(logits=p), n_event))
    torch.testing.assert_close(kl_bernoulli(q, p), expected)


def test_kl_bernoulli_broadcast_and_float_prior():
    g = _gen(6)
    q, p = _randn((5, 3), g), _randn((3,), g)
    expected = kl_divergence(Independent(Bernoulli(logits=q), 1),
                             Independent(Bernoulli(logits=p.expand(5, 3)), 1))
    torch.testing.assert_close(kl_bernoulli(q, p), expected)
    torch.testing.assert_close(kl_bernoulli(q, 0.0), kl_bernoulli(q, torch.zeros_like(q)))


@pytest.mark.parametrize("shape", SHAPES)
def test_entropy_bernoulli_matches_torch_and_kl_to_uniform(shape):
    g = _gen(7)
    q = 3 * _randn(shape, g)
    n_event = len(shape) - 1
    expected = Independent(Bernoulli(logits=q), n_event).entropy()
    torch.testing.assert_close(entropy_bernoulli(q), expected)
    d = math.prod(shape[1:])
    torch.testing.assert_close(kl_bernoulli(q, 0.0), math.log(2) * d - entropy_bernoulli(q))
    torch.testing.assert_close(entropy_bernoulli(torch.zeros(shape, dtype=torch.float64)),
                               torch.full((shape[0],), math.log(2) * d, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_extreme_logits_stay_finite(dtype):
    q = torch.tensor([[50.0, -50.0, 50.0, 0.0]], dtype=dtype)
    p = torch.tensor([[-50.0, 50.0, 50.0, 50.0]], dtype=dtype)
    kl, h = kl_bernoulli(q, p), entropy_bernoulli(q)
    assert torch.isfinite(kl).all() and torch.isfinite(h).all()
    # KL(B(1) || B(sigma(-50))) = 50 twice, 0 once, KL(B(1/2) || B(~1)) ~ 25 - log 2
    expected = 50 + 50 + 0 + (0.5 * 50 - math.log(2))
    assert abs(kl.item() - expected) < 1e-3 * expected
    assert abs(h.item() - math.log(2)) < 1e-4


def test_kl_mc_converges_to_closed_form():
    g = _gen(8)
    mu_q, logvar_q = _randn((3, 2), g), 0.5 * _randn((3, 2), g)
    mu_p, logvar_p = _randn((3, 2), g), 0.5 * _randn((3, 2), g)
    closed = kl_normal_normal(mu_q, logvar_q, mu_p, logvar_p)
    errors = []
    for s in (100, 100_000):
        z = mu_q + torch.exp(0.5 * logvar_q) * _randn((s, 3, 2), g)
        log_q = log_prob_normal(z.reshape(-1, 2), mu_q.repeat(s, 1), logvar_q.repeat(s, 1)).reshape(s, 3)
        log_p = log_prob_normal(z.reshape(-1, 2), mu_p.repeat(s, 1), logvar_p.repeat(s, 1)).reshape(s, 3)
        est = kl_mc(log_q, log_p)
        assert est.shape == (3,)
        errors.append((est - closed).abs().max().item())
    assert errors[1] < 0.03
    assert errors[1] < errors[0]


def test_kl_mc_is_the_sample_mean():
    log_q = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    log_p = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    torch.testing.assert_close(kl_mc(log_q, log_p), torch.tensor([1.5, 3.0]))


def test_errors():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="same shape"):
        kl_normal_std_normal(x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="torch.Tensor"):
        kl_normal_std_normal([[0.0]], x)
    with pytest.raises(ValueError, match="floating-point"):
        kl_normal_std_normal(torch.zeros(4, 3, dtype=torch.long), x)
    with pytest.raises(ValueError, match="at least 2"):
        kl_normal_std_normal(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="broadcastable"):
        kl_normal_normal(x, x, torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="broadcastable"):
        kl_normal_normal(x, x, torch.zeros(8, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="broadcastable"):
        kl_bernoulli(x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="floating-point"):
        kl_bernoulli(x, torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="floating-point"):
        entropy_bernoulli(torch.zeros(4, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="2 dimensions"):
        kl_mc(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="same shape"):
        kl_mc(torch.zeros(4, 2), torch.zeros(4, 3))
