"""The ELBO family on a linear-Gaussian model, where log p(x) and the posterior are exact.

p(z) = N(0, I_d), p(x|z) = N(Wz + b, s2 I_n), so p(x) = N(b, WW^T + s2 I) and
q*(z|x) = N(S W^T (x - b) / s2, S) with S = (I + W^T W / s2)^-1, diagonal here
because W has orthogonal columns. Everything in float64.
"""
import math

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, MultivariateNormal, Normal
from torch.testing import assert_close

from vaecore.elbo import (ELBOTerms, IWAETerms, iwae_bound, iwae_loss, log_likelihood_is,
                          negative_elbo, negative_elbo_fast)
from vaecore.kl import kl_normal_normal
from vaecore.likelihoods import normal
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.train import fit
from vaecore.vae import VAE

N, D, S2 = 6, 3, 0.5
COLUMN_NORMS = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)


class AffineEncoder(nn.Module):
    """mu = A x + c, logvar the same for every x."""

    def __init__(self, weight, bias, logvar):
        super().__init__()
        self.latent_dim = weight.shape[0]
        self.to_mu = nn.Linear(weight.shape[1], weight.shape[0]).double()
        self.to_mu.weight.data, self.to_mu.bias.data = weight.clone(), bias.clone()
        self.logvar = nn.Parameter(logvar.clone())

    def forward(self, x):
        return self.to_mu(x), self.logvar.expand(x.shape[0], -1)


class LinearDecoder(nn.Module):
    def __init__(self, weight, bias):
        super().__init__()
        self.latent_dim, self.out_shape = weight.shape[1], (weight.shape[0],)
        self.to_x = nn.Linear(weight.shape[1], weight.shape[0]).double()
        self.to_x.weight.data, self.to_x.bias.data = weight.clone(), bias.clone()

    def forward(self, z):
        return self.to_x(z)


def linear_gaussian(shift=0.0, scale=1.0, extra_logvar=0.0):
    """The model, data x (5, N) and exact log p(x); shift/scale/extra_logvar spoil the encoder."""
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(N, N, generator=g, dtype=torch.float64))
    w = q[:, :D] * COLUMN_NORMS
    b = torch.randn(N, generator=g, dtype=torch.float64)
    post_var = 1 / (1 + COLUMN_NORMS ** 2 / S2)
    enc_weight = post_var[:, None] * w.T / S2
    encoder = AffineEncoder(scale * enc_weight, -enc_weight @ b + shift,
                            torch.log(post_var) + extra_logvar)
    model = VAE(encoder, LinearDecoder(w, b), likelihood=normal(math.log(S2)))
    marginal = MultivariateNormal(b, w @ w.T + S2 * torch.eye(N, dtype=torch.float64))
    x = b + torch.randn(5, N, generator=g, dtype=torch.float64) @ marginal.scale_tril.T
    return model, x, marginal.log_prob(x)


def exact_posterior(model, x):
    w, b = model.decoder.to_x.weight, model.decoder.to_x.bias
    post_var = 1 / (1 + COLUMN_NORMS ** 2 / S2)
    return post_var * ((x - b) @ w) / S2, torch.log(post_var).expand(x.shape[0], -1)


def closed_form_elbo(model, x):
    """E_q log p(x|z) - KL(q || p) in closed form for the linear-Gaussian model."""
    mu, logvar = model.encode(x)
    w, b = model.decoder.to_x.weight, model.decoder.to_x.bias
    sq_err = ((x - mu @ w.T - b) ** 2).sum(1) + (torch.exp(logvar) * COLUMN_NORMS ** 2).sum(1)
    expected_log_lik = -0.5 * N * math.log(2 * math.pi * S2) - sq_err / (2 * S2)
    return expected_log_lik - model.prior.kl(mu, logvar, None)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def repeat(x, r):
    return x.repeat(r, 1)


def per_example_mean(values, r, batch):
    return values.view(r, batch).mean(0), values.view(r, batch).std(0) / math.sqrt(r)


def test_fixture_exact_posterior_and_elbo_identity():
    model, x, log_px = linear_gaussian()
    mu, logvar = exact_posterior(model, x)
    torch.testing.assert_close(model.encode(x).mu, mu)
    torch.testing.assert_close(closed_form_elbo(model, x), log_px, rtol=0, atol=1e-8)
    wrong, x, log_px = linear_gaussian(shift=0.3, scale=0.8, extra_logvar=0.4)
    q = wrong.encode(x)
    gap = kl_normal_normal(q.mu, q.logvar, *exact_posterior(wrong, x))
    assert (gap > 0.1).all()
    torch.testing.assert_close(closed_form_elbo(wrong, x) + gap, log_px, rtol=0, atol=1e-8)


def test_negative_elbo_terms_match_oracle():
    model, x, log_px = linear_gaussian()
    terms = negative_elbo(model, x, generator=seeded(1))
    out = model(x, generator=seeded(1))
    std = torch.exp(0.5 * out.logvar)
    expected_rec = Normal(out.z @ model.decoder.to_x.weight.T + model.decoder.to_x.bias,
                          math.sqrt(S2)).log_prob(x).sum(1)
    expected_kl = torch.distributions.kl_divergence(Normal(out.mu, std), Normal(0.0, 1.0)).sum(1)
    assert isinstance(terms, ELBOTerms) and terms.loss.shape == ()
    assert terms.log_likelihood.shape == terms.kl.shape == (5,)
    torch.testing.assert_close(terms.log_likelihood, expected_rec)
    torch.testing.assert_close(terms.kl, expected_kl)
    torch.testing.assert_close(terms.loss, -(expected_rec - expected_kl).mean())
    # With the exact posterior, log p(x|z) + log p(z) - log q(z|x) = log p(x) for every z.
    log_ratio = Normal(0.0, 1.0).log_prob(out.z).sum(1) - Normal(out.mu, std).log_prob(out.z).sum(1)
    torch.testing.assert_close(terms.log_likelihood + log_ratio, log_px, rtol=0, atol=1e-8)


def test_negative_elbo_is_unbiased_for_the_closed_form_elbo():
    model, x, _ = linear_gaussian(shift=0.3, scale=0.8, extra_logvar=0.4)
    r = 20_000
    terms = negative_elbo(model, repeat(x, r), generator=seeded(2))
    mean, se = per_example_mean(terms.log_likelihood - terms.kl, r, 5)
    assert (abs(mean - closed_form_elbo(model, x)) < 4 * se).all()


def test_beta_scales_the_kl_term():
    model, x, _ = linear_gaussian(shift=0.3)
    one = negative_elbo(model, x, beta=1.0, generator=seeded(3))
    two = negative_elbo(model, x, beta=2.0, generator=seeded(3))
    zero = negative_elbo(model, x, beta=0, generator=seeded(3))
    torch.testing.assert_close(two.loss - one.loss, one.kl.mean())
    torch.testing.assert_close(zero.loss, -one.log_likelihood.mean())


def test_exact_posterior_makes_every_estimate_exact():
    model, x, log_px = linear_gaussian()
    for k in (1, 10):
        torch.testing.assert_close(iwae_bound(model, x, k, generator=seeded(k)), log_px,
                                   rtol=0, atol=1e-8)
    estimate = log_likelihood_is(model, x, 50, chunk=7, generator=seeded(4), batch_size=2)
    torch.testing.assert_close(estimate, log_px, rtol=0, atol=1e-8)


def test_iwae_k1_is_unbiased_for_the_elbo():
    model, x, _ = linear_gaussian(shift=0.3, scale=0.8, extra_logvar=0.4)
    r = 20_000
    mean, se = per_example_mean(iwae_bound(model, repeat(x, r), 1, generator=seeded(5)), r, 5)
    assert (abs(mean - closed_form_elbo(model, x)) < 4 * se).all()


def test_iwae_bound_tightens_with_k_and_stays_below_log_px():
    model, x, log_px = linear_gaussian(shift=0.3, scale=0.8, extra_logvar=0.4)
    r = 2_000
    means = []
    for k in (1, 10, 100):
        mean, se = per_example_mean(iwae_bound(model, repeat(x, r), k, generator=seeded(k)), r, 5)
        assert (mean < log_px + 4 * se).all()
        means.append(mean)
    assert (means[0] < means[1]).all() and (means[1] < means[2]).all()
    assert ((log_px - means[2]) < 0.1 * (log_px - means[0])).all()


def test_log_likelihood_is_converges_to_log_px():
    # Monte-Carlo sd of the estimate here is about 0.01 nats; the ELBO is 0.11 to 0.38 below.
    model, x, log_px = linear_gaussian(shift=0.1, scale=0.9, extra_logvar=0.3)
    estimate = log_likelihood_is(model, x, 5000, generator=seeded(6))
    torch.testing.assert_close(estimate, log_px, rtol=0, atol=0.03)
    assert (closed_form_elbo(model, x) < log_px - 0.1).all()


def test_chunks_and_iwae_bound_agree_with_the_same_samples():
    model, x, _ = linear_gaussian(shift=0.3, scale=0.8, extra_logvar=0.4)
    whole = log_likelihood_is(model, x, 5000, chunk=5000, generator=seeded(7))
    chunked = log_likelihood_is(model, x, 5000, chunk=7, generator=seeded(7))
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-10)
    bound = iwae_bound(model, x, 5000, generator=seeded(7))
    torch.testing.assert_close(bound, whole, rtol=0, atol=1e-10)


def test_iwae_bound_matches_a_loop_oracle_on_images():
    torch.manual_seed(0)
    model = VAE(MLPEncoder((1, 3, 3), 2, hidden=(8,)), MLPDecoder(2, (1, 3, 3), hidden=(8,))).double()
    x = torch.bernoulli(torch.full((4, 1, 3, 3), 0.4, dtype=torch.float64))
    k = 6
    mu, logvar = model.encoder(x)
    eps = torch.randn(k, 4, 2, generator=seeded(8), dtype=torch.float64)
    log_w = []
    for i in range(k):
        z = mu + torch.exp(0.5 * logvar) * eps[i]
        log_w.append(Bernoulli(logits=model.decoder(z)).log_prob(x).flatten(1).sum(1)
                     + Normal(0.0, 1.0).log_prob(z).sum(1)
                     - Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1))
    expected = torch.logsumexp(torch.stack(log_w), 0) - math.log(k)
    torch.testing.assert_close(iwae_bound(model, x, k, generator=seeded(8)), expected)
    torch.testing.assert_close(log_likelihood_is(model, x, k, chunk=4, generator=seeded(8)), expected)


def test_iwae_loss_is_differentiable():
    model, x, _ = linear_gaussian(shift=0.3)
    terms = iwae_loss(model, x, k=5, generator=seeded(9))
    assert isinstance(terms, IWAETerms) and terms.bound.shape == (5,)
    torch.testing.assert_close(terms.loss, -terms.bound.mean())
    terms.loss.backward()
    assert model.encoder.to_mu.weight.grad.abs().sum() > 0
    assert model.encoder.logvar.grad.abs().sum() > 0
    assert model.decoder.to_x.weight.grad.abs().sum() > 0


def test_log_likelihood_is_needs_no_grad():
    model, x, _ = linear_gaussian()
    assert not log_likelihood_is(model, x, 3).requires_grad
    assert log_likelihood_is(model, x, 3).shape == (5,)


def test_bad_arguments_raise():
    model, x, _ = linear_gaussian()
    for k in (0, 2.5, True):
        with pytest.raises(ValueError, match="k: expected a positive integer"):
            iwae_bound(model, x, k)
        with pytest.raises(ValueError, match="k: expected a positive integer"):
            log_likelihood_is(model, x, k)
    with pytest.raises(ValueError, match="chunk"):
        log_likelihood_is(model, x, 10, chunk=0)
    with pytest.raises(ValueError, match="batch_size"):
        log_likelihood_is(model, x, 10, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        log_likelihood_is(model, x[:0], 10)
    for beta in (-1.0, "1", True, float("nan")):
        with pytest.raises(ValueError, match="beta"):
            negative_elbo(model, x, beta=beta)
    mlp_vae = VAE(MLPEncoder((6,), 3, hidden=(4,)), MLPDecoder(3, (6,), hidden=(4,)))
    with pytest.raises(ValueError, match=r"\(B, 6\)"):
        negative_elbo(mlp_vae, x[:, :4].float())
    with pytest.raises(ValueError, match="torch.Tensor"):
        iwae_bound(model, x.tolist(), 2)


# --- Hardening: the usual slips get a message that names them ------------------------------

def _image_vae(d=2):
    torch.manual_seed(0)
    return VAE(MLPEncoder((1, 4, 4), d, hidden=(8,)), MLPDecoder(d, (1, 4, 4), hidden=(8,)))


def test_losses_refuse_an_empty_batch():
    model, x, _ = linear_gaussian()
    with pytest.raises(ValueError, match=r"x: expected at least one example, got an empty batch"):
        negative_elbo(model, x[:0])
    with pytest.raises(ValueError, match=r"x: expected at least one example"):
        iwae_loss(model, x[:0], k=2)


def test_negative_elbo_refuses_bernoulli_data_outside_unit_interval():
    model, x = _image_vae(), torch.rand(3, 1, 4, 4, generator=seeded(1))
    with pytest.raises(ValueError, match=r"x: expected Bernoulli targets in \[0, 1\].*x / 255"):
        negative_elbo(model, (x * 255).round())
    with pytest.raises(ValueError, match=r"x: expected Bernoulli targets in \[0, 1\].*\(x \+ 1\) / 2"):
        negative_elbo(model, 2 * x - 1)
    assert torch.isfinite(negative_elbo(model, x).loss)  # grey levels are fine


def test_negative_elbo_names_an_x_y_pair():
    model, x = _image_vae(), torch.rand(3, 1, 4, 4, generator=seeded(1))
    y = torch.tensor([3, 1, 4])
    for pair in ((x, y), [x, y]):
        with pytest.raises(ValueError, match=r"x: expected a tensor of examples \(B, \.\.\.\), got a "
                                             r"(tuple|list) of 2 \(did you pass \(x, y\)\?\)"):
            negative_elbo(model, pair)
    with pytest.raises(ValueError, match=r"beta: expected a number, got a tensor of shape \(3,\); "
                                         r"labels\? fit\(\.\.\., train=\(x, y\)\) calls "
                                         r"loss_fn\(model, x, y\)"):
        negative_elbo(model, x, y)
    with pytest.raises(ValueError, match=r"k: expected a number, got a tensor of shape \(3,\); labels\?"):
        iwae_loss(model, x, y)


def test_fit_with_labelled_data_names_the_labels():
    model, x = _image_vae(), torch.rand(8, 1, 4, 4, generator=seeded(1))
    y = torch.arange(8)
    with pytest.raises(ValueError, match=r"labels\? .*train=x"):
        fit(model, negative_elbo, (x, y), epochs=1, batch_size=4, progress=False)


def test_negative_elbo_names_the_dtypes():
    model, x = _image_vae(), torch.rand(3, 1, 4, 4, generator=seeded(1), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"x: expected torch.float32, the dtype of the model's "
                                         r"parameters, got torch.float64"):
        negative_elbo(model, x)
    assert torch.isfinite(negative_elbo(model.double(), x).loss)


def test_reconstruction_is_the_deprecated_name_of_log_likelihood():
    from vaecore.mlp import MLPDecoder, MLPEncoder
    from vaecore.vae import VAE
    torch.manual_seed(0)
    model = VAE(MLPEncoder((1, 4, 4), 2, hidden=(8,)), MLPDecoder(2, (1, 4, 4), hidden=(8,)))
    terms = negative_elbo(model, torch.rand(3, 1, 4, 4).round())
    with pytest.warns(DeprecationWarning, match="log_likelihood"):
        assert terms.reconstruction is terms.log_likelihood


@pytest.mark.parametrize("beta", [1.0, 0.3, 4.0])
@pytest.mark.parametrize("binary", [True, False])
def test_negative_elbo_fast_gives_the_values_and_gradients_of_negative_elbo(beta, binary):
    torch.manual_seed(0)
    model = VAE(MLPEncoder((1, 5, 5), 3, hidden=(16,)), MLPDecoder(3, (1, 5, 5), hidden=(16,)))
    model = model.double()
    with torch.no_grad():  # logits up to about +-40: the tails of log(1 + e^l) are exercised
        model.decoder.to_x[0].weight.mul_(20.0)
    x = torch.rand(7, 1, 5, 5, generator=seeded(2), dtype=torch.float64)
    x = x.round() if binary else x
    results = []
    for loss_fn in (negative_elbo, negative_elbo_fast):
        model.zero_grad()
        terms = loss_fn(model, x, beta=beta, generator=seeded(3))
        terms.loss.backward()
        results.append((terms, [p.grad.clone() for p in model.parameters()]))
    (slow, slow_grads), (fast, fast_grads) = results
    assert type(fast) is ELBOTerms
    assert fast.loss.shape == () and fast.log_likelihood.shape == fast.kl.shape == (7,)
    assert model(x).x_params.abs().max() > 20  # the tails are reached
    for name in ELBOTerms._fields:
        assert_close(getattr(fast, name), getattr(slow, name), rtol=1e-12, atol=1e-12)
    for g_fast, g_slow in zip(fast_grads, slow_grads, strict=True):
        assert_close(g_fast, g_slow, rtol=1e-10, atol=1e-12)


def test_negative_elbo_fast_under_bfloat16_autocast_sums_in_float32():
    model, x = _image_vae(), torch.rand(5, 1, 4, 4, generator=seeded(1)).round()
    exact = negative_elbo(model, x, generator=seeded(4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = negative_elbo_fast(model, x, generator=seeded(4))
    assert all(t.dtype == torch.float32 for t in terms)
    assert_close(terms.loss, exact.loss, rtol=0.02, atol=0)  # bfloat16 products, same bound
    terms.loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


def test_negative_elbo_fast_refuses_what_it_does_not_compute():
    from vaecore.flows import FlowPrior  # no closed-form KL
    x = torch.rand(3, 1, 4, 4, generator=seeded(1))
    gaussian = VAE(MLPEncoder((1, 4, 4), 2), MLPDecoder(2, (1, 4, 4)), likelihood=normal(0.0))
    with pytest.raises(ValueError, match="bernoulli likelihood and StdNormalPrior.*negative_elbo"):
        negative_elbo_fast(gaussian, x)
    mixture = VAE(MLPEncoder((1, 4, 4), 2), MLPDecoder(2, (1, 4, 4)), prior=FlowPrior(2))
    with pytest.raises(ValueError, match="got bernoulli and FlowPrior"):
        negative_elbo_fast(mixture, x)
    with pytest.raises(ValueError, match="pass the images alone"):
        negative_elbo_fast(_image_vae(), (x, torch.arange(3)))
