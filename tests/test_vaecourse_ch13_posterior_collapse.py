"""Chapter 13's recipes: names, seeded builders, the objectives, and the recorded metrics."""
from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from _records import reproduced_metrics, seed_runs
from vaecore.elbo import negative_elbo
from vaecore.kl_control import (CommittedRateEncoder, ScheduledELBO, committed_rate,
                                cyclical_weight, free_bits_loss, linear_warmup_weight)
from vaecourse.chapters import ch13_posterior_collapse as C
from vaecourse.zoo import RECIPES


ALL_SETTINGS = C.SETTINGS + C.LARGE_SETTINGS


def test_six_settings_named_by_the_scheme_and_listed_in_the_zoo():
    names = [name for _, name, *_ in ALL_SETTINGS]
    assert names == ["mnist-pixelcnn-bernoulli-z32-e4", "mnist-pixelcnn-bernoulli-warmup-z32-e4",
                     "mnist-pixelcnn-bernoulli-cyclical-z32-e4",
                     "mnist-pixelcnn-bernoulli-freebits-z32-e4",
                     "mnist-pixelcnn-bernoulli-delta-z32-e4",
                     "mnist-pixelcnn-bernoulli-large-z32-e4"]
    assert set(names) <= set(RECIPES)
    assert C.STEPS_PER_EPOCH == 430  # ceil(55,000 / 128)


def test_builder_is_seeded_and_the_delta_vae_shares_its_weights():
    a, b, c = C.collapse_vae(0), C.collapse_vae(0), C.collapse_vae(1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
    d = C.collapse_vae(0, committed=True)
    assert isinstance(d.encoder, CommittedRateEncoder) and d.encoder.sigma_max == C.SIGMA_MAX
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), d.parameters()))
    assert sum(p.numel() for p in a.parameters()) == 358_097
    large = C.collapse_vae(0, large=True)
    assert sum(p.numel() for p in large.decoder.parameters()) == 126_337
    assert all(torch.equal(x, y) for x, y in zip(a.encoder.parameters(),
                                                   large.encoder.parameters()))
    assert committed_rate(C.SIGMA_MAX) == pytest.approx(0.249087, abs=1e-6)


def test_the_recipes_train_the_objectives_they_name():
    x = torch.bernoulli(torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    total = C.EPOCHS * C.STEPS_PER_EPOCH
    weights = {"KL warm-up": lambda t: linear_warmup_weight(t, total // 2),
               "cyclical": lambda t: cyclical_weight(t, total, C.CYCLES, 0.5)}
    for label, name, build, *_ in ALL_SETTINGS:
        recipe = RECIPES[name]
        model = recipe.build().train()
        assert recipe.epochs == C.EPOCHS and recipe.fit_options["batch_size"] == C.BATCH_SIZE
        assert recipe.evaluate is C.evaluate_collapse
        if isinstance(recipe.loss, ScheduledELBO):
            recipe.loss.start(1)  # the first step of the second epoch
            step = C.STEPS_PER_EPOCH
            want = negative_elbo(model, x, beta=weights[label](step),
                                 generator=torch.Generator().manual_seed(0)).loss
            got = recipe.loss(model, x, generator=torch.Generator().manual_seed(0)).loss
            recipe.loss.start(0)
        else:
            reference = (lambda m, xb, generator: free_bits_loss(m, xb, C.FREE_NATS, generator)) \
                if label == "free bits" else negative_elbo
            want = reference(model, x, generator=torch.Generator().manual_seed(0)).loss
            got = recipe.loss(model, x, generator=torch.Generator().manual_seed(0)).loss
        assert torch.equal(got, want), name


def test_swap_gap_is_zero_when_the_decoder_ignores_z():
    model = C.collapse_vae(0).eval()
    with torch.no_grad():
        for layer in model.decoder.net.to_bias:
            layer.weight.zero_()
    x = torch.bernoulli(torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    assert C.swap_gap(model, x, torch.Generator().manual_seed(0)) == pytest.approx(0, abs=1e-4)


@pytest.mark.parametrize("label, name", [(s[0], s[1]) for s in ALL_SETTINGS])
def test_every_record_holds_three_seeds_with_the_same_metrics(label, name):
    runs = seed_runs(name, C.SEEDS)
    for run in runs:
        m = run["metrics"]
        assert m["mutual_information"] <= math.log(10_000) + 1e-6
        assert m["nll_is"] <= m["negative_elbo_is_images"] + 1e-6  # IS is above the ELBO
    if label == "δ-VAE":  # the committed rate holds for every image, so for the mean
        assert all(r["metrics"]["test_kl"] >= C.LATENT_DIM * committed_rate(C.SIGMA_MAX) - 1e-3
                   for r in runs)


@pytest.mark.slow
def test_evaluate_reproduces_the_record_of_seed_0():
    """One setting (evaluation is the same code for all five), every entry but the IS estimate.

    The IS estimate on 2,000 images is four fifths of the evaluation's two minutes; its
    estimator is tested in the library, and leaving it out changes no other entry.
    """
    reproduced_metrics(C.SETTINGS[3][1], partial(C.evaluate_collapse, importance_sampled=False),
                       left_out=("nll_is", "nll_is_se", "negative_elbo_is_images"))
