"""Chapter 18's recipes: the learned priors, the two-layer models, the per-layer active units."""
from __future__ import annotations

import torch

from vaecore.flows import FlowPrior
from vaecore.hierarchical import LadderVAE
from vaecore.priors import MixturePrior, VampPrior
from vaecourse import protocol
from vaecourse.chapters.ch05_first_vae import REFERENCE
from vaecourse.chapters.ch18_priors_and_hierarchies import (COMPONENTS, NAMES, ladder_units,
                                                            prior_vae)
from vaecourse.zoo import RECIPES


def test_learned_prior_vaes_start_from_the_reference_nets_and_differ_only_in_the_prior():
    reference = RECIPES[REFERENCE].build()
    for role, kind in (("mog", MixturePrior), ("vamp", VampPrior)):
        model = RECIPES[NAMES[role]].build()
        assert isinstance(model.prior, kind) and model.prior.n_components == COMPONENTS
        for part in ("encoder", "decoder"):
            torch.testing.assert_close(getattr(model, part).state_dict(),
                                       getattr(reference, part).state_dict())
    vamp = prior_vae("vamp")
    assert vamp.prior.encoder is vamp.encoder


def test_ladder_recipes_build_the_stated_models():
    combined, x_only = (RECIPES[NAMES[role]].build() for role in ("ladder", "ladder_x"))
    assert isinstance(combined, LadderVAE) and combined.latent_dims == (100, 50)
    assert (combined.combine, x_only.combine) == ("combined", "residual")
    assert sum(p.numel() for p in x_only.parameters()) == 531_084
    # the combined form adds the two top-down correction maps, 100 -> 100 without bias
    assert sum(p.numel() for p in combined.parameters()) == 531_084 + 2 * 100 * 100
    shared = {k: v for k, v in combined.state_dict().items() if not k.startswith("mix_")}
    torch.testing.assert_close(shared, x_only.state_dict())  # the same initial nets otherwise
    best = RECIPES[NAMES["best"]].build()
    assert isinstance(best.prior, FlowPrior) and len(best.prior.layers) == 8
    assert best.combine == "combined" and RECIPES[NAMES["best"]].epochs == 50
    widths = [m.out_features for m in best.up1.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [500, 500]
    for role in ("ladder_iwae", "ladder_x_iwae"):
        torch.testing.assert_close(RECIPES[NAMES[role]].build().state_dict(),
                                   RECIPES[NAMES[role.replace("_iwae", "")]].build().state_dict())


def test_ladder_units_counts_each_layer_from_the_spread_of_its_posterior_means():
    torch.manual_seed(0)
    model = LadderVAE((1, 4, 4), latent_dims=(3, 2), hidden=((8,), (6,)))
    with torch.no_grad():  # z2's second unit and z1's first carry x; the rest do not
        for layer in (model.up2_mu, model.up1_mu, model.down_mu):
            layer.weight.zero_()
            layer.bias.zero_()
        model.up2_mu.weight[1].fill_(1.0)
        model.up1_mu.weight[0].fill_(1.0)
        model.up1_logvar.bias.fill_(-10.0)  # confident bottom-up: q(z1) follows x
    x = torch.rand(200, 1, 4, 4, generator=torch.Generator().manual_seed(0)).bernoulli()
    units = ladder_units(model, x, samples=4, batch_size=64)
    assert units == {"test_active_units": 2.0, "test_active_units_z1": 1.0,
                     "test_active_units_z2": 1.0}


def test_evaluate_test_takes_the_units_of_a_model_without_one_encoder(monkeypatch):
    x = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(0)).bernoulli()
    monkeypatch.setattr(protocol, "test_images", lambda binarize=True: x)
    monkeypatch.setattr(protocol, "noisy_test_images", lambda: x)
    recipe = RECIPES[NAMES["ladder"]]
    metrics = recipe.evaluate(recipe.build())
    assert {"test_loss", "test_kl_z1", "test_kl_z2", "test_active_units_z1",
            "test_active_units_z2", "test_noisy_kl_z2", "test_mse_grey"} <= set(metrics)
    assert metrics["test_active_units"] == (metrics["test_active_units_z1"]
                                            + metrics["test_active_units_z2"])


def test_the_longer_run_is_chapter_11s_best_model_with_a_longer_schedule():
    from vaecourse.chapters import ch11_evaluation
    longer, best = RECIPES[NAMES["longer"]], RECIPES[ch11_evaluation.NAMES["best"]]
    assert (longer.epochs, best.epochs) == (100, 50)
    torch.testing.assert_close(longer.build().state_dict(), best.build().state_dict())
    assert longer.loss is best.loss and longer.data is best.data
    # the rate decays linearly to 1/20 over each run's own length
    for recipe in (longer, best):
        schedule = recipe.fit_options["lr_schedule"]
        assert schedule(0) == 1.0 and abs(schedule(recipe.epochs) - 0.05) < 1e-12
