r"""Chapter 17 (``chapters/17_latent_diffusion.ipynb``): the VAE inside latent diffusion.

On grey-level MNIST (the 55,000 training images of :func:`vaecourse.protocol.mnist_split`,
the 10,000 test images) and on CIFAR-10 birds and horses (chapter 8's split: 9,000
training images, 1,000 held out, the 2,000 test images), pixels in [0, 1]:

- **the KL-regularised autoencoder** (:func:`autoencoder`):
  :class:`vaecore.kl_autoencoder.KLAutoencoder`, downsampling by 4 to
  :data:`LATENT_CHANNELS` channels (7 × 7 × 4 = 196 latent values for MNIST, 8 × 8 × 4 = 256
  for CIFAR), the squared error plus a weighted KL to :math:`\mathcal N(0, I)`
  (:func:`vaecore.kl_autoencoder.kl_autoencoder_loss`), Adam 1e-3, batches of :data:`BATCH`.
  On MNIST the weight is swept over :data:`KL_WEIGHTS` (seed 0 each, :data:`AE_EPOCHS`
  epochs); at latent diffusion's weight :data:`KL_WEIGHT` = 1e-6 three seeds, on both
  data sets.
- **a denoising diffusion model** (:func:`diffusion_model`): the same
  :class:`vaecore.diffusion.GridDenoiser` (:data:`HIDDEN` channels, :data:`BLOCKS` residual
  blocks) on Ho et al.'s linear schedule of :data:`STEPS` steps, trained with the
  noise-prediction loss either **in the latent space** of the autoencoder of the same seed
  (latents scaled to unit variance by the factor measured on the first :data:`SCALE_IMAGES`
  training images, all 9,000 for CIFAR) or **in pixel space** ([0, 1] mapped to [-1, 1];
  the network sees 4 × 4 patches stacked as channels, so it runs on the same 7 × 7 or
  8 × 8 grid). Both for as many epochs (:data:`MNIST_EPOCHS`, :data:`CIFAR_EPOCHS`), three
  seeds each.

Samples are judged as in chapter 16 (:func:`vaecourse.chapters.ch16_vq_vae.sample_fid`):
the Fréchet distance between :data:`N_FID` samples (clamped to [0, 1]) and as many test
images in the features of chapter 9's LeNet (MNIST) or chapter 8's bird-or-horse CNN (CIFAR).
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import torch

from vaecore.diffusion import GridDenoiser, Schedule, latent_scale
from vaecore.kl import kl_normal_std_normal
from vaecore.kl_autoencoder import KLAutoencoder, kl_autoencoder_loss, psnr
from vaecore.latent_diffusion import SpaceDiffusion, diffusion_loss
from vaecore.seeding import local_seed
from vaecore.train import fit

from .. import store
from ..protocol import EVAL_SEED
from ..recipe import Recipe
from . import ch16_vq_vae as ch16

__all__ = ["SEEDS", "LATENT_CHANNELS", "BATCH", "KL_WEIGHT", "KL_WEIGHTS", "AE_EPOCHS",
           "HIDDEN", "BLOCKS", "STEPS", "PATCH", "SCALE_IMAGES", "MNIST_EPOCHS",
           "CIFAR_EPOCHS", "CIFAR_AE_EPOCHS", "N_FID", "Setting", "MNIST", "CIFAR", "autoencoder",
           "ae_name", "diffusion_model", "diffusion_name", "draw_latents", "measure_scale",
           "evaluate_autoencoder", "evaluate_diffusion", "generate", "PIXEL_RANGE",
           "clipped_fid", "NAMES", "SWEEP",
           "RECIPES"]

SEEDS = (0, 1, 2)
LATENT_CHANNELS, BATCH = 4, 128
#: latent diffusion's weight (the KL-regularised autoencoders of Rombach et al., 2022)
KL_WEIGHT = 1e-6
KL_WEIGHTS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
HIDDEN, BLOCKS, STEPS, PATCH = 64, 4, 100, 4
SCALE_IMAGES = 10_000
MNIST_EPOCHS, CIFAR_EPOCHS = 4, 20
N_FID = 1_000


class Setting(NamedTuple):
    """One data set: chapter 16's setting (split, test images, judge), its number of training
    images, and this chapter's autoencoder width and epochs."""
    data: ch16.Setting
    train_images: int
    width: int
    ae_epochs: int
    epochs: int

    @property
    def key(self) -> str:
        return self.data.key

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def test(self) -> torch.Tensor:
        """The test images, pixel values in [0, 1] (MNIST's grey levels, not binarized)."""
        return self.data.test(levels=True)


AE_EPOCHS, CIFAR_AE_EPOCHS = 3, 10
MNIST = Setting(ch16.MNIST, 55_000, 16, AE_EPOCHS, MNIST_EPOCHS)
CIFAR = Setting(ch16.CIFAR, 9_000, 32, CIFAR_AE_EPOCHS, CIFAR_EPOCHS)


def _latent_shape(setting: Setting) -> tuple[int, int, int]:
    return LATENT_CHANNELS, setting.shape[1] // 4, setting.shape[2] // 4


def autoencoder(seed: int = 0, setting: Setting = MNIST) -> KLAutoencoder:
    """A seeded :class:`KLAutoencoder` for ``setting``'s images."""
    with local_seed(seed):
        return KLAutoencoder(setting.shape[0], LATENT_CHANNELS, setting.width)


def ae_name(kl_weight: float = KL_WEIGHT, setting: Setting = MNIST) -> str:
    """E.g. ``mnist-klae16-mse-kl1e-06-z196-e3``."""
    return (f"{setting.key}-klae{setting.width}-mse-kl{kl_weight:g}-"
            f"z{math.prod(_latent_shape(setting))}-e{setting.ae_epochs}")


def diffusion_model(seed: int = 0, space: str = "latent", setting: Setting = MNIST
                    ) -> SpaceDiffusion:
    """A seeded diffusion model in ``space`` (``"latent"``: with an untrained autoencoder,
    which the trainer replaces by the trained one of the same seed; ``"pixel"``)."""
    if space not in ("latent", "pixel"):
        raise ValueError(f"space: expected 'latent' or 'pixel', got {space!r}")
    with local_seed(seed):
        if space == "latent":
            ae = KLAutoencoder(setting.shape[0], LATENT_CHANNELS, setting.width)
            denoiser = GridDenoiser(LATENT_CHANNELS, HIDDEN, BLOCKS)
            return SpaceDiffusion(denoiser, Schedule.linear(STEPS), _latent_shape(setting), ae)
        denoiser = GridDenoiser(setting.shape[0], HIDDEN, BLOCKS, patch=PATCH)
        return SpaceDiffusion(denoiser, Schedule.linear(STEPS), setting.shape, scale=2.0,
                              shift=0.5)


def diffusion_name(space: str = "latent", setting: Setting = MNIST) -> str:
    """E.g. ``mnist-ddpm64-latent-t100-e4``."""
    return f"{setting.key}-ddpm{HIDDEN}-{space}-t{STEPS}-e{setting.epochs}"


def draw_latents(model: KLAutoencoder, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    r"""One draw of :math:`q(z \mid x)` per image of ``x``, 1,000 images at a time, from a
    generator seeded ``seed`` on the model's device (no gradient)."""
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        return torch.cat([model.encode(x[i:i + 1000].to(device)).rsample(generator=g)
                          for i in range(0, len(x), 1000)])


def measure_scale(model: SpaceDiffusion, x: torch.Tensor) -> float:
    """The scale factor of latent diffusion: 1 / the standard deviation of all entries of
    one latent draw per image of ``x`` (:func:`draw_latents`, seed 0),
    :func:`vaecore.diffusion.latent_scale`."""
    if model.autoencoder is None:
        raise ValueError("measure_scale: a pixel-space model has no latents to scale")
    return latent_scale(draw_latents(model.autoencoder, x))


def _latent_trainer(ae: str):
    def train_latent(model: SpaceDiffusion, loss, train, *, seed: int, weights_from=None,
                     **options):
        """Load the autoencoder of seed ``seed`` (from ``weights_from``, else where
        checkpoints are found), measure the scale factor on the first
        :data:`SCALE_IMAGES` training images (all of them if there are fewer), then ``fit``
        the denoiser."""
        resumed = bool(options.get("history"))  # the zoo resumes a partial checkpoint
        before = ({k: v.clone() for k, v in model.autoencoder.state_dict().items()},
                  model.scale.item())
        store.load_seed_weights(ae, model.autoencoder, seed, weights_from)
        images = train[0] if isinstance(train, tuple) else train
        # In the first steps the zoo records, the images are one batch: the factor is then
        # that batch's, and a change of SCALE_IMAGES does not make the record stale.
        model.set_scale(measure_scale(model, images[:SCALE_IMAGES]))
        if resumed and (any(not torch.equal(v, model.autoencoder.state_dict()[k])
                            for k, v in before[0].items())
                        or not math.isclose(model.scale.item(), before[1], rel_tol=1e-6)):
            raise ValueError(f"the partial checkpoint was trained on other latents than those "
                             f"of {ae} (seed {seed}) now give: retrain it from the start")
        return fit(model, loss, train, seed=seed, **options)
    return train_latent


def _batches(x: torch.Tensor, size: int = 500):
    return (x[i:i + size] for i in range(0, len(x), size))


def evaluate_autoencoder(model: KLAutoencoder, kl_weight: float = KL_WEIGHT,
                         setting: Setting = MNIST) -> dict:
    r"""Test metrics of an autoencoder (one latent draw per image, seeded).

    ``test_loss``: the objective; ``test_squared_error``: per image, from the draw;
    ``test_rate``: the KL in nats per image and ``test_rate_per_dim`` per latent value;
    ``test_psnr``: the mean PSNR (dB) of the posterior mean's reconstruction clamped to
    [0, 1]; ``latent_sd``: the standard deviation of all entries of the draws (the scale
    factor, measured on training images, is about its inverse); ``posterior_sd``: the
    root-mean-square :math:`\sigma` of :math:`q(z \mid x)`; ``mean_sd``: the standard
    deviation of the posterior means; ``prior_sample_fid``: the FID of :data:`N_FID`
    decodings of :math:`z \sim \mathcal N(0, I)`.
    """
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(EVAL_SEED)
    rows = {k: [] for k in ("se", "kl", "psnr", "z", "var", "mu")}
    with torch.no_grad():
        for x in _batches(setting.test()):
            x = x.to(device)
            posterior = model.encode(x)
            z = posterior.rsample(generator=g)
            rows["se"].append((model.decode(z) - x).pow(2).flatten(1).sum(1))
            rows["kl"].append(kl_normal_std_normal(posterior.mu, posterior.logvar))
            rows["psnr"].append(psnr(x, model.decode(posterior.mu).clamp(0, 1)))
            rows["z"].append(z.flatten())
            rows["var"].append(posterior.logvar.exp().flatten())
            rows["mu"].append(posterior.mu.flatten())
        cat = {k: torch.cat(v).double().cpu() for k, v in rows.items()}
        dims = math.prod(_latent_shape(setting))
        prior = model.decode(torch.randn((N_FID, *_latent_shape(setting)), generator=g,
                                         device=device)).cpu()
    return {"test_loss": (cat["se"] + kl_weight * cat["kl"]).mean().item(),
            "test_squared_error": cat["se"].mean().item(),
            "test_rate": cat["kl"].mean().item(),
            "test_rate_per_dim": cat["kl"].mean().item() / dims,
            "test_psnr": cat["psnr"].mean().item(),
            "latent_sd": cat["z"].std().item(),
            "posterior_sd": cat["var"].mean().sqrt().item(),
            "mean_sd": cat["mu"].std().item(),
            "prior_sample_fid": ch16.sample_fid(prior.clamp(0, 1), setting.data)}


def generate(model: SpaceDiffusion, n: int = N_FID, seed: int = EVAL_SEED,
             steps: int | None = None, clip: tuple[float, float] | None = None
             ) -> torch.Tensor:
    """``n`` samples clamped to [0, 1] (on the CPU), drawn 500 at a time with a generator
    seeded ``seed`` on the model's device; ``clip``: see :meth:`SpaceDiffusion.sample`."""
    g = torch.Generator(device=model.scale.device).manual_seed(seed)
    model.eval()
    return torch.cat([model.sample(min(500, n - i), generator=g, steps=steps, clip=clip)
                      .clamp(0, 1).cpu() for i in range(0, n, 500)])


#: Pixel space's range: a pixel model's estimates of x_0 clamped to it while sampling
#: (:func:`clipped_fid`), as Ho et al.'s code does; Algorithm 2 and the records do not.
PIXEL_RANGE = (-1.0, 1.0)


def clipped_fid(model: SpaceDiffusion, setting: Setting = MNIST) -> float:
    """The FID of :data:`N_FID` samples of a pixel-space model drawn as in
    :func:`evaluate_diffusion` but with each step's estimate of :math:`x_0` clamped to
    :data:`PIXEL_RANGE`."""
    if model.autoencoder is not None:
        raise ValueError("clipped_fid: a latent model's space has no fixed range to clamp to")
    return ch16.sample_fid(generate(model, clip=PIXEL_RANGE), setting.data)


def evaluate_diffusion(model: SpaceDiffusion, setting: Setting = MNIST) -> dict:
    """``test_noise_error``: the noise-prediction loss per test image (one step and noise
    per image, and for the latent model one latent draw per image, seeded) and
    ``test_noise_error_per_dim`` per dimension of the space; ``scale``: the scale factor;
    ``sample_fid``: the FID of :data:`N_FID` samples drawn with all :data:`STEPS` steps
    (:func:`generate`)."""
    model.eval()
    device = model.scale.device
    g = torch.Generator(device=device).manual_seed(EVAL_SEED)
    with torch.no_grad():
        error = torch.cat([diffusion_loss(model, x.to(device), g).noise_error
                           for x in _batches(setting.test())]).double().cpu()
    return {"test_noise_error": error.mean().item(),
            "test_noise_error_per_dim": error.mean().item() / math.prod(model.space_shape),
            "scale": model.scale.item(),
            "sample_fid": ch16.sample_fid(generate(model), setting.data)}


def _describe(setting: Setting) -> str:
    return ("MNIST grey levels in [0, 1] (55,000 train, 5,000 held out)" if setting.key == "mnist"
            else "CIFAR-10 birds+horses 32×32 in [0, 1] (9,000 train, a random 1,000 held out)")


def _ae_recipe(kl_weight: float, setting: Setting) -> Recipe:
    h, w = setting.shape[1] // 4, setting.shape[2] // 4
    return Recipe(
        build=partial(autoencoder, setting=setting),
        loss=partial(kl_autoencoder_loss, kl_weight=kl_weight), data=setting.data.split,
        epochs=setting.ae_epochs,
        evaluate=partial(evaluate_autoencoder, kl_weight=kl_weight, setting=setting),
        fit_options={"lr": 1e-3, "batch_size": BATCH},
        summary=(f"{_describe(setting)}, KL-regularised autoencoder ({setting.width} and "
                 f"{2 * setting.width} channels, downsampling by 4 to {h}×{w}×{LATENT_CHANNELS}"
                 f" Gaussian latents), squared error + {kl_weight:g} × KL to N(0, I), Adam 1e-3,"
                 f" batches of {BATCH}, {setting.ae_epochs} epochs"))


def _diffusion_recipe(space: str, setting: Setting) -> Recipe:
    ae = ae_name(KL_WEIGHT, setting)
    scaled_on = min(SCALE_IMAGES, setting.train_images)  # CIFAR has fewer: all of them
    where = (f"in the latents of {ae} (the same seed, frozen; one draw per image per step), "
             f"scaled to unit variance on {scaled_on:,} training images" if space == "latent"
             else f"in pixel space ([0, 1] to [-1, 1]; {PATCH}×{PATCH} patches as channels)")
    return Recipe(
        build=partial(diffusion_model, space=space, setting=setting), loss=diffusion_loss,
        data=setting.data.split, epochs=setting.epochs,
        evaluate=partial(evaluate_diffusion, setting=setting),
        trainer=_latent_trainer(ae) if space == "latent" else fit,
        requires=(ae,) if space == "latent" else (),
        fit_options={"lr": 1e-3, "batch_size": BATCH},
        summary=(f"{_describe(setting)}, denoising diffusion {where}: a convolutional denoiser "
                 f"({HIDDEN} channels, {BLOCKS} residual blocks with the step's embedding, no "
                 f"downsampling), linear schedule of {STEPS} steps, noise-prediction loss, "
                 f"Adam 1e-3, batches of {BATCH}, {setting.epochs} epochs"))


#: The chapter's checkpoints, by data set and role.
NAMES = {s.key: {"autoencoder": ae_name(KL_WEIGHT, s),
                 "latent": diffusion_name("latent", s),
                 "pixel": diffusion_name("pixel", s)} for s in (MNIST, CIFAR)}
#: The MNIST sweep of the KL weight, by weight.
SWEEP = {w: ae_name(w, MNIST) for w in KL_WEIGHTS}

RECIPES = {
    **{name: _ae_recipe(w, MNIST) for w, name in SWEEP.items()},
    NAMES["cifar-bh"]["autoencoder"]: _ae_recipe(KL_WEIGHT, CIFAR),
    **{NAMES[s.key][space]: _diffusion_recipe(space, s) for s in (MNIST, CIFAR)
       for space in ("latent", "pixel")},
}
