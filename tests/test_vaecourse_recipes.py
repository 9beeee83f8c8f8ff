"""Every recipe of the zoo is data that builds, trains, evaluates, saves and reloads (Pythae-style).

One parametrised test per recipe, on a tiny synthetic slice shaped like its
data: ``build()`` (which must not touch the global RNG), two optimiser steps
through the recipe's own trainer, loss and fit options, the test ELBO of the
protocol where the model is a VAE, a checkpoint round trip. Plus the naming
scheme: every name is ``checkpoint_name(...)``-shaped and ends in its total epochs.
"""
from __future__ import annotations

import re

import pytest
import torch

from vaecore.checkpoint import load_checkpoint, save_checkpoint
from vaecore.vae import VAE
from vaecourse.protocol import evaluate_elbo
from vaecourse import store
from vaecourse.zoo import RECIPES

SHAPES = {"mnist32": (1, 32, 32), "mnist": (1, 28, 28), "cifar-bh": (3, 32, 32),
          "shapes": (1, 32, 32), "dsprites": (1, 32, 32)}
CLASSES = {"mnist32": 10, "mnist": 10, "cifar-bh": 2, "shapes": 4}
NAME = re.compile(r"(mnist32|mnist|cifar-bh|shapes|dsprites)-[a-z0-9]+-(bernoulli|normal-unitvar|"
                  r"normal-learnedvar|dlogistic|mse|gan|classifier|latent|pixel)"
                  r"(-[a-z0-9.]+)*?(-z\d+(?:x\d+)*)?"
                  r"(-beta[0-9.]+)?-e(\d+)")


def synthetic(name: str, n: int = 8):
    data = next(d for d in SHAPES if name.startswith(d + "-"))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, *SHAPES[data], generator=g)
    if "-classifier-" in name or "-labelcvae-" in name:  # trained on (images, labels)
        return (x, torch.randint(CLASSES[data], (n,), generator=g))
    if "-dlogistic-" in name:  # a likelihood of the 256 levels k/255 only
        return (x * 255).round() / 255
    return x.round() if name.startswith(("shapes-", "dsprites-")) else x


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_builds_trains_evaluates_saves_and_reloads(name, tmp_path, monkeypatch):
    recipe = RECIPES[name]
    if recipe.requires:  # the weights it starts from: the fresh ones of build() stand in
        assert all(needed in RECIPES for needed in recipe.requires)
        monkeypatch.setattr(store, "load_seed_weights", lambda *args, **kwargs: None)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    model = recipe.build()
    assert torch.equal(torch.get_rng_state(), state), "build() must leave the global RNG alone"
    assert recipe.epochs >= 1 and recipe.summary
    train = synthetic(name)
    options = {**recipe.fit_options, "batch_size": 4}  # 8 examples: two steps
    history = recipe.trainer(model, recipe.loss, train, epochs=1, seed=recipe.seed,
                             progress=False, **options)
    assert len(history) == 1 and all(v[0] == v[0] for v in history.train.values())  # no NaN
    if isinstance(model, VAE):
        metrics = evaluate_elbo(model, train[:4] if name.startswith(("mnist", "shapes", "dsprites"))
                                else train,
                                batch_size=4)
        assert {"test_loss", "test_log_likelihood", "test_kl"} <= set(metrics)
    save_checkpoint(tmp_path / "m.pt", model, config={"recipe": name}, metrics={},
                    history=history)
    fresh = recipe.build()
    load_checkpoint(tmp_path / "m.pt", fresh)
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_names_follow_one_scheme_and_state_the_total_epochs(name):
    match = NAME.fullmatch(name)
    assert match, f"{name} does not follow <data>-<net>-<kind>[-variant...][-zD][-betaB]-eN"
    assert int(match.group(6)) == RECIPES[name].epochs
    assert f"{RECIPES[name].epochs} epochs" in RECIPES[name].summary
    # chapter 15's completer is a deterministic network: a likelihood, but no latent; a
    # diffusion model (named for the space it works in) has as many latents as its space
    has_latent = match.group(2) not in ("classifier", "latent", "pixel") \
        and "-completer-" not in name
    assert (match.group(4) is not None) == has_latent, "latent size: latent-variable models only"


def test_build_is_reproducible():
    for recipe in RECIPES.values():
        a, b = recipe.build(), recipe.build()
        assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
