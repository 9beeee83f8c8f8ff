"""Encoder gradient estimators on the linear-Gaussian model of test_elbo, where the ELBO is closed form.

Monte-Carlo checks compare each entry of a mean gradient with its target
within 4.5 standard errors: with R >= 2000 draws the mean is Gaussian to good
accuracy, so each entry fails by chance with probability 7e-6, and the about
100 entries checked in this file with probability below 1e-3 (seeds are fixed,
so a run is reproducible).
"""
from functools import partial

import pytest
import torch
from torch.testing import assert_close

from test_elbo import closed_form_elbo, linear_gaussian, seeded
from vaecore.elbo import ELBOTerms, IWAETerms, iwae_loss, negative_elbo
from vaecore.gaps import with_posterior
from vaecore.gradient_snr import PosteriorGradients, gradient_draws, posterior_gradient_draws
from vaecore.gradients import iwae_dreg_loss, negative_elbo_stl
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.posterior import Posterior
from vaecore.train import fit
from vaecore.vae import VAE

ENCODER = ["encoder.to_mu.weight", "encoder.to_mu.bias", "encoder.logvar"]
DECODER = ["decoder.to_x.weight", "decoder.to_x.bias"]
Z_MAX = 4.5


def bad_model():
    return linear_gaussian(shift=0.3, scale=0.8, extra_logvar=0.4)


def exact_posterior_gradient(model, x, objective):
    """The gradient of minus ``objective(model, x)`` (B,) per image, with respect to its mu and logvar."""
    mu, logvar = (t.detach().clone().requires_grad_() for t in model.encode(x))
    value = objective(with_posterior(model, Posterior(mu, logvar)), x)
    return PosteriorGradients(*torch.autograd.grad(-value.sum(), [mu, logvar]))


def assert_unbiased(draws, target, other=None):
    """Each entry's mean draw is within Z_MAX standard errors of ``target`` (or of ``other``'s mean)."""
    for name in PosteriorGradients._fields:
        g = getattr(draws, name)
        var = g.var(0) / g.shape[0]
        if other is None:
            expected = getattr(target, name)
        else:
            h = getattr(other, name)
            expected, var = h.mean(0), var + h.var(0) / h.shape[0]
        z = (g.mean(0) - expected) / var.sqrt()
        assert z.abs().max() < Z_MAX, (name, z)


def test_values_are_the_usual_bounds():
    model, x, _ = bad_model()
    stl = negative_elbo_stl(model, x, generator=seeded(1))
    assert isinstance(stl, ELBOTerms) and stl.log_likelihood.shape == stl.kl.shape == (5,)
    standard = iwae_loss(model, x, k=1, generator=seeded(1))  # the same draws
    assert_close(stl.loss, standard.loss)
    assert_close(stl.log_likelihood - stl.kl, standard.bound)
    dreg = iwae_dreg_loss(model, x, k=7, generator=seeded(2))
    iwae = iwae_loss(model, x, k=7, generator=seeded(2))
    assert isinstance(dreg, IWAETerms)
    assert_close(dreg.loss, iwae.loss)
    assert_close(dreg.bound, iwae.bound.detach())
    half = negative_elbo_stl(model, x, beta=0.5, generator=seeded(1))
    assert_close(half.loss - stl.loss, -0.5 * stl.kl.mean())


def test_decoder_gradients_are_the_bounds_draw_by_draw():
    model, x, _ = bad_model()
    pairs = [(negative_elbo_stl, partial(iwae_loss, k=1)),
             (partial(iwae_dreg_loss, k=10), partial(iwae_loss, k=10))]
    for new, old in pairs:
        draws = [gradient_draws(model, loss, x, 3, seeded(3)) for loss in (new, old)]
        for name in DECODER:
            assert_close(draws[0][name], draws[1][name], rtol=1e-12, atol=1e-12)
        assert (draws[0]["encoder.logvar"] - draws[1]["encoder.logvar"]).abs().max() > 0.01


def test_elbo_estimators_are_unbiased_for_the_closed_form_gradient():
    model, x, _ = bad_model()
    exact = exact_posterior_gradient(model, x, closed_form_elbo)
    assert exact.mu.abs().min() > 0.05  # a real signal to find
    for loss in (negative_elbo_stl, partial(iwae_loss, k=1), negative_elbo):
        draws = posterior_gradient_draws(model, loss, x, 2000, seeded(5))
        assert draws.mu.shape == draws.logvar.shape == (2000, 5, 3)
        assert_unbiased(draws, exact)


def test_dreg_is_unbiased_for_the_iwae_encoder_gradient():
    model, x, _ = bad_model()
    dreg = posterior_gradient_draws(model, partial(iwae_dreg_loss, k=10), x, 2000, seeded(6))
    iwae = posterior_gradient_draws(model, partial(iwae_loss, k=10), x, 2000, seeded(7))
    assert iwae.mu.mean(0).abs().max() > 0.5  # a real signal to find
    assert_unbiased(dreg, None, other=iwae)


def test_stl_and_dreg_have_zero_variance_at_the_exact_posterior():
    model, x, _ = linear_gaussian()
    for loss in (negative_elbo_stl, partial(iwae_dreg_loss, k=5)):
        draws = posterior_gradient_draws(model, loss, x, 200, seeded(8))
        assert draws.mu.abs().max() < 1e-10 and draws.logvar.abs().max() < 1e-10
        network = gradient_draws(model, loss, x, 2, seeded(8), names=ENCODER)
        assert max(g.abs().max() for g in network.values()) < 1e-10
    for loss in (partial(iwae_loss, k=1), negative_elbo, partial(iwae_loss, k=5)):
        draws = posterior_gradient_draws(model, loss, x, 200, seeded(8))
        assert draws.mu.std(0).min() > 0.1 and draws.logvar.std(0).min() > 0.05  # score noise


def test_losses_train_with_fit_and_evaluate_without_grad():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 3, 3, generator=seeded(10)).round()
    for loss in (negative_elbo_stl, partial(iwae_dreg_loss, k=3)):
        model = VAE(MLPEncoder((1, 3, 3), 2, hidden=(8,)), MLPDecoder(2, (1, 3, 3), hidden=(8,)))
        history = fit(model, loss, x, val=x, epochs=2, batch_size=8, progress=False)
        assert len(history.val["loss"]) == 2 and all(v > 0 for v in history.val["loss"])
        with torch.no_grad():
            assert not loss(model, x).loss.requires_grad


def test_bad_arguments_raise():
    model, x, _ = bad_model()
    with pytest.raises(ValueError, match="k: expected a positive integer"):
        iwae_dreg_loss(model, x, k=0)
    with pytest.raises(ValueError, match=r"labels\?"):
        iwae_dreg_loss(model, x, torch.arange(5))
    with pytest.raises(ValueError, match="did you pass"):
        negative_elbo_stl(model, (x, torch.arange(5)))
    with pytest.raises(ValueError, match="beta"):
        negative_elbo_stl(model, x, beta=-1.0)
    with pytest.raises(ValueError, match=r"names: no trainable parameters \['encoder.nope'\]"):
        gradient_draws(model, negative_elbo_stl, x, 2, names=["encoder.nope"])
    with pytest.raises(ValueError, match=r"posterior.mu: expected shape \(B, 3\)"):
        with_posterior(model, Posterior(torch.zeros(5, 2), torch.zeros(5, 2)))
    fixed = with_posterior(model, model.encode(x))
    with pytest.raises(ValueError, match="expected 5 examples, one per posterior, got 2"):
        negative_elbo_stl(fixed, x[:2])
