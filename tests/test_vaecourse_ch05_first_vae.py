"""The pieces of chapter 05's recipes: the floored log-variance, the pixel-mean loss, the builders."""
from __future__ import annotations

import math

import pytest
import torch

from vaecore.elbo import negative_elbo
from vaecore.mlp import MLPDecoder
from vaecourse.chapters.ch05_first_vae import (LOGVAR_FLOOR, RECIPES, FlooredVarianceDecoder, conv_vae,
                                       negative_elbo_pixel_mean, normal_learnedvar_vae,
                                       normal_unitvar_vae)
from vaecourse.chapters.ch05_first_vae import mlp_vae


def test_floor_is_one_grey_level():
    assert math.isclose(math.exp(0.5 * LOGVAR_FLOOR), 1 / 255)


def test_floored_logvar_stays_above_the_floor_and_follows_large_raw_values():
    torch.manual_seed(0)
    decoder = FlooredVarianceDecoder(MLPDecoder(3, (1, 4, 4), hidden=(8,), learned_var=True))
    with torch.no_grad():
        decoder.decoder.to_logvar[0].bias.fill_(-60.0)   # raw log-variance far below the floor
        mean, logvar = decoder(torch.randn(5, 3))
    assert mean.shape == logvar.shape == (5, 1, 4, 4)
    assert (logvar >= LOGVAR_FLOOR).all() and (logvar < LOGVAR_FLOOR + 1e-6).all()
    raw = torch.linspace(LOGVAR_FLOOR + 25, 5, 20, dtype=torch.float64)
    floored = LOGVAR_FLOOR + torch.nn.functional.softplus(raw - LOGVAR_FLOOR)
    torch.testing.assert_close(floored, raw)


def test_floored_decoder_needs_a_learned_variance():
    with pytest.raises(ValueError, match="learned_var"):
        FlooredVarianceDecoder(MLPDecoder(3, (1, 4, 4), hidden=(8,)))


def test_pixel_mean_loss_is_the_beta_784_loss_divided_by_784():
    model = mlp_vae(latent_dim=4, hidden=(16,)).double()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1), dtype=torch.float64).round()
    mean_terms = negative_elbo_pixel_mean(model, x, generator=torch.Generator().manual_seed(2))
    beta_terms = negative_elbo(model, x, beta=784.0, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(784 * mean_terms.loss, beta_terms.loss)
    torch.testing.assert_close(mean_terms.log_likelihood, beta_terms.log_likelihood)
    torch.testing.assert_close(mean_terms.kl, beta_terms.kl)


@pytest.mark.parametrize("build", [normal_unitvar_vae, normal_learnedvar_vae, conv_vae])
def test_builders_are_seeded(build):
    a, b = build(), build()
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_conv_and_mlp_have_about_the_same_size():
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert abs(count(conv_vae()) / count(mlp_vae()) - 1) < 0.01


def test_every_recipe_trains_ten_epochs_and_names_itself():
    assert set(RECIPES) == {"mnist-mlp-bernoulli-z20-e30", "mnist-mlp-bernoulli-z20-e10", "mnist-mlp-bernoulli-pixelmean-z20-e10",
                            "mnist-mlp-normal-unitvar-z20-e10", "mnist-mlp-normal-learnedvar-z20-e10",
                            "mnist-conv-bernoulli-z20-e10"}
    assert all(f"{r.epochs} epochs" in r.summary for r in RECIPES.values())
    assert {r.epochs for name, r in RECIPES.items() if name.endswith("-e10")} == {10}
