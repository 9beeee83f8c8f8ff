"""vaecore.posterior: sampling and scoring q(z|x), against torch.distributions in float64."""
from __future__ import annotations

import torch
from torch.distributions import Independent, Normal

from vaecore.posterior import Posterior
from vaecore.reparam import reparameterize


def posterior(b=5, d=3, seed=0) -> Posterior:
    g = torch.Generator().manual_seed(seed)
    return Posterior(torch.randn(b, d, generator=g, dtype=torch.float64),
                     torch.randn(b, d, generator=g, dtype=torch.float64))


def test_it_unpacks_like_the_pair_it_replaces():
    q = posterior()
    mu, logvar = q
    assert mu is q.mu and logvar is q.logvar


def test_rsample_is_the_reparameterisation_bit_for_bit():
    q = posterior()
    z = q.rsample(generator=torch.Generator().manual_seed(1))
    assert torch.equal(z, reparameterize(q.mu, q.logvar, torch.Generator().manual_seed(1)))
    eps = torch.randn(7, 5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    zk = q.rsample((7,), generator=torch.Generator().manual_seed(2))
    assert zk.shape == (7, 5, 3)
    assert torch.equal(zk, q.mu + torch.exp(0.5 * q.logvar) * eps)


def test_rsample_is_differentiable_and_has_the_right_moments():
    q = Posterior(torch.zeros(1, 2, dtype=torch.float64, requires_grad=True),
                  torch.log(torch.tensor([[0.25, 4.0]], dtype=torch.float64)))
    z = q.rsample((40_000,), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z.var(0), torch.tensor([[0.25, 4.0]], dtype=torch.float64),
                               rtol=0.03, atol=0)
    z.sum().backward()
    assert q.mu.grad is not None


def test_log_prob_matches_torch_distributions_with_sample_dimensions():
    q = posterior()
    z = q.rsample((4,), generator=torch.Generator().manual_seed(4))
    oracle = Independent(Normal(q.mu, torch.exp(0.5 * q.logvar)), 1)
    torch.testing.assert_close(q.log_prob(z), oracle.log_prob(z))
    assert q.log_prob(z[0]).shape == (5,)


def test_kl_to_std_normal_matches_torch_distributions():
    q = posterior()
    oracle = torch.distributions.kl_divergence(
        Independent(Normal(q.mu, torch.exp(0.5 * q.logvar)), 1),
        Independent(Normal(torch.zeros_like(q.mu), torch.ones_like(q.mu)), 1))
    torch.testing.assert_close(q.kl_to_std_normal(), oracle)
