import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from vaecore.elbo import log_likelihood_is
from vaecore.flows import FlowPrior
from vaecore.hierarchical import (LadderVAE, ladder_iwae_bound, ladder_iwae_loss, ladder_loss,
                                  precision_weighted, residual_posterior)

COMBINE = pytest.mark.parametrize("combine", ["residual", "combined", "precision"])


def _tiny(seed=0, latent_dims=(2, 2), prior=None, combine="residual"):
    torch.manual_seed(seed)
    return LadderVAE((1, 2, 2), latent_dims=latent_dims, hidden=((6,), (5,)),
                     prior=prior, combine=combine).double()


def _binary(n=4, seed=1):
    return torch.rand(n, 1, 2, 2, generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64).bernoulli()


def test_precision_weighting_is_the_normalised_product_of_the_two_gaussians():
    g = torch.Generator().manual_seed(0)
    mu_hat, logvar_hat, mu_p, logvar_p = (torch.randn(3, 4, generator=g, dtype=torch.float64)
                                          for _ in range(4))
    q = precision_weighted(mu_hat, logvar_hat, mu_p, logvar_p)
    # log N(z; mu_hat) + log N(z; mu_p) - log N(z; mu_q) must not depend on z
    z = torch.randn(50, 3, 4, generator=g, dtype=torch.float64) * 3
    ratio = (Normal(mu_hat, torch.exp(0.5 * logvar_hat)).log_prob(z)
             + Normal(mu_p, torch.exp(0.5 * logvar_p)).log_prob(z)
             - Normal(q.mu, torch.exp(0.5 * q.logvar)).log_prob(z))
    torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio))
    # a very confident bottom-up estimate wins; equal variances average the means
    sure = precision_weighted(mu_hat, torch.full_like(mu_hat, -30.0), mu_p, logvar_p)
    torch.testing.assert_close(sure.mu, mu_hat)
    even = precision_weighted(mu_hat, logvar_p, mu_p, logvar_p)
    torch.testing.assert_close(even.mu, (mu_hat + mu_p) / 2)
    torch.testing.assert_close(even.logvar, logvar_p - math.log(2))


@COMBINE
def test_layer_kls_match_monte_carlo(combine):
    model = _tiny(combine=combine)
    x = _binary(1).expand(200_000, 1, 2, 2)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        s = model.infer(x, generator=g)
        _, kl_z1, kl_z2 = model.terms(x, generator=torch.Generator().manual_seed(3))
        mc_z1 = (s.q1.log_prob(s.z1) - Normal(s.p1.mu, torch.exp(0.5 * s.p1.logvar))
                 .log_prob(s.z1).sum(-1))
        mc_z2 = s.q2.log_prob(s.z2) - Normal(0.0, 1.0).log_prob(s.z2).sum(-1)
    # kl_z1 is closed form given each z2: its average and the Monte-Carlo average agree
    assert abs(kl_z1.mean() - mc_z1.mean()) < 4 * mc_z1.std() / len(x) ** 0.5
    assert abs(kl_z2.mean() - mc_z2.mean()) < 4 * mc_z2.std() / len(x) ** 0.5
    assert (kl_z1 >= 0).all() and (kl_z2 >= 0).all()


@COMBINE
def test_one_sample_log_weight_is_the_elbo_in_expectation(combine):
    model = _tiny(combine=combine)
    x = _binary(1).expand(100_000, 1, 2, 2)
    with torch.no_grad():
        terms = ladder_loss(model, x, generator=torch.Generator().manual_seed(0))
        log_w = model.log_weights(x, 1, generator=torch.Generator().manual_seed(1))
    assert log_w.shape == (1, len(x))
    assert abs(-terms.loss - log_w.mean()) < 4 * log_w.std() / len(x) ** 0.5
    torch.testing.assert_close(terms.kl, terms.kl_z1 + terms.kl_z2)


def _exact_log_px(model, x, grid=401, half_width=8.0):
    """log p(x) of a model with 1-dimensional z1 and z2, by quadrature on a 2-d grid."""
    t = torch.linspace(-half_width, half_width, grid, dtype=torch.float64)
    step = t[1] - t[0]
    z2 = t.repeat_interleave(grid)[:, None]
    z1 = t.repeat(grid)[:, None]
    with torch.no_grad():
        p1 = model.conditional_prior(z2)
        log_joint_z = (Normal(0.0, 1.0).log_prob(z2).squeeze(1)
                       + Normal(p1.mu, torch.exp(0.5 * p1.logvar)).log_prob(z1).squeeze(1))
        logits = model.decode(z1)
        out = []
        for xi in x:
            log_px_z = Bernoulli(logits=logits).log_prob(xi.expand_as(logits)).flatten(1).sum(1)
            out.append(torch.logsumexp(log_px_z + log_joint_z, 0) + 2 * torch.log(step))
    return torch.stack(out)


@COMBINE
def test_importance_sampled_likelihood_matches_quadrature(combine):
    model = _tiny(latent_dims=(1, 1), combine=combine)
    if combine == "combined":  # a random top-down variance correction can make q(z1) narrower
        with torch.no_grad():  # than p(z1 | x, z2) and the weights heavy-tailed (the estimate
            model.mix_logvar.weight.zero_()  # converges slowly); keep its mean correction
    x = _binary(3)
    exact = _exact_log_px(model, x)
    estimate = log_likelihood_is(model, x, 100_000, chunk=10_000,
                                 generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(estimate, exact, atol=0.01, rtol=0)
    bounds = [ladder_iwae_bound(model, x.repeat(2000, 1, 1, 1), k,
                         generator=torch.Generator().manual_seed(k)).mean() for k in (1, 5, 50)]
    assert bounds[0] < bounds[1] < bounds[2] < exact.mean()


def test_iwae_loss_trains_a_ladder_and_gradients_reach_every_part():
    model = _tiny(prior=FlowPrior(2, n_layers=2, hidden=4).double())
    x = _binary(8)
    terms = ladder_iwae_loss(model, x, k=3)
    assert terms.bound.shape == (8,)
    terms.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.latent_dim == 4
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 2, 2)
    recon = model.reconstruct(x)
    assert recon.shape == x.shape and ((recon >= 0) & (recon <= 1)).all()


@COMBINE
def test_posterior_means_of_each_layer(combine):
    model = _tiny(combine=combine)
    x = _binary(5)
    z1, z2 = model.posterior_means(x, samples=20_000, generator=torch.Generator().manual_seed(0))
    assert z1.shape == (5, 2) and z2.shape == (5, 2)
    torch.testing.assert_close(z2, model.upward(x)[1].mu)
    with torch.no_grad():
        draws = model.infer(x, (20_000,), generator=torch.Generator().manual_seed(1)).z1
    torch.testing.assert_close(z1, draws.mean(0), atol=0.05, rtol=0)


def test_residual_posterior_corrects_the_conditional_prior():
    g = torch.Generator().manual_seed(0)
    mu_hat, logvar_hat, mu_p, logvar_p = (torch.randn(3, 4, generator=g, dtype=torch.float64)
                                          for _ in range(4))
    q = residual_posterior(mu_hat, logvar_hat, mu_p, logvar_p)
    torch.testing.assert_close(q.mu, mu_p + mu_hat)
    torch.testing.assert_close(torch.exp(0.5 * q.logvar),
                               torch.exp(0.5 * logvar_p) * torch.exp(0.5 * logvar_hat))
    zero = torch.zeros_like(mu_hat)
    prior = residual_posterior(zero, zero, mu_p, logvar_p)  # no correction: the prior itself
    torch.testing.assert_close(torch.stack(prior), torch.stack((mu_p, logvar_p)))


def test_combined_correction_moves_the_posterior_of_z1_with_z2():
    model = _tiny(combine="combined")
    x = _binary(3)
    up1, _ = model.upward(x)
    z2 = torch.randn(2, 3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p1, mix = model.top_down(z2)
    h = model.down(z2)
    q1 = model.posterior_z1(up1, p1, mix)
    # the residual form with the correction A h1(x) + B h_d(z2) + a
    torch.testing.assert_close(q1.mu - p1.mu, up1.mu + h @ model.mix_mu.weight.T)
    torch.testing.assert_close(q1.logvar - p1.logvar, up1.logvar + h @ model.mix_logvar.weight.T)
    # unlike the x-only residual, the gap to the prior's mean depends on z2
    assert not torch.allclose((q1.mu - p1.mu)[0], (q1.mu - p1.mu)[1])
    residual = _tiny(combine="residual")
    p1r, _ = residual.top_down(z2)
    gap = residual.posterior_z1(residual.upward(x)[0], p1r).mu - p1r.mu
    torch.testing.assert_close(gap[0], gap[1])
    with pytest.raises(ValueError, match="needs the top-down correction"):
        model.posterior_z1(up1, p1)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="combine: expected one of"):
        LadderVAE(combine="sum")
    with pytest.raises(ValueError, match="two latent sizes"):
        LadderVAE(latent_dims=(10,))
    with pytest.raises(ValueError, match="latent_dim 5"):
        LadderVAE(latent_dims=(10, 5), prior=FlowPrior(4))
    model = _tiny()
    with pytest.raises(ValueError, match="pass the images alone"):
        ladder_loss(model, (_binary(2), torch.zeros(2)))
    with pytest.raises(ValueError, match=r"x: expected shape"):
        ladder_loss(model, torch.zeros(2, 1, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive integer"):
        model.log_weights(_binary(2), 0)
