r"""Diffusion in a space: pixels, or the latents of a frozen KL-regularised autoencoder.

Latent diffusion (Rombach et al., 2022) trains a denoising diffusion model
(:mod:`vaecore.diffusion`) not on images but on :math:`y = s\,(z - m)` with
:math:`z \sim q(z \mid x)` from a frozen autoencoder (:class:`vaecore.kl_autoencoder.KLAutoencoder`)
and a *scale factor* :math:`s` measured once so that the latents have unit variance
(:func:`vaecore.diffusion.latent_scale`; :math:`m = 0` there). A sample is drawn in that
space by the reverse chain and decoded: :math:`x = \mathrm{dec}(y / s + m)`.

:class:`SpaceDiffusion` holds the denoiser, the schedule, the optional autoencoder and
the affine map (``scale`` and ``shift``, saved with the weights as buffers). Without an
autoencoder the space is the pixels themselves, mapped from [0, 1] to [-1, 1] by
``shift`` = 0.5 and ``scale`` = 2 as in Ho et al. (2020).

Reduction rule: :func:`diffusion_loss` returns the batch mean as ``loss`` and the
per-example squared error of the predicted noise, summed over the space's dimensions,
``(B,)``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ._checks import check_tensor
from .diffusion import Schedule, noise_prediction_loss, sample
from .kl_autoencoder import KLAutoencoder

__all__ = ["SpaceDiffusion", "DiffusionTerms", "diffusion_loss"]


class SpaceDiffusion(nn.Module):
    """A denoiser over ``space_shape`` ``(C, H, W)`` and how images map into that space.

    ``autoencoder``: a :class:`KLAutoencoder` whose latents are the space (it is kept in
    evaluation mode and receives no gradient), or None for pixel space. ``scale`` and
    ``shift``: the space is ``(z - shift) * scale``.
    """

    def __init__(self, denoiser: nn.Module, schedule: Schedule, space_shape: tuple[int, ...],
                 autoencoder: KLAutoencoder | None = None, scale: float = 1.0,
                 shift: float = 0.0):
        super().__init__()
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule: expected a vaecore.diffusion.Schedule, got "
                             f"{type(schedule).__name__}")
        if len(space_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in space_shape):
            raise ValueError(f"space_shape: expected (C, H, W) of positive ints, got "
                             f"{space_shape!r}")
        if autoencoder is not None:
            if not isinstance(autoencoder, KLAutoencoder):
                raise ValueError(f"autoencoder: expected a KLAutoencoder or None, got "
                                 f"{type(autoencoder).__name__}")
            if autoencoder.latent_channels != space_shape[0]:
                raise ValueError(f"the autoencoder has {autoencoder.latent_channels} latent "
                                 f"channels, the space {space_shape[0]}")
            autoencoder.requires_grad_(False)
            autoencoder.eval()
        if not math.isfinite(shift):
            raise ValueError(f"shift must be a finite number, got {shift!r}")
        self.denoiser, self.schedule = denoiser, schedule
        self.space_shape = tuple(space_shape)
        self.autoencoder = autoencoder
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))
        self.set_scale(float(scale))

    def set_scale(self, scale: float) -> None:
        """Set the scale factor (a finite positive number)."""
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        self.scale.fill_(scale)

    def train(self, mode: bool = True) -> "SpaceDiffusion":
        """Set the denoiser's mode; the autoencoder, frozen, stays in evaluation mode."""
        super().train(mode)
        if self.autoencoder is not None:
            self.autoencoder.eval()
        return self

    @torch.no_grad()
    def latents(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Unscaled: :math:`z \sim q(z \mid x)` (the images themselves in pixel space)."""
        check_tensor("x", x, ndim=4)
        if self.autoencoder is None:
            return x
        return self.autoencoder.encode(x).rsample(generator=generator)

    @torch.no_grad()
    def to_space(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] → points of the space, ``(B, *space_shape)``."""
        y = (self.latents(x, generator) - self.shift) * self.scale
        if tuple(y.shape[1:]) != self.space_shape:
            raise ValueError(f"images of shape {tuple(x.shape[1:])} map to "
                             f"{tuple(y.shape[1:])}, not the space {self.space_shape}")
        return y

    @torch.no_grad()
    def from_space(self, y: torch.Tensor) -> torch.Tensor:
        """Points of the space → images (the decoder's output; unclamped)."""
        z = y / self.scale + self.shift
        return z if self.autoencoder is None else self.autoencoder.decode(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               steps: int | None = None, clip: tuple[float, float] | None = None
               ) -> torch.Tensor:
        """``n`` images by ancestral sampling in the space and decoding; ``steps``: sample
        with that many evenly spread steps (:meth:`Schedule.respaced`) instead of all;
        ``clip``: the range, in the space, to which each step's estimate of :math:`x_0` is
        clamped (:func:`vaecore.diffusion.sample`; ``(-1, 1)`` for pixels)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        schedule = self.schedule if steps is None else self.schedule.respaced(steps)
        y = sample(self.denoiser, schedule, (n, *self.space_shape), generator=generator,
                   dtype=self.scale.dtype, device=self.scale.device, clip=clip)
        return self.from_space(y)


class DiffusionTerms(NamedTuple):
    """``loss`` (scalar); ``noise_error``: the squared error of the predicted noise per
    example, ``(B,)``."""
    loss: torch.Tensor
    noise_error: torch.Tensor


def diffusion_loss(model: SpaceDiffusion, x: torch.Tensor,
                   generator: torch.Generator | None = None) -> DiffusionTerms:
    """Ho et al.'s simplified loss, Equation (ldm-loss), in ``model``'s space (a ``fit``
    loss): the images ``x`` ``(B, C, H, W)`` are mapped to the space (with a fresh latent
    draw each time), a step and noise are drawn for each. Returns :class:`DiffusionTerms`:
    ``loss``, the batch mean, and ``noise_error`` ``(B,)``."""
    y = model.to_space(x, generator)
    error = noise_prediction_loss(model.denoiser, model.schedule, y, generator=generator)
    return DiffusionTerms(error.mean(), error)
