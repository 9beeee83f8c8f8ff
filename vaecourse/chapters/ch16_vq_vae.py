r"""Chapter 16 (``chapters/16_vq_vae.ipynb``): discrete latents, the VQ-VAE with a learned prior.

On chapter 5's MNIST protocol (dynamically binarized training images, the 55,000 of
:func:`vaecourse.protocol.mnist_split`, the fixed binarized test set of
:func:`vaecourse.protocol.test_images`, Adam 1e-3, batches of 128):

- **the VQ-VAE** (:func:`vq_model`): :class:`vaecore.vq_vae.VQVAE` with the nets of
  :class:`vaecore.conv.GridEncoder` and :class:`vaecore.conv.GridDecoder`
  (:data:`HIDDEN` channels), a 7 × 7 grid of :data:`CODE_DIM`-dimensional vectors,
  :data:`N_CODES` codes updated by exponential moving averages (decay 0.99), the
  commitment weight 0.25, a Bernoulli decoder, dead codes restarted after every epoch
  but the last (:class:`vaecore.vq_vae.DeadCodeRestarts` on :data:`RESTART_IMAGES`
  training images, the same restart draws for every seed);
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

The same three models on CIFAR-10 birds and horses (:data:`CIFAR`; chapter 8's split:
9,000 training images, 1,000 held out, the 2,000 test images), with 8-bit levels
modelled by the discretized logistic, :data:`CIFAR_HIDDEN` channels,
:data:`CIFAR_CODES` codes on an 8 × 8 grid and :data:`CIFAR_EPOCHS` epochs.

Samples are judged by the Fréchet distance between :data:`N_FID` sample means and as many
test images, in the features of a classifier trained on the real images
(:func:`vaecore.classify.features`): chapter 9's LeNet on MNIST
(``mnist32-lenet-classifier-e3``), chapter 8's bird-or-horse CNN on CIFAR
(``cifar-bh-cnn-classifier-e8``).
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import torch
from torch import nn

from vaecore import data
from vaecore.classify import features
from vaecore.discretized_logistic import discretized_logistic
from vaecore.conv import GridGaussianDecoder, GridGaussianEncoder
from vaecore.data import pad_to_32
from vaecore.elbo import negative_elbo
from vaecore.likelihoods import Likelihood, bernoulli
from vaecore.metrics import fid
from vaecore.pixelcnn import PixelCNNCodePrior
from vaecore.seeding import local_seed
from vaecore.train import fit
from vaecore.units import bits_per_dim
from vaecore.vae import VAE
from vaecore.vq import codebook_usage
from vaecore.vq_vae import DeadCodeRestarts, VQVAE, vq_vae_loss
from vaecore.vq_bits import vq_bits_per_dim

from .. import store
from ..protocol import EVAL_SEED, evaluate_elbo, evaluate_test, mnist_split, test_images
from ..recipe import Recipe
from . import ch08_residual_vae as ch08
from .ch09_vae_vs_gan import NAMES as CH09_NAMES, lenet

__all__ = ["SEEDS", "HIDDEN", "CODE_DIM", "N_CODES", "COMMITMENT", "EMA_DECAY", "BATCH",
           "EPOCHS", "SWEEP_EPOCHS", "RESTART_IMAGES", "GAUSS_HIDDEN", "GAUSS_CHANNELS",
           "PRIOR_CHANNELS", "PRIOR_LAYERS", "PRIOR_EMBED", "PRIOR_EPOCHS", "N_FID",
           "CIFAR_HIDDEN", "CIFAR_CODES", "CIFAR_GAUSS_HIDDEN", "CIFAR_PRIOR_CHANNELS",
           "CIFAR_EPOCHS", "Setting", "MNIST", "CIFAR", "VQConfig", "vq_name", "vq_model",
           "gaussian_model", "VQPrior", "prior_model", "PriorTerms", "prior_loss",
           "evaluate_vq", "evaluate_prior", "evaluate_gaussian", "sample_fid",
           "parameter_counts", "MAIN", "HEALTH", "NAMES", "RECIPES"]

SEEDS = (0, 1, 2)
HIDDEN, CODE_DIM, N_CODES = 32, 16, 128
COMMITMENT, EMA_DECAY, BATCH = 0.25, 0.99, 128
EPOCHS, SWEEP_EPOCHS = 10, 2
#: Dead codes are those no position of this many training images (the first of the split) uses.
RESTART_IMAGES = 5_000
GAUSS_HIDDEN, GAUSS_CHANNELS = 48, 4
PRIOR_CHANNELS, PRIOR_LAYERS, PRIOR_EMBED, PRIOR_EPOCHS = 32, 4, 16, 20
CIFAR_HIDDEN, CIFAR_CODES, CIFAR_GAUSS_HIDDEN, CIFAR_PRIOR_CHANNELS = 64, 256, 82, 48
CIFAR_EPOCHS = 20
N_FID = 2_000


def _mnist_judge():
    judge = lenet()
    store.load_weights(CH09_NAMES["judge"], judge)
    return judge.eval(), pad_to_32


def _cifar_judge():
    judge = ch08.bird_horse_classifier()
    store.load_weights(ch08.NAMES["classifier"], judge)
    return judge.eval(), lambda x: x


def _cifar_split():
    train, val = ch08.splits()
    return train.x, val.x


class Setting(NamedTuple):
    """One data set of the chapter: how its images are split, modelled, tested and judged.

    ``split()``: ``(train, val)`` images; ``test(levels)``: the test images as modelled
    (binarized for MNIST) or, with ``levels=True``, as grey levels; ``transform``: the
    per-batch transform of training; ``judge()``: ``(classifier, prepare)``, whose features
    of ``prepare(x)`` give the FID.
    """
    key: str
    shape: tuple
    likelihood: Likelihood
    split: Callable
    test: Callable
    transform: Callable | None
    judge: Callable
    hidden: int
    n_codes: int
    gauss_hidden: int
    prior_channels: int
    epochs: int
    prior_epochs: int


MNIST = Setting("mnist", (1, 28, 28), bernoulli, mnist_split,
                lambda levels=False: test_images(binarize=not levels), data.binarize_dynamic,
                _mnist_judge, HIDDEN, N_CODES, GAUSS_HIDDEN, PRIOR_CHANNELS, EPOCHS, PRIOR_EPOCHS)
CIFAR = Setting("cifar-bh", ch08.SHAPE, discretized_logistic, _cifar_split,
                lambda levels=False: ch08.test_set().x, None, _cifar_judge, CIFAR_HIDDEN,
                CIFAR_CODES, CIFAR_GAUSS_HIDDEN, CIFAR_PRIOR_CHANNELS, CIFAR_EPOCHS, CIFAR_EPOCHS)
_SETTINGS = {s.key: s for s in (MNIST, CIFAR)}


class VQConfig(NamedTuple):
    """One VQ-VAE recipe: codebook size, update (``"ema"`` or ``"grad"``), restarts, batch
    size, commitment weight, epochs, data set."""
    n_codes: int = N_CODES
    update: str = "ema"
    restarts: bool = True
    batch: int = BATCH
    commitment: float = COMMITMENT
    epochs: int = EPOCHS
    data: str = "mnist"


def _grid_size(setting: Setting) -> int:
    return (setting.shape[1] // 4) * (setting.shape[2] // 4)


def _kind(setting: Setting) -> str:
    return "bernoulli" if setting.likelihood.name == "bernoulli" else "dlogistic"


def vq_name(config: VQConfig, prior: bool = False) -> str:
    """The checkpoint name, e.g. ``mnist-grid32-bernoulli-vq-k128-ema-restarts-z49-e10`` (49
    codes of 128 values); the batch size and the commitment weight appear when they differ
    from :data:`BATCH` and :data:`COMMITMENT`. With ``prior``, the name of its prior's
    checkpoint (``-pixelcnn<channels>``, the prior's epochs)."""
    setting = _SETTINGS[config.data]
    parts = [setting.key, f"grid{setting.hidden}", _kind(setting), "vq", f"k{config.n_codes}",
             config.update]
    if config.restarts:
        parts.append("restarts")
    if config.batch != BATCH:
        parts.append(f"b{config.batch}")
    if config.commitment != COMMITMENT:
        parts.append(f"c{config.commitment:g}")
    if prior:
        return "-".join([*parts, f"pixelcnn{setting.prior_channels}",
                         f"z{_grid_size(setting)}", f"e{setting.prior_epochs}"])
    return "-".join([*parts, f"z{_grid_size(setting)}", f"e{config.epochs}"])


def vq_model(seed: int = 0, n_codes: int = N_CODES, update: str = "ema",
             setting: Setting = MNIST) -> VQVAE:
    """A seeded :class:`vaecore.vq_vae.VQVAE` for ``setting``'s images."""
    if update not in ("ema", "grad"):
        raise ValueError(f"update: expected 'ema' or 'grad', got {update!r}")
    with local_seed(seed):
        return VQVAE(setting.shape, n_codes, CODE_DIM, hidden=setting.hidden,
                     ema_decay=EMA_DECAY if update == "ema" else None,
                     likelihood=setting.likelihood)


def gaussian_model(seed: int = 0, setting: Setting = MNIST) -> VAE:
    """A seeded Gaussian VAE with a :data:`GAUSS_CHANNELS`-channel latent on the quarter-size
    grid, and ``setting``'s likelihood."""
    two = setting.likelihood.name == "discretized_logistic"
    with local_seed(seed):
        return VAE(GridGaussianEncoder(setting.shape, GAUSS_CHANNELS, hidden=setting.gauss_hidden),
                   GridGaussianDecoder(GAUSS_CHANNELS, setting.shape, hidden=setting.gauss_hidden,
                                       params_per_channel=2 if two else 1),
                   likelihood=setting.likelihood)


class VQPrior(nn.Module):
    """A trained VQ-VAE (frozen) and a PixelCNN prior over its code grids: a generative model.

    ``sample(n)`` draws codes from the prior and returns the decoder's means;
    ``bits_per_dim(x)`` is the two-part code length of :mod:`vaecore.vq_bits`.
    """

    def __init__(self, vqvae: VQVAE, prior: PixelCNNCodePrior):
        super().__init__()
        self.vqvae, self.prior = vqvae, prior

    def train(self, mode: bool = True) -> "VQPrior":
        """Set the prior's mode; the VQ-VAE, frozen, stays in evaluation mode."""
        super().train(mode)
        self.vqvae.eval()
        return self

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``n`` images: :math:`E[x \mid c]` for :math:`c \sim p(c)` (no gradient)."""
        with torch.no_grad():
            codes = self.prior.sample(n, generator=generator)
            return self.vqvae.likelihood.mean(self.vqvae.decode_codes(codes))

    def bits_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        r"""``(B,)``: :math:`(-\log p(c(x)) - \log p(x \mid c(x))) / (D_x \ln 2)` (no gradient)."""
        with torch.no_grad():
            codes = self.vqvae.codes(x)
            return vq_bits_per_dim(x, self.vqvae.decode_codes(codes), self.vqvae.likelihood,
                                   self.prior.log_prob(codes))


def prior_model(seed: int = 0, setting: Setting = MNIST) -> VQPrior:
    """A :class:`VQPrior` with an untrained VQ-VAE (the trainer loads the seed's weights) and a
    seeded PixelCNN prior."""
    vqvae = vq_model(seed, setting.n_codes, setting=setting)
    with local_seed(seed):
        prior = PixelCNNCodePrior(setting.n_codes, vqvae.grid, embed_dim=PRIOR_EMBED,
                                  channels=setting.prior_channels, n_layers=PRIOR_LAYERS)
    return VQPrior(vqvae, prior)


class PriorTerms(NamedTuple):
    r"""``loss`` (scalar, minimised); ``code_nll`` :math:`-\log p(c(x))` in nats ``(B,)``."""
    loss: torch.Tensor
    code_nll: torch.Tensor


def prior_loss(model: VQPrior, x: torch.Tensor, generator=None) -> PriorTerms:
    """The prior's negative log-likelihood of the codes of ``x`` (a ``fit`` loss; the VQ-VAE
    only encodes)."""
    code_nll = -model.prior.log_prob(model.vqvae.codes(x))
    return PriorTerms(code_nll.mean(), code_nll)


def _prior_trainer(vq: str):
    """The trainer of the prior over the codes of checkpoint ``vq``."""
    def train_prior(model: VQPrior, loss, train, *, seed: int, weights_from=None, **options):
        """Load the VQ-VAE of seed ``seed`` (from the folder ``weights_from``, else where
        checkpoints are found) into ``model.vqvae``, freeze it, then ``fit`` the prior."""
        store.load_seed_weights(vq, model.vqvae, seed, weights_from)
        model.vqvae.requires_grad_(False)
        return fit(model, loss, train, seed=seed, **options)
    return train_prior


def _in_batches(fn, x: torch.Tensor, size: int = 1000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i:i + size]) for i in range(0, len(x), size)])


def evaluate_vq(model: VQVAE, setting: Setting = MNIST) -> dict:
    r"""The test metrics of a VQ-VAE (nats per image, the test images as modelled).

    ``test_log_likelihood``, ``test_codebook_loss``, ``test_commitment_loss`` and
    ``test_loss`` (:func:`vaecore.vq_vae.vq_vae_loss` with the commitment weight
    :data:`COMMITMENT`, whatever the recipe's: compare it across recipes of one weight
    only); ``test_mse_grey``: the squared error per
    pixel of :math:`E[x \mid c(x)]` against the grey-level images; the codebook's health
    over all positions of the test grids: ``test_perplexity``, ``test_codes_used`` and
    ``test_dead_codes``.
    """
    model.eval()
    x = setting.test()
    metrics = evaluate_elbo(model, x, loss_fn=partial(vq_vae_loss, commitment=COMMITMENT))
    grey = setting.test(levels=True)
    metrics["test_mse_grey"] = math.fsum(
        ((model.reconstruct(x[i:i + 1000]) - grey[i:i + 1000]) ** 2).sum().item()
        for i in range(0, len(x), 1000)) / grey.numel()
    usage = codebook_usage(_in_batches(model.codes, x), model.n_codes)
    metrics.update(test_perplexity=usage.perplexity,
                   test_codes_used=float((~usage.dead).sum()),
                   test_dead_codes=float(usage.dead.sum()))
    return metrics


def sample_fid(samples: torch.Tensor, setting: Setting = MNIST) -> float:
    """FID of ``samples`` (images in [0, 1]) against as many grey-level test images, in the
    features of ``setting``'s judge."""
    judge, prepare = setting.judge()
    real = setting.test(levels=True)
    if len(samples) > len(real):
        raise ValueError(f"samples: expected at most {len(real)} images, as many as the test "
                         f"images compared with, got {len(samples)}")
    real = real[:len(samples)]
    return fid(features(judge, prepare(real)), features(judge, prepare(samples))).item()


def _sample_means(model, seed: int = EVAL_SEED) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    model.eval()
    return torch.cat([model.sample(1000, generator=g) for _ in range(N_FID // 1000)])


def evaluate_prior(model: VQPrior, setting: Setting = MNIST) -> dict:
    """``test_code_nll`` (nats per image) and ``test_bits_per_dim`` of the whole model on the
    test images as modelled; ``test_code_bits_per_dim`` and ``test_image_bits_per_dim``,
    its two parts; ``sample_fid`` of :data:`N_FID` sample means (:func:`sample_fid`)."""
    model.eval()
    x = setting.test()
    code_nll = _in_batches(lambda b: -model.prior.log_prob(model.vqvae.codes(b)), x)
    bpd = _in_batches(model.bits_per_dim, x)
    code_bpd = bits_per_dim(code_nll, x[0].numel())
    return {"test_code_nll": code_nll.mean().item(), "test_bits_per_dim": bpd.mean().item(),
            "test_code_bits_per_dim": code_bpd.mean().item(),
            "test_image_bits_per_dim": (bpd - code_bpd).mean().item(),
            "sample_fid": sample_fid(_sample_means(model), setting)}


def evaluate_gaussian(model: VAE, setting: Setting = MNIST) -> dict:
    """Minus the test ELBO and its terms (nats per image, one z per image), in bits per
    dimension too (``test_bits_per_dim``); ``test_mse_grey`` as for the VQ-VAE; for MNIST
    chapter 5's other metrics (:func:`vaecourse.protocol.evaluate_test`); ``sample_fid`` of
    :data:`N_FID` sample means."""
    if setting.key == "mnist":
        metrics = evaluate_test(model)
    else:
        x = setting.test()
        metrics = evaluate_elbo(model, x, loss_fn=negative_elbo, batch_size=500)
        metrics["test_mse_grey"] = math.fsum(
            ((model.reconstruct(x[i:i + 500]) - x[i:i + 500]) ** 2).sum().item()
            for i in range(0, len(x), 500)) / x.numel()
    metrics["test_bits_per_dim"] = bits_per_dim(metrics["test_loss"],
                                                math.prod(setting.shape))
    metrics["sample_fid"] = sample_fid(_sample_means(model), setting)
    return metrics


def parameter_counts(setting: Setting = MNIST) -> dict[str, int]:
    """Parameters (and codebook entries) of the VQ-VAE, its prior, and the Gaussian VAE."""
    vq = vq_model(n_codes=setting.n_codes, setting=setting)
    prior = prior_model(setting=setting).prior
    return {"vq_nets": sum(p.numel() for p in vq.parameters()),
            "codebook": vq.quantizer.codebook.numel(),
            "prior": sum(p.numel() for p in prior.parameters()),
            "gaussian": sum(p.numel() for p in gaussian_model(setting=setting).parameters())}


def _restarts(setting: Setting, epochs: int):
    def make(model):
        images = setting.split()[0][:RESTART_IMAGES]
        return DeadCodeRestarts(model, images, epochs, transform=setting.transform)
    return make


_LIKELIHOOD = {"bernoulli": "Bernoulli", "discretized_logistic": "discretized logistic"}


def _describe(setting: Setting) -> str:
    return ("MNIST (dynamically binarized)" if setting.key == "mnist" else
            "CIFAR-10 birds+horses 32×32 (9,000 train, a random 1,000 held out), 8-bit levels")


def _vq_recipe(config: VQConfig) -> Recipe:
    setting = _SETTINGS[config.data]
    update = ("exponential moving averages (decay 0.99)" if config.update == "ema"
              else "the codebook term")
    restarts = (f", dead codes restarted after every epoch from {RESTART_IMAGES:,} training "
                "images" if config.restarts else "")
    h, w = setting.shape[1] // 4, setting.shape[2] // 4
    return Recipe(
        build=partial(vq_model, n_codes=config.n_codes, update=config.update, setting=setting),
        loss=partial(vq_vae_loss, commitment=config.commitment), data=setting.split,
        epochs=config.epochs, evaluate=partial(evaluate_vq, setting=setting),
        callbacks=(_restarts(setting, config.epochs),) if config.restarts else (),
        fit_options={"lr": 1e-3, "batch_size": config.batch, "transform": setting.transform},
        summary=(f"{_describe(setting)}, VQ-VAE: grid encoder and decoder "
                 f"({setting.hidden} channels, two residual blocks), {h}×{w} grid of "
                 f"{CODE_DIM}-d vectors, {config.n_codes} codes learned by {update}{restarts}, "
                 f"commitment weight {config.commitment:g}, {_LIKELIHOOD[setting.likelihood.name]} decoder, "
                 f"Adam 1e-3, batches of {config.batch}, {config.epochs} epochs"))


def _prior_recipe(setting: Setting, vq: str) -> Recipe:
    h, w, epochs = setting.shape[1] // 4, setting.shape[2] // 4, setting.prior_epochs
    return Recipe(
        build=partial(prior_model, setting=setting), loss=prior_loss, data=setting.split,
        epochs=epochs, evaluate=partial(evaluate_prior, setting=setting),
        trainer=_prior_trainer(vq), requires=(vq,),
        fit_options={"lr": 1e-3, "batch_size": BATCH, "transform": setting.transform},
        summary=(f"{_describe(setting)}, a PixelCNN prior ({PRIOR_LAYERS} masked layers of "
                 f"{setting.prior_channels} channels, code embeddings of {PRIOR_EMBED}) over "
                 f"the {h}×{w} codes of {vq} (the same seed, frozen), cross-entropy, Adam 1e-3, "
                 f"batches of {BATCH}, {epochs} epochs"))


def _gaussian_recipe(setting: Setting) -> Recipe:
    h, w = setting.shape[1] // 4, setting.shape[2] // 4
    return Recipe(
        build=partial(gaussian_model, setting=setting), loss=negative_elbo, data=setting.split,
        epochs=setting.epochs, evaluate=partial(evaluate_gaussian, setting=setting),
        fit_options={"lr": 1e-3, "batch_size": BATCH, "transform": setting.transform},
        summary=(f"{_describe(setting)}, Gaussian VAE: grid encoder and decoder "
                 f"({setting.gauss_hidden} channels, two residual blocks), a "
                 f"{h}×{w}×{GAUSS_CHANNELS} latent, N(0, I) prior, "
                 f"{_LIKELIHOOD[setting.likelihood.name]} "
                 f"decoder, negative ELBO, Adam 1e-3, batches of {BATCH}, {setting.epochs} "
                 "epochs"))


#: The chapter's MNIST VQ-VAE.
MAIN = VQConfig()
#: Codebook health: short runs over size × restarts, batch size, commitment weight, update.
HEALTH = tuple(dict.fromkeys(
    [VQConfig(k, restarts=r, epochs=SWEEP_EPOCHS) for k in (32, 128, 512) for r in (False, True)]
    + [VQConfig(512, restarts=False, batch=b, epochs=SWEEP_EPOCHS) for b in (32, 512)]
    + [VQConfig(128, restarts=False, commitment=c, epochs=SWEEP_EPOCHS) for c in (0.05, 1.0)]
    + [VQConfig(128, update="grad", restarts=False, epochs=SWEEP_EPOCHS)]))
_CIFAR_VQ = VQConfig(CIFAR_CODES, epochs=CIFAR_EPOCHS, data="cifar-bh")


def _gaussian_name(setting: Setting) -> str:
    latent = GAUSS_CHANNELS * _grid_size(setting)
    return (f"{setting.key}-grid{setting.gauss_hidden}-{_kind(setting)}-c{GAUSS_CHANNELS}"
            f"-z{latent}-e{setting.epochs}")


#: The chapter's main checkpoints, by data set and role.
NAMES = {
    "mnist": {"vq": vq_name(MAIN), "prior": vq_name(MAIN, prior=True),
              "gaussian": _gaussian_name(MNIST)},
    "cifar-bh": {"vq": vq_name(_CIFAR_VQ), "prior": vq_name(_CIFAR_VQ, prior=True),
                 "gaussian": _gaussian_name(CIFAR)},
}

RECIPES = {
    **{vq_name(c): _vq_recipe(c) for c in (MAIN, *HEALTH, _CIFAR_VQ)},
    NAMES["mnist"]["prior"]: _prior_recipe(MNIST, NAMES["mnist"]["vq"]),
    NAMES["mnist"]["gaussian"]: _gaussian_recipe(MNIST),
    NAMES["cifar-bh"]["prior"]: _prior_recipe(CIFAR, NAMES["cifar-bh"]["vq"]),
    NAMES["cifar-bh"]["gaussian"]: _gaussian_recipe(CIFAR),
}
