r"""Kullback-Leibler divergences, closed form and Monte Carlo.

Reduction rule: every function returns shape ``(B,)``, one number per
example, summed over the event dimensions (all dimensions after the first).
Nothing here averages over the batch. ``kl_*`` closed forms are :math:`\ge 0`;
``kl_mc`` is a Monte-Carlo estimate and can be negative for a finite sample.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vaecore._checks import all_finite, check_broadcastable, check_same_shape, check_tensor
from vaecore.likelihoods import _square_over_var

__all__ = ["kl_normal_std_normal", "kl_normal_normal", "kl_bernoulli",
           "entropy_bernoulli", "kl_mc"]


def _check_mu_logvar(mu_name: str, mu, logvar_name: str, logvar) -> None:
    check_tensor(mu_name, mu, min_dim=2)
    check_tensor(logvar_name, logvar, min_dim=2)
    check_same_shape(**{mu_name: mu, logvar_name: logvar})


def kl_normal_std_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""KL divergence from a diagonal Gaussian to the standard normal.

    .. math::
        \mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag}\sigma^2) \,\|\, \mathcal N(0, I)\big)
        = \frac12 \sum_j \big(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\big)

    Equation (kl-std-normal).

    Args:
        mu: posterior means, float, shape ``(B, D)`` (or ``(B, ...)``).
        logvar: :math:`\log\sigma^2`, same shape as ``mu``.

    Returns:
        ``(B,)``: the KL per example, summed over all non-batch dimensions;
        :math:`\ge 0`, and 0 exactly when ``mu = 0`` and ``logvar = 0``.
    """
    _check_mu_logvar("mu", mu, "logvar", logvar)
    return 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar).flatten(1).sum(1)


def kl_normal_normal(mu_q: torch.Tensor, logvar_q: torch.Tensor,
                     mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    r"""KL divergence between two diagonal Gaussians.

    .. math::
        \mathrm{KL}(q \,\|\, p) = \frac12 \sum_j \Big(\log\frac{\sigma_{p,j}^2}{\sigma_{q,j}^2}
        + \frac{\sigma_{q,j}^2 + (\mu_{q,j} - \mu_{p,j})^2}{\sigma_{p,j}^2} - 1\Big)

    Equation (kl-normal-normal).

    Args:
        mu_q, logvar_q: parameters of :math:`q`, float, shape ``(B, D)`` (or ``(B, ...)``).
        mu_p, logvar_p: parameters of :math:`p`, tensors broadcastable to
            ``mu_q.shape`` (e.g. ``(D,)`` for one prior shared by the batch),
            or floats.

    Returns:
        ``(B,)``: the KL per example, summed over all non-batch dimensions; :math:`\ge 0`.
    """
    _check_mu_logvar("mu_q", mu_q, "logvar_q", logvar_q)
    mu_p = check_broadcastable("mu_p", mu_p, mu_q)
    logvar_p = check_broadcastable("logvar_p", logvar_p, mu_q)
    var_ratio = torch.exp(logvar_q - logvar_p)  # sigma_q^2 / sigma_p^2, without overflow
    kl = 0.5 * (logvar_p - logvar_q + var_ratio + (mu_q - mu_p) ** 2 * torch.exp(-logvar_p) - 1)
    kl = kl.flatten(1).sum(1)
    if not all_finite(kl):  # rare: exp(-logvar_p) overflowed (0 * inf); redo in logs
        kl = 0.5 * (logvar_p - logvar_q + var_ratio + _square_over_var(mu_q - mu_p, logvar_p) - 1)
        kl = kl.flatten(1).sum(1)
    return kl


def kl_bernoulli(q_logits: torch.Tensor, p_logits) -> torch.Tensor:
    r"""KL divergence between factorised Bernoullis, computed from logits.

    .. math::
        \mathrm{KL}\big(\mathcal B(\rho_q) \,\|\, \mathcal B(\rho_p)\big) = \sum_i
        \rho_{q,i} \log\frac{\rho_{q,i}}{\rho_{p,i}} + (1 - \rho_{q,i}) \log\frac{1 - \rho_{q,i}}{1 - \rho_{p,i}}

    Equation (kl-bernoulli). With :math:`\rho = \sigma(\ell)` we use
    :math:`\log\rho = \log\sigma(\ell)` and :math:`\log(1-\rho) = \log\sigma(-\ell)`,
    so extreme logits stay finite (no log of a clamped probability).

    Args:
        q_logits: logits of :math:`q`, float, shape ``(B, ...)``.
        p_logits: logits of :math:`p`, a tensor broadcastable to ``q_logits``
            or a float (``0.0`` is :math:`\mathcal B(1/2)`).

    Returns:
        ``(B,)``: the KL per example, summed over all non-batch dimensions; :math:`\ge 0`.
    """
    check_tensor("q_logits", q_logits, min_dim=2)
    p_logits = check_broadcastable("p_logits", p_logits, q_logits)
    log_q1, log_q0 = F.logsigmoid(q_logits), F.logsigmoid(-q_logits)
    log_p1, log_p0 = F.logsigmoid(p_logits), F.logsigmoid(-p_logits)
    kl = torch.sigmoid(q_logits) * (log_q1 - log_p1) + torch.sigmoid(-q_logits) * (log_q0 - log_p0)
    kl = kl.flatten(1).sum(1)
    if not all_finite(kl):  # rare: an infinite logit (0 * inf above); use the limits
        kl = _kl_bernoulli_limits(q_logits, p_logits)
    return kl


def _kl_bernoulli_limits(q_logits: torch.Tensor, p_logits: torch.Tensor) -> torch.Tensor:
    r"""Equation (kl-bernoulli) where logits may be :math:`\pm\infty`, ``(B,)``.

    :math:`\rho_q \in \{0, 1\}` (``q`` infinite) leaves one term,
    :math:`-\log\rho_p` or :math:`-\log(1 - \rho_p)`; a finite ``q`` against an
    infinite ``p`` puts mass where ``p`` has none: :math:`+\infty`. Finite
    pairs give the terms of :func:`kl_bernoulli`; gradients stay finite.
    """
    q_inf = q_logits.isinf()
    p_inf = p_logits.isinf() & torch.isfinite(q_logits)
    q, p = torch.where(q_inf | p_inf, 0.0, q_logits), torch.where(q_inf | p_inf, 0.0, p_logits)
    kl = (torch.sigmoid(q) * (F.logsigmoid(q) - F.logsigmoid(p))
          + torch.sigmoid(-q) * (F.logsigmoid(-q) - F.logsigmoid(-p)))
    sure = -F.logsigmoid(torch.where(q_logits > 0, p_logits, -p_logits))  # q infinite
    kl = torch.where(q_inf, sure, torch.where(p_inf, math.inf, kl))
    return kl.flatten(1).sum(1)


def entropy_bernoulli(logits: torch.Tensor) -> torch.Tensor:
    r"""Entropy of factorised Bernoullis, in nats, from logits.

    .. math::
        H(\rho) = -\sum_i \big[\rho_i \log\rho_i + (1 - \rho_i) \log(1 - \rho_i)\big]

    Equation (entropy-bernoulli). This is the entropy of one distribution, not
    a cross-entropy. Against the uniform Bernoulli, per dimension :math:`i`,
    with :math:`H(\rho_i)` the :math:`i`-th term of the sum,

    .. math::
        \mathrm{KL}\big(\mathcal B(\rho_i) \,\|\, \mathcal B(\tfrac12)\big) = \log 2 - H(\rho_i)

    Equation (kl-bernoulli-uniform).

    Args:
        logits: :math:`\ell` with :math:`\rho = \sigma(\ell)`, float, shape ``(B, ...)``.

    Returns:
        ``(B,)``: the entropy per example, summed over all non-batch
        dimensions; between 0 and :math:`D \log 2`.
    """
    check_tensor("logits", logits, min_dim=2)
    h = -(torch.sigmoid(logits) * F.logsigmoid(logits)
          + torch.sigmoid(-logits) * F.logsigmoid(-logits))
    h = h.flatten(1).sum(1)
    if not all_finite(h):  # rare: an infinite logit (0 * log 0 above); its limit is 0
        h = _entropy_bernoulli_limits(logits)
    return h


def _entropy_bernoulli_limits(logits: torch.Tensor) -> torch.Tensor:
    r"""Equation (entropy-bernoulli) where logits may be :math:`\pm\infty`, ``(B,)``.

    An infinite logit is a sure outcome, entropy 0; gradients stay finite.
    """
    infinite = logits.isinf()
    safe = torch.where(infinite, 0.0, logits)  # keeps the gradients finite
    h = -(torch.sigmoid(safe) * F.logsigmoid(safe) + torch.sigmoid(-safe) * F.logsigmoid(-safe))
    return torch.where(infinite, 0.0, h).flatten(1).sum(1)


def kl_mc(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    r"""Monte-Carlo estimate of :math:`\mathrm{KL}(q \| p)` from samples of :math:`q`.

    .. math::
        \mathrm{KL}(q \,\|\, p) \approx \frac1S \sum_{s=1}^S
        \big[\log q(z^{(s)}) - \log p(z^{(s)})\big], \qquad z^{(s)} \sim q

    Equation (kl-mc). Unbiased, but a finite-sample estimate can be negative.

    Args:
        log_q: :math:`\log q(z^{(s)})`, float, shape ``(S, B)``: ``S`` samples
            per example, each already summed over event dimensions.
        log_p: :math:`\log p(z^{(s)})`, same shape.

    Returns:
        ``(B,)``: the mean over the ``S`` samples, per example.
    """
    check_tensor("log_q", log_q, ndim=2)
    check_tensor("log_p", log_p, ndim=2)
    check_same_shape(log_q=log_q, log_p=log_p)
    return (log_q - log_p).mean(0)

