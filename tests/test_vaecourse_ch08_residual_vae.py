"""Chapter 08's recipe pieces: seeded builders, sizes, the judge, the metrics.

No data needed, except in the tests marked ``needs_cifar`` (skipped without CIFAR-10).
"""
from __future__ import annotations

import math

import pytest
import torch

from vaecore.data.cifar import find_cifar10
from vaecore.discretized_logistic import discretized_logistic
from vaecore.elbo import negative_elbo
from vaecourse import zoo
from vaecourse.zoo import RECIPES
from vaecourse.chapters import ch08_residual_vae as R

NAMES = ("cifar-bh-resnet-bernoulli-z64-beta0.01-e15", "cifar-bh-resnet-bernoulli-z64-e15", "cifar-bh-conv-bernoulli-z64-e15",
         "cifar-bh-cnn-classifier-e8")


def test_recipes_are_listed_and_builders_are_seeded():
    assert set(NAMES) <= set(RECIPES)
    for name in NAMES:
        a, b = RECIPES[name].build(), RECIPES[name].build()
        for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(va, vb), (name, k)


def test_vaes_have_similar_size_and_small_checkpoints():
    sizes = {f.__name__: sum(p.numel() for p in f().parameters())
             for f in (R.resnet_vae, R.conv_vae)}
    assert 0.8 < sizes["resnet_vae"] / sizes["conv_vae"] < 1.25
    assert all(4 * n < 3 * 2**20 for n in sizes.values())


def test_vaes_map_images_to_logits_of_the_same_shape():
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for build in (R.resnet_vae, R.conv_vae):
        model = build().eval()
        out = model(x)
        assert out.x_params.shape == x.shape and out.mu.shape == (4, R.LATENT_DIM)


def test_bits_per_dim_converts_nats():
    assert math.isclose(R.bits_per_dim(3072 * math.log(2), R.N_DIMS), 1.0)
    assert math.isclose(R.bits_per_dim(784 * math.log(2) * 2, n_dims=784), 2.0)


def test_evaluate_vae_reports_the_full_elbo_in_eval_mode():
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    model = R.resnet_vae().train()
    metrics = R.evaluate_vae(model, x, batch_size=4)
    assert not model.training and metrics["n_test"] == 6
    assert math.isclose(metrics["test_elbo"], metrics["test_log_likelihood"] - metrics["test_kl"])
    assert math.isclose(metrics["test_bits_per_dim"], -metrics["test_elbo"] / (3072 * math.log(2)))
    g = torch.Generator().manual_seed(2)
    terms = [negative_elbo(model, x[i:i + 4], generator=g) for i in (0, 4)]
    want = torch.cat([t.log_likelihood - t.kl for t in terms]).mean().item()
    assert math.isclose(metrics["test_elbo"], want, rel_tol=1e-6)


def test_classifier_outputs_two_class_probabilities():
    model = RECIPES["cifar-bh-cnn-classifier-e8"].build()
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    p = R.class_probabilities(model, x)
    assert p.shape == (5, 2) and torch.allclose(p.sum(1), torch.ones(5))
    terms = R.classifier_loss(model, x, torch.tensor([0, 1, 0, 1, 1]))
    assert terms.loss.shape == () and terms.nll.shape == (5,) and terms.correct.shape == (5,)


# --- the discretized-logistic twin: a true likelihood of the 8-bit images ------------------------

DLOGISTIC = "cifar-bh-resnet-dlogistic-z64-e15"
needs_cifar = pytest.mark.skipif(find_cifar10()[0] is None, reason="CIFAR-10 not found")


def _levels(n: int, seed: int) -> torch.Tensor:
    """``n`` images of random 8-bit levels scaled to [0, 1], ``(n, 3, 32, 32)``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g).float() / 255


def test_dlogistic_recipe_is_the_bernoulli_twin_with_another_decoder_output():
    assert R.NAMES["residual, discretized logistic"] == DLOGISTIC
    twin, recipe = RECIPES["cifar-bh-resnet-bernoulli-z64-e15"], RECIPES[DLOGISTIC]
    assert recipe.epochs == twin.epochs and recipe.loss.keywords == {"beta": 1.0}
    assert recipe.data is twin.data
    assert {k: v for k, v in recipe.fit_options.items() if k != "lr_schedule"} == \
        {k: v for k, v in twin.fit_options.items() if k != "lr_schedule"}
    assert [recipe.fit_options["lr_schedule"](e) for e in range(15)] == \
        [twin.fit_options["lr_schedule"](e) for e in range(15)]
    model = recipe.build()
    assert model.likelihood is discretized_logistic
    mean, log_scale = model.eval().decode(torch.zeros(2, R.LATENT_DIM))
    assert mean.shape == log_scale.shape == (2, *R.SHAPE)


def test_dlogistic_builder_is_seeded():
    build = RECIPES[DLOGISTIC].build
    same = zip(build(seed=3).state_dict().values(), build(seed=3).state_dict().values())
    assert all(torch.equal(a, b) for a, b in same)
    other = zip(build(seed=0).state_dict().values(), build(seed=1).state_dict().values())
    assert any(not torch.equal(a, b) for a, b in other)


def test_dlogistic_loss_is_finite_and_falls_over_a_few_steps():
    recipe, x = RECIPES[DLOGISTIC], _levels(16, 5)
    model = recipe.build().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.fit_options["lr"])
    g, losses = torch.Generator().manual_seed(0), []
    for _ in range(6):
        terms = recipe.loss(model, x, generator=g)
        assert torch.isfinite(terms.loss) and (terms.log_likelihood <= 0).all()
        optimizer.zero_grad()
        terms.loss.backward()
        optimizer.step()
        losses.append(terms.loss.item())
    assert losses[-1] < losses[0] - 0.01 * abs(losses[0]), losses


def test_dlogistic_evaluation_is_a_discrete_negative_elbo_in_bits_per_dim():
    x = _levels(6, 6)
    metrics = R.evaluate_vae(RECIPES[DLOGISTIC].build(), x, batch_size=4)
    assert set(metrics) == {"test_log_likelihood", "test_kl", "test_elbo", "test_bits_per_dim",
                            "n_test"}
    assert metrics["test_log_likelihood"] <= 0 and metrics["test_kl"] >= 0  # probabilities <= 1
    assert math.isclose(metrics["test_bits_per_dim"], -metrics["test_elbo"] / (3072 * math.log(2)))
    with pytest.raises(ValueError, match="off that grid"):  # grey levels between the 256 levels
        R.evaluate_vae(RECIPES[DLOGISTIC].build(), x.clamp(max=254 / 255) + 0.3 / 255)


@needs_cifar
def test_the_cifar_images_lie_on_the_grid_of_256_levels():
    train, val = RECIPES[DLOGISTIC].data()
    for x in (train, val, R.test_set().x):
        levels = x.double() * 255
        assert (levels - levels.round()).abs().max() < 1e-4
        assert levels.min() >= 0 and levels.max() <= 255


@needs_cifar
def test_dlogistic_first_steps_run_and_lower_the_loss():
    steps = zoo.first_steps(DLOGISTIC)
    assert set(steps) >= {"loss", "log_likelihood", "kl"} and len(steps["loss"]) == zoo.FIRST_STEPS
    assert all(math.isfinite(v) for v in steps["loss"]) and steps["loss"][-1] < steps["loss"][0]
