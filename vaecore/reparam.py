r"""The reparameterisation trick: a Gaussian sample as a differentiable function of its parameters."""
from __future__ import annotations

import torch

from vaecore._checks import check_same_shape, check_tensor

__all__ = ["reparameterize"]


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Draw :math:`z \sim \mathcal N(\mu, \operatorname{diag}\sigma^2)` so gradients reach ``mu`` and ``logvar``.

    .. math::
        z = \mu + \sigma \odot \varepsilon, \qquad
        \sigma = \exp\big(\tfrac12 \log\sigma^2\big), \qquad \varepsilon \sim \mathcal N(0, I)

    Equation (reparameterization). The randomness lives in :math:`\varepsilon`,
    which does not depend on the parameters, so
    :math:`\nabla_{\mu,\log\sigma^2} \mathbb E[f(z)] = \mathbb E[\nabla_{\mu,\log\sigma^2} f(z)]`.

    Args:
        mu: means, float, shape ``(B, D)`` (any shape works: one draw per entry).
        logvar: :math:`\log\sigma^2`, same shape as ``mu``.
        generator: optional ``torch.Generator`` for reproducible draws.

    Returns:
        ``z``: same shape as ``mu``; one sample per entry, nothing is reduced.
    """
    check_tensor("mu", mu)
    check_tensor("logvar", logvar)
    check_same_shape(mu=mu, logvar=logvar)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps
