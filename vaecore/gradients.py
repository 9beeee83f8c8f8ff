r"""Gradient estimators for the encoder: reparameterization, sticking the landing, DReG.

Each loss differentiates a Monte-Carlo bound through reparameterised samples
:math:`z = \mu_\phi(x) + \sigma_\phi(x) \odot \epsilon`, Equation
(reparameterization). With :math:`\log w = \log p_\theta(x, z) - \log q_\phi(z \mid x)`
the encoder's total derivative has two parts:

.. math::
    \frac{d \log w}{d\phi}
    = \underbrace{\frac{\partial \log w}{\partial z} \frac{\partial z}{\partial \phi}}_{\text{path}}
    \; - \; \underbrace{\frac{\partial \log q_\phi(z \mid x)}{\partial \phi}\Big|_{z}}_{\text{score}}

The score part has mean zero under :math:`q`, Equation (score-zero-mean), so it
adds variance and no signal. :func:`vaecore.elbo.iwae_loss` (with ``k = 1``:
the one-sample ELBO) keeps both parts, the standard reparameterization gradient;
:func:`negative_elbo_stl` keeps the path part of the ELBO (Roeder, Wu &
Duvenaud 2017, "sticking the landing"); :func:`iwae_dreg_loss` is the doubly
reparameterized gradient of the IWAE bound (Tucker, Lawson, Gu & Maddison 2019).
The decoder's and the prior's gradients (:math:`\theta`) are those of the
bound in all three. To compare estimators, :func:`gradient_draws` draws the
gradient of the network's parameters, :func:`posterior_gradient_draws` that of
each image's :math:`(\mu, \log\sigma^2)` (all draws in one pass, through
:func:`with_posterior`), and :func:`gradient_snr` turns draws into a
signal-to-noise ratio per entry (Rainforth et al. 2018).

Reduction rule: per-example fields are ``(B,)``, summed over event dimensions;
only the ``loss`` averages over the batch. Each loss's value is the usual bound,
only its gradient differs; all are ``fit`` losses, like the losses of
:mod:`vaecore.elbo`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from vaecore._checks import (check_batch, check_latent, check_positive_int, check_same_shape,
                             check_tensor)
from vaecore.elbo import (ELBOTerms, IWAETerms, _check_data_and_beta, _check_no_labels,
                          _log_weights)
from vaecore.importance import _log_mean_exp
from vaecore.posterior import Posterior
from vaecore.vae import VAE

__all__ = ["negative_elbo_stl", "iwae_dreg_loss", "gradient_draws", "PosteriorGradients",
           "with_posterior", "posterior_gradient_draws", "gradient_snr"]


def _stop_gradient(posterior: Posterior) -> Posterior:
    r""":math:`q_{\bot(\phi)}`: the same density, with parameters that pass no gradient."""
    return Posterior(posterior.mu.detach(), posterior.logvar.detach())


def negative_elbo_stl(model, x: torch.Tensor, beta: float = 1.0,
                      generator: torch.Generator | None = None) -> ELBOTerms:
    r"""Minus the one-sample ELBO with the "sticking the landing" gradient (Roeder et al. 2017).

    .. math::
        \hat{\mathcal L}(x) = \log p_\theta(x \mid z)
        - \beta \big(\log q_{\bot(\phi)}(z \mid x) - \log p_\theta(z)\big),
        \qquad z = \mu_\phi + \sigma_\phi \odot \epsilon

    Equation (elbo) estimated at one sample, with :math:`\log q` evaluated at
    stop-gradient parameters :math:`\bot(\phi)`: the encoder's gradient is the
    path part only, the score part (mean zero) is dropped, so the estimator is
    unbiased for the gradient of the ELBO. When :math:`q` equals the true
    posterior (``beta = 1``), :math:`\log p(x, z) - \log q(z \mid x) = \log p(x)`
    for every :math:`z`, so the encoder's gradient is exactly zero on every
    draw, whereas the standard estimator (``iwae_loss(model, x, k=1)``, the
    same value) still carries the score's noise. The decoder's gradient is the
    standard one. Tested by Monte Carlo on a linear-Gaussian model against the
    gradient of the closed-form ELBO, and for zero variance at the exact posterior.

    Args:
        model: a VAE; x: data ``(B, ...)``, ``B >= 1``; beta: KL weight, a real ``>= 0``;
        generator: optional ``torch.Generator`` for the sample of z.

    Returns:
        ``ELBOTerms(loss, log_likelihood, kl)``: ``loss`` a scalar (minimised,
        mean over the batch); ``log_likelihood`` :math:`\log p(x \mid z)` and
        ``kl`` the one-sample estimate :math:`\log q(z \mid x) - \log p(z)`, each ``(B,)``.
    """
    _check_data_and_beta(x, beta)
    posterior = model.encode(x)
    z = posterior.rsample(generator=generator)
    log_likelihood = model.log_likelihood(x, z)
    # $\log q_{\bot(\phi)}(z \mid x) - \log p(z)$: phi reaches it through z only
    kl = _stop_gradient(posterior).log_prob(z) - model.prior.log_prob(z)
    return ELBOTerms(-(log_likelihood - beta * kl).mean(), log_likelihood, kl)


def _scale_gradient(z: torch.Tensor, weight: torch.Tensor) -> None:
    """Multiply the gradient that reaches ``z`` ``(k, B, D)`` by ``weight`` ``(k, B)`` in backward."""
    if z.requires_grad:  # not under torch.no_grad (fit's validation)
        z.register_hook(lambda grad: grad * weight.unsqueeze(-1))


def iwae_dreg_loss(model, x: torch.Tensor, k: int = 5,
                   generator: torch.Generator | None = None) -> IWAETerms:
    r"""Minus the IWAE bound, with the doubly reparameterized encoder gradient (Tucker et al. 2019).

    The value is :func:`vaecore.elbo.iwae_loss`'s, Equation (iwae-bound). With
    normalised weights :math:`\tilde w_i = w_i / \sum_j w_j` the gradients are

    .. math::
        \nabla_\theta = \sum_{i=1}^k \tilde w_i \, \nabla_\theta \log w_i, \qquad
        \nabla_\phi = \sum_{i=1}^k \tilde w_i^2 \,
        \frac{\partial \log w_i}{\partial z_i} \frac{\partial z_i}{\partial \phi},

    the first the IWAE gradient of the decoder and prior, unchanged; the second
    replaces the encoder's IWAE gradient by an unbiased one without score terms
    (the score terms are rewritten by a second reparameterization). Its
    signal-to-noise ratio does not fall as ``k`` grows, unlike the standard
    IWAE encoder gradient's (Rainforth et al. 2018). Tested: the decoder's
    gradient equals ``iwae_loss``'s draw by draw; the encoder's Monte-Carlo mean
    equals ``iwae_loss``'s; zero variance at the exact posterior.

    Args:
        model: a VAE; x: data ``(B, ...)``, ``B >= 1``; k: samples per example, an int ``>= 1``;
        generator: optional ``torch.Generator`` for the samples of z.

    Returns:
        ``IWAETerms(loss, bound)``: ``loss`` a scalar (minimised, mean over the
        batch), ``bound`` :math:`\mathcal L_k(x)` ``(B,)`` (maximised, detached).
    """
    check_batch("x", x, hint="; pass the images alone: iwae_dreg_loss(model, x, k)")
    _check_no_labels("k", k, "iwae_dreg_loss")
    check_positive_int("k", k)
    posterior = model.encode(x)
    z = posterior.rsample((k,), generator=generator)
    # $\log w_i = \log p(x, z_i) - \log q_{\bot(\phi)}(z_i \mid x)$, (k, B): phi enters through z only
    log_w = _log_weights(model, x, _stop_gradient(posterior), z)
    # $\tilde w_i = w_i / \sum_j w_j$, constants in the gradient
    w_tilde = torch.softmax(log_w.detach(), dim=0)
    # $\partial z_i / \partial \phi$ gets one more factor $\tilde w_i$: $\tilde w_i^2$ for the encoder
    _scale_gradient(z, w_tilde)
    # $\sum_i \tilde w_i \log w_i$: the gradients above, with no value of its own
    surrogate = (w_tilde * log_w).sum(0)
    bound = _log_mean_exp(log_w.detach())
    return IWAETerms(-(bound + surrogate - surrogate.detach()).mean(), bound)


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


class _FixedEncoder(nn.Module):
    """An encoder without parameters that returns the given ``(mu, logvar)``, each ``(B, D)``."""

    def __init__(self, posterior: Posterior):
        super().__init__()
        self.posterior, self.latent_dim = posterior, posterior.mu.shape[-1]

    def forward(self, x: torch.Tensor) -> Posterior:
        if x.shape[0] != self.posterior.mu.shape[0]:
            raise ValueError(f"x: expected {self.posterior.mu.shape[0]} examples, one per "
                             f"posterior, got {x.shape[0]}")
        return self.posterior


def with_posterior(model, posterior: Posterior) -> VAE:
    r"""``model``'s decoder, likelihood and prior, with :math:`q(z \mid x_b)` = ``posterior`` row ``b``.

    The encoder is replaced by the fixed parameters ``posterior`` ``(B, D)``
    (no copy: the decoder and prior are shared), so every loss and bound of
    the library can be computed, and differentiated, for free per-example
    parameters :math:`(\mu_b, \log\sigma_b^2)` instead of the encoder's output.
    """
    check_latent(posterior.mu, model.latent_dim, "posterior.mu")
    check_same_shape(mu=posterior.mu, logvar=posterior.logvar)
    return VAE(_FixedEncoder(posterior), model.decoder, model.likelihood, model.prior)


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
