"""Chapter 18's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import math

import pytest
import torch

from vaecore.priors import MixturePrior
from vaecourse.exercises import ch18_priors_and_hierarchies as E


def _mixture(z, means, logvars, log_weights):
    diff = z[:, None, :] - means
    log_2pi = math.log(2 * math.pi)
    components = -0.5 * (diff ** 2 / logvars.exp() + logvars + log_2pi).sum(-1)
    return torch.logsumexp(log_weights + components, 1)



def _naive_mixture(z, means, logvars, log_weights):
    log_2pi = math.log(2 * math.pi)
    density = torch.exp(-0.5 * ((z[:, None, :] - means) ** 2 / logvars.exp() + logvars
                                + log_2pi).sum(-1))
    return torch.log((log_weights.exp() * density).sum(1))


def test_mixture_log_density_passes_and_names_the_slips():
    assert E.check_mixture_log_density(_mixture).passed
    assert E.check_mixture_log_density(_naive_mixture).hint == "underflow"

    def no_weights(z, means, logvars, log_weights):
        return _mixture(z, means, logvars, torch.zeros_like(log_weights))

    def sd_as_variance(z, means, logvars, log_weights):
        return _mixture(z, means, 2 * logvars, log_weights)

    def no_constant(z, means, logvars, log_weights):
        return _mixture(z, means, logvars, log_weights) + 0.5 * z.shape[1] * math.log(2 * math.pi)

    assert E.check_mixture_log_density(no_weights).hint == "weights"
    assert E.check_mixture_log_density(sd_as_variance).hint == "std-as-var"
    assert E.check_mixture_log_density(no_constant).hint == "constant"


def test_the_reference_kl_does_not_depend_on_the_prior_mean_and_matches_the_closed_form():
    for mu_hat, logvar_hat, logvar_p in E._residual_cases(0):
        closed = 0.5 * (logvar_hat.exp() + mu_hat ** 2 / logvar_p.exp() - 1 - logvar_hat).sum(-1)
        torch.testing.assert_close(E._reference_residual_kl(mu_hat, logvar_hat, logvar_p), closed)


def test_residual_kl_passes_and_names_the_slips():
    def residual_kl(mu_hat, logvar_hat, logvar_p):
        return 0.5 * (logvar_hat.exp() + mu_hat ** 2 / logvar_p.exp() - 1 - logvar_hat).sum(-1)

    def unscaled(mu_hat, logvar_hat, logvar_p):
        return 0.5 * (logvar_hat.exp() + mu_hat ** 2 - 1 - logvar_hat).sum(-1)

    def no_one(mu_hat, logvar_hat, logvar_p):
        return residual_kl(mu_hat, logvar_hat, logvar_p) + 0.5 * mu_hat.shape[1]

    assert E.check_residual_kl(residual_kl).passed
    assert E.check_residual_kl(unscaled).hint == "prior-scale"
    assert E.check_residual_kl(no_one).hint == "no-one"


def _fitter(components, steps=300, seed=0):
    """The chapter's solution with ``components`` Gaussians: maximise the mean log p(z) over
    draws of the training posteriors, the means started at posterior means."""
    def fitted_prior(mu, logvar):
        g = torch.Generator().manual_seed(seed)
        prior = MixturePrior(mu.shape[1], components)
        with torch.no_grad():
            prior.means.copy_(mu[torch.randperm(len(mu), generator=g)[:components]])
        optimiser = torch.optim.Adam(prior.parameters(), lr=1e-2)
        for _ in range(steps):
            i = torch.randint(len(mu), (1000,), generator=g)
            z = mu[i] + torch.exp(0.5 * logvar[i]) * torch.randn(1000, mu.shape[1], generator=g)
            optimiser.zero_grad()
            (-prior.log_prob(z).mean()).backward()
            optimiser.step()
        return prior
    return fitted_prior


@pytest.mark.slow
def test_fitted_prior_passes_with_200_components_and_not_with_10():
    assert E.check_fitted_prior(_fitter(200)).passed
    result = E.check_fitted_prior(_fitter(10))
    assert not result.passed and result.hint == "gain"


def test_fitted_prior_refuses_what_is_not_a_normalised_mixture():
    def standard(mu, logvar):
        from vaecore.priors import StdNormalPrior
        return StdNormalPrior(mu.shape[1])

    def too_many(mu, logvar):
        return MixturePrior(mu.shape[1], E.MAX_COMPONENTS + 1)

    def todo(mu, logvar):
        raise NotImplementedError

    assert E.check_fitted_prior(standard).hint == "type"
    assert E.check_fitted_prior(too_many).hint == "size"
    assert E.check_fitted_prior(todo).hint == "todo"
