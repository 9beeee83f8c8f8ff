"""Gradient draws and their signal-to-noise ratio, on the linear-Gaussian model of test_elbo."""
from functools import partial

import pytest
import torch
from torch.testing import assert_close

from test_elbo import seeded
from test_gradients import ENCODER, bad_model
from vaecore.elbo import iwae_loss
from vaecore.gradient_snr import gradient_draws, gradient_snr, posterior_gradient_draws
from vaecore.gradients import iwae_dreg_loss, negative_elbo_stl


def test_posterior_draws_are_the_network_gradient_of_one_image():
    # mu = A x + c: the gradient of the bias c is the gradient of mu; logvar is a parameter.
    model, x, _ = bad_model()
    for loss in (negative_elbo_stl, partial(iwae_dreg_loss, k=4), partial(iwae_loss, k=4)):
        per_image = posterior_gradient_draws(model, loss, x[:1], 1, seeded(4))
        network = gradient_draws(model, loss, x[:1], 1, seeded(4), names=ENCODER)
        assert_close(per_image.mu[:, 0], network["encoder.to_mu.bias"])
        assert_close(per_image.logvar[:, 0], network["encoder.logvar"])


def test_encoder_snr_falls_with_k_for_iwae_and_not_for_dreg():
    # Mean SNR over the 6 entries of (mu, logvar) of one image, R = 500 draws. Measured
    # (seed 9): IWAE 0.47 at k=1, 0.062 at k=100; DReG 1.31 at k=1, 3.48 at k=100. Each SNR's
    # standard error is about sqrt((1 + SNR^2 / 2) / R) <= 0.2 here, so 0.05 on the mean of 6.
    model, x, _ = bad_model()
    snr = {}
    for name, loss in (("iwae", iwae_loss), ("dreg", iwae_dreg_loss)):
        for k in (1, 100):
            draws = posterior_gradient_draws(model, partial(loss, k=k), x[:1], 500, seeded(9))
            snr[name, k] = torch.cat([gradient_snr(draws.mu), gradient_snr(draws.logvar)], 1).mean()
    assert snr["iwae", 100] < 0.3 * snr["iwae", 1]
    assert snr["dreg", 100] > 1.5 * snr["dreg", 1]
    assert snr["dreg", 100] > 10 * snr["iwae", 100]


def test_gradient_snr_of_known_draws():
    draws = torch.tensor([[1.0, -2.0, 0.0], [3.0, -2.0, 1.0], [2.0, -2.0, -1.0]])
    assert_close(gradient_snr(draws), torch.tensor([2.0, float("inf"), 0.0]))
    with pytest.raises(ValueError, match="at least 2 draws"):
        gradient_snr(draws[:1])
