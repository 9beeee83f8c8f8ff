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
bound in all three. :mod:`vaecore.gradient_snr` measures them.

Reduction rule: per-example fields are ``(B,)``, summed over event dimensions;
only the ``loss`` averages over the batch. Each loss's value is the usual bound,
only its gradient differs; all are ``fit`` losses, like the losses of
:mod:`vaecore.elbo`.
"""
from __future__ import annotations

import torch

from vaecore._checks import check_batch, check_positive_int
from vaecore.elbo import (ELBOTerms, IWAETerms, _check_data_and_beta, _check_no_labels,
                          _log_weights)
from vaecore.importance import _log_mean_exp
from vaecore.posterior import Posterior

__all__ = ["negative_elbo_stl", "iwae_dreg_loss"]


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
