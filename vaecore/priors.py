r"""Priors :math:`p(z)` over the latent space.

A prior exposes three methods, so the ELBO reads term by term and a learned
prior (a flow, a mixture) can replace this one without touching the VAE:

- ``log_prob(z) -> (B,)``: :math:`\log p(z)`, summed over latent dimensions;
- ``sample(n, generator=None) -> (n, D)``;
- ``kl(mu, logvar, z) -> (B,)``: :math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z))`
  in closed form (``z`` is ignored) where one exists; a prior without one
  exposes ``kl_mc(mu, logvar, z)`` instead, the single-sample Monte-Carlo
  estimate :math:`\log q(z \mid x) - \log p(z)` (see :class:`vaecore.flows.FlowPrior`
  and :func:`vaecore.elbo.kl_term`).

Reduction rule: per-example quantities have shape ``(B,)``, summed over the
latent dimensions; nothing here averages over the batch.
"""
from __future__ import annotations

import torch
from torch import nn

from vaecore._checks import check_positive_int, check_same_shape
from vaecore.kl import kl_normal_std_normal
from vaecore.likelihoods import log_prob_std_normal
from vaecore._checks import check_latent

__all__ = ["StdNormalPrior"]


class StdNormalPrior(nn.Module):
    r"""The standard normal prior :math:`p(z) = \mathcal N(z; 0, I_D)`.

    It has no parameters and an empty ``state_dict``. A non-persistent
    buffer ``origin`` (zeros, ``(D,)``) follows ``.to()`` / ``.double()``, so
    samples come out on the prior's device and in its dtype.
    """

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.register_buffer("origin", torch.zeros(latent_dim), persistent=False)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\log p(z) = -\frac12 \sum_j (\log 2\pi + z_j^2)`.

        Args:
            z: float, shape ``(B, D)``.

        Returns:
            ``(B,)``: summed over the latent dimensions (maximised).
        """
        return log_prob_std_normal(check_latent(z, self.latent_dim))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Draw ``n`` samples :math:`z \sim \mathcal N(0, I_D)`.

        Returns:
            ``(n, D)``, in the prior's dtype and on its device.
        """
        check_positive_int("n", n)
        eps = torch.randn(n, self.latent_dim, generator=generator,
                          dtype=self.origin.dtype, device=self.origin.device)
        return self.origin + eps

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, z=None) -> torch.Tensor:
        r"""Closed-form :math:`\mathrm{KL}(\mathcal N(\mu, \operatorname{diag}\sigma^2) \,\|\, \mathcal N(0, I))`.

        .. math::
            \mathrm{KL} = \frac12 \sum_j \big(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\big)

        Equation (kl-std-normal).

        Args:
            mu, logvar: posterior parameters, each ``(B, D)``.
            z: the posterior sample; ignored (the KL is exact), accepted so
                every prior has the same ``kl(mu, logvar, z)`` signature.

        Returns:
            ``(B,)``: summed over the latent dimensions; :math:`\ge 0`.
        """
        check_latent(mu, self.latent_dim, "mu")
        check_same_shape(mu=mu, logvar=logvar)
        return kl_normal_std_normal(mu, logvar)
