"""Fully connected encoder and decoder: the networks of the first VAE chapters.

The encoder maps an image ``x`` of shape ``(B, *in_shape)`` to the parameters
``(mu, logvar)`` of a diagonal Gaussian q(z|x), each ``(B, latent_dim)``. The
decoder maps ``z`` of shape ``(B, latent_dim)`` to the parameters of p(x|z):
logits (Bernoulli) or a mean (fixed-variance Gaussian) of shape
``(B, *out_shape)``, or a tuple ``(mean, logvar)`` when ``learned_var=True``.
Decoders return logits or distribution parameters, never clamped
probabilities.

The official PyTorch example VAE is
``MLPEncoder((1, 28, 28), 20, hidden=(400,))`` with
``MLPDecoder(20, (1, 28, 28), hidden=(400,))``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from vaecore._checks import check_event_shape, check_latent, check_positive_int

__all__ = ["MLPEncoder", "MLPDecoder"]


def _hidden_layers(sizes: list[int], dropout: float, activation) -> nn.Sequential:
    """Linear → activation → dropout for each consecutive pair in ``sizes``."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """x ``(B, *in_shape)`` → ``(mu, logvar)``, each ``(B, latent_dim)``.

    ``body`` flattens ``x`` and applies ``Linear → activation → Dropout`` for
    each size in ``hidden`` (``hidden=()`` gives a linear encoder); the heads
    ``to_mu`` and ``to_logvar`` are linear. ``logvar`` is unconstrained, so the
    posterior variance is ``exp(logvar) > 0``.
    """

    def __init__(self, in_shape, latent_dim: int, hidden=(400,), dropout: float = 0.0,
                 activation=nn.ReLU):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.latent_dim = latent_dim = check_positive_int("latent_dim", latent_dim)
        sizes = [math.prod(self.in_shape), *hidden]
        self.body = nn.Sequential(nn.Flatten(), *_hidden_layers(sizes, dropout, activation))
        self.to_mu = nn.Linear(sizes[-1], latent_dim)
        self.to_logvar = nn.Linear(sizes[-1], latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each ``(B, latent_dim)``."""
        h = self.body(check_event_shape("x", x, self.in_shape, self.to_mu.weight.dtype))
        return self.to_mu(h), self.to_logvar(h)


class MLPDecoder(nn.Module):
    """z ``(B, latent_dim)`` → parameters of p(x|z), shaped ``(B, *out_shape)``.

    ``body`` applies ``Linear → activation → Dropout`` for each size in
    ``hidden``; ``to_x`` gives logits (Bernoulli likelihood) or the mean
    (Gaussian likelihood), unclamped. With ``learned_var=True`` a second head
    ``to_logvar`` gives a per-pixel log-variance and the decoder returns the
    tuple ``(mean, logvar)``, as ``likelihoods.normal()`` expects.
    """

    def __init__(self, latent_dim: int, out_shape, hidden=(400,), dropout: float = 0.0,
                 learned_var: bool = False, activation=nn.ReLU):
        super().__init__()
        self.latent_dim = latent_dim = check_positive_int("latent_dim", latent_dim)
        self.out_shape = tuple(out_shape)
        self.learned_var = learned_var
        sizes = [latent_dim, *hidden]
        n_out = math.prod(self.out_shape)
        self.body = _hidden_layers(sizes, dropout, activation)
        self.to_x = nn.Sequential(nn.Linear(sizes[-1], n_out), nn.Unflatten(1, self.out_shape))
        self.to_logvar = (nn.Sequential(nn.Linear(sizes[-1], n_out),
                                        nn.Unflatten(1, self.out_shape))
                          if learned_var else None)

    def forward(self, z: torch.Tensor):
        """Return x_logits (or the mean) ``(B, *out_shape)``; ``(mean, logvar)`` if learned_var."""
        h = self.body(check_latent(z, self.latent_dim, dtype=self.to_x[0].weight.dtype))
        if self.to_logvar is None:
            return self.to_x(h)
        return self.to_x(h), self.to_logvar(h)
