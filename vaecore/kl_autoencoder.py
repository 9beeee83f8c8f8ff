r"""The KL-regularised autoencoder of latent diffusion (Rombach et al., 2022), small.

A convolutional encoder halves the image's height and width twice (a factor 4) and
outputs, at every position of the smaller grid, the mean and log-variance of a Gaussian
over a few latent channels: :math:`q(z \mid x) = \mathcal N(\mu(x), \operatorname{diag}
\sigma^2(x))` with :math:`z` of shape ``(B, latent_channels, H/4, W/4)``. A mirrored
decoder maps :math:`z` back to an image. The objective (:func:`kl_autoencoder_loss`) is a
reconstruction error plus a weighted KL to :math:`\mathcal N(0, I)`:

.. math::
    L(x) = \lVert x - \mathrm{dec}(z) \rVert^2_2
        + \text{kl\_weight}\; \mathrm{KL}\bigl(q(z \mid x) \,\|\, \mathcal N(0, I)\bigr),
    \qquad z \sim q(z \mid x).

With ``kl_weight`` = 1 and the squared error read as a Gaussian log-likelihood of
variance 1/2, this is a VAE's negative ELBO up to a constant; latent diffusion uses a
weight near :math:`10^{-6}`, which makes it an autoencoder whose latents are only kept
from growing without bound (the reconstruction loss there is also perceptual and
adversarial, which this course does not use). The rate, the KL in nats per image, is
recorded with the loss; :func:`psnr` measures reconstructions.

Reduction rule: ``reconstruction`` and ``kl`` are ``(B,)``, summed over pixels and latent
positions; ``loss`` is their batch mean, as for :func:`vaecore.elbo.negative_elbo`.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple

import torch
from torch import nn

from ._checks import check_positive_int, check_tensor
from .kl import kl_normal_std_normal
from .posterior import Posterior

__all__ = ["KLAutoencoder", "KLAETerms", "kl_autoencoder_loss", "psnr"]


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.GroupNorm(
        min(8, c_out), c_out), nn.SiLU())


class KLAutoencoder(nn.Module):
    """Images ``(B, channels, H, W)`` (H and W divisible by 4) ↔ latents
    ``(B, latent_channels, H/4, W/4)``; ``width`` is the first stage's number of channels
    (the second has twice as many)."""

    def __init__(self, channels: int = 1, latent_channels: int = 4, width: int = 32):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.latent_channels = check_positive_int("latent_channels", latent_channels)
        width = check_positive_int("width", width)
        self.encoder = nn.Sequential(_block(channels, width, 1), _block(width, width, 2),
                                     _block(width, 2 * width, 2))
        self.to_moments = nn.Conv2d(2 * width, 2 * latent_channels, 1)
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, 2 * width, 3, padding=1), nn.SiLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), _block(2 * width, width, 1),
            nn.Upsample(scale_factor=2, mode="nearest"), _block(width, width, 1),
            nn.Conv2d(width, channels, 3, padding=1))

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=4)
        if x.shape[1] != self.channels or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"expected images (B, {self.channels}, H, W) with H and W "
                             f"divisible by 4, got {tuple(x.shape)}")
        return x

    def encode(self, x: torch.Tensor) -> Posterior:
        """:math:`q(z \\mid x)`: mean and log-variance, each ``(B, latent_channels, H/4, W/4)``."""
        mu, logvar = self.to_moments(self.encoder(self._check(x))).chunk(2, dim=1)
        return Posterior(mu, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstructed image (unbounded values; the data's scale is the caller's)."""
        check_tensor("z", z, ndim=4)
        return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``decode`` of the posterior mean."""
        return self.decode(self.encode(x).mu)


class KLAETerms(NamedTuple):
    """``loss`` (scalar); ``reconstruction``: squared error per image ``(B,)``; ``kl``:
    the rate in nats per image ``(B,)``."""
    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def kl_autoencoder_loss(model: KLAutoencoder, x: torch.Tensor, *, kl_weight: float,
                        generator: torch.Generator | None = None) -> KLAETerms:
    """Squared error of one reconstruction from :math:`z \\sim q(z \\mid x)` plus
    ``kl_weight`` times the KL to the standard normal, Equation (klae-loss); a ``fit`` loss
    (bind ``kl_weight`` with ``functools.partial``)."""
    if isinstance(kl_weight, bool) or not isinstance(kl_weight, Real) or not (
            math.isfinite(kl_weight) and kl_weight >= 0):
        raise ValueError(f"kl_weight must be a finite number >= 0, got {kl_weight!r}")
    posterior = model.encode(x)
    z = posterior.rsample(generator=generator)
    reconstruction = (model.decode(z) - x).pow(2).flatten(1).sum(1)
    kl = kl_normal_std_normal(posterior.mu, posterior.logvar)
    return KLAETerms((reconstruction + kl_weight * kl).mean(), reconstruction, kl)


def psnr(x: torch.Tensor, reconstruction: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, ``(B,)``:
    :math:`10 \\log_{10}(\\text{peak}^2 / \\mathrm{MSE})` (infinite for a perfect copy)."""
    check_tensor("x", x, min_dim=2)
    if reconstruction.shape != x.shape:
        raise ValueError(f"reconstruction has shape {tuple(reconstruction.shape)}, "
                         f"x {tuple(x.shape)}")
    mse = (x - reconstruction).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(peak ** 2 / mse)
