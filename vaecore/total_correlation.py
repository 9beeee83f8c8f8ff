r"""The KL term split in three, total correlation by minibatch-weighted sampling, and β-TCVAE.

Chen, Li, Grosse and Duvenaud (2018), "Isolating sources of disentanglement
in VAEs", split the average KL term of the ELBO, with :math:`q(z) = \frac1N
\sum_n q(z \mid x_n)` the aggregate posterior of a data set of :math:`N`
examples and a factorised prior :math:`p(z) = \prod_d p(z_d)`:

.. math::
    \mathbb E_{p(n)}\,\mathrm{KL}\big(q(z \mid x_n) \,\|\, p(z)\big)
    = \underbrace{\mathrm{KL}\big(q(z, n) \,\|\, q(z)\,p(n)\big)}_{\text{index-code MI}}
    + \underbrace{\mathrm{KL}\Big(q(z) \,\Big\|\, \prod_d q(z_d)\Big)}_{\text{total correlation}}
    + \underbrace{\sum_d \mathrm{KL}\big(q(z_d) \,\|\, p(z_d)\big)}_{\text{dimension-wise KL}}

Per example, with :math:`z_i \sim q(z \mid x_i)`, the three terms are the
log-ratios :math:`\log q(z_i \mid x_i) - \log q(z_i)`, :math:`\log q(z_i) -
\sum_d \log q(z_{id})` and :math:`\sum_d \big(\log q(z_{id}) - \log p(z_{id})\big)`;
they add up to :math:`\log q(z_i \mid x_i) - \log p(z_i)`, the one-sample
estimate of the KL, whatever :math:`\log q(z_i)` is replaced by.

:math:`q(z)` is a sum over the whole data set. For a batch of :math:`M`
examples drawn uniformly from it, :math:`\frac1M \sum_j q(z \mid x_j)` is an
unbiased estimate of :math:`q(z)` at any :math:`z` chosen independently of
the batch. Minibatch-weighted sampling (MWS) uses it at the batch's own
samples:

.. math::
    \log \hat q(z_i) = \log \sum_{j=1}^M q(z_i \mid x_j) - \log M, \qquad
    \log \hat q(z_{id}) = \log \sum_{j=1}^M q(z_{id} \mid x_j) - \log M

Chen et al. write :math:`- \log(NM)` for :math:`-\log M`: that subtracts the
same :math:`\log N` from every log-density, so it adds the constant
:math:`(D - 1) \log N` to the total correlation (and :math:`\log N` to the
MI, :math:`-D \log N` to the dimension-wise KL). Constants change no gradient;
they are dropped here so that the estimate of the total correlation is near
its value (0 for independent dimensions). The MWS estimate is biased at
order :math:`1/M`: the example's own term weighs :math:`1/M` instead of
:math:`1/N` (an overestimate of :math:`q(z_i)` when posteriors are narrow),
and the log of an average is low on average (Jensen). To first order in
:math:`1/M` the two give :math:`+(\rho - 1)/M - (\rho - 1)/(2M)` for each
log-density, with :math:`\rho = \mathbb E\big[q(z_i \mid x_i) / q(z_i)\big]`
(:math:`\det C / \det S` for Gaussian posteriors of covariance :math:`S`
whose aggregate is Gaussian of covariance :math:`C`); when :math:`\rho` is
large the ratio's heavy tail makes the measured bias smaller than that.
With ``dataset_size=N`` the own term weighs :math:`1/N` and the other
:math:`M - 1` share :math:`(N - 1)/N`, which makes :math:`\hat q(z_i)`
unbiased for :math:`q(z_i)` (a stratified estimate; its log is still low by
Jensen's inequality, at order :math:`1/M`).

Reduction rule: per-example terms have shape ``(B,)``, summed over the
latent dimensions; only ``beta_tcvae_loss(...).loss`` averages over the batch.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import NamedTuple

import torch

from vaecore._checks import check_batch, check_same_shape, check_tensor
from vaecore.posterior import Posterior
from vaecore.priors import StdNormalPrior

__all__ = ["KLDecomposition", "TCVAETerms", "log_density_matrix", "log_aggregate_posterior",
           "kl_decomposition_mc", "kl_decomposition_dataset", "beta_tcvae_loss"]

_LOG_2PI = math.log(2 * math.pi)


class KLDecomposition(NamedTuple):
    """Per-example ``(B,)`` estimates: ``index_code_mi``, ``total_correlation``, ``dimwise_kl``."""
    index_code_mi: torch.Tensor
    total_correlation: torch.Tensor
    dimwise_kl: torch.Tensor


class TCVAETerms(NamedTuple):
    """``loss`` (scalar, minimised); ``log_likelihood``, ``kl``, the three terms: each ``(B,)``."""
    loss: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor
    index_code_mi: torch.Tensor
    total_correlation: torch.Tensor
    dimwise_kl: torch.Tensor


def log_density_matrix(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""Every sample under every posterior, per dimension: ``(S, N, D)`` (``(B, B, D)`` in a batch).

    .. math::
        L_{ijd} = \log \mathcal N\big(z_{id};\ \mu_{jd}, e^{\mathrm{logvar}_{jd}}\big)
        = -\tfrac12\Big(\log 2\pi + \mathrm{logvar}_{jd}
        + \frac{(z_{id} - \mu_{jd})^2}{e^{\mathrm{logvar}_{jd}}}\Big)

    Args:
        z: ``(S, D)`` samples; in a batch, ``z[i]`` drawn from the posterior of example ``i``.
        mu, logvar: ``(N, D)`` each, the posteriors.

    Returns:
        ``(S, N, D)``: row ``i`` is sample ``i``, column ``j`` posterior ``j``.
    """
    for name, t in (("z", z), ("mu", mu), ("logvar", logvar)):
        check_tensor(name, t, ndim=2)
    check_same_shape(mu=mu, logvar=logvar)
    if z.shape[1] != mu.shape[1]:
        raise ValueError(f"z and mu: expected the same latent size, got {tuple(z.shape)} and "
                         f"{tuple(mu.shape)}")
    diff = z[:, None, :] - mu[None, :, :]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (z, mu, logvar)):
        return -0.5 * (_LOG_2PI + logvar[None] + diff ** 2 * torch.exp(-logvar[None]))
    # Without gradients, the same operations in place in one (S, N, D) tensor instead of
    # four: the same values bit for bit, about four times faster over a whole data set.
    return diff.square_().mul_(torch.exp(-logvar[None])).add_(_LOG_2PI + logvar[None]).mul_(-0.5)


def _log_weights(batch: int, dataset_size: int | None, like: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` log weights of posterior ``j`` in the estimate of :math:`q(z_i)`."""
    if dataset_size is None:  # MWS: every member of the batch weighs 1/M
        return torch.full((batch, batch), -math.log(batch), dtype=like.dtype, device=like.device)
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, Integral) \
            or dataset_size < batch or batch < 2:
        raise ValueError(f"dataset_size: expected an integer >= the batch size {batch} >= 2, "
                         f"got {dataset_size!r}")
    n = int(dataset_size)
    # own term 1/N; the other M - 1 share (N - 1)/N
    other = math.log(n - 1) - math.log(n) - math.log(batch - 1)
    weights = torch.full((batch, batch), other, dtype=like.dtype, device=like.device)
    return weights.fill_diagonal_(-math.log(n))


def log_aggregate_posterior(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                            dataset_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Minibatch estimates of :math:`\log q(z_i)` and of each :math:`\log q(z_{id})`.

    .. math::
        \log \hat q(z_i) = \operatorname{logsumexp}_j \Big(\log w_{ij}
        + \sum_d L_{ijd}\Big), \qquad
        \log \hat q(z_{id}) = \operatorname{logsumexp}_j \big(\log w_{ij} + L_{ijd}\big)

    with :math:`L` from :func:`log_density_matrix`. MWS (``dataset_size=None``):
    :math:`w_{ij} = 1/M`. Stratified (``dataset_size=N``): :math:`w_{ii} = 1/N`,
    :math:`w_{ij} = (N - 1)/(N (M - 1))` for :math:`j \ne i`; with :math:`N = M`
    both are the exact log-density of the batch's mixture.

    Args:
        z, mu, logvar: ``(M, D)``; ``z[i]`` a draw from example ``i``'s posterior.
        dataset_size: ``None`` for MWS, or the data set's size :math:`N \ge M`.

    Returns:
        ``(log_qz, log_qz_dims)``: ``(M,)`` and ``(M, D)``.
    """
    check_same_shape(z=z, mu=mu, logvar=logvar)  # a batch: sample i from posterior i
    log_q = log_density_matrix(z, mu, logvar)
    log_w = _log_weights(len(z), dataset_size, log_q)
    log_qz = torch.logsumexp(log_w + log_q.sum(2), dim=1)
    log_qz_dims = torch.logsumexp(log_w[:, :, None] + log_q, dim=1)
    return log_qz, log_qz_dims


def kl_decomposition_mc(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                        log_prior: torch.Tensor,
                        dataset_size: int | None = None) -> KLDecomposition:
    r"""One-sample estimates of the index-code MI, the total correlation and the dimension-wise KL.

    .. math::
        \widehat{\mathrm{MI}}_i = \log q(z_i \mid x_i) - \log \hat q(z_i), \quad
        \widehat{\mathrm{TC}}_i = \log \hat q(z_i) - \sum_d \log \hat q(z_{id}), \quad
        \widehat{\mathrm{KL}}{}^{\mathrm{dim}}_i = \sum_d \log \hat q(z_{id}) - \log p(z_i)

    Their sum is :math:`\log q(z_i \mid x_i) - \log p(z_i)` exactly. Their
    batch means estimate the three terms of the split (module docstring);
    :func:`log_aggregate_posterior` gives :math:`\hat q` (MWS, or stratified with
    ``dataset_size``).

    Args:
        z, mu, logvar: ``(M, D)``, ``M >= 2``.
        log_prior: ``(M,)``, :math:`\log p(z_i) = \sum_d \log p(z_{id})` under a factorised prior.

    Returns:
        :class:`KLDecomposition`, each field ``(M,)``.
    """
    check_tensor("log_prior", log_prior, ndim=1)
    if len(z) < 2 or len(log_prior) != len(z):
        raise ValueError(f"expected a batch of at least 2 samples and one log_prior each, got "
                         f"z {tuple(z.shape)} and log_prior {tuple(log_prior.shape)}; with fit, "
                         f"choose a batch_size that leaves no last batch of one")
    log_qz, log_qz_dims = log_aggregate_posterior(z, mu, logvar, dataset_size)
    log_qz_given_x = Posterior(mu, logvar).log_prob(z)
    sum_dims = log_qz_dims.sum(1)
    return KLDecomposition(log_qz_given_x - log_qz, log_qz - sum_dims, sum_dims - log_prior)


def kl_decomposition_dataset(mu: torch.Tensor, logvar: torch.Tensor, samples: int = 1000, *,
                             index: torch.Tensor | None = None,
                             generator: torch.Generator | None = None,
                             chunk: int = 2048) -> KLDecomposition:
    r"""The three terms with the aggregate posterior of the whole data set, for evaluation.

    :math:`q(z) = \frac1N \sum_n q(z \mid x_n)` is a finite mixture, so at a
    draw :math:`z_i \sim q(z \mid x_{n_i})` its log-density and those of its
    marginals are computed exactly (a log-sum-exp over all :math:`N`
    posteriors, ``chunk`` at a time) instead of from a minibatch:

    .. math::
        \log q(z_i) = \operatorname{logsumexp}_n \log q(z_i \mid x_n) - \log N, \qquad
        \log q(z_{id}) = \operatorname{logsumexp}_n \log q(z_{id} \mid x_n) - \log N

    The means of the returned terms over the draws are then unbiased Monte
    Carlo estimates of the index-code MI, the total correlation and the
    dimension-wise KL of the data set (the split of the module docstring),
    under the standard normal prior; their sum per draw is
    :math:`\log q(z_i \mid x_{n_i}) - \log p(z_i)`. With ``index =
    arange(N)`` it equals :func:`kl_decomposition_mc` with ``dataset_size=N``
    on a batch that is the whole data set.

    Args:
        mu, logvar: ``(N, D)``, the posteriors of all :math:`N` examples.
        samples: how many examples :math:`n_i` to draw, uniformly with
            replacement (ignored when ``index`` is given).
        index: ``(S,)`` the examples to draw :math:`z_i` from, or ``None``.
        generator: for the examples and the draws.

    Returns:
        :class:`KLDecomposition`, each field ``(S,)``.
    """
    for name, t in (("mu", mu), ("logvar", logvar)):
        check_tensor(name, t, ndim=2)
    check_same_shape(mu=mu, logvar=logvar)
    n = len(mu)
    if index is None:
        if isinstance(samples, bool) or not isinstance(samples, Integral) or samples < 1:
            raise ValueError(f"samples: expected an integer >= 1, got {samples!r}")
        index = torch.randint(n, (int(samples),), generator=generator, device=mu.device)
    elif index.ndim != 1 or index.dtype != torch.int64 or len(index) == 0 \
            or int(index.min()) < 0 or int(index.max()) >= n:
        raise ValueError(f"index: expected a non-empty int64 tensor (S,) of indices into the "
                         f"{n} posteriors, got {tuple(index.shape)} {index.dtype}")
    own = Posterior(mu[index], logvar[index])
    z = own.rsample(generator=generator)
    parts_joint, parts_dims = [], []
    for start in range(0, n, chunk):
        log_q = log_density_matrix(z, mu[start:start + chunk], logvar[start:start + chunk])
        parts_joint.append(torch.logsumexp(log_q.sum(2), dim=1))
        parts_dims.append(torch.logsumexp(log_q, dim=1))
    log_qz = torch.logsumexp(torch.stack(parts_joint), 0) - math.log(n)
    log_qz_dims = torch.logsumexp(torch.stack(parts_dims), 0) - math.log(n)
    sum_dims = log_qz_dims.sum(1)
    log_prior = StdNormalPrior(mu.shape[1]).log_prob(z)
    return KLDecomposition(own.log_prob(z) - log_qz, log_qz - sum_dims, sum_dims - log_prior)


def beta_tcvae_loss(model, x: torch.Tensor, *, beta: float = 6.0, alpha: float = 1.0,
                    gamma: float = 1.0, dataset_size: int | None = None,
                    generator: torch.Generator | None = None) -> TCVAETerms:
    r"""The β-TCVAE objective (Chen et al., 2018), to minimise.

    .. math::
        \mathcal J = \frac1M \sum_{i=1}^M \Big[-\log p(x_i \mid z_i)
        + \alpha\,\widehat{\mathrm{MI}}_i + \beta\,\widehat{\mathrm{TC}}_i
        + \gamma\,\widehat{\mathrm{KL}}{}^{\mathrm{dim}}_i\Big]

    with one reparameterised :math:`z_i \sim q(z \mid x_i)` and the terms of
    :func:`kl_decomposition_mc` estimated on the batch. :math:`\alpha = \beta =
    \gamma = 1` is the negative ELBO with a one-sample KL; :math:`\alpha =
    \gamma = 1, \beta > 1` is β-TCVAE, which penalises only the total
    correlation. A ``fit`` loss: ``fit(model, partial(beta_tcvae_loss,
    beta=6.0), x)``; batches of a few hundred make the estimate's
    :math:`1/M` bias small.

    Args:
        model: a VAE with the standard normal prior (factorised, so the
            dimension-wise KL is one); ``x``: a batch ``(M, ...)``, ``M >= 2``.
        beta, alpha, gamma: weights :math:`\ge 0` of the TC, the MI and the
            dimension-wise KL.
        dataset_size: ``None`` for MWS, or :math:`N` for the stratified weights.

    Returns:
        :class:`TCVAETerms`: ``loss`` a scalar (batch mean); ``log_likelihood``
        :math:`\log p(x_i \mid z_i)`, ``kl`` (their sum,
        :math:`\log q(z_i \mid x_i) - \log p(z_i)`) and the three terms, each ``(M,)``.
    """
    for name, value in (("beta", beta), ("alpha", alpha), ("gamma", gamma)):
        if isinstance(value, bool) or not isinstance(value, Real) or not value >= 0:
            raise ValueError(f"{name}: expected a real number >= 0, got {value!r}")
    if not isinstance(model.prior, StdNormalPrior):
        raise ValueError(f"beta_tcvae_loss: expected the StdNormalPrior (factorised), got "
                         f"{type(model.prior).__name__}")
    check_batch("x", x, hint="; pass the images alone: beta_tcvae_loss(model, x)")
    posterior = Posterior(*model.encode(x))
    z = posterior.rsample(generator=generator)
    log_likelihood = model.log_likelihood(x, z)
    terms = kl_decomposition_mc(z, *posterior, model.prior.log_prob(z), dataset_size)
    kl = sum(terms)
    mi, tc, dimwise_kl = terms
    penalty = alpha * mi + beta * tc + gamma * dimwise_kl
    return TCVAETerms((penalty - log_likelihood).mean(), log_likelihood, kl, *terms)
