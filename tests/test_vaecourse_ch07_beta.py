"""Chapter 07's recipe pieces: the linear KL warm-up and the white-noise augmentation."""
from __future__ import annotations

import math

import pytest
import torch

from vaecore import data
from vaecore.elbo import negative_elbo
from vaecourse.zoo import RECIPES
from vaecourse.chapters.ch07_beta import (BETAS, WarmUpLoss, beta_name, linear_warmup,
                                  noisy_binarize)
from vaecourse.chapters.ch05_first_vae import mlp_vae
from vaecore.train import fit


def test_linear_warmup_rises_from_zero_to_one_then_stays():
    assert [linear_warmup(e, 4) for e in range(7)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [linear_warmup(e, 1) for e in range(3)] == [0.0, 1.0, 1.0]
    for bad in ((-1, 4), (0, 0)):
        with pytest.raises(ValueError):
            linear_warmup(*bad)


def test_warmup_loss_is_negative_elbo_with_the_current_beta():
    model = mlp_vae(latent_dim=3, hidden=(8,))
    x = torch.bernoulli(torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    loss = WarmUpLoss(4)
    for done in (0, 2, 9):
        loss.start(done)
        got = loss(model, x, generator=torch.Generator().manual_seed(1))
        want = negative_elbo(model, x, beta=linear_warmup(done, 4),
                             generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(got.loss, want.loss)
        assert got.beta.item() == linear_warmup(done, 4)


def test_warmup_callback_steps_beta_once_per_epoch_in_fit():
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    loss = WarmUpLoss(3)
    history = fit(mlp_vae(latent_dim=2, hidden=(8,)), loss, x, val=x[:16], epochs=5,
                  batch_size=32, callbacks=(loss.callback,), progress=False,
                  transform=data.binarize_dynamic)
    assert history.train["beta"] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0, 1.0])
    assert history.val["beta"] == history.train["beta"]


def test_noisy_binarize_is_binary_and_turns_on_background_pixels_at_the_predicted_rate():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(200, 1, 28, 28)
    x_bin = noisy_binarize(x, g, std=0.1)
    assert set(x_bin.unique().tolist()) <= {0.0, 1.0} and x_bin.shape == x.shape
    rate, expected = x_bin.mean().item(), 0.1 / math.sqrt(2 * math.pi)  # E[max(0, σε)]
    assert abs(rate - expected) < 5 * math.sqrt(expected / x.numel())
    ones = torch.ones(3, 1, 28, 28)
    assert torch.equal(noisy_binarize(ones, g, std=0.0), ones)
    assert torch.equal(noisy_binarize(x, g, std=0.0), x)


def test_the_sweep_names_and_recipes():
    assert beta_name(1) == "mnist-mlp-bernoulli-z20-e30"
    names = [beta_name(b) for b in BETAS]
    assert names == ["mnist-mlp-bernoulli-z20-beta0.1-e30", "mnist-mlp-bernoulli-z20-beta0.5-e30", "mnist-mlp-bernoulli-z20-beta2-e30",
                     "mnist-mlp-bernoulli-z20-beta10-e30"]
    for name in names + ["mnist-mlp-bernoulli-warmup-z50-e30", "mnist-mlp-bernoulli-noise-z20-e30"]:
        assert name in RECIPES
        assert "30 epochs" in RECIPES[name].summary
