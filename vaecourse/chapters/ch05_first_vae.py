r"""Chapter 5 (``chapters/05_first_vae.ipynb``): training a VAE, and the choices that matter.

The course's reference model, :func:`mlp_vae` (the MLP VAE of the official
PyTorch example: 784-400-20, Bernoulli decoder, dynamically binarized MNIST,
Adam 1e-3, batch 128, 30 epochs), is defined here; chapters 6, 7 and 11
reuse it. Five 10-epoch models compare likelihoods, reductions and
networks at an equal training budget, all on the protocol of
:mod:`vaecourse.protocol`:

- ``mnist-mlp-bernoulli-z20-e10``: the baseline;
- ``mnist-mlp-bernoulli-pixelmean-z20-e10``: the reconstruction term
  *averaged* over the 784 pixels while the KL stays summed over the latent
  dimensions: an effective β of 784 (:func:`negative_elbo_pixel_mean`);
- ``mnist-mlp-normal-unitvar-z20-e10``: a Gaussian decoder with the
  variance fixed to 1 ("plain L2"), on grey levels in [0, 1];
- ``mnist-mlp-normal-learnedvar-z20-e10``: a Gaussian decoder with a
  learned per-pixel variance whose log-variance is bounded below
  (:class:`FlooredVarianceDecoder`), on grey levels in [0, 1];
- ``mnist-conv-bernoulli-z20-e10``: a convolutional encoder and decoder
  with about as many parameters as the MLP (658,169 against 652,824).

Every recipe records the test metrics of the plain negative ELBO (β = 1,
log-likelihood summed over pixels), whatever loss it was trained with.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaecore.conv import ConvDecoder, ConvEncoder
from vaecore.elbo import ELBOTerms, kl_term, negative_elbo
from vaecore.likelihoods import normal
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.seeding import local_seed
from vaecore.vae import VAE

from ..protocol import mnist_recipe
from ..recipe import checkpoint_name

__all__ = ["EPOCHS", "REFERENCE", "LOGVAR_FLOOR", "mlp_vae", "FlooredVarianceDecoder",
           "negative_elbo_pixel_mean", "normal_unitvar_vae", "normal_learnedvar_vae",
           "conv_vae", "RECIPES"]

EPOCHS = 10
LOGVAR_FLOOR = -2 * math.log(255)  # σ ≥ 1/255: one grey level of an 8-bit image
#: The course's reference model: MLP 784-400-20, Bernoulli, 30 epochs.
REFERENCE = checkpoint_name("mnist", "mlp", "bernoulli", z=20, epochs=30)


def mlp_vae(latent_dim: int = 20, hidden=(400,), seed: int = 0) -> VAE:
    """A freshly initialised (seeded) MLP VAE with a Bernoulli decoder for 1×28×28 images."""
    with local_seed(seed):
        return VAE(MLPEncoder((1, 28, 28), latent_dim, hidden=hidden),
                   MLPDecoder(latent_dim, (1, 28, 28), hidden=hidden))


def negative_elbo_pixel_mean(model, x: torch.Tensor,
                             generator: torch.Generator | None = None) -> ELBOTerms:
    r"""The "reduction pitfall": reconstruction averaged over pixels, KL summed over latents.

    .. math::
        \mathcal J_{\text{mean}} = \frac1B \sum_b \Big[-\frac1{D_x}\log p(x_b \mid z_b)
        + \mathrm{KL}\big(q(z \mid x_b) \,\|\, p(z)\big)\Big]
        = \frac1{D_x}\,\frac1B \sum_b \Big[-\log p(x_b \mid z_b) + D_x\,\mathrm{KL}_b\Big]

    Equation (pixel-mean-objective): the β-weighted loss with
    :math:`\beta = D_x` (784 for MNIST), divided by :math:`D_x`. This is what
    ``F.binary_cross_entropy_with_logits(x_logits, x)`` (default
    ``reduction="mean"``, over the batch *and* the pixels) plus a KL summed
    over latent dimensions and averaged over the batch computes.

    Returns:
        ``ELBOTerms(loss, log_likelihood, kl)``: ``loss`` the scalar above
        (minimised); ``log_likelihood`` = :math:`\log p(x \mid z)` ``(B,)``
        *summed* over pixels and ``kl`` ``(B,)``, so that the logged terms are
        those of the true ELBO.
    """
    out = model(x, generator=generator)
    # mean over batch and pixels
    bce_mean = F.binary_cross_entropy_with_logits(out.x_params, x)
    kl = kl_term(model.prior, out.mu, out.logvar, out.z)
    loss = bce_mean + kl.mean()
    log_likelihood = model.likelihood.log_prob(x, out.x_params).detach()
    return ELBOTerms(loss, log_likelihood, kl)


class FlooredVarianceDecoder(nn.Module):
    r"""A learned-variance decoder whose log-variance cannot fall below ``floor``.

    .. math::
        \log\sigma^2 = f + \operatorname{softplus}(\ell - f)

    Equation (logvar-floor), where :math:`\ell` is the raw log-variance of
    ``decoder`` and :math:`f` the floor: a smooth lower bound (about :math:`\ell` when :math:`\ell \gg f`).
    Without it the log-variance of pixels that are black in every image
    falls without limit and the log-density of those pixels grows without
    limit. Returns ``(mean, logvar)``, each ``(B, *out_shape)``.
    """

    def __init__(self, decoder: nn.Module, floor: float = LOGVAR_FLOOR):
        super().__init__()
        if not getattr(decoder, "learned_var", False):
            raise ValueError("decoder: expected a decoder built with learned_var=True")
        self.decoder = decoder
        self.floor = float(floor)
        self.latent_dim, self.out_shape = decoder.latent_dim, decoder.out_shape

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mean, logvar)`` with ``logvar >= floor`` (``>`` in exact arithmetic)."""
        mean, raw_logvar = self.decoder(z)
        return mean, self.floor + F.softplus(raw_logvar - self.floor)


def normal_unitvar_vae(latent_dim: int = 20, hidden=(400,), seed: int = 0) -> VAE:
    """MLP 784-400-20 whose decoder outputs the mean of N(x; mean, 1) (seeded)."""
    with local_seed(seed):
        return VAE(MLPEncoder((1, 28, 28), latent_dim, hidden=hidden),
                   MLPDecoder(latent_dim, (1, 28, 28), hidden=hidden), likelihood=normal(0.0))


def normal_learnedvar_vae(latent_dim: int = 20, hidden=(400,), seed: int = 0,
                          floor: float = LOGVAR_FLOOR) -> VAE:
    """MLP 784-400-20 whose decoder outputs (mean, floored logvar) of a Gaussian (seeded)."""
    with local_seed(seed):
        encoder = MLPEncoder((1, 28, 28), latent_dim, hidden=hidden)
        decoder = MLPDecoder(latent_dim, (1, 28, 28), hidden=hidden, learned_var=True)
        return VAE(encoder, FlooredVarianceDecoder(decoder, floor), likelihood=normal())


def conv_vae(latent_dim: int = 20, channels=(16, 32), hidden: int = 200, seed: int = 0) -> VAE:
    """Conv encoder and decoder (channels 16, 32; hidden 200) with a Bernoulli decoder (seeded)."""
    with local_seed(seed):
        return VAE(ConvEncoder((1, 28, 28), latent_dim, channels=channels, hidden=hidden),
                   ConvDecoder(latent_dim, (1, 28, 28), channels=channels[::-1], hidden=hidden))


_COMMON = f"Adam 1e-3, batch 128, {EPOCHS} epochs"
_BIN = "MNIST (dynamically binarized; 55,000 training images, a random 5,000 held out, seed 0)"
_GREY = "MNIST (grey levels in [0, 1]; 55,000 training images, a random 5,000 held out, seed 0)"


def _name(kind: str, *variants: str, net: str = "mlp", epochs: int = EPOCHS) -> str:
    return checkpoint_name("mnist", net, kind, *variants, z=20, epochs=epochs)


RECIPES = {
    REFERENCE: mnist_recipe(
        mlp_vae, epochs=30,
        summary=f"{_BIN}, MLP 784-400-20, Bernoulli decoder, negative ELBO, Adam 1e-3, "
                "batch 128, 30 epochs"),
    _name("bernoulli"): mnist_recipe(
        mlp_vae, epochs=EPOCHS,
        summary=f"{_BIN}, MLP 784-400-20, Bernoulli decoder, negative ELBO, {_COMMON}"),
    _name("bernoulli", "pixelmean"): mnist_recipe(
        mlp_vae, epochs=EPOCHS, loss=negative_elbo_pixel_mean, eval_loss=negative_elbo,
        summary=f"{_BIN}, MLP 784-400-20, Bernoulli decoder, reconstruction averaged over "
                f"pixels + summed KL (effective beta 784), {_COMMON}"),
    _name("normal-unitvar"): mnist_recipe(
        normal_unitvar_vae, epochs=EPOCHS, binarize=False,
        summary=f"{_GREY}, MLP 784-400-20, Gaussian decoder with variance 1, negative ELBO, "
                f"{_COMMON}"),
    _name("normal-learnedvar"): mnist_recipe(
        normal_learnedvar_vae, epochs=EPOCHS, binarize=False,
        summary=f"{_GREY}, MLP 784-400-20, Gaussian decoder with learned per-pixel variance "
                f"(log-variance >= -2 log 255), negative ELBO, {_COMMON}"),
    _name("bernoulli", net="conv"): mnist_recipe(
        conv_vae, epochs=EPOCHS,
        summary=f"{_BIN}, conv encoder/decoder (16, 32 channels, hidden 200, 658k "
                f"parameters), Bernoulli decoder, negative ELBO, {_COMMON}"),
}
