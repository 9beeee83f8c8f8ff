"""Tests for vaecore.total_correlation: minibatch estimates against exact mixtures and Gaussians.

The closed-form case: posteriors N(mu_n, s^2 I) with means mu_n ~ N(0, C - s^2 I)
have the aggregate posterior N(0, C), whose total correlation is
-1/2 log det of C's correlation matrix. To first order in 1/M the MWS
estimate of the total correlation is off by

    b = [(det C / det S - 1) - sum_d (C_dd / S_dd - 1)] / (2M),   S = s^2 I:

each log-density is high by (rho - 1)/M from the example's own term and low
by (rho - 1)/(2M) from Jensen's inequality, where rho = E_z[E_n q(z|n)^2 / q(z)^2]
= det C / det S for these Gaussians (C_dd / S_dd for a marginal). Measured
over 40 batches of 1024: b = 0.0018 against +0.0027, b = 0.0101 against
+0.0095 for the two correlated cases. The tests allow |b| plus four standard
errors of the mean of their batches (sd of one batch's estimate measured
over those 40 batches).
"""
import math
from functools import partial

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vaecore.elbo import negative_elbo
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.posterior import Posterior
from vaecore.total_correlation import (beta_tcvae_loss, kl_decomposition_dataset,
                                       kl_decomposition_mc,
                                       log_aggregate_posterior, log_density_matrix)
from vaecore.train import fit
from vaecore.vae import VAE

F64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _posteriors(m, d, g):
    mu = torch.randn(m, d, generator=g, dtype=F64)
    logvar = torch.randn(m, d, generator=g, dtype=F64) * 0.5
    return mu, logvar, mu + (0.5 * logvar).exp() * torch.randn(m, d, generator=g, dtype=F64)


def _log_std_normal(z):
    return -0.5 * (math.log(2 * math.pi) + z ** 2).sum(1)


def _gaussian_batches(cov, s2, m, batches, g):
    """``batches`` draws of (z, mu, logvar) whose aggregate posterior is N(0, cov)."""
    chol = torch.linalg.cholesky(cov - s2 * torch.eye(len(cov), dtype=F64))
    for _ in range(batches):
        mu = torch.randn(m, len(cov), generator=g, dtype=F64) @ chol.T
        z = mu + math.sqrt(s2) * torch.randn(m, len(cov), generator=g, dtype=F64)
        yield z, mu, torch.full_like(mu, math.log(s2))


def _tc_estimates(cov, s2, m, batches, dataset_size=None, seed=0):
    return torch.tensor([kl_decomposition_mc(z, mu, logvar, _log_std_normal(z), dataset_size)
                         .total_correlation.mean().item()
                         for z, mu, logvar in _gaussian_batches(cov, s2, m, batches, _gen(seed))])


def _closed_form_tc(cov):
    sd = cov.diagonal().sqrt()
    return -0.5 * torch.logdet(cov / sd[:, None] / sd[None, :]).item()


def _first_order_bias(cov, s2, m):
    d = len(cov)
    joint, marginals = torch.det(cov).item() / s2 ** d - 1, (cov.diagonal() / s2 - 1).sum().item()
    return (joint - marginals) / (2 * m)


CORRELATED_2D = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=F64)
CORRELATED_3D = torch.tensor([[1.0, 0.6, 0.3], [0.6, 1.0, 0.5], [0.3, 0.5, 1.0]], dtype=F64)


# --- the pieces ----------------------------------------------------------------

def test_log_density_matrix_matches_torch_distributions():
    mu, logvar, z = _posteriors(7, 3, _gen(0))
    expected = Normal(mu[None], (0.5 * logvar[None]).exp()).log_prob(z[:, None])
    assert torch.allclose(log_density_matrix(z, mu, logvar), expected, atol=1e-12)


def test_log_density_matrix_without_gradients_is_the_same_bit_for_bit():
    """Without gradients it computes in place (faster); with them, as written (autograd)."""
    mu, logvar, z = _posteriors(50, 4, _gen(0))
    mu, logvar, z = mu.float(), logvar.float(), z.float()  # float32, as the models compute
    with torch.no_grad():
        fast = log_density_matrix(z, mu, logvar)
    z.requires_grad_(True)
    plain = log_density_matrix(z, mu, logvar)
    assert torch.equal(fast, plain.detach())
    plain.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("dataset_size", [None, 40])
def test_a_batch_that_is_the_whole_data_set_gives_the_exact_mixture(dataset_size):
    mu, logvar, z = _posteriors(40, 3, _gen(1))
    sd, uniform = (0.5 * logvar).exp(), Categorical(torch.ones(40, dtype=F64))
    joint = MixtureSameFamily(uniform, Independent(Normal(mu, sd), 1))
    log_qz, log_qz_dims = log_aggregate_posterior(z, mu, logvar, dataset_size)
    assert torch.allclose(log_qz, joint.log_prob(z), atol=1e-12)
    for d in range(3):
        marginal = MixtureSameFamily(uniform, Normal(mu[:, d], sd[:, d]))
        assert torch.allclose(log_qz_dims[:, d], marginal.log_prob(z[:, d]), atol=1e-12)


def test_the_three_terms_add_up_to_the_one_sample_kl():
    mu, logvar, z = _posteriors(32, 4, _gen(2))
    for dataset_size in (None, 1000):
        terms = kl_decomposition_mc(z, mu, logvar, _log_std_normal(z), dataset_size)
        kl = Posterior(mu, logvar).log_prob(z) - _log_std_normal(z)
        assert torch.allclose(sum(terms), kl, atol=1e-10)
        assert all(t.shape == (32,) for t in terms)


def test_the_data_set_split_is_the_stratified_split_of_a_batch_that_is_the_whole_set():
    mu, logvar, _ = _posteriors(40, 3, _gen(3))
    index = torch.arange(40)
    exact = kl_decomposition_dataset(mu, logvar, index=index, generator=_gen(4), chunk=7)
    z = Posterior(mu, logvar).rsample(generator=_gen(4))  # the same draws
    batch = kl_decomposition_mc(z, mu, logvar, _log_std_normal(z), dataset_size=40)
    for got, expected in zip(exact, batch):
        assert torch.allclose(got, expected, atol=1e-10)


def test_the_data_set_split_finds_the_closed_form_tc_without_the_minibatch_bias():
    cov, s2 = CORRELATED_2D, 0.15
    _, mu, logvar = next(_gaussian_batches(cov, s2, 4096, 1, _gen(5)))
    terms = kl_decomposition_dataset(mu, logvar, 2000, generator=_gen(6))
    tc = terms.total_correlation
    # the mixture of 4,096 posteriors is close to N(0, cov); 4 standard errors
    assert abs(tc.mean().item() - _closed_form_tc(cov)) < 4 * tc.std().item() / math.sqrt(2000)
    assert all(t.shape == (2000,) for t in terms)
    with pytest.raises(ValueError, match="samples"):
        kl_decomposition_dataset(mu, logvar, 0)
    with pytest.raises(ValueError, match="index"):
        kl_decomposition_dataset(mu, logvar, index=torch.tensor([0, 4096]))


# --- known total correlations ---------------------------------------------------------

@pytest.mark.parametrize("cov, s2, sd1", [(CORRELATED_2D, 0.15, 0.0195),
                                          (CORRELATED_3D, 0.25, 0.02)],
                         ids=["2d", "3d"])
def test_tc_of_correlated_gaussians_matches_the_closed_form(cov, s2, sd1):
    m, batches = 1024, 4
    estimates = _tc_estimates(cov, s2, m, batches)
    tolerance = abs(_first_order_bias(cov, s2, m)) + 4 * sd1 / math.sqrt(batches)
    assert abs(estimates.mean().item() - _closed_form_tc(cov)) < tolerance
    assert tolerance < 0.15 * _closed_form_tc(cov)  # 0.04 and 0.05 nats


def test_tc_of_independent_dimensions_is_near_zero():
    cov, s2, m, batches = torch.eye(3, dtype=F64), 0.5, 1024, 4
    estimates = _tc_estimates(cov, s2, m, batches)
    tolerance = _first_order_bias(cov, s2, m) + 4 * 0.003 / math.sqrt(batches)  # 0.008 nats
    assert abs(estimates.mean().item()) < tolerance


def test_small_batches_bias_mws_up_within_b_and_the_stratified_estimate_down():
    cov, s2, m, batches = torch.eye(3, dtype=F64), 0.3, 64, 50
    bias = _first_order_bias(cov, s2, m)  # 0.23 nats; measured over 200 batches: +0.07
    mws = _tc_estimates(cov, s2, m, batches, seed=4).mean().item()
    stratified = _tc_estimates(cov, s2, m, batches, dataset_size=10 ** 9, seed=4).mean().item()
    assert 0.02 < mws < bias and -bias < stratified < -0.02  # measured: -0.08


# --- the beta-TCVAE loss --------------------------------------------------------------

def _vae(seed=0):
    torch.manual_seed(seed)
    return VAE(MLPEncoder((1, 4, 4), 3, hidden=(8,)), MLPDecoder(3, (1, 4, 4), hidden=(8,)))


def test_with_unit_weights_the_loss_is_the_negative_elbo_on_the_same_draw():
    model, x = _vae(), torch.rand(16, 1, 4, 4, generator=_gen(5)).round()
    terms = beta_tcvae_loss(model, x, beta=1.0, generator=_gen(6))
    elbo = negative_elbo(model, x, generator=_gen(6))
    assert torch.allclose(terms.log_likelihood, elbo.log_likelihood)  # the same z
    mu, logvar = model.encode(x)
    z = Posterior(mu, logvar).rsample(generator=_gen(6))
    kl = Posterior(mu, logvar).log_prob(z) - model.prior.log_prob(z)
    assert torch.allclose(terms.kl, kl, atol=1e-5)
    assert torch.allclose(terms.loss, -(elbo.log_likelihood - kl).mean(), atol=1e-5)
    assert abs(terms.kl.mean() - elbo.kl.mean()) < 3 * elbo.kl.std() + 1  # a one-sample KL


def test_beta_weighs_the_total_correlation_alone():
    model, x = _vae(), torch.rand(16, 1, 4, 4, generator=_gen(5)).round()
    base = beta_tcvae_loss(model, x, beta=1.0, generator=_gen(7))
    tc = beta_tcvae_loss(model, x, beta=6.0, generator=_gen(7))
    assert torch.allclose(tc.loss, base.loss + 5 * base.total_correlation.mean(), atol=1e-5)
    mi = beta_tcvae_loss(model, x, beta=1.0, alpha=0.0, generator=_gen(7))
    assert torch.allclose(mi.loss, base.loss - base.index_code_mi.mean(), atol=1e-5)


def test_fit_trains_with_the_loss_and_logs_the_three_terms():
    model, x = _vae(), torch.rand(64, 1, 4, 4, generator=_gen(8)).round()
    loss = partial(beta_tcvae_loss, beta=4.0, dataset_size=64)
    history = fit(model, loss, x, epochs=2, batch_size=16, progress=False)
    last = history.last()
    assert {"loss", "total_correlation", "index_code_mi", "dimwise_kl"} <= set(last)
    assert history.train["loss"][1] < history.train["loss"][0]
    assert last["kl"] == pytest.approx(last["index_code_mi"] + last["total_correlation"]
                                       + last["dimwise_kl"], abs=1e-4)


def test_errors():
    model, x = _vae(), torch.rand(4, 1, 4, 4)
    with pytest.raises(ValueError, match="beta"):
        beta_tcvae_loss(model, x, beta=-1.0)
    with pytest.raises(ValueError, match="dataset_size"):
        beta_tcvae_loss(model, x, dataset_size=3)
    with pytest.raises(ValueError, match="at least 2"):
        beta_tcvae_loss(model, x[:1])
    model.prior = torch.nn.Identity()
    with pytest.raises(ValueError, match="StdNormalPrior"):
        beta_tcvae_loss(model, x)


def test_index_code_mi_of_a_linear_gaussian_model_is_its_mutual_information():
    r"""z ~ N(0, I), x = W z + s ε with orthogonal columns a_j u_j: the exact posterior is diagonal,
    N(a_j u_j·x / (a_j² + s²), s² / (a_j² + s²)), and I(x; z) = ½ Σ_j log(1 + a_j² / s²).
    The estimate with the aggregate posterior of N draws of x approaches it when e^I ≪ N."""
    g = torch.Generator().manual_seed(0)
    n, s = 5_000, 1.0
    a = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)
    u, _ = torch.linalg.qr(torch.randn(6, 3, generator=g, dtype=torch.float64))
    z = torch.randn(n, 3, generator=g, dtype=torch.float64)
    x = z @ (u * a).T + s * torch.randn(n, 6, generator=g, dtype=torch.float64)
    var = s ** 2 / (a ** 2 + s ** 2)
    mu = (x @ u) * a / (a ** 2 + s ** 2)
    logvar = var.log().expand(n, 3)
    exact = 0.5 * torch.log1p(a ** 2 / s ** 2).sum().item()  # 1.27 nats
    estimate = kl_decomposition_dataset(mu, logvar, 2000, generator=g).index_code_mi
    se = estimate.std().item() / len(estimate) ** 0.5
    assert abs(estimate.mean().item() - exact) < 4 * se + 0.01, (estimate.mean().item(), exact)
    # the estimate can never exceed log N: with a code far more informative than log N it saturates
    sharp = kl_decomposition_dataset(mu[:200], torch.full((200, 3), -20.0, dtype=torch.float64),
                                     500, generator=g).index_code_mi
    assert sharp.mean().item() == pytest.approx(math.log(200), abs=1e-3)
