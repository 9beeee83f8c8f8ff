"""Chapter 16's recipes: the models' sizes, the prior's loss and trainer, the whole model's bits
per dimension, the Fréchet distance of the chapter, and the records."""
from __future__ import annotations

import math

import pytest
import torch

from _records import reproduced_metrics
from vaecore.pixelcnn import PixelCNNCodePrior
from vaecore.vq_vae import VQVAE
from vaecourse import store
from vaecourse.chapters import ch16_vq_vae as C


@pytest.mark.parametrize("setting", [C.MNIST, C.CIFAR], ids=["mnist", "cifar"])
def test_the_gaussian_vae_is_within_ten_percent_of_the_vq_vae_with_its_prior(setting):
    counts = C.parameter_counts(setting)
    vq = counts["vq_nets"] + counts["codebook"] + counts["prior"]
    assert abs(counts["gaussian"] / vq - 1) < 0.10
    model, gaussian = C.vq_model(setting=setting), C.gaussian_model(setting=setting)
    assert model.grid == (setting.shape[1] // 4, setting.shape[2] // 4)
    assert gaussian.latent_dim == C.GAUSS_CHANNELS * model.grid[0] * model.grid[1]
    assert model.likelihood is setting.likelihood is gaussian.likelihood


def test_models_are_seeded_and_the_update_is_named():
    a, b, c = C.vq_model(1), C.vq_model(1), C.vq_model(2)
    assert torch.equal(a.encoder.net[0].weight, b.encoder.net[0].weight)
    assert not torch.equal(a.encoder.net[0].weight, c.encoder.net[0].weight)
    assert a.quantizer.ema_decay == C.EMA_DECAY and C.vq_model(update="grad").quantizer.ema_decay is None
    with pytest.raises(ValueError, match="update: expected 'ema' or 'grad'"):
        C.vq_model(update="kmeans")


def test_names_say_what_differs_from_the_main_recipe():
    assert C.NAMES["mnist"]["vq"] == "mnist-grid32-bernoulli-vq-k128-ema-restarts-z49-e10"
    assert C.NAMES["mnist"]["prior"] == ("mnist-grid32-bernoulli-vq-k128-ema-restarts-pixelcnn32"
                                        "-z49-e20")
    assert C.vq_name(C.VQConfig(512, restarts=False, batch=32, epochs=2)) == \
        "mnist-grid32-bernoulli-vq-k512-ema-b32-z49-e2"
    assert C.vq_name(C.VQConfig(commitment=1.0, update="grad", restarts=False, epochs=2)) == \
        "mnist-grid32-bernoulli-vq-k128-grad-c1-z49-e2"
    names = [C.vq_name(c) for c in C.HEALTH]
    assert len(set(names)) == len(names) == 11 and C.vq_name(C.MAIN) not in names
    assert all(n in C.RECIPES for n in names)
    prior = C.RECIPES[C.NAMES["cifar-bh"]["prior"]]
    assert prior.requires == (C.NAMES["cifar-bh"]["vq"],)


def _tiny_prior(monkeypatch, seed=0):
    """A VQPrior of tiny nets whose 'trained' VQ-VAE is one fixed state dict."""
    torch.manual_seed(seed)
    vq = VQVAE((1, 28, 28), 5, 3, hidden=4)
    state = {k: v.clone() for k, v in vq.state_dict().items()}
    model = C.VQPrior(VQVAE((1, 28, 28), 5, 3, hidden=4),
                      PixelCNNCodePrior(5, (7, 7), embed_dim=4, channels=8, n_layers=2))
    loaded = []

    def load(name, module, seed_, directory=None):
        loaded.append((name, seed_))
        module.load_state_dict(state)
    monkeypatch.setattr(store, "load_seed_weights", load)
    return model, state, loaded


def test_the_prior_trainer_loads_the_seed_s_vq_vae_and_trains_the_prior_alone(monkeypatch):
    model, state, loaded = _tiny_prior(monkeypatch)
    prior_before = [p.clone() for p in model.prior.parameters()]
    x = torch.rand(16, 1, 28, 28).bernoulli()
    trainer = C.RECIPES[C.NAMES["mnist"]["prior"]].trainer
    history = trainer(model, C.prior_loss, x, seed=2, epochs=2, batch_size=8, progress=False)
    assert loaded == [(C.NAMES["mnist"]["vq"], 2)]
    for key, value in model.vqvae.state_dict().items():  # frozen, EMA buffers included
        assert torch.equal(value, state[key]), key
    assert any(not torch.equal(a, b) for a, b in zip(prior_before, model.prior.parameters()))
    codes = model.vqvae.codes(x)
    torch.testing.assert_close(C.prior_loss(model, x).code_nll, -model.prior.log_prob(codes))
    assert history.train["code_nll"][1] < history.train["code_nll"][0]


def test_the_whole_model_s_bits_per_dimension_by_hand(monkeypatch):
    model, _, _ = _tiny_prior(monkeypatch)
    model.eval()
    x = torch.rand(4, 1, 28, 28).bernoulli()
    codes = model.vqvae.codes(x)
    logits = model.prior.logits(codes)  # (B, K, 7, 7)
    log_p_codes = torch.distributions.Categorical(logits=logits.movedim(1, -1)).log_prob(
        codes).sum((1, 2))
    x_logits = model.vqvae.decoder(model.vqvae.quantizer.codebook[codes].movedim(-1, 1))
    log_p_x = torch.distributions.Bernoulli(logits=x_logits).log_prob(x).sum((1, 2, 3))
    want = -(log_p_codes + log_p_x) / (784 * math.log(2))
    torch.testing.assert_close(model.bits_per_dim(x), want)
    samples = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1


def test_the_fid_of_test_images_against_themselves_is_zero_and_of_noise_is_large():
    test = C.MNIST.test(levels=True)
    assert C.sample_fid(test[:500]) == pytest.approx(0, abs=1e-6)
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert C.sample_fid(noise) > 100


def _small_setting():
    """MNIST's setting on the first 2,000 test images (as many as the FID's samples)."""
    return C.MNIST._replace(test=lambda levels=False: C.MNIST.test(levels)[:C.N_FID])


def test_the_evaluations_add_up(monkeypatch):
    setting = _small_setting()
    torch.manual_seed(0)
    vq = VQVAE((1, 28, 28), 6, 3, hidden=4)
    m = C.evaluate_vq(vq, setting)
    assert m["test_codes_used"] + m["test_dead_codes"] == 6 and 1 <= m["test_perplexity"] <= 6
    assert m["test_loss"] == pytest.approx(-m["test_log_likelihood"] + m["test_codebook_loss"]
                                           + C.COMMITMENT * m["test_commitment_loss"], rel=1e-5)
    model, _, _ = _tiny_prior(monkeypatch)
    p = C.evaluate_prior(model, setting)
    assert p["test_bits_per_dim"] == pytest.approx(
        p["test_code_bits_per_dim"] + p["test_image_bits_per_dim"], rel=1e-6)
    assert p["test_code_bits_per_dim"] == pytest.approx(p["test_code_nll"] / (784 * math.log(2)),
                                                        rel=1e-6)
    assert p["sample_fid"] > 0
    with pytest.raises(ValueError, match="samples: expected at most 2000 images"):
        C.sample_fid(torch.rand(2001, 1, 28, 28), setting)


def test_evaluate_reproduces_the_record_of_the_vq_vae_seed_0():
    reproduced_metrics(C.NAMES["mnist"]["vq"], C.evaluate_vq)
