"""Chapter 17's recipes: the names, the two diffusion models on one grid, the latent trainer
(the autoencoder of the same seed, the scale factor), and the records."""
from __future__ import annotations

import pytest
import torch

from _records import reproduced_metrics
from vaecore.diffusion import latent_scale
from vaecourse import store
from vaecourse.chapters import ch17_latent_diffusion as C


def test_names_and_recipes():
    assert C.NAMES["mnist"] == {"autoencoder": "mnist-klae16-mse-kl1e-06-z196-e3",
                                "latent": "mnist-ddpm64-latent-t100-e4",
                                "pixel": "mnist-ddpm64-pixel-t100-e4"}
    assert C.NAMES["cifar-bh"]["autoencoder"] == "cifar-bh-klae32-mse-kl1e-06-z256-e10"
    assert list(C.SWEEP) == list(C.KL_WEIGHTS) and len(set(C.SWEEP.values())) == 7
    assert C.SWEEP[C.KL_WEIGHT] == C.NAMES["mnist"]["autoencoder"]
    for data in ("mnist", "cifar-bh"):
        assert C.RECIPES[C.NAMES[data]["latent"]].requires == (C.NAMES[data]["autoencoder"],)
        assert C.RECIPES[C.NAMES[data]["pixel"]].requires == ()
    assert set(C.RECIPES) == {*C.SWEEP.values(), *(n for d in C.NAMES.values()
                                                  for n in d.values())}


@pytest.mark.parametrize("setting", [C.MNIST, C.CIFAR], ids=["mnist", "cifar"])
def test_latent_and_pixel_models_run_the_same_network_on_the_same_grid(setting):
    latent, pixel = (C.diffusion_model(0, space, setting) for space in ("latent", "pixel"))
    grid = (setting.shape[1] // 4, setting.shape[2] // 4)
    assert latent.space_shape == (C.LATENT_CHANNELS, *grid) and pixel.space_shape == setting.shape
    body = [sum(p.numel() for p in m.denoiser.blocks.parameters()) for m in (latent, pixel)]
    assert body[0] == body[1]
    x = setting.test()[:2]
    for model in (latent, pixel):
        assert model.sample(1, steps=2).shape == (1, *setting.shape)
        assert model.to_space(x).shape == (2, *model.space_shape)
    assert pixel.scale.item() == 2.0 and pixel.shift.item() == 0.5 and pixel.autoencoder is None
    a, b = C.diffusion_model(1, "pixel", setting), C.diffusion_model(1, "pixel", setting)
    assert torch.equal(a.denoiser.inp.weight, b.denoiser.inp.weight)
    with pytest.raises(ValueError, match="space: expected 'latent' or 'pixel'"):
        C.diffusion_model(space="both")


def test_the_latent_trainer_loads_the_autoencoder_of_its_seed_and_measures_the_scale(
        monkeypatch):
    torch.manual_seed(0)
    trained = C.autoencoder(5).state_dict()
    loaded, fitted = [], []

    def load(name, model, seed, directory=None):
        loaded.append((name, seed, directory))
        model.load_state_dict(trained)
    monkeypatch.setattr(store, "load_seed_weights", load)
    monkeypatch.setattr(C, "fit", lambda model, loss, train, **options: fitted.append(options))
    recipe = C.RECIPES[C.NAMES["mnist"]["latent"]]
    model = recipe.build()
    images = torch.rand(1200, 1, 28, 28)
    recipe.trainer(model, recipe.loss, images, seed=2, weights_from="folder", epochs=1)
    assert loaded == [(C.NAMES["mnist"]["autoencoder"], 2, "folder")]
    assert fitted == [{"seed": 2, "epochs": 1}]
    g = torch.Generator().manual_seed(0)
    z = torch.cat([model.autoencoder.encode(images[i:i + 1000]).rsample(generator=g)
                   for i in range(0, 1200, 1000)])
    assert model.scale.item() == pytest.approx(latent_scale(z), rel=1e-6)
    assert model.to_space(images[:500]).std().item() == pytest.approx(1.0, rel=0.05)


@pytest.mark.slow
def test_evaluate_reproduces_the_record_of_the_latent_model_seed_0(monkeypatch):
    """Every entry but the samples' FID (a minute of sampling; the sampler is tested in the
    library, the samples of seed 0 are drawn in the chapter). The autoencoders' evaluation
    is checked value by value below, on random images (its reproduction took 10 to 15 s)."""
    monkeypatch.setattr(C.ch16, "sample_fid", lambda samples, setting: 0.0)
    monkeypatch.setattr(C, "generate", lambda model: None)
    reproduced_metrics(C.NAMES["mnist"]["latent"], lambda m: {
        k: v for k, v in C.evaluate_diffusion(m, C.MNIST).items() if k != "sample_fid"},
        left_out=("sample_fid",))


def _tiny(setting, x):
    """``setting`` with ``x`` as its test images."""
    return setting._replace(data=setting.data._replace(test=lambda levels=False: x))


def test_the_autoencoder_metrics_are_what_they_say(monkeypatch):
    """On 600 random images (two batches), against kl_autoencoder_loss, the Gaussian KL of
    torch.distributions and PSNR written out; the FID is stubbed."""
    monkeypatch.setattr(C.ch16, "sample_fid", lambda samples, setting: float(len(samples)))
    x = torch.rand(600, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(3)
    model = C.autoencoder(3)
    metrics = C.evaluate_autoencoder(model, 0.5, _tiny(C.MNIST, x))
    g = torch.Generator().manual_seed(C.EVAL_SEED)
    se, kl, z, mu, var = [], [], [], [], []
    with torch.no_grad():
        for batch in (x[:500], x[500:]):
            q = model.encode(batch)
            draw = q.rsample(generator=g)
            se.append((model.decode(draw) - batch).pow(2).flatten(1).sum(1))
            law = torch.distributions.Normal(q.mu, (0.5 * q.logvar).exp())
            kl.append(torch.distributions.kl_divergence(law, torch.distributions.Normal(0.0, 1.0))
                      .flatten(1).sum(1))
            z.append(draw.flatten())
            mu.append(q.mu.flatten())
            var.append(q.logvar.exp().flatten())
        mse = (model.decode(model.encode(x).mu).clamp(0, 1) - x).pow(2).flatten(1).mean(1)
    se, kl = torch.cat(se), torch.cat(kl)
    assert metrics["test_squared_error"] == pytest.approx(se.mean().item(), rel=1e-5)
    assert metrics["test_rate"] == pytest.approx(kl.mean().item(), rel=1e-5)
    assert metrics["test_rate_per_dim"] == pytest.approx(kl.mean().item() / 196, rel=1e-5)
    assert metrics["test_loss"] == pytest.approx((se + 0.5 * kl).mean().item(), rel=1e-5)
    assert metrics["test_psnr"] == pytest.approx((-10 * mse.log10()).mean().item(), rel=1e-5)
    assert metrics["latent_sd"] == pytest.approx(torch.cat(z).std().item(), rel=1e-5)
    assert metrics["mean_sd"] == pytest.approx(torch.cat(mu).std().item(), rel=1e-5)
    assert metrics["posterior_sd"] == pytest.approx(torch.cat(var).mean().sqrt().item(), rel=1e-5)
    assert metrics["prior_sample_fid"] == C.N_FID


def test_the_diffusion_metrics_are_what_they_say(monkeypatch):
    monkeypatch.setattr(C.ch16, "sample_fid", lambda samples, setting: samples.mean().item())
    x = torch.rand(600, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    model = C.diffusion_model(0, "pixel", C.MNIST)
    monkeypatch.setattr(C, "generate", lambda m: torch.full((3, 1, 28, 28), 0.25))
    metrics = C.evaluate_diffusion(model, _tiny(C.MNIST, x))
    g = torch.Generator().manual_seed(C.EVAL_SEED)
    with torch.no_grad():
        error = torch.cat([C.diffusion_loss(model, b, g).noise_error for b in (x[:500], x[500:])])
    assert metrics["test_noise_error"] == pytest.approx(error.mean().item(), rel=1e-6)
    assert metrics["test_noise_error_per_dim"] == pytest.approx(error.mean().item() / 784,
                                                                rel=1e-6)
    assert metrics["scale"] == 2.0 and metrics["sample_fid"] == 0.25


def test_a_resumed_latent_run_refuses_other_latents(monkeypatch):
    """A partial checkpoint resumes only on the autoencoder and scale it was trained with."""
    torch.manual_seed(0)
    trained = C.autoencoder(5).state_dict()
    monkeypatch.setattr(store, "load_seed_weights",
                        lambda name, model, seed, directory=None: model.load_state_dict(trained))
    monkeypatch.setattr(C, "fit", lambda model, loss, train, **options: "fitted")
    recipe = C.RECIPES[C.NAMES["mnist"]["latent"]]
    images = torch.rand(300, 1, 28, 28)
    model = recipe.build()
    recipe.trainer(model, recipe.loss, images, seed=0)
    # the partial checkpoint: this autoencoder and this scale
    assert recipe.trainer(model, recipe.loss, images, seed=0, history=[1]) == "fitted"
    model.set_scale(model.scale.item() * 1.01)  # trained with another scale
    with pytest.raises(ValueError, match="other latents than those of mnist-klae16"):
        recipe.trainer(model, recipe.loss, images, seed=0, history=[1])
    with pytest.raises(ValueError, match="a pixel-space model has no latents"):
        C.measure_scale(C.diffusion_model(0, "pixel"), images)


def test_the_clamped_fids_are_stored_for_every_seed_of_the_pixel_models():
    """benchmarks/clipped_fid.py wrote them (tied to each seed's weights, checked by
    replication.stored); it refuses the other models, and clipped_fid a latent one."""
    from _tools import tool
    from vaecourse import replication, zoo
    for data in ("mnist", "cifar-bh"):
        name = C.NAMES[data]["pixel"]
        assert sorted(replication.stored(name, "clipped_fid", "fid", same=("n",))) == list(C.SEEDS)
        assert replication.stored(name, "clipped_fid", "n") == {s: C.N_FID for s in C.SEEDS}
        results = zoo.seed_results(name, "clipped_fid")
        assert all(tuple(r["range"]) == C.PIXEL_RANGE for r in results.values())
    script = tool("clipped_fid", folder="benchmarks")
    with pytest.raises(SystemExit):
        script.main([C.NAMES["mnist"]["latent"]])
    with pytest.raises(ValueError, match="no fixed range"):
        C.clipped_fid(C.diffusion_model(0, "latent"))
