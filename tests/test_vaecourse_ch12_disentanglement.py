"""Chapter 12's recipes: names, seeded builders, the objectives, and the recorded scores."""
from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from _records import reproduced_metrics
from vaecore.elbo import negative_elbo
from vaecore.total_correlation import beta_tcvae_loss
from vaecourse import zoo
from vaecourse.chapters import ch12_disentanglement as D
from vaecourse.zoo import RECIPES


def test_six_settings_named_by_the_scheme_and_listed_in_the_zoo():
    assert [(m, b) for m, b, _ in D.SETTINGS] == [(m, b) for m in D.METHODS for b in D.BETAS]
    assert D.model_name("β-VAE", 4.0) == "dsprites-mlp-bernoulli-z10-beta4-e30"
    assert D.model_name("β-TCVAE", 2.0) == "dsprites-mlp-bernoulli-tcvae-z10-beta2-e30"
    assert {name for _, _, name in D.SETTINGS} <= set(RECIPES)
    with pytest.raises(ValueError, match="method"):
        D.model_name("FactorVAE", 4.0)


def test_builder_is_seeded_and_has_the_stated_size():
    a, b, c = D.sprites_vae(0), D.sprites_vae(0), D.sprites_vae(1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
    assert sum(p.numel() for p in a.parameters()) == 665_108


def test_the_recipes_train_the_objectives_they_name():
    x = D.sprites().x[:256]
    for method, beta, name in D.SETTINGS:
        recipe = RECIPES[name]
        model = recipe.build()
        g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        got = recipe.loss(model, x, generator=g1).loss
        want = (negative_elbo(model, x, beta=beta, generator=g2) if method == "β-VAE"
                else beta_tcvae_loss(model, x, beta=beta, generator=g2)).loss
        assert torch.equal(got, want), name
        assert recipe.epochs == D.EPOCHS and recipe.fit_options["batch_size"] == 256
        assert len(D.sprites().x) % 256 == 0  # no last batch of one for the MWS estimate


@pytest.mark.parametrize("method, beta, name", D.SETTINGS)
def test_every_record_holds_the_five_seeds_with_the_same_metrics(method, beta, name):
    info = zoo.record(name)
    assert [info["seed"]] + [r["seed"] for r in info["seeds"]] == list(D.SEEDS)
    assert all(r["metrics"].keys() == info["metrics"].keys() for r in info["seeds"])


def test_evaluate_reproduces_the_record_of_seed_0():
    """One setting (evaluation is the same code for all six, and takes about 10 s)."""
    metrics = reproduced_metrics(D.model_name("β-TCVAE", 4.0), D.evaluate_disentanglement)
    assert metrics["kl"] == pytest.approx(metrics["index_code_mi"] + metrics["total_correlation"]
                                          + metrics["dimwise_kl"], abs=0.2)
    assert 0 <= metrics["mig"] <= 1 and math.isfinite(metrics["dci_informativeness"])


def test_the_shipped_best_and_worst_seeds_load_and_match_their_records():
    name = D.model_name("β-VAE", 8.0)
    for seed in (1, 3):
        model, ckpt = zoo.load_seed(name, seed)
        entry = next(r for r in zoo.record(name)["seeds"] if r["seed"] == seed)
        assert entry["file"] == f"{name}.seed{seed}.pt" and ckpt.metrics == entry["metrics"]
