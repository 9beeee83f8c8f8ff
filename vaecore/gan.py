r"""Generative adversarial networks: the two losses and small MLP networks.

A generator :math:`G` maps noise :math:`z \sim \mathcal N(0, I)` to images; a
discriminator :math:`D` outputs the logit :math:`\ell` of "x is real", with
:math:`D(x) = \sigma(\ell)`. The losses are per example, shape ``(B,)``;
the alternating training loop, where two optimisers take turns, is not here.

Reduction rule: per-example quantities have shape ``(B,)``; nothing here
averages over the batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaecore._checks import check_positive_int

__all__ = ["discriminator_loss", "generator_loss_minimax", "generator_loss_nonsaturating",
           "Generator", "Discriminator", "GAN"]


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_label: float = 1.0) -> torch.Tensor:
    r"""Per-example discriminator loss ``(B,)``: :math:`-\log D(x) - \log(1 - D(G(z)))`.

    Binary cross-entropy from logits (``D = sigmoid(logit)``), target
    ``real_label`` for the real image (1, or 0.9 with one-sided label
    smoothing) and 0 for the fake one. Equation (gan-d-loss).
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label),
                                              reduction="none")
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits),
                                              reduction="none")
    return real + fake


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Per-example minimax generator loss ``(B,)``: :math:`\log(1 - D(G(z))) = -\mathrm{softplus}(\ell)`."""
    return -F.softplus(fake_logits)


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Per-example non-saturating generator loss ``(B,)``: :math:`-\log D(G(z)) = \mathrm{softplus}(-\ell)`."""
    return F.softplus(-fake_logits)


class Generator(nn.Module):
    """z ``(B, latent_dim)`` → images ``(B, *out_shape)`` in ``(0, 1)``.

    An MLP ``latent_dim → hidden... → prod(out_shape)`` with ``BatchNorm1d``
    after each hidden linear layer (without it a small MLP GAN collapses:
    the discriminator wins within a few epochs), ReLU, then a sigmoid.
    """

    def __init__(self, latent_dim: int, hidden=(128, 256), out_shape=(1, 32, 32)):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.out_shape = tuple(out_shape)
        sizes, layers = [latent_dim, *hidden], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], math.prod(self.out_shape)),
                                 nn.Unflatten(1, self.out_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


class Discriminator(nn.Module):
    """x ``(B, *in_shape)`` → logit ``(B,)`` of "x is real"; an MLP with LeakyReLU(0.2) hidden layers."""

    def __init__(self, hidden=(256, 128), in_shape=(1, 32, 32)):
        super().__init__()
        sizes, layers = [math.prod(in_shape), *hidden], [nn.Flatten()]
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class GAN(nn.Module):
    """A generator and a discriminator in one module (one ``state_dict``, one checkpoint)."""

    def __init__(self, generator: Generator, discriminator: Discriminator):
        super().__init__()
        self.latent_dim = generator.latent_dim
        self.generator, self.discriminator = generator, discriminator

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``n`` images ``(n, *out_shape)`` from :math:`z \sim \mathcal N(0, I)`."""
        return self.generator(torch.randn(check_positive_int("n", n), self.latent_dim,
                                          generator=generator))
