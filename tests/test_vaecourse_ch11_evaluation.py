"""Chapter 11's recipes: the flow-prior VAEs, the fixed binarization, the 60,000-image protocol."""
from __future__ import annotations

import torch

from vaecore import data
from vaecore.elbo import negative_elbo
from vaecore.flows import FlowPrior
from vaecore.posterior import Posterior
from vaecore.priors import StdNormalPrior
from vaecourse import protocol
from vaecourse.zoo import RECIPES
from vaecourse.chapters.ch11_evaluation import fixed_binarization, flow_vae


def test_flow_vae_differs_from_the_course_mlp_only_in_the_prior():
    model = flow_vae()
    baseline = RECIPES["mnist-mlp-bernoulli-z20-e30"].build()
    assert isinstance(model.prior, FlowPrior) and isinstance(baseline.prior, StdNormalPrior)
    assert len(model.prior.layers) == 4
    for part in ("encoder", "decoder"):
        a, b = getattr(model, part).state_dict(), getattr(baseline, part).state_dict()
        assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)


def test_best_recipe_builds_the_stated_model():
    model = RECIPES["mnist-mlp2-bernoulli-flow-iwae-k5-z50-e50"].build()
    assert model.latent_dim == 50 and len(model.prior.layers) == 8
    widths = [m.out_features for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert widths[:2] == [500, 500]
    torch.testing.assert_close(RECIPES["mnist-mlp2-bernoulli-flow-iwae-k5-z50-e50"].build().state_dict(),
                               model.state_dict())  # seeded


def test_fixed_binarization_is_one_reproducible_bernoulli_draw():
    x = torch.rand(500, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    once = fixed_binarization(x, 10)
    assert torch.equal(once, fixed_binarization(x, 10))
    assert not torch.equal(once, fixed_binarization(x, 11))
    assert set(once.unique().tolist()) <= {0.0, 1.0}
    assert abs(once.mean().item() - x.mean().item()) < 0.02  # E[x_bin] = x


def test_the_best_recipe_trains_on_all_60000_images_without_validation():
    recipe = RECIPES["mnist-mlp2-bernoulli-flow-iwae-k5-z50-e50"]
    assert recipe.data is protocol.mnist_train_all and recipe.epochs == 50
    assert recipe.fit_options["transform"] is data.binarize_dynamic


def test_iwae_recipes_report_the_plain_negative_elbo(monkeypatch):
    calls = []
    monkeypatch.setattr(protocol, "test_images", lambda binarize=True: torch.zeros(4, 1, 28, 28))
    monkeypatch.setattr(protocol, "evaluate_elbo",
                        lambda model, x, loss_fn: calls.append(loss_fn) or {"test_loss": 1.0})
    monkeypatch.setattr(protocol, "noisy_test_images", lambda: torch.zeros(4, 1, 28, 28))
    monkeypatch.setattr(protocol, "encode_dataset",
                        lambda model, x: Posterior(torch.zeros(4, 2), torch.zeros(4, 2)))
    model = torch.nn.Linear(1, 1)
    model.reconstruct = lambda x: x
    for name in ("mnist-mlp-bernoulli-iwae-k5-z20-e30", "mnist-mlp2-bernoulli-flow-iwae-k5-z50-e50",
                 "mnist-mlp-bernoulli-flow-z20-e30", "mnist-mlp-bernoulli-fixedbin-z20-e30"):
        metrics = RECIPES[name].evaluate(model)
        assert set(metrics) == {"test_loss", "test_noisy_loss", "test_active_units",
                                "test_mse_grey"}
    assert calls == [negative_elbo] * 8  # the clean and the noisy test set
