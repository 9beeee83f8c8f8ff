r"""Importance-sampling diagnostics for :math:`\log p(x)` estimates, from log-weights.

The estimator of :func:`vaecore.elbo.log_likelihood_is` averages the importance weights
:math:`w_i = p(x, z_i) / q(z_i \mid x)`, :math:`z_i \sim q(z \mid x)`. How far it can be
trusted depends on how evenly the weights are spread; these functions work on the
log-weights ``log_w`` of shape ``(k, B)`` (``k`` samples for each of ``B`` examples)
and never leave log space, since the log-weights of image models are hundreds of nats
below zero.

Reduction rule: one value per example, shape ``(B,)``; nothing here averages over the batch.
"""
from __future__ import annotations

import math

import torch

from vaecore._checks import check_tensor

__all__ = ["log_mean_exp", "effective_sample_size"]


def _check_log_weights(log_w) -> torch.Tensor:
    check_tensor("log_w", log_w, ndim=2)
    if log_w.shape[0] == 0:
        raise ValueError("log_w: expected at least one sample (shape (k, B) with k >= 1), "
                         f"got shape {tuple(log_w.shape)}")
    if torch.isnan(log_w).any():
        raise ValueError("log_w: found NaN log-weights; a NaN from the model would "
                         "silently spoil the estimate")
    return log_w


def log_mean_exp(log_w: torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\log \frac1k \sum_{i=1}^k e^{\log w_i}` over dim 0, computed stably.

    The importance-sampling estimate of :math:`\log p(x)`, Equation (log-likelihood-is),
    from its log-weights; ``logsumexp`` factors out the largest term, Equation (logsumexp).

    Args:
        log_w: float tensor ``(k, B)``, :math:`\log p(x, z_i) - \log q(z_i \mid x)`.

    Returns:
        ``(B,)`` (maximised).
    """
    return _log_mean_exp(_check_log_weights(log_w))


def _log_mean_exp(log_w: torch.Tensor) -> torch.Tensor:
    """:func:`log_mean_exp` without the checks (no host sync): for the bounds in training."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def effective_sample_size(log_w: torch.Tensor) -> torch.Tensor:
    r"""Kish's effective sample size of the importance weights, per example.

    .. math::
        \mathrm{ESS} = \frac{\left(\sum_i w_i\right)^2}{\sum_i w_i^2}
        = \exp\Big(2 \operatorname{logsumexp}_i \log w_i
        - \operatorname{logsumexp}_i 2 \log w_i\Big) \in [1, k]

    Equation (ess). ``k`` when all weights are equal, 1 when one weight
    carries everything; scale-free, so the unknown :math:`p(x)` cancels.

    Args:
        log_w: float tensor ``(k, B)`` of log importance weights.

    Returns:
        ``(B,)``: the ESS of each example's ``k`` weights.
    """
    log_w = _check_log_weights(log_w)
    log_w = log_w - log_w.max(dim=0).values  # keeps float32 precise for log-weights near -1000
    return torch.exp(2 * torch.logsumexp(log_w, dim=0) - torch.logsumexp(2 * log_w, dim=0))
