r"""A normalizing-flow prior :math:`p(z)`: RealNVP affine coupling layers.

An invertible map :math:`f` sends a latent :math:`z` to base noise
:math:`\epsilon = f(z) \sim \mathcal N(0, I_D)`; the change of variables gives

.. math::
    \log p(z) = \log \mathcal N\big(f(z); 0, I_D\big)
    + \log \Big|\det \frac{\partial f}{\partial z}\Big|.

Equation (flow-density), derived from the pushforward of the base
density through a Dirac delta, Equation (flow-pushforward).

:math:`f = f_L \circ \dots \circ f_1` is a stack of affine coupling layers
(Dinh et al., 2017, Density estimation using Real NVP). With a binary mask
:math:`m` (1 = kept), layer :math:`\ell` computes

.. math::
    y = m \odot z + (1 - m) \odot \big(z \odot e^{s(m \odot z)} + t(m \odot z)\big),
    \qquad \log \Big|\det \frac{\partial y}{\partial z}\Big| = \sum_j (1 - m_j)\, s_j(m \odot z),

with the exact inverse :math:`z = (y - t) \odot e^{-s}` on the free dimensions
(:math:`m \odot y = m \odot z`). The Jacobian is triangular, so its log-determinant
is a sum. Masks alternate between layers; :math:`s = \tanh(\cdot)` is bounded.

:class:`FlowPrior` has the prior's ``log_prob`` and ``sample`` (see :mod:`vaecore.priors`);
its KL has no closed form, so it exposes the Monte-Carlo estimate ``kl_mc``.
Reduction rule: per-example quantities have shape ``(B,)``, summed over the
latent dimensions; nothing here averages over the batch.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from torch import nn

from vaecore._checks import check_latent, check_positive_int, check_same_shape
from vaecore.likelihoods import log_prob_std_normal
from vaecore.posterior import Posterior

__all__ = ["Transformed", "AffineCoupling", "FlowPrior"]


class Transformed(NamedTuple):
    """The transformed tensor ``out`` ``(B, D)`` and ``log_det`` ``(B,)``, the log |Jacobian determinant|."""
    out: torch.Tensor
    log_det: torch.Tensor


class AffineCoupling(nn.Module):
    r"""One affine coupling layer with a fixed binary ``mask`` ``(D,)`` (1 = passed through).

    ``net`` maps :math:`m \odot z` to the log-scale :math:`s` and the shift
    :math:`t`; its last layer starts at zero, so the layer starts as the identity.
    """

    def __init__(self, mask: torch.Tensor, hidden: int):
        super().__init__()
        dim = mask.numel()
        self.register_buffer("mask", mask.float(), persistent=False)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(s, t)``, each ``(B, D)``, zero on the kept dimensions; ``s`` in (-1, 1)."""
        s, t = self.net(kept).chunk(2, dim=-1)
        free = 1 - self.mask
        return torch.tanh(s) * free, t * free

    def forward(self, z: torch.Tensor) -> Transformed:
        r"""Return :math:`y = m \odot z + (1-m) \odot (z \odot e^{s} + t)` and :math:`\sum_j s_j`, ``(B,)``."""
        s, t = self._scale_shift(self.mask * z)
        return Transformed(z * torch.exp(s) + t, s.sum(-1))

    def inverse(self, y: torch.Tensor) -> Transformed:
        r"""Exact inverse: :math:`z = (y - t) \odot e^{-s}` on the free dimensions; log-det :math:`-\sum_j s_j`."""
        s, t = self._scale_shift(self.mask * y)
        return Transformed((y - t) * torch.exp(-s), -s.sum(-1))


class FlowPrior(nn.Module):
    r"""A learned prior :math:`p(z)`: :math:`\mathcal N(0, I_D)` pushed through the inverse of a flow.

    ``f`` (:meth:`forward`) maps :math:`z` to :math:`\epsilon`; :meth:`sample`
    runs :math:`f^{-1}` (:meth:`inverse`) on :math:`\epsilon \sim \mathcal N(0, I_D)`.
    At initialisation every layer is the identity, so the prior equals the
    standard normal. ``latent_dim >= 2`` (a coupling layer needs a dimension
    to keep and one to transform), else ``ValueError``.
    """

    def __init__(self, latent_dim: int, n_layers: int = 4, hidden: int = 64):
        super().__init__()
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 2:
            raise ValueError(f"latent_dim: expected an integer >= 2, got {latent_dim!r}")
        self.latent_dim = latent_dim
        hidden, n_layers = check_positive_int("hidden", hidden), check_positive_int("n_layers", n_layers)
        j = torch.arange(latent_dim)  # layer k keeps the dimensions j with j + k even
        self.layers = nn.ModuleList(AffineCoupling((j + k) % 2 == 0, hidden) for k in range(n_layers))

    def forward(self, z: torch.Tensor) -> Transformed:
        r"""Return :math:`\epsilon = f(z)` ``(B, D)`` and :math:`\log|\det \partial f / \partial z|` ``(B,)``."""
        out, log_det = check_latent(z, self.latent_dim), 0.0
        for layer in self.layers:
            out, step = layer(out)
            log_det = log_det + step
        return Transformed(out, log_det)

    def inverse(self, eps: torch.Tensor) -> Transformed:
        r"""Return :math:`z = f^{-1}(\epsilon)` ``(B, D)`` and :math:`\log|\det \partial f^{-1} / \partial \epsilon|` ``(B,)``."""
        out, log_det = check_latent(eps, self.latent_dim, "eps"), 0.0
        for layer in reversed(self.layers):
            out, step = layer.inverse(out)
            log_det = log_det + step
        return Transformed(out, log_det)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\log p(z) = \log \mathcal N(f(z); 0, I) + \log|\det \partial f / \partial z|`.

        Args:
            z: float, shape ``(B, D)``.

        Returns:
            ``(B,)``: summed over the latent dimensions (maximised).
        """
        eps, log_det = self(z)
        return log_prob_std_normal(eps) + log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Draw ``n`` samples :math:`z = f^{-1}(\epsilon)`, :math:`\epsilon \sim \mathcal N(0, I_D)`.

        Returns:
            ``(n, D)``, in the flow's dtype and on its device.
        """
        mask = self.layers[0].mask
        eps = torch.randn(check_positive_int("n", n), self.latent_dim, generator=generator,
                          dtype=mask.dtype, device=mask.device)
        return self.inverse(eps).out

    def kl_mc(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""Single-sample Monte-Carlo estimate of :math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z))`.

        .. math::
            \widehat{\mathrm{KL}} = \log q(z \mid x) - \log p(z),
            \qquad z = \mu + \sigma \odot \epsilon \sim q(z \mid x)

        No closed form exists for a flow prior: the ELBO becomes Equation
        (flow-elbo), every term estimated at the same sample. The estimate is unbiased
        (its mean over :math:`z \sim q` is the KL) but one draw may be
        negative. Since :math:`\mathrm{ELBO} = \mathbb E_q[\log p(x \mid z)
        + \log p(z) - \log q(z \mid x)]`, the ELBO computed with it is still
        an unbiased estimate of a valid lower bound on :math:`\log p(x)`.

        Args:
            mu, logvar: posterior parameters, each ``(B, D)``.
            z: the reparameterised sample from :math:`q(z \mid x)`, ``(B, D)``.

        Returns:
            ``(B,)``: summed over the latent dimensions; differentiable in all inputs.
        """
        check_latent(mu, self.latent_dim, "mu")
        check_latent(z, self.latent_dim, "z")
        check_same_shape(mu=mu, logvar=logvar, z=z)
        # $\widehat{\mathrm{KL}} = \log q(z \mid x) - \log p(z)$
        return Posterior(mu, logvar).log_prob(z) - self.log_prob(z)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Deprecated alias of :meth:`kl_mc` (a Monte-Carlo estimate, not a closed form)."""
        warnings.warn("FlowPrior.kl is deprecated: use FlowPrior.kl_mc (a one-sample Monte-Carlo "
                      "estimate)", DeprecationWarning, stacklevel=2)
        return self.kl_mc(mu, logvar, z)
