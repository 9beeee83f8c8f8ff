"""Chapter 10's recipe pieces: the data splits, the judge, the input-noise encoder, the metrics."""
from __future__ import annotations

import math

import pytest
import torch

from vaecore.classify import classifier_loss
from vaecore.elbo import negative_elbo
from vaecore.mmd import info_vae_loss
from vaecourse.zoo import RECIPES
from vaecourse.chapters import ch10_mmd_vae as S
from vaecore.train import fit


def test_splits_are_binary_disjoint_seeds_and_balanced():
    train, val, test = S.splits()
    assert [len(d.x) for d in (train, val, test)] == [10_000, 1_000, 2_000]
    for d in (train, val, test):
        assert d.x.shape[1:] == (1, 32, 32) and set(d.x.unique().tolist()) == {0.0, 1.0}
        assert torch.bincount(d.y).tolist() == [len(d.y) // 3 + (i < len(d.y) % 3)
                                                for i in range(3)]
    assert not torch.equal(train.x[:1000], val.x) and not torch.equal(val.x, test.x[:1000])


def test_recipes_are_listed_and_builders_are_seeded():
    names = {"shapes-cnn-classifier-e8", "shapes-mlp-bernoulli-z8-e50", "shapes-mlp-bernoulli-mmd-z8-e50", "shapes-mlp-bernoulli-mmd-noise-z8-e50",
             "shapes-mlp-bernoulli-mmd-noise-unitscale-z8-e50"}
    assert names <= set(RECIPES)
    for name in names:
        a, b = RECIPES[name].build(), RECIPES[name].build()
        for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(va, vb), (name, k)
    vae = RECIPES["shapes-mlp-bernoulli-z8-e50"].build()
    n_bytes = 4 * sum(p.numel() for p in vae.parameters())
    assert n_bytes < 3 * 2**20  # the checkpoint stays under 3 MB


def test_classifier_shapes_and_loss_terms():
    model = S.shape_classifier()
    x = torch.rand(5, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1])
    logits = model(x)
    assert logits.shape == (5, 4) and S.JUDGE_CLASSES[-1] == "no shape"
    terms = classifier_loss(model, x, y)
    want = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    torch.testing.assert_close(terms.nll, want)
    torch.testing.assert_close(terms.loss, want.mean())
    assert terms.correct.tolist() == (logits.argmax(1) == y).float().tolist()
    probs = S.class_probabilities(model, x, batch_size=2)
    torch.testing.assert_close(probs, logits.softmax(1))


def test_a_short_classifier_training_learns_the_shapes():
    train, _, test = S.splits()
    torch.manual_seed(0)
    model = S.shape_classifier()
    fit(model, classifier_loss, (train.x[:800], train.y[:800]), epochs=3,
        batch_size=64, progress=False)
    accuracy = (S.class_probabilities(model, test.x[:300]).argmax(1) == test.y[:300]).float().mean()
    assert accuracy > 0.5  # chance is 1/3


def test_input_noise_only_in_training_mode():
    vae = S.shapes_vae(latent_dim=2, hidden=(8,), noise_std=0.5)
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    vae.eval()
    torch.testing.assert_close(vae.encode(x).mu, vae.encoder.encoder(x)[0])
    vae.train()
    torch.manual_seed(1)
    noisy = vae.encode(x).mu
    torch.manual_seed(1)
    eps = torch.randn_like(x)
    torch.testing.assert_close(noisy, vae.encoder.encoder(x + 0.5 * eps)[0])
    with pytest.raises(ValueError):
        S.InputNoise(vae.encoder.encoder, 0.0)
    assert S.NOISE_STD_8BIT == pytest.approx(math.sqrt(5) / 255)


def test_mmd_and_vae_objectives_as_used_by_the_recipes():
    vae = S.shapes_vae(latent_dim=3, hidden=(8,)).double()
    x = torch.bernoulli(torch.rand(16, 1, 32, 32, dtype=torch.float64,
                                   generator=torch.Generator().manual_seed(0)))
    plain = info_vae_loss(vae, x, alpha=0.0, lam=1.0, generator=torch.Generator().manual_seed(2))
    elbo = negative_elbo(vae, x, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(plain.loss, elbo.loss)  # alpha = 0, lambda = 1 is the VAE
    mmd = S.mmd_vae_loss(vae, x, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(mmd.loss, -mmd.log_likelihood.mean() + 1000.0 * mmd.mmd)


def test_evaluate_autoencoder_metrics():
    vae = S.shapes_vae(latent_dim=3, hidden=(8,)).eval()
    x = S.splits()[2].x[:64]
    metrics = S.evaluate_autoencoder(vae, x)
    assert set(metrics) == {"test_mse", "test_elbo", "test_log_likelihood", "test_kl",
                            "test_mmd2_prior"}
    assert metrics["test_elbo"] == pytest.approx(metrics["test_log_likelihood"] - metrics["test_kl"])
    assert 0 < metrics["test_mse"] < 1 and metrics["test_kl"] >= 0
    assert metrics == S.evaluate_autoencoder(vae, x)  # fixed seed: deterministic


def test_judge_data_labels_and_the_recognised_rule():
    test = S.splits()[2]
    small = test._replace(x=test.x[:40], y=test.y[:40])
    x, y = S.judge_data(small, seed=0)
    assert x.shape == (100, 1, 32, 32) and torch.equal(y[:40], small.y) and torch.equal(y[40:80], small.y)
    assert (y[80:] == 3).all() and x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(S.blur(torch.ones(1, 1, 32, 32), 1.0)[..., 8:-8, 8:-8],
                               torch.ones(1, 1, 16, 16))  # a blur keeps a flat region flat
    assert torch.equal(x, S.judge_data(small, seed=0)[0])  # seeded
    probs = torch.tensor([[0.95, 0.02, 0.01, 0.02], [0.5, 0.4, 0.05, 0.05], [0.0, 0.0, 0.05, 0.95]])
    assert S.recognised(probs, 0.9).tolist() == [True, False, False]
