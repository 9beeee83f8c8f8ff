r"""Recipes of chapter 10 (MMD-VAE against VAE on shapes): a judge and four autoencoders.

Data: :func:`vaecore.data.shapes` at 32×32 pixels without pixel noise, so the
images are binary and the Bernoulli likelihood is a proper one. Training
set: 10,000 images (seed 0, the size report 002 used); validation 1,000
(seed 1); test 2,000 (seed 2). Every model is trained with ``fit``:
Adam 1e-3, batch 128.

- ``shapes-classifier``, the *judge* of generated images, lives in
  :mod:`vaecore.recipes.shapes_judge` with the data splits; its helpers are
  re-exported here for the chapter.
- ``shapes-mlp-vae``: MLP 1024-256-8, Bernoulli decoder, negative ELBO
  (the InfoVAE objective with :math:`\alpha = 0, \lambda = 1`), 50 epochs.
- ``shapes-mlp-mmd``: the same network, :func:`vaecore.mmd.info_vae_loss`
  with :math:`\alpha = 1, \lambda = 1000` (no KL term, MMD weight 1000),
  RBF kernel with :math:`h^2 = D = 8`, 50 epochs.
- ``shapes-mlp-mmd-noise`` and ``shapes-mlp-mmd-noise-unitscale``: the
  MMD-VAE with report 002's Gaussian noise of variance 5 added to the
  encoder's input during training (:class:`InputNoise`), read on an 8-bit
  pixel scale (:math:`\sigma = \sqrt5/255`) and on the ``[0, 1]`` scale
  (:math:`\sigma = \sqrt5`).
"""
from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from ..elbo import negative_elbo
from ..mlp import MLPDecoder, MLPEncoder
from ..mmd import info_vae_loss, mmd2
from ..train import fit
from ..vae import VAE
from ..zoo import Recipe
from .shapes_judge import (JUDGE_CLASSES, SETUP, SIZE, ShapeClassifier,
                           blur, class_probabilities, classifier_loss, degraded_shapes,
                           judge_data, non_shapes, recognised, splits)

__all__ = ["SIZE", "LATENT_DIM", "HIDDEN", "LAM", "EPOCHS", "NOISE_STD_8BIT",
           "NOISE_STD_UNIT", "JUDGE_CLASSES", "splits", "ShapeClassifier", "blur",
           "degraded_shapes", "non_shapes", "judge_data",
           "classifier_loss", "class_probabilities", "recognised", "InputNoise",
           "shapes_vae", "mmd_vae_loss", "evaluate_autoencoder", "RECIPES"]

LATENT_DIM, HIDDEN = 8, (256,)
LAM = 1000.0  # InfoVAE lambda of the MMD-VAE (alpha = 1): the MMD² weight alpha + lam - 1
EPOCHS = 50
NOISE_STD_8BIT = math.sqrt(5) / 255  # variance 5 in grey levels 0..255, on the [0, 1] scale
NOISE_STD_UNIT = math.sqrt(5)  # variance 5 taken on the [0, 1] scale itself


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
    torch.manual_seed(seed)
    encoder = MLPEncoder((1, SIZE, SIZE), latent_dim, hidden=hidden)
    if noise_std is not None:
        encoder = InputNoise(encoder, noise_std)
    return VAE(encoder, MLPDecoder(latent_dim, (1, SIZE, SIZE), hidden=hidden))


@torch.no_grad()
def evaluate_autoencoder(model, x: torch.Tensor, seed: int = 2) -> dict:
    r"""Test metrics of a shapes autoencoder on ``x``, in nats per image unless stated.

    ``test_mse``: squared error of the reconstruction at :math:`z = \mu(x)`,
    mean over pixels and images; ``test_elbo``, ``test_reconstruction``,
    ``test_kl``: the ELBO and its terms, one sample of z per image;
    ``test_mmd2_prior``: unbiased MMD² (RBF, h² = D) between one z per image
    and as many prior draws. Fixed generator ``seed``.
    """
    model.eval()
    g = torch.Generator().manual_seed(seed)
    terms = negative_elbo(model, x, generator=g)
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g)
    prior = model.prior.sample(len(x), generator=g)
    return {"test_mse": ((model.reconstruct(x) - x) ** 2).mean().item(),
            "test_elbo": -terms.loss.item(),
            "test_reconstruction": terms.reconstruction.mean().item(),
            "test_kl": terms.kl.mean().item(),
            "test_mmd2_prior": mmd2(z, prior).item()}


def _autoencoder_recipe(loss_fn, summary: str, noise_std: float | None = None) -> Recipe:
    def train(model, checkpoint=None, history=None):
        train_set, val, _ = splits()
        remaining = EPOCHS - (len(history) if history else 0)
        return fit(model, loss_fn, train_set.x, val=val.x, epochs=max(remaining, 1), seed=0,
                   checkpoint=checkpoint, history=history)

    return Recipe(build=partial(shapes_vae, noise_std=noise_std), train=train,
                  evaluate=lambda model: evaluate_autoencoder(model, splits()[2].x),
                  summary=f"shapes 32×32 (10,000 binary images), MLP 1024-256-8, Bernoulli "
                          f"decoder, {summary}, {SETUP}, {EPOCHS} epochs")


_MMD = "InfoVAE loss alpha = 1, lambda = 1000 (MMD² weight 1000, no KL), RBF kernel h² = 8"
mmd_vae_loss = partial(info_vae_loss, alpha=1.0, lam=LAM)  # Equation (info-vae), MMD-VAE

RECIPES = {
    "shapes-mlp-vae": _autoencoder_recipe(negative_elbo, "negative ELBO"),
    "shapes-mlp-mmd": _autoencoder_recipe(mmd_vae_loss, _MMD),
    "shapes-mlp-mmd-noise": _autoencoder_recipe(
        mmd_vae_loss, _MMD + ", encoder input noise std sqrt(5)/255", NOISE_STD_8BIT),
    "shapes-mlp-mmd-noise-unitscale": _autoencoder_recipe(
        mmd_vae_loss, _MMD + ", encoder input noise std sqrt(5)", NOISE_STD_UNIT),
}
