r"""Draws of a loss's gradient, and their signal-to-noise ratio (Rainforth et al. 2018).

To compare gradient estimators (:mod:`vaecore.gradients`): :func:`gradient_draws`
draws the gradient of the network's parameters, one loss call per draw;
:func:`posterior_gradient_draws` that of each image's :math:`(\mu, \log\sigma^2)`,
all draws in one pass (through :func:`vaecore.gaps.with_posterior`); and
:func:`gradient_snr` turns draws into a signal-to-noise ratio per entry.
Every loss is called as ``loss_fn(model, x, generator=...)``, as ``fit`` losses are.

Draws are stacked in dim 0; nothing is averaged over the batch here except by
the loss itself (its ``loss`` field is the batch mean).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from vaecore._checks import check_batch, check_positive_int, check_tensor
from vaecore.gaps import with_posterior
from vaecore.posterior import Posterior

__all__ = ["gradient_draws", "PosteriorGradients", "posterior_gradient_draws", "gradient_snr"]


def gradient_draws(model, loss_fn, x: torch.Tensor, repeats: int,
                   generator: torch.Generator | None = None,
                   names: list[str] | None = None) -> dict[str, torch.Tensor]:
    r"""``repeats`` independent draws of the gradient of ``loss_fn(model, x, generator=...).loss``.

    One call of the loss per draw, on the whole of ``x`` (so the gradient of its
    batch mean), for the network's parameters: ``names`` picks some (default:
    all that require grad). The parameters' ``.grad`` are left untouched
    (``torch.autograd.grad``). For the gradient of each image's own bound with
    respect to its :math:`(\mu, \log\sigma^2)`, all draws in one pass, see
    :func:`posterior_gradient_draws`.

    Returns:
        ``{name: (repeats, *parameter.shape)}``; an unused parameter gets zeros.
    """
    repeats = check_positive_int("repeats", repeats)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if names is not None:
        unknown = sorted(set(names) - set(params))
        if unknown:
            raise ValueError(f"names: no trainable parameters {unknown}; the model has {sorted(params)}")
        params = {n: params[n] for n in names}
    draws = {n: [] for n in params}
    for _ in range(repeats):
        loss = loss_fn(model, x, generator=generator).loss
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (n, p), g in zip(params.items(), grads):
            draws[n].append(torch.zeros_like(p) if g is None else g)
    return {n: torch.stack(g) for n, g in draws.items()}


class PosteriorGradients(NamedTuple):
    """Draws of the loss's gradient with respect to ``mu`` and ``logvar``, each ``(R, B, D)``."""
    mu: torch.Tensor
    logvar: torch.Tensor


def posterior_gradient_draws(model, loss_fn, x: torch.Tensor, repeats: int,
                             generator: torch.Generator | None = None) -> PosteriorGradients:
    r"""``repeats`` draws of each image's gradient with respect to its posterior parameters, in one pass.

    .. math::
        g_{r,b} = \nabla_{(\mu_b, \log\sigma_b^2)} \, \ell_r(x_b),
        \qquad (\mu_b, \log\sigma_b^2) = \text{the encoder's output},

    where :math:`\ell_r(x_b)` is draw :math:`r` of the loss of image :math:`b`.

    ``x`` is repeated ``repeats`` times and the encoder's ``(mu, logvar)`` with
    it, as free parameters (:func:`with_posterior`); since each copy's
    parameters enter only its own term of the batch mean, the gradient of
    ``R B`` times the loss with respect to them is each copy's own gradient,
    one independent draw per copy. The encoder's network gradient is this
    times the encoder's Jacobian, the same for every draw of an image. Use with
    :func:`gradient_snr`; the loss is called as ``loss_fn(model, x, generator=...)``.

    Returns:
        ``PosteriorGradients(mu, logvar)``, each ``(repeats, B, D)``: gradients of the
        loss (minimised) of each image.
    """
    check_batch("x", x)
    repeats = check_positive_int("repeats", repeats)
    with torch.no_grad():
        start = model.encode(x)
    mu, logvar = (t.repeat(repeats, 1).requires_grad_() for t in start)
    copies = x.repeat(repeats, *[1] * (x.dim() - 1))
    loss = loss_fn(with_posterior(model, Posterior(mu, logvar)), copies, generator=generator).loss
    # $\partial (R B \cdot \text{mean}) / \partial \mu_{r,b}$ = the gradient of copy (r, b)'s own loss
    g_mu, g_logvar = torch.autograd.grad(len(copies) * loss, [mu, logvar])
    return PosteriorGradients(g_mu.view(repeats, *start.mu.shape),
                              g_logvar.view(repeats, *start.mu.shape))


def gradient_snr(draws: torch.Tensor) -> torch.Tensor:
    r"""The gradient's signal-to-noise ratio per entry over draws in dim 0 (Rainforth et al. 2018).

    .. math::
        \mathrm{SNR} = \frac{|\widehat{\mathbb E}[g]|}{\widehat{\mathrm{sd}}[g]}

    over ``R >= 2`` draws :math:`g` (the sample standard deviation, ``R - 1``
    in its denominator), from :func:`gradient_draws` or
    :func:`posterior_gradient_draws`; pass the estimator and its ``k`` as the
    loss, e.g. ``partial(iwae_dreg_loss, k=10)``. An entry with zero spread has
    SNR ``inf`` (NaN if its mean is zero too). For Gaussian draws its
    Monte-Carlo standard error is about :math:`\sqrt{(1 + \mathrm{SNR}^2/2) / R}`.
    Tested on known draws, and: the encoder's SNR falls with ``k`` under
    ``iwae_loss`` and does not under :func:`iwae_dreg_loss` on a
    linear-Gaussian model.

    Returns:
        ``draws.shape[1:]``: the SNR of each entry.
    """
    check_tensor("draws", draws)
    if draws.shape[0] < 2:
        raise ValueError(f"draws: expected at least 2 draws in dim 0 for a standard deviation, "
                         f"got shape {tuple(draws.shape)}")
    return draws.mean(0).abs() / draws.std(0)
