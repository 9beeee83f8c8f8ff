"""Tests for vaecore.reparam: moments, pathwise gradients, reproducibility, errors."""
import pytest
import torch

from vaecore.reparam import reparameterize


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_samples_have_mean_mu_and_variance_exp_logvar():
    s = 100_000
    mu = torch.tensor([[-1.0, 0.0, 2.5]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -2.0, 1.0]], dtype=torch.float64)
    z = reparameterize(mu.expand(s, 3), logvar.expand(s, 3), generator=_gen(1))
    assert z.shape == (s, 3) and z.dtype == torch.float64
    var = torch.exp(logvar[0])
    torch.testing.assert_close(z.mean(0), mu[0], atol=float(5 * (var.max() / s).sqrt()), rtol=0)
    torch.testing.assert_close(z.var(0), var, rtol=0.02, atol=0)


def test_pathwise_gradient_of_expected_square():
    # E[z^2] = mu^2 + exp(logvar): d/dmu = 2 mu, d/dlogvar = exp(logvar)
    s = 200_000
    mu = torch.tensor([0.7, -1.5], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([-0.5, 0.3], dtype=torch.float64, requires_grad=True)
    z = reparameterize(mu.expand(s, 2), logvar.expand(s, 2), generator=_gen(2))
    (z ** 2).mean(0).sum().backward()
    with torch.no_grad():
        torch.testing.assert_close(mu.grad, 2 * mu, atol=0.03, rtol=0)
        torch.testing.assert_close(logvar.grad, torch.exp(logvar), atol=0.03, rtol=0)


def test_same_seed_same_output_and_zero_variance_is_mu():
    mu, logvar = torch.randn(4, 3, generator=_gen(3)), torch.randn(4, 3, generator=_gen(4))
    a = reparameterize(mu, logvar, generator=_gen(5))
    torch.testing.assert_close(a, reparameterize(mu, logvar, generator=_gen(5)))
    assert not torch.equal(a, reparameterize(mu, logvar, generator=_gen(6)))
    torch.testing.assert_close(reparameterize(mu, torch.full_like(mu, -200.0)), mu)


def test_errors():
    with pytest.raises(ValueError, match="same shape"):
        reparameterize(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="torch.Tensor"):
        reparameterize(0.0, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="floating-point"):
        reparameterize(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, 3))
