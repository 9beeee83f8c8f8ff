r"""Chapter 16 (``chapters/16_vq_vae.ipynb``): discrete latents, the VQ-VAE with a learned prior.

On chapter 5's MNIST protocol (dynamically binarized training images, the 55,000 of
:func:`vaecourse.protocol.mnist_split`, the fixed binarized test set of
:func:`vaecourse.protocol.test_images`, Adam 1e-3, batches of 128):

- **the VQ-VAE** (:func:`vq_model`): :class:`vaecore.vq.VQVAE` with the nets of
  :class:`vaecore.conv.GridEncoder` and :class:`vaecore.conv.GridDecoder`
  (:data:`HIDDEN` channels), a 7 × 7 grid of :data:`CODE_DIM`-dimensional vectors,
  :data:`N_CODES` codes updated by exponential moving averages (decay 0.99), the
  commitment weight 0.25, a Bernoulli decoder, dead codes restarted after every epoch
  (:class:`vaecore.vq.DeadCodeRestarts` on :data:`RESTART_IMAGES` training images);
  :data:`EPOCHS` epochs, three seeds (:data:`MAIN`).
- **its prior** (:func:`prior_model`, :data:`PRIOR`): a PixelCNN over the 7 × 7 codes
  (:class:`vaecore.pixelcnn.PixelCNNCodePrior`) trained on the codes of the training
  images under the frozen VQ-VAE of the same seed; the whole model's bits per dimension
  are the prior's code length plus the decoder's (:func:`vaecore.vq_bits.vq_bits_per_dim`).
- **the Gaussian VAE it is measured against** (:func:`gaussian_model`, :data:`GAUSSIAN`):
  the same kind of nets, a Gaussian latent of :data:`GAUSS_CHANNELS` channels on the
  7 × 7 grid, :math:`\mathcal N(0, I)` prior, the negative ELBO; its width
  :data:`GAUSS_HIDDEN` puts its parameter count within 10 % of the VQ-VAE's with its
  codebook and prior (:func:`parameter_counts`).
- **codebook health** (:data:`HEALTH`): short runs (:data:`SWEEP_EPOCHS` epochs, three
  seeds each) over the codebook size with and without restarts, the batch size, the
  commitment weight and the codebook update (EMA or the codebook term).

Samples are judged by the Fréchet distance in the features of chapter 9's LeNet
(``mnist32-lenet-classifier-e3``) between :data:`N_FID` sample means and the first
:data:`N_FID` grey-level test images (:func:`sample_fid`).
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import torch
from torch import nn

from vaecore import data
from vaecore.classify import features
from vaecore.conv import GridGaussianDecoder, GridGaussianEncoder
from vaecore.data import pad_to_32
from vaecore.elbo import negative_elbo
from vaecore.metrics import fid
from vaecore.pixelcnn import PixelCNNCodePrior
from vaecore.seeding import local_seed
from vaecore.train import fit
from vaecore.vae import VAE
from vaecore.vq import DeadCodeRestarts, VQVAE, codebook_usage, vq_vae_loss
from vaecore.vq_bits import vq_bits_per_dim

from .. import store
from ..protocol import EVAL_SEED, evaluate_elbo, evaluate_test, mnist_split, test_images
from ..recipe import Recipe
from .ch09_vae_vs_gan import NAMES as CH09_NAMES, lenet

__all__ = ["SEEDS", "HIDDEN", "CODE_DIM", "N_CODES", "COMMITMENT", "EMA_DECAY", "BATCH",
           "EPOCHS", "SWEEP_EPOCHS", "RESTART_IMAGES", "GAUSS_HIDDEN", "GAUSS_CHANNELS",
           "PRIOR_CHANNELS", "PRIOR_LAYERS", "PRIOR_EMBED", "PRIOR_EPOCHS", "N_FID", "JUDGE",
           "VQConfig", "vq_name", "vq_model", "gaussian_model", "VQPrior", "prior_model",
           "PriorTerms", "prior_loss", "restart_images", "evaluate_vq", "evaluate_prior",
           "evaluate_gaussian", "sample_fid", "parameter_counts", "MAIN", "PRIOR", "GAUSSIAN",
           "HEALTH", "RECIPES"]

SEEDS = (0, 1, 2)
HIDDEN, CODE_DIM, N_CODES = 32, 16, 128
COMMITMENT, EMA_DECAY, BATCH = 0.25, 0.99, 128
EPOCHS, SWEEP_EPOCHS = 10, 3
#: Dead codes are those no position of this many training images (the first of the split) uses.
RESTART_IMAGES = 5_000
GAUSS_HIDDEN, GAUSS_CHANNELS = 48, 4
PRIOR_CHANNELS, PRIOR_LAYERS, PRIOR_EMBED, PRIOR_EPOCHS = 32, 4, 16, 20
N_FID = 2_000
JUDGE = CH09_NAMES["judge"]


class VQConfig(NamedTuple):
    """One VQ-VAE recipe: codebook size, update (``"ema"`` or ``"grad"``), restarts, batch
    size, commitment weight, epochs."""
    n_codes: int = N_CODES
    update: str = "ema"
    restarts: bool = True
    batch: int = BATCH
    commitment: float = COMMITMENT
    epochs: int = EPOCHS


def vq_name(config: VQConfig) -> str:
    """The checkpoint name, e.g. ``mnist-grid32-vq-k128-ema-restarts-e10``; the batch size and
    the commitment weight appear when they differ from :data:`BATCH` and :data:`COMMITMENT`."""
    parts = ["mnist", f"grid{HIDDEN}", "vq", f"k{config.n_codes}", config.update]
    if config.restarts:
        parts.append("restarts")
    if config.batch != BATCH:
        parts.append(f"b{config.batch}")
    if config.commitment != COMMITMENT:
        parts.append(f"c{config.commitment:g}")
    return "-".join([*parts, f"e{config.epochs}"])


def vq_model(seed: int = 0, n_codes: int = N_CODES, update: str = "ema") -> VQVAE:
    """A seeded :class:`vaecore.vq.VQVAE` for MNIST (Bernoulli decoder)."""
    if update not in ("ema", "grad"):
        raise ValueError(f"update: expected 'ema' or 'grad', got {update!r}")
    with local_seed(seed):
        return VQVAE((1, 28, 28), n_codes, CODE_DIM, hidden=HIDDEN,
                     ema_decay=EMA_DECAY if update == "ema" else None)


def gaussian_model(seed: int = 0) -> VAE:
    """A seeded Gaussian VAE with a 7 × 7 × :data:`GAUSS_CHANNELS` latent, Bernoulli decoder."""
    with local_seed(seed):
        return VAE(GridGaussianEncoder((1, 28, 28), GAUSS_CHANNELS, hidden=GAUSS_HIDDEN),
                   GridGaussianDecoder(GAUSS_CHANNELS, (1, 28, 28), hidden=GAUSS_HIDDEN))


class VQPrior(nn.Module):
    """A trained VQ-VAE (frozen) and a PixelCNN prior over its code grids: a generative model.

    ``sample(n)`` draws codes from the prior and returns the decoder's means;
    ``bits_per_dim(x)`` is the two-part code length of :mod:`vaecore.vq_bits`.
    """

    def __init__(self, vqvae: VQVAE, prior: PixelCNNCodePrior):
        super().__init__()
        self.vqvae, self.prior = vqvae, prior

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images: :math:`E[x \\mid c]` for :math:`c \\sim p(c)` (no gradient)."""
        with torch.no_grad():
            codes = self.prior.sample(n, generator=generator)
            return self.vqvae.likelihood.mean(self.vqvae.decode_codes(codes))

    def bits_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """``(B,)``: :math:`(-\\log p(c(x)) - \\log p(x \\mid c(x))) / (784 \\ln 2)` (no gradient)."""
        with torch.no_grad():
            codes = self.vqvae.codes(x)
            return vq_bits_per_dim(x, self.vqvae.decode_codes(codes), self.vqvae.likelihood,
                                   self.prior.log_prob(codes))


def prior_model(seed: int = 0) -> VQPrior:
    """A :class:`VQPrior` with an untrained VQ-VAE (the trainer loads the seed's weights) and a
    seeded PixelCNN prior."""
    vqvae = vq_model(seed)
    with local_seed(seed):
        prior = PixelCNNCodePrior(N_CODES, vqvae.grid, embed_dim=PRIOR_EMBED,
                                  channels=PRIOR_CHANNELS, n_layers=PRIOR_LAYERS)
    return VQPrior(vqvae, prior)


class PriorTerms(NamedTuple):
    """``loss`` (scalar, minimised); ``code_nll`` :math:`-\\log p(c(x))` in nats ``(B,)``."""
    loss: torch.Tensor
    code_nll: torch.Tensor


def prior_loss(model: VQPrior, x: torch.Tensor, generator=None) -> PriorTerms:
    """The prior's negative log-likelihood of the codes of ``x`` (a ``fit`` loss; the VQ-VAE
    only encodes)."""
    code_nll = -model.prior.log_prob(model.vqvae.codes(x))
    return PriorTerms(code_nll.mean(), code_nll)


def _prior_trainer(model: VQPrior, loss, train, *, seed: int, **options):
    """Load the VQ-VAE of seed ``seed`` (:data:`MAIN`) into ``model.vqvae``, freeze it, then
    ``fit`` the prior."""
    store.load_seed_weights(vq_name(MAIN), model.vqvae, seed)
    model.vqvae.requires_grad_(False)
    return fit(model, loss, train, seed=seed, **options)


def restart_images() -> torch.Tensor:
    """The first :data:`RESTART_IMAGES` training images of the split (grey levels)."""
    return mnist_split()[0][:RESTART_IMAGES]


@torch.no_grad()
def _test_codes(model: VQVAE, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model.codes(x[i:i + 1000]) for i in range(0, len(x), 1000)])


def evaluate_vq(model: VQVAE) -> dict:
    """The test metrics of a VQ-VAE (nats per image, fixed binarized test images).

    ``test_log_likelihood``, ``test_codebook_loss``, ``test_commitment_loss`` and
    ``test_loss`` (:func:`vaecore.vq.vq_vae_loss`); ``test_mse_grey``: the squared error
    per pixel of :math:`E[x \\mid c(x)]` against the grey-level images; the codebook's
    health on the 490,000 positions of the test grids: ``test_perplexity``,
    ``test_codes_used`` and ``test_dead_codes``.
    """
    model.eval()
    x = test_images()
    metrics = evaluate_elbo(model, x, loss_fn=partial(vq_vae_loss, commitment=COMMITMENT))
    grey = test_images(binarize=False)
    metrics["test_mse_grey"] = math.fsum(
        ((model.reconstruct(x[i:i + 1000]) - grey[i:i + 1000]) ** 2).sum().item()
        for i in range(0, len(x), 1000)) / grey.numel()
    usage = codebook_usage(_test_codes(model, x), model.n_codes)
    metrics.update(test_perplexity=usage.perplexity,
                   test_codes_used=float((~usage.dead).sum()),
                   test_dead_codes=float(usage.dead.sum()))
    return metrics


def sample_fid(samples: torch.Tensor) -> float:
    """FID in the features of chapter 9's LeNet: ``samples`` (``(n, 1, 28, 28)`` in [0, 1],
    padded to 32 × 32) against the first ``n`` grey-level test images."""
    judge = lenet()
    store.load_weights(JUDGE, judge)
    judge.eval()
    real = pad_to_32(data.mnist("test").x[:len(samples)])
    return fid(features(judge, real), features(judge, pad_to_32(samples))).item()


def _sample_means(model, seed: int = EVAL_SEED) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    model.eval()
    return torch.cat([model.sample(1000, generator=g) for _ in range(N_FID // 1000)])


def evaluate_prior(model: VQPrior) -> dict:
    """``test_code_nll`` (nats per image) and ``test_bits_per_dim`` of the whole model on the
    fixed binarized test images; ``test_code_bits_per_dim`` and ``test_image_bits_per_dim``,
    its two parts; ``sample_fid`` of :data:`N_FID` sample means (:func:`sample_fid`)."""
    model.eval()
    x = test_images()
    code_nll, bpd = [], []
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            codes = model.vqvae.codes(x[i:i + 1000])
            code_nll.append(-model.prior.log_prob(codes))
            bpd.append(model.bits_per_dim(x[i:i + 1000]))
    code_nll, bpd = torch.cat(code_nll), torch.cat(bpd)
    code_bpd = code_nll / (784 * math.log(2))
    return {"test_code_nll": code_nll.mean().item(), "test_bits_per_dim": bpd.mean().item(),
            "test_code_bits_per_dim": code_bpd.mean().item(),
            "test_image_bits_per_dim": (bpd - code_bpd).mean().item(),
            "sample_fid": sample_fid(_sample_means(model))}


def evaluate_gaussian(model: VAE) -> dict:
    """Chapter 5's test metrics (:func:`vaecourse.protocol.evaluate_test`), ``test_bits_per_dim``
    (minus the ELBO in bits per pixel) and ``sample_fid`` of :data:`N_FID` sample means."""
    metrics = evaluate_test(model)
    metrics["test_bits_per_dim"] = metrics["test_loss"] / (784 * math.log(2))
    metrics["sample_fid"] = sample_fid(_sample_means(model))
    return metrics


def parameter_counts() -> dict[str, int]:
    """Parameters (and codebook entries) of the VQ-VAE, its prior, and the Gaussian VAE."""
    vq, prior = vq_model(), prior_model().prior
    return {"vq_nets": sum(p.numel() for p in vq.parameters()),
            "codebook": vq.quantizer.codebook.numel(),
            "prior": sum(p.numel() for p in prior.parameters()),
            "gaussian": sum(p.numel() for p in gaussian_model().parameters())}


def _restarts(epochs: int):
    return lambda model: DeadCodeRestarts(model, restart_images(), epochs,
                                          transform=data.binarize_dynamic)


def _vq_recipe(config: VQConfig) -> Recipe:
    update = ("exponential moving averages (decay 0.99)" if config.update == "ema"
              else "the codebook term")
    restarts = (f", dead codes restarted after every epoch from {RESTART_IMAGES:,} training "
                "images" if config.restarts else "")
    return Recipe(
        build=partial(vq_model, n_codes=config.n_codes, update=config.update),
        loss=partial(vq_vae_loss, commitment=config.commitment), data=mnist_split,
        epochs=config.epochs, evaluate=evaluate_vq,
        callbacks=(_restarts(config.epochs),) if config.restarts else (),
        fit_options={"lr": 1e-3, "batch_size": config.batch,
                     "transform": data.binarize_dynamic},
        summary=(f"MNIST (dynamically binarized), VQ-VAE: grid encoder and decoder "
                 f"({HIDDEN} channels, two residual blocks), 7×7 grid of {CODE_DIM}-d vectors, "
                 f"{config.n_codes} codes learned by {update}{restarts}, commitment weight "
                 f"{config.commitment:g}, Bernoulli decoder, Adam 1e-3, batches of "
                 f"{config.batch}, {config.epochs} epochs"))


#: The chapter's VQ-VAE.
MAIN = VQConfig()
#: Codebook health: short runs over size × restarts, batch size, commitment weight, update.
HEALTH = tuple(dict.fromkeys(
    [VQConfig(k, restarts=r, epochs=SWEEP_EPOCHS) for k in (32, 128, 512) for r in (False, True)]
    + [VQConfig(512, restarts=False, batch=b, epochs=SWEEP_EPOCHS) for b in (32, 512)]
    + [VQConfig(128, restarts=False, commitment=c, epochs=SWEEP_EPOCHS) for c in (0.05, 1.0, 4.0)]
    + [VQConfig(128, update="grad", restarts=False, epochs=SWEEP_EPOCHS)]))

PRIOR = f"{vq_name(MAIN)}-pixelcnn{PRIOR_CHANNELS}-e{PRIOR_EPOCHS}"
GAUSSIAN = f"mnist-grid{GAUSS_HIDDEN}-bernoulli-c{GAUSS_CHANNELS}-e{EPOCHS}"

RECIPES = {
    **{vq_name(c): _vq_recipe(c) for c in (MAIN, *HEALTH)},
    PRIOR: Recipe(
        build=prior_model, loss=prior_loss, data=mnist_split, epochs=PRIOR_EPOCHS,
        evaluate=evaluate_prior, trainer=_prior_trainer,
        fit_options={"lr": 1e-3, "batch_size": BATCH, "transform": data.binarize_dynamic},
        summary=(f"MNIST (dynamically binarized), a PixelCNN prior ({PRIOR_LAYERS} masked "
                 f"layers of {PRIOR_CHANNELS} channels, code embeddings of {PRIOR_EMBED}) over "
                 f"the 7×7 codes of {vq_name(MAIN)} (the same seed, frozen), cross-entropy, "
                 f"Adam 1e-3, batches of {BATCH}, {PRIOR_EPOCHS} epochs")),
    GAUSSIAN: Recipe(
        build=gaussian_model, loss=negative_elbo, data=mnist_split, epochs=EPOCHS,
        evaluate=evaluate_gaussian,
        fit_options={"lr": 1e-3, "batch_size": BATCH, "transform": data.binarize_dynamic},
        summary=(f"MNIST (dynamically binarized), Gaussian VAE: grid encoder and decoder "
                 f"({GAUSS_HIDDEN} channels, two residual blocks), a 7×7×{GAUSS_CHANNELS} "
                 f"latent, N(0, I) prior, Bernoulli decoder, negative ELBO, Adam 1e-3, "
                 f"batches of {BATCH}, {EPOCHS} epochs")),
}
