r"""The evidence lower bound, its importance-weighted tightening, and log p(x).

All functions take a :class:`vaecore.vae.VAE` (anything with ``encode``,
``log_likelihood``, ``forward``, ``likelihood`` and ``prior``) and data ``x``
of shape ``(B, ...)``. A model with its own approximate posterior (e.g.
:class:`vaecore.hierarchical.LadderVAE`) exposes ``log_weights(x, k, generator)``,
the ``(k, B)`` log importance weights, which :func:`log_likelihood_is` uses (its IWAE
objective is :func:`vaecore.hierarchical.ladder_iwae_loss`).

Reduction rule: per-example quantities (``log_likelihood``, ``kl``,
``iwae_bound``, ``log_likelihood_is``) have shape ``(B,)``, summed over event
dimensions (pixels, latent dimensions). Only the training objectives
(``negative_elbo(...).loss``, ``iwae_loss(...).loss``) average over the batch.
Sign in the name: ``elbo`` and ``*_bound`` and ``log_*`` are maximised;
``negative_elbo`` and ``*_loss`` are minimised.
"""
from __future__ import annotations

import math
import warnings
from numbers import Real
from typing import NamedTuple

import torch

from vaecore._checks import check_batch, check_positive_int, check_tensor
from vaecore.importance import _log_mean_exp
from vaecore.likelihoods import bernoulli
from vaecore.posterior import Posterior
from vaecore.priors import StdNormalPrior

__all__ = ["ELBOTerms", "IWAETerms", "negative_elbo", "negative_elbo_fast", "kl_term",
           "iwae_bound", "iwae_loss", "log_likelihood_is"]


class ELBOTerms(NamedTuple):
    """``loss`` (scalar, minimised), ``log_likelihood`` = log p(x|z) ``(B,)`` (maximised), ``kl`` ``(B,)``.

    ``reconstruction`` is the field's former name, kept as a deprecated alias
    for one release.
    """
    loss: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor

    @property
    def reconstruction(self) -> torch.Tensor:
        """Deprecated alias of ``log_likelihood`` (log p(x|z), maximised)."""
        warnings.warn("ELBOTerms.reconstruction is deprecated: use ELBOTerms.log_likelihood "
                      "(the same tensor, log p(x|z))", DeprecationWarning, stacklevel=2)
        return self.log_likelihood


class IWAETerms(NamedTuple):
    """``loss`` = minus the batch mean of ``bound`` (scalar); ``bound`` ``(B,)``."""
    loss: torch.Tensor
    bound: torch.Tensor


def negative_elbo(model, x: torch.Tensor, beta: float = 1.0,
                  generator: torch.Generator | None = None) -> ELBOTerms:
    r"""Minus the (β-weighted) evidence lower bound, averaged over the batch.

    .. math::
        \mathrm{ELBO}(x) = \mathbb E_{q(z \mid x)}[\log p(x \mid z)]
        - \mathrm{KL}\big(q(z \mid x) \,\|\, p(z)\big)

    Equation (elbo). With one reparameterised sample :math:`z_b \sim q(z \mid x_b)`
    per example,

    .. math::
        \mathcal J_\beta = \frac1B \sum_{b=1}^B -\big(\log p(x_b \mid z_b)
        - \beta\, \mathrm{KL}(q(z \mid x_b) \,\|\, p(z))\big)

    Equation (negative-elbo). The KL is :func:`kl_term`:
    closed form for the standard normal prior, a single-sample estimate for
    priors without one. ``beta = 1`` is the VAE, ``beta > 1`` the β-VAE.
    Works directly as a ``fit`` loss function: ``loss_fn(model, x)``.

    Args:
        model: a VAE.
        x: data ``(B, ...)`` as the encoder expects it, ``B >= 1``.
        beta: weight of the KL term, a real number ``>= 0``.
        generator: optional ``torch.Generator`` for the sample of z.

    Returns:
        ``ELBOTerms(loss, log_likelihood, kl)``: ``loss`` a scalar
        (minimised, mean over the batch); ``log_likelihood`` =
        :math:`\log p(x \mid z)` ``(B,)`` (maximised) and ``kl`` ``(B,)``,
        each summed over event dimensions.
    """
    _check_data_and_beta(x, beta)
    out = model(x, generator=generator)
    log_likelihood = model.likelihood.log_prob(x, out.x_params)
    kl = kl_term(model.prior, out.mu, out.logvar, out.z)
    loss = -(log_likelihood - beta * kl).mean()
    return ELBOTerms(loss, log_likelihood, kl)


def negative_elbo_fast(model, x: torch.Tensor, beta: float = 1.0,
                       generator: torch.Generator | None = None) -> ELBOTerms:
    r""":func:`negative_elbo` for a Bernoulli decoder and a standard normal prior, in few kernels.

    The same bound, Equation (negative-elbo), with the Bernoulli
    log-likelihood on logits, Equation (log-prob-bernoulli), and the
    closed-form KL, Equation (kl-std-normal), from one reparameterised
    sample: the same values as :func:`negative_elbo` to float rounding, from
    the same random draws. It skips what :func:`negative_elbo` checks on every
    call at the cost of two host syncs and extra passes over the batch: that
    ``x`` lies in ``[0, 1]``, and the exact limits for infinite logits (here
    they give NaN, which ``fit``'s NaN guard reports). The log-likelihood's
    gradient is written out, :math:`\partial \log p / \partial \ell = x -
    \sigma(\ell)`, and the sums are taken in the data's dtype (float32 under
    ``fit(..., autocast=torch.bfloat16)``). Use it to train fast
    (``fit(model, negative_elbo_fast, x)``) once :func:`negative_elbo` has run
    on the data; use :func:`negative_elbo` everywhere else.

    Args:
        model: a VAE with the ``bernoulli`` likelihood and the default
            :class:`~vaecore.priors.StdNormalPrior` (else ``ValueError``).
        x: data ``(B, ...)`` in ``[0, 1]`` (not checked), ``B >= 1``.
        beta: weight of the KL term, a real number ``>= 0``.
        generator: optional ``torch.Generator`` for the sample of z.

    Returns:
        ``ELBOTerms(loss, log_likelihood, kl)`` as :func:`negative_elbo`:
        ``loss`` a scalar (mean over the batch), ``log_likelihood`` and
        ``kl`` ``(B,)``, each summed over event dimensions.
    """
    _check_data_and_beta(x, beta)
    if model.likelihood is not bernoulli or type(model.prior) is not StdNormalPrior:
        raise ValueError("negative_elbo_fast: expected a VAE with the bernoulli likelihood and "
                         f"StdNormalPrior, got {model.likelihood.name} and "
                         f"{type(model.prior).__name__}; use negative_elbo")
    mu, logvar = model.encoder(x)
    # $z = \mu + \sigma \odot \varepsilon$, the draw of reparameterize
    eps = torch.empty_like(mu).normal_(generator=generator)  # randn's stream; compiles
    z = mu + torch.exp(0.5 * logvar) * eps
    log_likelihood = _BernoulliLogLikelihood.apply(model.decoder(z).flatten(1), x.flatten(1))
    mu, logvar = mu.to(x.dtype), logvar.to(x.dtype)
    # $\mathrm{KL} = \frac12 \sum_j (\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)$
    kl = 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar).sum(1)
    loss = -(log_likelihood - beta * kl).mean()
    return ELBOTerms(loss, log_likelihood, kl)


class _BernoulliLogLikelihood(torch.autograd.Function):
    r"""Equation (log-prob-bernoulli) for ``(B, P)`` logits and data: ``(B,)`` in the data's dtype.

    Forward :math:`\sum_i x_i \ell_i - \log(1 + e^{\ell_i})` (``logaddexp``,
    exact and stable); backward :math:`(x - \sigma(\ell))` times the incoming
    gradient, in three kernels instead of autograd's chain.
    """

    @staticmethod
    def forward(ctx, x_logits, x):
        logits = x_logits.to(x.dtype)
        ctx.save_for_backward(logits, x)
        ctx.logits_dtype = x_logits.dtype
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        return torch.addcmul(torch.logaddexp(logits, zero), x, logits, value=-1).sum(1).neg_()

    @staticmethod
    def backward(ctx, grad):
        logits, x = ctx.saved_tensors
        grad_logits = torch.sigmoid(logits).sub_(x).mul_(grad.neg().unsqueeze(1))
        return grad_logits.to(ctx.logits_dtype), None


def kl_term(prior, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""The ELBO's :math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z))` term, ``(B,)``.

    In closed form where the prior has one (``prior.kl(mu, logvar, z)``, which
    ignores ``z``); otherwise the single-sample Monte-Carlo estimate
    ``prior.kl_mc(mu, logvar, z)`` at the sample ``z`` of the ELBO, Equation
    (flow-elbo). A prior that has ``kl_mc`` is taken to have no closed form.
    """
    if hasattr(prior, "kl_mc"):
        return prior.kl_mc(mu, logvar, z)
    return prior.kl(mu, logvar, z)


def _check_no_labels(name: str, value, loss: str) -> None:
    """Refuse a tensor of one number per example where a number belongs: labels from ``fit``."""
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        raise ValueError(f"{name}: expected a number, got a tensor of shape {tuple(value.shape)}; "
                         f"labels? fit(..., train=(x, y)) calls loss_fn(model, x, y) and {loss} "
                         f"takes no labels: train on x alone (train=x), or wrap the loss: "
                         f"lambda model, x, y: {loss}(model, x)")


def _check_data_and_beta(x, beta) -> None:
    """Clear errors for ``(x, y)`` passed as ``x`` or as ``(x, beta)``, an empty batch, a bad β."""
    check_batch("x", x, hint="; pass the images alone: negative_elbo(model, x)")
    _check_no_labels("beta", beta, "negative_elbo")
    if isinstance(beta, bool) or not isinstance(beta, Real) or not beta >= 0:
        raise ValueError(f"beta: expected a real number >= 0, got {beta!r}")


def _log_joint(model, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r""":math:`\log p(x, z_i) = \log p(x \mid z_i) + \log p(z_i)` for z ``(c, B, D)``: ``(c, B)``."""
    c, batch, dim = z.shape
    z_flat = z.reshape(c * batch, dim)
    x_rep = x.expand(c, *x.shape).reshape(c * batch, *x.shape[1:])
    return (model.log_likelihood(x_rep, z_flat) + model.prior.log_prob(z_flat)).view(c, batch)


def _log_weights(model, x: torch.Tensor, posterior: Posterior, z: torch.Tensor) -> torch.Tensor:
    r"""Log importance weights :math:`\log p(x, z_i) - \log q(z_i \mid x)` for z ``(c, B, D)``: ``(c, B)``."""
    return _log_joint(model, x, z) - posterior.log_prob(z)


def iwae_bound(model, x: torch.Tensor, k: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The importance-weighted bound with ``k`` samples, one estimate per example.

    .. math::
        \mathcal L_k(x) = \log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i \mid x)},
        \qquad z_i \sim q(z \mid x)

    Equation (iwae-bound). Computed as ``logsumexp - log k``, the log-mean-exp of
    :func:`vaecore.importance.log_mean_exp`. In expectation
    :math:`\mathcal L_1 = \mathrm{ELBO} \le \mathcal L_k \le \mathcal L_{k+1}
    \le \log p(x)`. Differentiable (reparameterised samples), so
    ``-iwae_bound(model, x, k).mean()`` trains an IWAE (see :func:`iwae_loss`).
    Memory: ``k * B`` decoder outputs; for large ``k`` use
    :func:`log_likelihood_is`.

    Args:
        model: a VAE.
        x: data ``(B, ...)``.
        k: number of importance samples per example, an int ``>= 1``.
        generator: optional ``torch.Generator`` for the samples of z.

    Returns:
        ``(B,)``: the estimate per example (maximised), each term summed over
        event dimensions.
    """
    check_positive_int("k", k)
    check_tensor("x", x, min_dim=2)
    posterior = model.encode(x)
    z = posterior.rsample((k,), generator=generator)
    log_w = _log_weights(model, x, posterior, z)
    return _log_mean_exp(log_w)


def iwae_loss(model, x: torch.Tensor, k: int = 5,
              generator: torch.Generator | None = None) -> IWAETerms:
    r"""The IWAE training objective: :math:`-\frac1B \sum_b \mathcal L_k(x_b)`, Equation (iwae-bound).

    A ``fit`` loss function: ``fit(model, partial(iwae_loss, k=5), x)``.

    Returns:
        ``IWAETerms(loss, bound)``: ``loss`` a scalar (minimised, mean over
        the batch), ``bound`` = :func:`iwae_bound` ``(B,)`` (maximised).
    """
    check_batch("x", x, hint="; pass the images alone: iwae_loss(model, x, k)")
    _check_no_labels("k", k, "iwae_loss")
    bound = iwae_bound(model, x, k, generator=generator)
    return IWAETerms(-bound.mean(), bound)


def log_likelihood_is(model, x: torch.Tensor, k: int, chunk: int = 500,
                      generator: torch.Generator | None = None, *,
                      batch_size: int = 100) -> torch.Tensor:
    r"""Importance-sampling estimate of :math:`\log p(x)` with many samples, for evaluation.

    .. math::
        \log p(x) \approx \log \frac1k \sum_{i=1}^k \frac{p(x \mid z_i)\, p(z_i)}{q(z_i \mid x)},
        \qquad z_i \sim q(z \mid x)

    Equation (log-likelihood-is). The estimator of :func:`iwae_bound`, used
    with large ``k`` (e.g. 5000), under ``torch.no_grad``. ``x`` is processed
    in batches of ``batch_size`` examples; within a batch all ``k`` samples
    of z are drawn at once (``k * batch_size * D`` numbers, as in
    :func:`iwae_bound`, so with one batch the same generator state gives the
    same samples and the same result up to float rounding) and decoded
    ``chunk`` at a time, combined by a running ``logaddexp``. Memory is thus
    ``chunk * batch_size`` decoder outputs: lower ``chunk`` for large nets.
    The train/eval mode is left as it is: call ``model.eval()`` first.

    Args:
        model: a VAE.
        x: data ``(N, ...)``.
        k: importance samples per example; ``chunk``, ``batch_size``: ints ``>= 1``.
        generator: optional ``torch.Generator`` for the samples of z.

    Returns:
        ``(N,)``: the estimate of :math:`\log p(x)` per example (a stochastic
        lower bound in expectation), summed over event dimensions.
    """
    for name, value in (("k", k), ("chunk", chunk), ("batch_size", batch_size)):
        check_positive_int(name, value)
    check_tensor("x", x, min_dim=2)
    if x.shape[0] == 0:
        raise ValueError("x: expected at least one example, got an empty batch")
    with torch.no_grad():
        return torch.cat([_log_likelihood_is_batch(model, x_batch, k, chunk, generator)
                          for x_batch in x.split(batch_size)])


def _log_likelihood_is_batch(model, x, k, chunk, generator) -> torch.Tensor:
    if hasattr(model, "log_weights"):  # its own q: draw and weigh ``chunk`` at a time
        parts = (model.log_weights(x, min(chunk, k - i), generator=generator)
                 for i in range(0, k, chunk))
    else:
        posterior = model.encode(x)
        parts = (_log_weights(model, x, posterior, z)
                 for z in posterior.rsample((k,), generator=generator).split(chunk))
    total = None
    for log_w in parts:
        lse = torch.logsumexp(log_w, dim=0)
        total = lse if total is None else torch.logaddexp(total, lse)
    return total - math.log(k)
