r"""Decoder likelihoods :math:`\log p(x \mid z)` and the Gaussian log-densities.

Reduction rule: every ``log_prob_*`` returns shape ``(B,)``, one number per
example, summed over the event dimensions (all dimensions after the first:
pixels, channels, latent dimensions). Nothing here averages over the batch.

A :class:`Likelihood` bundles what a VAE needs from its decoder distribution:
``log_prob(x, params)``, ``mean(params)`` and ``sample(params, generator)``,
where ``params`` is whatever the decoder returns (logits, a mean, or a
``(mean, logvar)`` pair). Decoders return logits or distribution parameters,
never clamped probabilities. The discretized logistic, a probability over the
256 levels of 8-bit images, is in :mod:`vaecore.discretized_logistic`.
"""
from __future__ import annotations

import math
from functools import partial
from numbers import Real
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from vaecore._checks import (all_finite, check_broadcastable, check_same_shape, check_tensor,
                             check_unit_interval)

__all__ = ["log_prob_bernoulli", "log_prob_normal", "log_prob_std_normal",
           "Likelihood", "bernoulli", "normal"]

LOG_2PI = math.log(2 * math.pi)


def log_prob_bernoulli(x: torch.Tensor, x_logits: torch.Tensor) -> torch.Tensor:
    r"""Bernoulli log-likelihood from logits, summed over event dimensions.

    .. math::
        \log p(x \mid z) = \sum_i x_i \log \sigma(\ell_i) + (1 - x_i) \log \sigma(-\ell_i)

    Equation (log-prob-bernoulli). This is minus the binary cross-entropy with
    logits, computed stably (no log of a clamped probability). ``x`` may also
    hold grey levels in ``[0, 1]``: the formula is then the continuous
    cross-entropy, which is not a normalised density over ``[0, 1]``.

    Args:
        x: data, float, shape ``(B, ...)``, values in ``[0, 1]`` (else
            ``ValueError``: scale 8-bit images by 1/255).
        x_logits: decoder logits :math:`\ell`, same shape as ``x``; an
            infinite logit gives the limit (0 or :math:`-\infty`), not NaN.

    Returns:
        ``(B,)``: :math:`\log p(x \mid z)` per example, summed over all
        non-batch dimensions (maximised).
    """
    check_tensor("x", x, min_dim=2)
    check_tensor("x_logits", x_logits, min_dim=2)
    check_same_shape(x=x, x_logits=x_logits)
    check_unit_interval("x", x)
    bce = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")
    log_p = -bce.flatten(1).sum(1)
    if not all_finite(log_p):  # rare: an infinite logit (0 * inf in the BCE)
        log_p = _log_prob_bernoulli_limits(x, x_logits)
    return log_p


def _log_prob_bernoulli_limits(x: torch.Tensor, x_logits: torch.Tensor) -> torch.Tensor:
    r"""Equation (log-prob-bernoulli) where logits may be :math:`\pm\infty`, ``(B,)``.

    An infinite logit makes one outcome sure: its term is 0 where ``x`` is
    that outcome and :math:`-\infty` otherwise. Finite logits give the same
    terms as :func:`log_prob_bernoulli`; gradients stay finite.
    """
    infinite = x_logits.isinf()
    log_p = -F.binary_cross_entropy_with_logits(torch.where(infinite, 0.0, x_logits), x,
                                                reduction="none")
    sure = (x_logits > 0).to(x.dtype)  # the outcome an infinite logit makes certain
    limit = torch.zeros_like(log_p).masked_fill(x != sure, -math.inf)
    return torch.where(infinite, limit, log_p).flatten(1).sum(1)


def log_prob_normal(x: torch.Tensor, mean: torch.Tensor, logvar) -> torch.Tensor:
    r"""Diagonal Gaussian log-density, summed over event dimensions.

    .. math::
        \log \mathcal N(x; \mu, \operatorname{diag}\sigma^2) = -\frac12 \sum_i
        \Big[\log 2\pi + \log\sigma_i^2 + \frac{(x_i - \mu_i)^2}{\sigma_i^2}\Big]

    Equation (log-prob-normal). With a fixed unit variance (``logvar=0.0``)
    this is :math:`-\frac12\lVert x - \mu\rVert^2 - \frac D2 \log 2\pi`: a
    "plain L2" reconstruction loss silently assumes :math:`\sigma^2 = 1`, up
    to a constant and a scale factor.

    Args:
        x: data, float, shape ``(B, ...)``.
        mean: :math:`\mu`, same shape as ``x``.
        logvar: :math:`\log\sigma^2`, a tensor broadcastable to ``x`` or a
            Python float (one fixed variance for every dimension).

    Returns:
        ``(B,)``: the log-density per example, summed over all non-batch
        dimensions (maximised).
    """
    check_tensor("x", x, min_dim=2)
    check_tensor("mean", mean, min_dim=2)
    check_same_shape(x=x, mean=mean)
    logvar = check_broadcastable("logvar", logvar, x)
    log_p = -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))
    log_p = log_p.flatten(1).sum(1)
    if not all_finite(log_p):  # rare: exp(-logvar) overflowed (0 * inf); redo in logs
        log_p = (-0.5 * (LOG_2PI + logvar + _square_over_var(x - mean, logvar))).flatten(1).sum(1)
    return log_p


def _square_over_var(diff: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""The elementwise :math:`d^2 / \sigma^2`, computed as :math:`\exp(2 \log|d| - \log\sigma^2)`.

    Finite wherever the result is, even when :math:`d^2` or
    :math:`1/\sigma^2` alone would overflow or underflow (e.g.
    ``logvar = -200`` in float32); exactly 0, with zero gradients, where ``d = 0``.
    """
    nonzero = diff != 0
    log_square = 2 * torch.log(torch.where(nonzero, diff.abs(), 1.0))
    return torch.exp(torch.where(nonzero, log_square - logvar, -math.inf))


def log_prob_std_normal(z: torch.Tensor) -> torch.Tensor:
    r"""Standard normal log-density :math:`\log \mathcal N(z; 0, I)`.

    .. math::
        \log \mathcal N(z; 0, I) = -\frac12 \sum_j \big[\log 2\pi + z_j^2\big]

    Equation (log-prob-normal) with :math:`\mu = 0`, :math:`\sigma^2 = 1`.

    Args:
        z: float, shape ``(B, D)`` (or ``(B, ...)``).

    Returns:
        ``(B,)``: summed over all non-batch dimensions (maximised).
    """
    check_tensor("z", z, min_dim=2)
    return (-0.5 * (LOG_2PI + z ** 2)).flatten(1).sum(1)


class Likelihood(NamedTuple):
    """A decoder distribution :math:`p(x \\mid z)` as three plain functions.

    ``log_prob(x, params) -> (B,)``, ``mean(params) -> E[x | z]`` and
    ``sample(params, generator=None) -> x``, where ``params`` is the decoder
    output.
    """
    name: str
    log_prob: Callable
    mean: Callable
    sample: Callable


def _bernoulli_mean(x_logits: torch.Tensor) -> torch.Tensor:
    """:math:`E[x \\mid z] = \\sigma(\\ell)`, same shape as the logits."""
    return torch.sigmoid(x_logits)


def _bernoulli_sample(x_logits: torch.Tensor, generator=None) -> torch.Tensor:
    """A binary draw :math:`x \\sim \\mathrm{Bernoulli}(\\sigma(\\ell))`, same shape."""
    return torch.bernoulli(torch.sigmoid(x_logits), generator=generator)


bernoulli = Likelihood("bernoulli", log_prob_bernoulli, _bernoulli_mean, _bernoulli_sample)


def _normal_draw(mean: torch.Tensor, logvar, generator=None) -> torch.Tensor:
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + torch.exp(0.5 * check_broadcastable("logvar", logvar, mean)) * eps


def _fixed_normal_mean(mean: torch.Tensor) -> torch.Tensor:
    """The decoder output is the mean itself."""
    return mean


def _fixed_normal_sample(mean: torch.Tensor, generator=None, *, logvar: float) -> torch.Tensor:
    return _normal_draw(mean, logvar, generator)


def _unpack(params) -> tuple:
    if not (isinstance(params, (tuple, list)) and len(params) == 2):
        raise ValueError("learned-variance normal: expected decoder output (mean, logvar), "
                         f"got {type(params).__name__}")
    return params


def _learned_normal_log_prob(x: torch.Tensor, params) -> torch.Tensor:
    mean, logvar = _unpack(params)
    return log_prob_normal(x, mean, logvar)


def _learned_normal_mean(params) -> torch.Tensor:
    return _unpack(params)[0]


def _learned_normal_sample(params, generator=None) -> torch.Tensor:
    mean, logvar = _unpack(params)
    return _normal_draw(mean, logvar, generator)


def normal(logvar: float | None = None) -> Likelihood:
    r"""Gaussian likelihood :math:`p(x \mid z) = \mathcal N(x; \mu, \sigma^2)`, Equation (log-prob-normal).

    Args:
        logvar: a float fixes :math:`\log\sigma^2` for every dimension and
            the decoder outputs the mean tensor (Equation (fixed-variance-log-lik):
            a scaled squared error plus a constant); ``None`` (default) means a
            learned variance and the decoder outputs a tuple ``(mean, logvar)``.

    Returns:
        A :class:`Likelihood` whose ``log_prob`` returns ``(B,)``, summed
        over event dimensions.
    """
    if logvar is None:
        return Likelihood("normal", _learned_normal_log_prob,
                          _learned_normal_mean, _learned_normal_sample)
    if isinstance(logvar, bool) or not isinstance(logvar, Real):
        raise ValueError(f"logvar: expected a float or None, got {type(logvar).__name__}")
    logvar = float(logvar)
    return Likelihood(f"normal(logvar={logvar})", partial(log_prob_normal, logvar=logvar),
                      _fixed_normal_mean, partial(_fixed_normal_sample, logvar=logvar))
