r"""Chapter 10 (``chapters/10_mmd_vae.ipynb``): MMD-VAE against VAE on shapes, and the judge.

Data: :func:`vaecore.data.shapes` at 32×32 pixels without pixel noise, so the
images are binary and the Bernoulli likelihood is a proper one
(:func:`splits`): training set 10,000 images (seed 0); validation 1,000
(seed 1); test 2,000 (seed 2). Every model is trained with ``fit``: Adam
1e-3, batch 128.

- ``shapes-cnn-classifier-e8``, the *judge* of generated images: a small CNN
  that names a shape or says "no shape", trained with cross-entropy for 8
  epochs on the training shapes, as many blurred and dimmed copies of them
  (:func:`degraded_shapes`, same labels) and half as many images that show
  no single shape (:func:`non_shapes`), so that it can refuse what a plain
  3-class classifier would force into a class.
- ``shapes-mlp-bernoulli-z8-e50``: MLP 1024-256-8, Bernoulli decoder,
  negative ELBO (the InfoVAE objective with :math:`\alpha = 0, \lambda = 1`).
- ``shapes-mlp-bernoulli-mmd-z8-e50``: the same network,
  :func:`vaecore.mmd.info_vae_loss` with :math:`\alpha = 1, \lambda = 1000`
  (no KL term, MMD weight 1000), RBF kernel with :math:`h^2 = D = 8`.
- ``shapes-mlp-bernoulli-mmd-noise-z8-e50`` and
  ``shapes-mlp-bernoulli-mmd-noise-unitscale-z8-e50``: the MMD-VAE with
  Gaussian noise of variance 5 added to the encoder's input during training
  (:class:`InputNoise`), read on an 8-bit pixel scale
  (:math:`\sigma = \sqrt5/255`) and on the ``[0, 1]`` scale (:math:`\sigma = \sqrt5`).

Each autoencoder's record holds what the chapter compares, for every training
seed: :func:`evaluate_autoencoder`, the mean posterior σ, and
:func:`judged_metrics` (the shares of samples and reconstructions the judge
recognises, as counts), always judged by the shipped judge, which must
therefore be trained first.
"""
from __future__ import annotations

import math
from functools import lru_cache, partial

import torch
import torch.nn.functional as F
from torch import nn

from vaecore import data
from vaecore.classify import ConvClassifier, class_probabilities, classifier_loss
from vaecore.elbo import negative_elbo
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.mmd import info_vae_loss, mmd2
from vaecore.seeding import local_seed
from vaecore.vae import VAE

from .. import store
from ..protocol import evaluate_elbo
from ..recipe import Recipe, checkpoint_name

__all__ = ["SIZE", "LATENT_DIM", "HIDDEN", "LAM", "EPOCHS", "NOISE_STD_8BIT", "NOISE_STD_UNIT",
           "JUDGE_CLASSES", "NO_SHAPE", "NAMES", "splits", "shape_classifier", "blur",
           "degraded_shapes", "non_shapes", "judge_data", "class_probabilities", "recognised",
           "InputNoise", "shapes_vae", "mmd_vae_loss", "evaluate_autoencoder", "TAU", "N_SAMPLES",
           "SAMPLE_SEED", "CURVE_ENDS", "judged_metrics", "RECIPES"]

SIZE = 32
N_TRAIN, N_VAL, N_TEST = 10_000, 1_000, 2_000
SETUP = "Adam 1e-3, batch 128"
LATENT_DIM, HIDDEN = 8, (256,)
LAM = 1000.0  # InfoVAE lambda of the MMD-VAE (alpha = 1): the MMD² weight alpha + lam - 1
EPOCHS, JUDGE_EPOCHS = 50, 8
NOISE_STD_8BIT = math.sqrt(5) / 255  # variance 5 in grey levels 0..255, on the [0, 1] scale
NOISE_STD_UNIT = math.sqrt(5)  # variance 5 taken on the [0, 1] scale itself
JUDGE_CLASSES = (*data.SHAPE_CLASSES, "no shape")
NO_SHAPE = 3
TAU = 0.9  # the judge's threshold: a shape class above it counts as recognised
N_SAMPLES, SAMPLE_SEED = 4000, 7  # generated images per model, and the seed of their z
CURVE_ENDS = (0.5, 0.99)  # the ends of the chapter's curve of the share against the threshold


def _ae_name(*variants: str) -> str:
    return checkpoint_name("shapes", "mlp", "bernoulli", *variants, z=LATENT_DIM, epochs=EPOCHS)


#: The chapter's checkpoints, by role.
NAMES = {"judge": checkpoint_name("shapes", "cnn", "classifier", epochs=JUDGE_EPOCHS),
         "vae": _ae_name(), "mmd": _ae_name("mmd"), "mmd-noise": _ae_name("mmd", "noise"),
         "mmd-noise-unitscale": _ae_name("mmd", "noise-unitscale")}


def splits() -> tuple[data.Dataset, data.Dataset, data.Dataset]:
    """(train 10,000, validation 1,000, test 2,000) binary 32×32 shape images, seeds 0, 1, 2."""
    return tuple(data.shapes(n, size=SIZE, seed=seed, noise=0.0)
                 for n, seed in ((N_TRAIN, 0), (N_VAL, 1), (N_TEST, 2)))


# --- the judge --------------------------------------------------------------

def shape_classifier(seed: int = 0) -> ConvClassifier:
    """x ``(B, 1, 32, 32)`` → logits ``(B, 4)``: rectangle, circle, triangle, no shape (seeded).

    Two ``Conv2d(3×3) → ReLU → MaxPool(2)`` stages (8 and 16 channels), then
    ``Linear(64) → ReLU → Linear(4)``.
    """
    with local_seed(seed):
        return ConvClassifier((1, SIZE, SIZE), len(JUDGE_CLASSES), channels=(8, 16), hidden=64)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation ``sigma`` pixels (radius 4), ``(N, 1, H, W)``."""
    t = torch.arange(-4.0, 5.0)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(x.dtype)
    x = F.conv2d(x, k.view(1, 1, 1, 9), padding=(0, 4))
    return F.conv2d(x, k.view(1, 1, 9, 1), padding=(4, 0))


def degraded_shapes(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Still recognisable: blurred (σ 0.5 to 1.5 pixels) and dimmed (× 0.5 to 1) copies of ``x``."""
    sigma = [0.5, 1.0, 1.5][int(torch.randint(3, (), generator=g))]
    dim = 0.5 + 0.5 * torch.rand(len(x), 1, 1, 1, generator=g)
    return blur(x, sigma) * dim


def non_shapes(x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """As many images as ``x`` that show no single shape, four kinds in equal parts.

    Blends ``a·x_i + (1 − a)·x_j`` of two shapes of different classes
    (a in [0.35, 0.65]); uniform noise; smooth random blobs (smoothed noise
    through a sigmoid); faint images (a grey level below 0.3 plus noise).
    """
    n = len(x)
    j = torch.randperm(n, generator=g)
    j = torch.where(y[j] == y, j.roll(1), j)  # mostly another class; rare repeats stay blends
    a = 0.35 + 0.3 * torch.rand(n, 1, 1, 1, generator=g)
    blends = a * x + (1 - a) * x[j]
    noise = torch.rand(x.shape, generator=g)
    field = F.avg_pool2d(torch.rand(x.shape, generator=g), 7, 1, 3, count_include_pad=False)
    field = (field - field.mean((2, 3), keepdim=True)) / field.std((2, 3), keepdim=True)
    blobs = torch.sigmoid(4 * (field - 0.5))
    faint = (0.3 * torch.rand(n, 1, 1, 1, generator=g) + 0.1 * torch.rand(x.shape, generator=g))
    kind = torch.arange(n) % 4
    out = torch.where((kind == 0).view(-1, 1, 1, 1), blends, noise)
    out = torch.where((kind == 2).view(-1, 1, 1, 1), blobs, out)
    return torch.where((kind == 3).view(-1, 1, 1, 1), faint, out)


def judge_data(dataset: data.Dataset, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The shapes of ``dataset``, as many degraded copies (same labels) and half as many non-shapes."""
    g = torch.Generator().manual_seed(seed)
    x, y = dataset.x, dataset.y
    half = len(x) // 2
    degraded = torch.cat([degraded_shapes(x[i:i + 500], g) for i in range(0, len(x), 500)])
    negatives = non_shapes(x[:half], y[:half], g)
    return (torch.cat([x, degraded, negatives]),
            torch.cat([y, y, torch.full((half,), NO_SHAPE)]))


def recognised(probs: torch.Tensor, threshold: float) -> torch.Tensor:
    """``(N,)`` bool: a shape class (not "no shape") has probability above ``threshold``."""
    return probs[:, :NO_SHAPE].max(1).values > threshold


def _judge_training_data():
    train, val, _ = splits()
    return judge_data(train, seed=10), judge_data(val, seed=11)


@torch.no_grad()
def _evaluate_classifier(model) -> dict:
    test = splits()[2]
    x, y = judge_data(test, seed=12)
    probs = class_probabilities(model, x)
    n = len(test.x)
    parts = {"clean": slice(0, n), "degraded": slice(n, 2 * n), "no_shape": slice(2 * n, None)}
    metrics = {f"test_accuracy_{k}": (probs[s].argmax(1) == y[s]).float().mean().item()
               for k, s in parts.items()}
    return {**metrics, "test_nll": F.nll_loss(probs.log(), y).item()}


# --- the autoencoders -------------------------------------------------------

class InputNoise(nn.Module):
    r"""An encoder that sees :math:`x + \sigma\epsilon`, :math:`\epsilon \sim \mathcal N(0, I)`, in training.

    Wraps ``encoder``; in ``train()`` mode it adds Gaussian noise of standard
    deviation ``std`` to the input (drawn from torch's global generator, which
    ``fit`` seeds), in ``eval()`` mode it passes ``x`` through unchanged. The
    decoder's likelihood still scores the clean ``x``. Returns
    ``(mu, logvar)``, each ``(B, latent_dim)``.
    """

    def __init__(self, encoder: nn.Module, std: float):
        super().__init__()
        if not std > 0:
            raise ValueError(f"std: expected a positive number, got {std!r}")
        self.encoder, self.std, self.latent_dim = encoder, float(std), encoder.latent_dim

    def forward(self, x: torch.Tensor):
        """Return ``(mu, logvar)`` of the (noisy, in training) input."""
        if self.training:
            x = x + self.std * torch.randn_like(x)
        return self.encoder(x)


def shapes_vae(latent_dim: int = LATENT_DIM, hidden=HIDDEN, noise_std: float | None = None,
               seed: int = 0) -> VAE:
    """A seeded MLP VAE 1024-256-``latent_dim`` for 1×32×32 images, Bernoulli decoder.

    ``noise_std`` wraps the encoder in :class:`InputNoise`.
    """
    with local_seed(seed):
        encoder = MLPEncoder((1, SIZE, SIZE), latent_dim, hidden=hidden)
        if noise_std is not None:
            encoder = InputNoise(encoder, noise_std)
        return VAE(encoder, MLPDecoder(latent_dim, (1, SIZE, SIZE), hidden=hidden))


@torch.no_grad()
def evaluate_autoencoder(model, x: torch.Tensor, seed: int = 2) -> dict:
    r"""Test metrics of a shapes autoencoder on ``x``, in nats per image unless stated.

    ``test_mse``: squared error of the reconstruction at :math:`z = \mu(x)`,
    mean over pixels and images; ``test_elbo``, ``test_log_likelihood``,
    ``test_kl``: the ELBO and its terms (:func:`vaecourse.protocol.evaluate_elbo`,
    one batch), one sample of z per image; ``test_mmd2_prior``: unbiased MMD²
    (RBF, h² = D) between one more z per image and as many prior draws. One
    generator seeded with ``seed`` gives all the samples, in that order.
    """
    g = torch.Generator().manual_seed(seed)
    terms = evaluate_elbo(model, x, batch_size=len(x), generator=g)
    z = model.encode(x).rsample(generator=g)
    prior = model.prior.sample(len(x), generator=g)
    return {"test_mse": ((model.reconstruct(x) - x) ** 2).mean().item(),
            "test_elbo": -terms["test_loss"],
            "test_log_likelihood": terms["test_log_likelihood"],
            "test_kl": terms["test_kl"],
            "test_mmd2_prior": mmd2(z, prior).item()}


@lru_cache(maxsize=1)
def _judge() -> ConvClassifier:
    """The shipped judge (seed 0), in eval mode: every run of every seed is judged by the same one."""
    model = shape_classifier()
    store.load_weights(NAMES["judge"], model)
    return model.eval()


@torch.no_grad()
def judged_metrics(model, judge, test: data.Dataset, *, tau: float = TAU,
                   n_samples: int = N_SAMPLES, seed: int = SAMPLE_SEED) -> dict:
    r"""What ``judge`` says of ``model``'s samples and of its reconstructions of ``test``, as counts.

    Samples: the decoder means :math:`E[x \mid z]` of ``n_samples`` draws
    :math:`z \sim \mathcal N(0, I)` from a generator seeded with ``seed``.
    ``samples_n``; ``samples_recognised_k``, those :func:`recognised` at
    ``tau``; ``samples_recognised_<class>_k``, those of them whose most
    probable shape class is ``<class>`` (they sum to ``samples_recognised_k``);
    ``samples_recognised_at_<t>_k``, recognised at the thresholds
    :data:`CURVE_ENDS` instead.

    Reconstructions of ``test.x`` at :math:`z = \mu(x)`: ``test_reconstructions_n``;
    ``test_reconstructions_recognised_k``, recognised at ``tau`` *as the class
    of the original*; ``test_reconstructions_<class>_n`` and
    ``test_reconstructions_recognised_<class>_k``, the same for the originals
    of each class; ``test_reconstructions_noncircle_n`` and
    ``test_reconstructions_noncircle_as_circle_k``, originals that are not
    circles and whose reconstruction's most probable judge output (of all
    four, no threshold) is "circle". Every value is an ``int``.
    """
    samples = model.sample(n_samples, generator=torch.Generator().manual_seed(seed))
    probs = class_probabilities(judge, samples)
    ok = recognised(probs, tau)
    by_class = torch.bincount(probs[ok, :NO_SHAPE].argmax(1), minlength=NO_SHAPE)
    metrics = {"samples_n": n_samples, "samples_recognised_k": int(ok.sum()),
               **{f"samples_recognised_{c}_k": int(k) for c, k in zip(data.SHAPE_CLASSES, by_class)},
               **{f"samples_recognised_at_{t:g}_k": int(recognised(probs, t).sum()) for t in CURVE_ENDS}}
    x, y = test.x, test.y
    probs = class_probabilities(judge, model.reconstruct(x))
    ok = recognised(probs, tau) & (probs[:, :NO_SHAPE].argmax(1) == y)
    metrics |= {"test_reconstructions_n": len(y), "test_reconstructions_recognised_k": int(ok.sum())}
    for i, c in enumerate(data.SHAPE_CLASSES):
        metrics |= {f"test_reconstructions_{c}_n": int((y == i).sum()),
                    f"test_reconstructions_recognised_{c}_k": int(ok[y == i].sum())}
    circle = data.SHAPE_CLASSES.index("circle")
    metrics |= {"test_reconstructions_noncircle_n": int((y != circle).sum()),
                "test_reconstructions_noncircle_as_circle_k":
                    int((probs[y != circle].argmax(1) == circle).sum())}
    return metrics


@torch.no_grad()
def _evaluate_autoencoder_recipe(model) -> dict:
    r"""The recorded metrics: :func:`evaluate_autoencoder`, the mean posterior σ, :func:`judged_metrics`.

    ``test_posterior_std_mean``: :math:`\sigma` of :math:`q(z \mid x)`,
    mean over the latent dimensions and the test images.
    """
    test = splits()[2]
    return {**evaluate_autoencoder(model, test.x),
            "test_posterior_std_mean": model.encode(test.x).logvar.mul(0.5).exp().mean().item(),
            **judged_metrics(model, _judge(), test)}


def _autoencoder_data():
    train, val, _ = splits()
    return train.x, val.x


def _autoencoder_recipe(loss, summary: str, noise_std: float | None = None) -> Recipe:
    return Recipe(build=partial(shapes_vae, noise_std=noise_std), loss=loss,
                  data=_autoencoder_data, epochs=EPOCHS,
                  evaluate=_evaluate_autoencoder_recipe,
                  summary=f"shapes 32×32 (10,000 binary images), MLP 1024-256-8, Bernoulli "
                          f"decoder, {summary}, {SETUP}, {EPOCHS} epochs")


_MMD = "InfoVAE loss alpha = 1, lambda = 1000 (MMD² weight 1000, no KL), RBF kernel h² = 8"
mmd_vae_loss = partial(info_vae_loss, alpha=1.0, lam=LAM)  # Equation (info-vae), MMD-VAE

RECIPES = {
    NAMES["judge"]: Recipe(
        build=shape_classifier, loss=classifier_loss, data=_judge_training_data,
        epochs=JUDGE_EPOCHS, evaluate=_evaluate_classifier,
        summary=f"shapes 32×32 (10,000 binary images + 10,000 blurred/dimmed + 5,000 "
                f"non-shapes), CNN conv8-conv16-64-4, cross-entropy, {SETUP}, "
                f"{JUDGE_EPOCHS} epochs"),
    NAMES["vae"]: _autoencoder_recipe(negative_elbo, "negative ELBO"),
    NAMES["mmd"]: _autoencoder_recipe(mmd_vae_loss, _MMD),
    NAMES["mmd-noise"]: _autoencoder_recipe(
        mmd_vae_loss, _MMD + ", encoder input noise std sqrt(5)/255", NOISE_STD_8BIT),
    NAMES["mmd-noise-unitscale"]: _autoencoder_recipe(
        mmd_vae_loss, _MMD + ", encoder input noise std sqrt(5)", NOISE_STD_UNIT),
}
