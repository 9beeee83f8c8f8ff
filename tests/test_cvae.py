"""vaecore.cvae: the quadrant split, the conditional ELBO against torch.distributions, the
importance-sampled log p(x | y) where it is exact, and the completer's exact likelihood."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vaecore.cvae import (HIDDEN_VALUE, Completer, ConditionalVAE, LabelCVAE, completer_loss,
                          conditional_log_likelihood_is, cvae_loss, label_cvae_loss,
                          quadrant_mask)
from vaecore.seeding import local_seed
from vaecore.train import fit


def _images(n=6, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, size, size, generator=g) > 0.5).float()


def _model(observed=(2,), seed=0, latent_dim=3):
    with local_seed(seed):
        return ConditionalVAE(size=8, observed=observed, latent_dim=latent_dim, hidden=(16,))


def test_quadrant_masks_and_the_split():
    mask = quadrant_mask(4, (0, 3))
    assert mask.tolist() == [[True, True, False, False], [True, True, False, False],
                             [False, False, True, True], [False, False, True, True]]
    model = _model(observed=(2,))
    images = _images()
    x, y = model.split(images)
    assert x.shape == (6, 48) and y.shape == (6, 64) and model.x_dim == 48
    observed = quadrant_mask(8, (2,)).flatten()
    assert torch.equal(y[:, observed], images.flatten(1)[:, observed])
    assert (y[:, ~observed] == HIDDEN_VALUE).all()
    assert torch.equal(model.fill(y, x), images)  # split and fill are inverse
    for bad in ((), (4,), (0, 1, 2, 3)):
        with pytest.raises(ValueError, match="observed"):
            quadrant_mask(8, bad)
    with pytest.raises(ValueError, match="even"):
        quadrant_mask(7, (0,))
    with pytest.raises(ValueError, match="expected"):
        model.split(torch.zeros(2, 1, 6, 6))


def test_the_loss_is_minus_the_conditional_elbo_with_torch_distributions():
    model, images = _model(), _images()
    terms = cvae_loss(model, images, generator=torch.Generator().manual_seed(1))
    x, y = model.split(images)
    q, p = model.encode(x, y), model.prior(y)
    z = q.mu + (0.5 * q.logvar).exp() * torch.randn(q.mu.shape,
                                                    generator=torch.Generator().manual_seed(1))
    expected_ll = Bernoulli(logits=model.decode(z, y)).log_prob(x).sum(1)
    expected_kl = kl_divergence(Normal(q.mu, (0.5 * q.logvar).exp()),
                                Normal(p.mu, (0.5 * p.logvar).exp())).sum(1)
    torch.testing.assert_close(terms.log_likelihood, expected_ll)
    torch.testing.assert_close(terms.kl, expected_kl)
    torch.testing.assert_close(terms.loss, (expected_kl - expected_ll).mean())


def test_is_is_exact_when_the_decoder_ignores_z():
    """With the decoder's weights on z at zero, p(x | y, z) = p(x | y): every weight equals it."""
    model, images = _model(), _images()
    with torch.no_grad():
        model.decoder[0].weight[:, :model.latent_dim] = 0
    x, y = model.split(images)
    exact = Bernoulli(logits=model.decode(torch.zeros(len(x), model.latent_dim), y)) \
        .log_prob(x).sum(1)
    # log w = log p(x|y) + log p(z|y) - log q(z|x,y): exact only when q = p; make them equal
    with torch.no_grad():
        model.recognition_net[-1].weight.zero_()
        model.recognition_net[-1].bias.zero_()
        model.prior_net[-1].weight.zero_()
        model.prior_net[-1].bias.zero_()
    for k in (1, 7):
        got = conditional_log_likelihood_is(model, images, k, torch.Generator().manual_seed(2))
        torch.testing.assert_close(got, exact)


def test_is_rises_with_k_and_sits_above_the_elbo():
    model, images = _model(seed=3), _images(n=4, seed=3)
    runs = [cvae_loss(model, images, torch.Generator().manual_seed(s)) for s in range(200)]
    elbo = torch.stack([t.log_likelihood - t.kl for t in runs]).mean(0).detach()
    k1 = torch.stack([conditional_log_likelihood_is(model, images, 1,
                                                    torch.Generator().manual_seed(s))
                      for s in range(200)]).mean(0)
    k_many = conditional_log_likelihood_is(model, images, 2000,
                                           torch.Generator().manual_seed(4))
    assert (k_many > k1).all() and (k_many > elbo).all()
    # k = 1 estimates the ELBO (a sampled KL instead of the closed form): equal in mean
    assert torch.allclose(k1, elbo, atol=0.5)


def test_the_completer_has_the_exact_bernoulli_likelihood_and_fills_only_hidden_pixels():
    with local_seed(5):
        completer = Completer(size=8, observed=(0, 1), hidden=(16,))
    images = _images()
    terms = completer_loss(completer, images)
    x, y = completer.split(images)
    torch.testing.assert_close(terms.log_likelihood,
                               Bernoulli(logits=completer(y)).log_prob(x).sum(1))
    filled = completer.complete(images)
    top = quadrant_mask(8, (0, 1))
    assert torch.equal(filled[:, 0][:, top], images[:, 0][:, top])
    assert ((filled >= 0) & (filled <= 1)).all()


def test_both_train_with_fit_on_whole_images():
    """fit passes whole (binarized) images; each model splits them itself."""
    images = _images(n=64, seed=6)
    cvae = _model(observed=(0, 1), seed=7, latent_dim=2)
    with local_seed(8):
        completer = Completer(size=8, observed=(0, 1), hidden=(16,))
    for model, loss in ((cvae, cvae_loss), (completer, completer_loss)):
        history = fit(model, loss, images, epochs=20, batch_size=16, lr=3e-3, progress=False)
        assert history.train["loss"][-1] < history.train["loss"][0]
    draws = cvae.eval().complete(images[:4], n=3, generator=torch.Generator().manual_seed(9))
    assert draws.shape == (3, 4, 1, 8, 8)
    top = quadrant_mask(8, (0, 1))
    assert all(torch.equal(d[:, 0][:, top], images[:4, 0][:, top]) for d in draws)
    assert math.isfinite(conditional_log_likelihood_is(cvae, images, 50).mean().item())


def _label_model(seed=0):
    with local_seed(seed):
        return LabelCVAE(size=8, n_classes=3, latent_dim=2, hidden=(16,))


def test_label_cvae_starts_from_a_standard_prior_and_checks_its_labels():
    model = _label_model()
    y = torch.tensor([0, 2, 1])
    prior = model.prior(y)
    assert torch.equal(prior.mu, torch.zeros(3, 2))
    assert torch.equal(prior.logvar, torch.zeros(3, 2))
    assert model.decode(torch.zeros(5, 3, 2), y).shape == (5, 3, 64)
    assert model.sample(y, torch.Generator().manual_seed(0)).shape == (3, 1, 8, 8)
    for bad in (torch.tensor([0, 3]), torch.tensor([-1]), torch.tensor([0.0, 1.0])):
        with pytest.raises(ValueError, match="y: expected"):
            model.encode(_images(len(bad)), bad)
        with pytest.raises(ValueError, match="y: expected"):
            model.prior(bad)


def test_label_cvae_loss_is_the_conditional_elbo_against_torch_distributions():
    model = _label_model()
    with torch.no_grad():
        model.prior_table.normal_(generator=torch.Generator().manual_seed(3))
    x, y = _images(5), torch.tensor([0, 1, 2, 1, 0])
    terms = label_cvae_loss(model, x, y, torch.Generator().manual_seed(4))
    q, p = model.encode(x, y), model.prior(y)
    z = q.rsample(generator=torch.Generator().manual_seed(4))
    log_lik = Bernoulli(logits=model.decode(z, y)).log_prob(x.flatten(1)).sum(-1)
    kl = kl_divergence(Normal(q.mu, (0.5 * q.logvar).exp()),
                       Normal(p.mu, (0.5 * p.logvar).exp())).sum(-1)
    assert torch.allclose(terms.log_likelihood, log_lik, atol=1e-5)
    assert torch.allclose(terms.kl, kl, atol=1e-5)
    assert terms.loss.item() == pytest.approx((kl - log_lik).mean().item(), abs=1e-5)


def test_label_cvae_learns_each_class_and_its_prior():
    # two classes of 8x8 images: the top half on, or the bottom half on
    top = torch.zeros(1, 1, 8, 8)
    top[..., :4, :] = 1
    x = torch.cat([top, 1 - top]).repeat(32, 1, 1, 1)
    y = torch.tensor([0, 1]).repeat(32)
    model = _label_model()
    fit(model, label_cvae_loss, (x, y), epochs=60, batch_size=16, lr=1e-2, progress=False)
    samples = model.sample(torch.tensor([0, 1]).repeat(10), torch.Generator().manual_seed(0))
    assert samples[0::2, 0, :4].mean() > 0.9 and samples[0::2, 0, 4:].mean() < 0.1
    assert samples[1::2, 0, 4:].mean() > 0.9 and samples[1::2, 0, :4].mean() < 0.1
    assert model.prior_table.abs().max() > 0.1  # the KL moved each class's prior
