r"""The approximate posterior :math:`q(z \mid x)`: a diagonal Gaussian you can sample and score.

``encoder(x)`` returns ``(mu, logvar)``; :class:`Posterior` wraps the pair so
that drawing :math:`z` and computing :math:`\log q(z \mid x)` are written once,
here, and every bound, estimator and evaluation calls them. It is a
``NamedTuple``, so ``mu, logvar = model.encode(x)`` still unpacks it.

Reduction rule: ``log_prob`` and ``kl_to_std_normal`` return one value per
example, summed over the latent dimensions (the last one).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from vaecore.kl import kl_normal_std_normal
from vaecore.likelihoods import log_prob_normal
from vaecore.reparam import reparameterize

__all__ = ["Posterior"]


class Posterior(NamedTuple):
    r""":math:`q(z \mid x) = \mathcal N(\mu, \operatorname{diag} e^{\mathrm{logvar}})`: ``mu``, ``logvar``, each ``(B, D)``."""
    mu: torch.Tensor
    logvar: torch.Tensor

    def rsample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Reparameterised draws :math:`z = \mu + \sigma \odot \epsilon`, Equation (reparameterization).

        Returns ``(*sample_shape, B, D)``; gradients reach ``mu`` and ``logvar``.
        With ``sample_shape=(k,)`` the ``k`` draws of each example come from one
        ``randn`` call of shape ``(k, B, D)``.
        """
        shape = (*torch.Size(sample_shape), *self.mu.shape)
        return reparameterize(self.mu.expand(shape), self.logvar.expand(shape), generator=generator)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log q(z \mid x)` for ``z`` ``(..., B, D)``: ``(..., B)``, summed over the latent dimensions.

        Equation (log-prob-normal), with ``mu`` and ``logvar`` broadcast over
        the leading sample dimensions of ``z``.
        """
        dim = z.shape[-1]
        mu, logvar = (t.expand(z.shape).reshape(-1, dim) for t in self)
        return log_prob_normal(z.reshape(-1, dim), mu, logvar).view(z.shape[:-1])

    def kl_to_std_normal(self) -> torch.Tensor:
        r"""Closed-form :math:`\mathrm{KL}(q(z \mid x) \,\|\, \mathcal N(0, I))`, ``(B,)``, Equation (kl-std-normal)."""
        return kl_normal_std_normal(self.mu, self.logvar)
