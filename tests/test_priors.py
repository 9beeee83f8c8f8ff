import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaecore.priors import StdNormalPrior


def test_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    prior = StdNormalPrior(5).double()
    z = torch.randn(7, 5, dtype=torch.float64) * 2
    expected = Normal(torch.zeros(5, dtype=torch.float64), 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(prior.log_prob(z), expected)


def test_kl_matches_torch_distributions_and_ignores_z():
    torch.manual_seed(0)
    prior = StdNormalPrior(3)
    mu = torch.randn(4, 3, dtype=torch.float64)
    logvar = torch.randn(4, 3, dtype=torch.float64)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(prior.kl(mu, logvar, torch.randn(4, 3)), expected)
    torch.testing.assert_close(prior.kl(mu, logvar, None), expected)
    assert (expected > 0).all()
    zero = torch.zeros(2, 3, dtype=torch.float64)
    torch.testing.assert_close(prior.kl(zero, zero, None), torch.zeros(2, dtype=torch.float64))


def test_sample_shape_moments_and_generator():
    prior = StdNormalPrior(4)
    z = prior.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (20_000, 4) and z.dtype == torch.float32
    torch.testing.assert_close(z.mean(0), torch.zeros(4), atol=0.04, rtol=0)
    torch.testing.assert_close(z.var(0), torch.ones(4), atol=0.05, rtol=0)
    again = prior.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, again)


def test_sample_follows_dtype_and_state_dict_is_empty():
    prior = StdNormalPrior(2).double()
    assert prior.sample(3).dtype == torch.float64
    assert prior.state_dict() == {} and list(prior.parameters()) == []
    prior.load_state_dict({})  # strict loading of an empty state works


def test_bad_input_raises():
    prior = StdNormalPrior(3)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        prior.log_prob(torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"mu: expected shape \(B, 3\)"):
        prior.kl(torch.randn(4, 2), torch.randn(4, 2), None)
    with pytest.raises(ValueError, match="same shape"):
        prior.kl(torch.randn(4, 3), torch.randn(5, 3), None)
    with pytest.raises(ValueError, match="positive integer"):
        prior.sample(0)
    with pytest.raises(ValueError, match="positive integer"):
        StdNormalPrior(0)


@pytest.mark.parametrize("latent_dim", [-1, 0, 2.5, "3", True, None])
def test_bad_latent_dim_is_refused_by_name(latent_dim):
    with pytest.raises(ValueError, match=r"latent_dim: expected a positive integer"):
        StdNormalPrior(latent_dim)
