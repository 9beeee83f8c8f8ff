r"""Looking into a latent space: encode a dataset, interpolate, count active units.

Each function is derived where its equation label is defined.
Shapes: ``mu`` and ``logvar`` are ``(N, D)``, one row per image. Unlike the
per-example quantities of the rest of the library, :func:`kl_per_dimension`
keeps the latent dimensions apart (``(N, D)``, nothing summed) and
:func:`posterior_mean_variance` / :func:`active_units` are statistics of a
whole dataset, one value per latent dimension ``(D,)``.
"""
from __future__ import annotations

import torch

from vaecore._checks import check_same_shape, check_tensor
from vaecore.vae import Posterior

__all__ = ["encode_dataset", "slerp", "kl_per_dimension", "posterior_mean_variance",
           "active_units"]


@torch.no_grad()
def encode_dataset(model, x: torch.Tensor, batch_size: int = 1000) -> Posterior:
    """``Posterior(mu, logvar)`` of every image in ``x``, each ``(N, D)``.

    Encodes in batches of ``batch_size`` under ``torch.no_grad``; leaves the
    train/eval mode as it is (call ``model.eval()`` first).
    """
    check_tensor("x", x, min_dim=2)
    parts = [model.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return Posterior(torch.cat([p.mu for p in parts]),
                     torch.cat([p.logvar for p in parts]))


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    r"""Spherical linear interpolation from ``z0`` (``t = 0``) to ``z1`` (``t = 1``), row by row.

    .. math::
        \operatorname{slerp}(z_0, z_1; t) = \frac{\sin((1 - t)\,\omega)}{\sin\omega}\, z_0
        + \frac{\sin(t\,\omega)}{\sin\omega}\, z_1, \qquad
        \cos\omega = \frac{z_0 \cdot z_1}{\lVert z_0\rVert\,\lVert z_1\rVert}

    Equation (slerp). Rows whose vectors are parallel or opposite
    (:math:`\sin\omega < 10^{-7}`) fall back to the linear interpolation
    :math:`(1 - t) z_0 + t z_1`, the limit of the formula as :math:`\omega \to 0`.

    Args:
        z0, z1: float, shape ``(B, D)``.
        t: a float (or 0-dim tensor), usually in ``[0, 1]``.

    Returns:
        ``(B, D)``: one interpolated code per row.
    """
    check_tensor("z0", z0, ndim=2)
    check_tensor("z1", z1, ndim=2)
    check_same_shape(z0=z0, z1=z1)
    norms = (z0.norm(dim=1) * z1.norm(dim=1)).clamp_min(torch.finfo(z0.dtype).tiny)
    omega = torch.acos(((z0 * z1).sum(1) / norms).clamp(-1.0, 1.0))
    sin_omega = torch.sin(omega)
    parallel = sin_omega < 1e-7
    safe = torch.where(parallel, torch.ones_like(sin_omega), sin_omega)
    a = torch.where(parallel, 1 - t + 0 * omega, torch.sin((1 - t) * omega) / safe)
    b = torch.where(parallel, t + 0 * omega, torch.sin(t * omega) / safe)
    return a[:, None] * z0 + b[:, None] * z1


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""The KL to :math:`\mathcal N(0, I)`, one term per example and latent dimension.

    .. math::
        \mathrm{KL}_j(x) = \tfrac12\big(\sigma_j^2(x) + \mu_j^2(x) - 1 - \log\sigma_j^2(x)\big)

    Equation (kl-per-dimension). Summed over ``j`` it is
    :func:`vaecore.kl.kl_normal_std_normal`; each term is :math:`\ge 0` and
    0 exactly when :math:`\mu_j = 0` and :math:`\sigma_j = 1`.

    Args:
        mu, logvar: float, shape ``(N, D)``.

    Returns:
        ``(N, D)``: nothing is summed or averaged.
    """
    check_tensor("mu", mu, ndim=2)
    check_tensor("logvar", logvar, ndim=2)
    check_same_shape(mu=mu, logvar=logvar)
    return 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar)


def posterior_mean_variance(mu: torch.Tensor) -> torch.Tensor:
    r"""The activity of each latent dimension: the variance over the data of its posterior mean.

    .. math::
        A_j = \operatorname{Var}_{x}\big(\mathbb{E}_{q(z \mid x)}[z_j]\big)
            = \frac1N \sum_{n=1}^N \big(\mu_j(x_n) - \bar\mu_j\big)^2

    Equation (active-units), after Burda et al. (2016). The divisor is
    :math:`N` (the variance of the empirical distribution of the data).

    Args:
        mu: posterior means, float, shape ``(N, D)``, ``N >= 1``.

    Returns:
        ``(D,)``: one variance per latent dimension.
    """
    check_tensor("mu", mu, ndim=2)
    return mu.var(dim=0, unbiased=False)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """Boolean mask ``(D,)``: dimensions whose :func:`posterior_mean_variance` exceeds ``threshold``.

    The threshold 0.01 is Burda et al.'s (2016); ``active_units(mu).sum()``
    counts the active units.
    """
    return posterior_mean_variance(mu) > threshold
