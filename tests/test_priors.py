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


# --- learned mixture priors ----------------------------------------------------------------

import copy
import math

from torch.distributions import Categorical, Independent, MixtureSameFamily

from vaecore.elbo import negative_elbo
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.posterior import Posterior
from vaecore.priors import MixturePrior, VampPrior, log_prob_diag_mixture
from vaecore.vae import VAE


def _reference_mixture(means, logvars, log_weights):
    return MixtureSameFamily(Categorical(logits=log_weights),
                             Independent(Normal(means, torch.exp(0.5 * logvars)), 1))


def _random_mixture(k=7, d=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(k, d, generator=g, dtype=dtype) * 2
    logvars = torch.randn(k, d, generator=g, dtype=dtype)
    log_weights = torch.log_softmax(torch.randn(k, generator=g, dtype=dtype), 0)
    return means, logvars, log_weights


def test_mixture_log_prob_matches_torch_distributions():
    means, logvars, log_weights = _random_mixture()
    z = torch.randn(11, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    expected = _reference_mixture(means, logvars, log_weights).log_prob(z)
    torch.testing.assert_close(log_prob_diag_mixture(z, means, logvars, log_weights), expected)


def test_mixture_log_prob_in_float32_is_close_for_vae_sized_posteriors():
    # posteriors like an MNIST VAE's: sd 0.03 to 1, means within 3, samples near them
    g = torch.Generator().manual_seed(0)
    means = torch.randn(500, 20, generator=g, dtype=torch.float64)
    logvars = torch.empty(500, 20, dtype=torch.float64).uniform_(math.log(0.03 ** 2), 0,
                                                                  generator=g)
    log_weights = torch.full((500,), -math.log(500), dtype=torch.float64)
    z = means[:64] + torch.exp(0.5 * logvars[:64]) * torch.randn(64, 20, generator=g,
                                                                  dtype=torch.float64)
    exact = _reference_mixture(means, logvars, log_weights).log_prob(z)
    single = log_prob_diag_mixture(z.float(), means.float(), logvars.float(), log_weights.float())
    assert (single.double() - exact).abs().max() < 2e-3


def test_mixture_prior_density_samples_and_kl():
    torch.manual_seed(0)
    prior = MixturePrior(2, n_components=3).double()
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
        prior.logvars.fill_(-1.0)
    means, logvars, log_weights = prior.components()
    reference = _reference_mixture(means, logvars, log_weights)
    z = prior.sample(40_000, generator=torch.Generator().manual_seed(2))
    assert z.shape == (40_000, 2) and z.dtype == torch.float64
    # the samples follow the density: their mean and the mixture's agree
    expected_mean = (torch.exp(log_weights)[:, None] * means).sum(0)
    torch.testing.assert_close(z.mean(0), expected_mean.detach(), atol=0.03, rtol=0)
    torch.testing.assert_close(prior.log_prob(z[:10]), reference.log_prob(z[:10]))
    # the one-sample KL averages to the KL, estimated independently with torch.distributions
    mu, logvar = torch.tensor([[0.3, -0.2]], dtype=torch.float64), torch.full((1, 2), -0.5,
                                                                             dtype=torch.float64)
    q = Normal(mu, torch.exp(0.5 * logvar))
    zq = q.sample((50_000,)).squeeze(1)
    reference_kl = (q.log_prob(zq[:, None]).sum(-1).squeeze(1) - reference.log_prob(zq)).mean()
    kl = prior.kl_mc(mu.expand(50_000, 2), logvar.expand(50_000, 2), zq).mean()
    torch.testing.assert_close(kl, reference_kl.detach(), atol=1e-9, rtol=0)
    assert not hasattr(prior, "kl")  # no closed form: kl_term takes kl_mc


def _vamp_vae(components=4, seed=0):
    torch.manual_seed(seed)
    encoder = MLPEncoder((1, 4, 4), 3, hidden=(8,))
    return VAE(encoder, MLPDecoder(3, (1, 4, 4), hidden=(8,)),
               prior=VampPrior(encoder, components))


def test_vampprior_is_the_mixture_of_the_encoders_posteriors_at_its_pseudo_inputs():
    model = _vamp_vae().double()
    u = model.prior.pseudo_inputs.clamp(0, 1).double()
    mu, logvar = model.encoder(u)
    z = torch.randn(6, 3, dtype=torch.float64)
    expected = torch.logsumexp(Posterior(mu, logvar).log_prob(z[:, None].expand(6, 4, 3)), 1) - math.log(4)
    torch.testing.assert_close(model.prior.log_prob(z), expected)
    assert list(model.prior.state_dict()) == ["pseudo_inputs"]  # the encoder is the VAE's
    assert sum(p.numel() for p in model.parameters()) == \
        sum(p.numel() for p in model.encoder.parameters()) + \
        sum(p.numel() for p in model.decoder.parameters()) + 4 * 16


def test_vampprior_gradients_reach_pseudo_inputs_and_encoder_and_survive_a_copy():
    model = _vamp_vae()
    x = torch.rand(5, 1, 4, 4).bernoulli()
    negative_elbo(model, x).loss.backward()
    assert model.prior.pseudo_inputs.grad.abs().sum() > 0
    twin = copy.deepcopy(model)
    assert twin.prior.encoder is twin.encoder and twin.prior.encoder is not model.encoder
    z = torch.randn(3, 3)
    torch.testing.assert_close(twin.prior.log_prob(z), model.prior.log_prob(z))
    samples = model.prior.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 3) and torch.isfinite(samples).all()


def test_mixture_priors_refuse_bad_input():
    with pytest.raises(ValueError, match="n_components: expected a positive integer"):
        MixturePrior(3, 0)
    with pytest.raises(ValueError, match="latent_dim attribute"):
        VampPrior(torch.nn.Linear(2, 2), 3)
    means, logvars, log_weights = _random_mixture()
    with pytest.raises(ValueError, match=r"log_weights: expected shape \(7,\)"):
        log_prob_diag_mixture(torch.randn(2, 5, dtype=torch.float64), means, logvars,
                              log_weights[:3])
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        log_prob_diag_mixture(torch.randn(2, 4, dtype=torch.float64), means, logvars,
                              log_weights)


def test_elbo_surgery_agrees_with_the_three_term_split_under_the_standard_normal():
    from vaecore.total_correlation import kl_decomposition_dataset
    from vaecore.priors import elbo_surgery
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(300, 4, generator=g, dtype=torch.float64)
    logvar = torch.randn(300, 4, generator=g, dtype=torch.float64) - 2
    index = torch.arange(300)
    split = elbo_surgery(mu, logvar, StdNormalPrior(4).double(), index=index,
                         generator=torch.Generator().manual_seed(1))
    three = kl_decomposition_dataset(mu, logvar, index=index,
                                     generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(split.mutual_information, three.index_code_mi)
    torch.testing.assert_close(split.marginal_kl, three.total_correlation + three.dimwise_kl)
    assert split.mutual_information.mean() <= math.log(300)


def test_elbo_surgery_terms_sum_to_the_average_kl_and_the_aggregate_prior_zeroes_the_second():
    from vaecore.priors import elbo_surgery
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(50, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(50, 3, generator=g, dtype=torch.float64) - 1
    prior = MixturePrior(3, 4).double()
    split = elbo_surgery(mu, logvar, prior, samples=200_000, generator=g)
    with torch.no_grad():
        average_kl = torch.stack([  # each KL by its own Monte-Carlo estimate, 20,000 draws
            prior.kl_mc(m.expand(20_000, 3), v.expand(20_000, 3),
                        Normal(m, torch.exp(0.5 * v)).sample((20_000,))).mean()
            for m, v in zip(mu, logvar)]).mean()
    total = (split.mutual_information + split.marginal_kl).mean()
    assert abs(total - average_kl) < 0.05
    # with p(z) = q(z) itself, the marginal KL is zero draw by draw
    aggregate = MixturePrior(3, 50).double()
    with torch.no_grad():
        aggregate.means.copy_(mu), aggregate.logvars.copy_(logvar), aggregate.logits.zero_()
    exact = elbo_surgery(mu, logvar, aggregate, samples=100, generator=g)
    torch.testing.assert_close(exact.marginal_kl, torch.zeros(100, dtype=torch.float64))
