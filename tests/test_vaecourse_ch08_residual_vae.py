"""Chapter 08's recipe pieces: seeded builders, sizes, the judge, the metrics (no data needed)."""
from __future__ import annotations

import math

import torch

from vaecore.elbo import negative_elbo
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
