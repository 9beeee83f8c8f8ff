r"""Priors :math:`p(z)` over the latent space.

A prior exposes three methods, so the ELBO reads term by term and a learned
prior (a flow, a mixture) can replace this one without touching the VAE:

- ``log_prob(z) -> (B,)``: :math:`\log p(z)`, summed over latent dimensions;
- ``sample(n, generator=None) -> (n, D)``;
- ``kl(mu, logvar, z) -> (B,)``: :math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z))`
  in closed form (``z`` is ignored) where one exists; a prior without one
  exposes ``kl_mc(mu, logvar, z)`` instead, the single-sample Monte-Carlo
  estimate :math:`\log q(z \mid x) - \log p(z)` (see :class:`vaecore.flows.FlowPrior`
  and :func:`vaecore.elbo.kl_term`).

Two learned priors are mixtures of diagonal Gaussians, with no closed-form KL
(so they expose ``kl_mc``): :class:`MixturePrior`, whose weights, means and
variances are free parameters, and :class:`VampPrior` (Tomczak and Welling,
2018), whose components are the encoder's posteriors at learned pseudo-inputs,
:math:`p(z) = \frac1K \sum_k q(z \mid u_k)`, an approximation of the aggregate
posterior :math:`q(z) = \frac1N \sum_n q(z \mid x_n)`, the prior that
maximises the average ELBO for a fixed encoder and decoder.

Reduction rule: per-example quantities have shape ``(B,)``, summed over the
latent dimensions; nothing here averages over the batch.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from vaecore._checks import check_latent, check_positive_int, check_same_shape
from vaecore.kl import kl_normal_std_normal
from vaecore.likelihoods import log_prob_std_normal
from vaecore.posterior import Posterior

__all__ = ["StdNormalPrior", "log_prob_diag_mixture", "MixturePrior", "VampPrior",
           "MarginalSplit", "elbo_surgery"]


class StdNormalPrior(nn.Module):
    r"""The standard normal prior :math:`p(z) = \mathcal N(z; 0, I_D)`.

    It has no parameters and an empty ``state_dict``. A non-persistent
    buffer ``origin`` (zeros, ``(D,)``) follows ``.to()`` / ``.double()``, so
    samples come out on the prior's device and in its dtype.
    """

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.register_buffer("origin", torch.zeros(latent_dim), persistent=False)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\log p(z) = -\frac12 \sum_j (\log 2\pi + z_j^2)`.

        Args:
            z: float, shape ``(B, D)``.

        Returns:
            ``(B,)``: summed over the latent dimensions (maximised).
        """
        return log_prob_std_normal(check_latent(z, self.latent_dim))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Draw ``n`` samples :math:`z \sim \mathcal N(0, I_D)`.

        Returns:
            ``(n, D)``, in the prior's dtype and on its device.
        """
        check_positive_int("n", n)
        eps = torch.randn(n, self.latent_dim, generator=generator,
                          dtype=self.origin.dtype, device=self.origin.device)
        return self.origin + eps

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, z=None) -> torch.Tensor:
        r"""Closed-form :math:`\mathrm{KL}(\mathcal N(\mu, \operatorname{diag}\sigma^2) \,\|\, \mathcal N(0, I))`.

        .. math::
            \mathrm{KL} = \frac12 \sum_j \big(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\big)

        Equation (kl-std-normal).

        Args:
            mu, logvar: posterior parameters, each ``(B, D)``.
            z: the posterior sample; ignored (the KL is exact), accepted so
                every prior has the same ``kl(mu, logvar, z)`` signature.

        Returns:
            ``(B,)``: summed over the latent dimensions; :math:`\ge 0`.
        """
        check_latent(mu, self.latent_dim, "mu")
        check_same_shape(mu=mu, logvar=logvar)
        return kl_normal_std_normal(mu, logvar)


def log_prob_diag_mixture(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor,
                          log_weights: torch.Tensor) -> torch.Tensor:
    r"""Log-density of a mixture of :math:`K` diagonal Gaussians at each row of ``z``.

    .. math::
        \log p(z) = \operatorname{logsumexp}_k \Big(\log \pi_k
        + \log \mathcal N\big(z;\ m_k, \operatorname{diag} e^{\mathrm{logvar}_k}\big)\Big)

    Equation (mixture-prior). The squared distances are expanded,
    :math:`\sum_d (z_d - m_{kd})^2 / s_{kd}^2 = \sum_d z_d^2 / s_{kd}^2 - 2 \sum_d z_d m_{kd} /
    s_{kd}^2 + \sum_d m_{kd}^2 / s_{kd}^2`, so that the ``(B, K)`` table is two matrix
    products and no ``(B, K, D)`` tensor is formed (an evaluation with ``B = 50,000``
    samples and ``K = 500`` components stays at ``B K`` numbers). The expansion rounds
    worse than the direct difference when :math:`|z| / s` is large; in float32 the error
    stays near :math:`10^{-3}` nats for the posteriors of an MNIST VAE (tests).

    Args:
        z: ``(B, D)``.
        means, logvars: ``(K, D)`` each, the components.
        log_weights: ``(K,)``, :math:`\log \pi_k` (normalised: ``logsumexp`` 0).

    Returns:
        ``(B,)``: summed over the latent dimensions (maximised).
    """
    check_same_shape(means=means, logvars=logvars)
    check_latent(z, means.shape[1])
    if log_weights.shape != means.shape[:1]:
        raise ValueError(f"log_weights: expected shape ({means.shape[0]},), one per component, "
                         f"got {tuple(log_weights.shape)}")
    precision = torch.exp(-logvars)                                   # (K, D)
    quad = (z ** 2) @ precision.T - 2 * z @ (means * precision).T     # (B, K)
    const = (means ** 2 * precision + logvars).sum(1) + z.shape[1] * math.log(2 * math.pi)
    return torch.logsumexp(log_weights - 0.5 * (quad + const), dim=1)


def _sample_diag_mixture(n: int, means, logvars, log_weights, generator) -> torch.Tensor:
    """``n`` draws: a component by its weight, then a point from its Gaussian."""
    check_positive_int("n", n)
    probs = torch.softmax(log_weights.detach().double(), 0).cpu()
    k = torch.multinomial(probs, n, replacement=True, generator=generator).to(means.device)
    eps = torch.randn(n, means.shape[1], generator=generator, dtype=means.dtype,
                      device=means.device)
    return means[k] + torch.exp(0.5 * logvars[k]) * eps


class _Mixture:
    """What a mixture prior derives from its ``components()``: ``log_prob``, ``sample`` and the
    one-sample ``kl_mc``, as for a flow prior."""

    latent_dim: int

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\log p(z)`, ``(B,)`` for z ``(B, D)`` (gradients reach every parameter)."""
        return log_prob_diag_mixture(z, *self.components())

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` samples ``(n, D)``: a component by its weight, then a point of its Gaussian."""
        with torch.no_grad():
            return _sample_diag_mixture(n, *self.components(), generator)

    def kl_mc(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""Single-sample estimate :math:`\log q(z \mid x) - \log p(z)` of the KL, ``(B,)``.

        No closed form exists for a mixture prior; the estimate is unbiased
        and one draw may be negative (see :meth:`vaecore.flows.FlowPrior.kl_mc`).
        """
        check_latent(mu, self.latent_dim, "mu")
        check_latent(z, self.latent_dim, "z")
        check_same_shape(mu=mu, logvar=logvar, z=z)
        return Posterior(mu, logvar).log_prob(z) - self.log_prob(z)


class MixturePrior(_Mixture, nn.Module):
    r"""A learned mixture of ``n_components`` diagonal Gaussians, Equation (mixture-prior).

    Parameters: ``logits`` ``(K,)`` (the weights :math:`\pi = \operatorname{softmax}`),
    ``means`` and ``logvars`` ``(K, D)``. The means start as draws of
    :math:`\mathcal N(0, I)` (seeded by the caller's global generator, like any
    layer's weights), the variances at 1 and the weights equal, so the prior
    starts near the standard normal, spread out.
    """

    def __init__(self, latent_dim: int, n_components: int = 10):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.n_components = check_positive_int("n_components", n_components)
        self.logits = nn.Parameter(torch.zeros(n_components))
        self.means = nn.Parameter(torch.randn(n_components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(n_components, latent_dim))

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(means, logvars, log_weights)``: ``(K, D)``, ``(K, D)``, ``(K,)``."""
        return self.means, self.logvars, torch.log_softmax(self.logits, 0)


class VampPrior(_Mixture, nn.Module):
    r"""The VampPrior: :math:`p(z) = \frac1K \sum_k q(z \mid u_k)`, Equation (vampprior).

    The components are the encoder's posteriors at ``n_components`` learned
    pseudo-inputs :math:`u_k` (``pseudo_inputs``, shape ``(K, *in_shape)``,
    clamped to ``[0, 1]`` before the encoder sees them, as in Tomczak and
    Welling's code). They start at ``init_mean`` plus noise of sd ``init_std``
    (their MNIST values, 0.05 and 0.01), seeded by the caller's global
    generator. The encoder is shared with the VAE and is not registered as a
    submodule here (its parameters belong to the VAE, once), so this prior's
    ``state_dict`` holds only the pseudo-inputs.

    Args:
        encoder: ``encoder(x) -> (mu, logvar)``, each ``(B, D)``; has ``latent_dim``
            and ``in_shape``.
        n_components: :math:`K`.
    """

    def __init__(self, encoder: nn.Module, n_components: int = 500, *,
                 init_mean: float = 0.05, init_std: float = 0.01):
        super().__init__()
        for attribute in ("latent_dim", "in_shape"):
            if not hasattr(encoder, attribute):
                raise ValueError(f"encoder: expected an encoder with a {attribute} attribute "
                                 f"(e.g. vaecore.mlp.MLPEncoder), got {type(encoder).__name__}")
        self.latent_dim = check_positive_int("encoder.latent_dim", encoder.latent_dim)
        self.n_components = check_positive_int("n_components", n_components)
        self.__dict__["encoder"] = encoder  # shared, not a submodule: no second copy
        self.pseudo_inputs = nn.Parameter(
            init_mean + init_std * torch.randn(n_components, *encoder.in_shape))

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""``(means, logvars, log_weights)`` of :math:`q(z \mid u_k)`, weights :math:`1/K`."""
        weight = next(self.encoder.parameters())
        u = self.pseudo_inputs.clamp(0, 1).to(weight.dtype)
        means, logvars = self.encoder(u)
        log_weights = torch.full((self.n_components,), -math.log(self.n_components),
                                 dtype=means.dtype, device=means.device)
        return means, logvars, log_weights


class MarginalSplit(NamedTuple):
    """Per-draw ``(S,)`` estimates: ``mutual_information`` and ``marginal_kl``."""
    mutual_information: torch.Tensor
    marginal_kl: torch.Tensor


def elbo_surgery(mu: torch.Tensor, logvar: torch.Tensor, prior, samples: int = 2000, *,
                 index: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> MarginalSplit:
    r"""Split the average KL term into the mutual information and the marginal KL.

    With :math:`q(z) = \frac1N \sum_n q(z \mid x_n)` the aggregate posterior of a data
    set of :math:`N` examples (Hoffman and Johnson, 2016), Equation (kl-decomposition):

    .. math::
        \frac1N \sum_n \mathrm{KL}\big(q(z \mid x_n) \,\|\, p(z)\big)
        = \underbrace{\frac1N \sum_n \mathrm{KL}\big(q(z \mid x_n) \,\|\, q(z)\big)}_{I_q(n;\, z)}
        + \mathrm{KL}\big(q(z) \,\|\, p(z)\big)

    At draws :math:`z_i \sim q(z \mid x_{n_i})` with :math:`n_i` uniform, the terms are
    :math:`\log q(z_i \mid x_{n_i}) - \log q(z_i)` and :math:`\log q(z_i) - \log p(z_i)`;
    :math:`q(z_i)` is the exact mixture of all :math:`N` posteriors
    (:func:`log_prob_diag_mixture`, in float64), so their means are unbiased estimates of
    the two terms. The mutual information lies in :math:`[0, \log N]`. For a factorised
    prior, :func:`vaecore.total_correlation.kl_decomposition_dataset` splits the marginal
    KL further.

    Args:
        mu, logvar: ``(N, D)``, the posteriors of the whole data set.
        prior: anything with ``log_prob(z) -> (S,)``.
        samples: how many :math:`n_i` to draw (ignored when ``index`` is given).
        index: ``(S,)`` int64 indices of the examples to draw from, or ``None``.
        generator: for the indices and the draws.

    Returns:
        :class:`MarginalSplit`, each field ``(S,)``; their sum is
        :math:`\log q(z_i \mid x_{n_i}) - \log p(z_i)`.
    """
    check_same_shape(mu=mu, logvar=logvar)
    if mu.ndim != 2 or len(mu) < 1:
        raise ValueError(f"mu, logvar: expected (N, D) with N >= 1, got {tuple(mu.shape)}")
    n = len(mu)
    if index is None:
        index = torch.randint(n, (check_positive_int("samples", samples),),
                              generator=generator).to(mu.device)
    elif index.ndim != 1 or index.dtype != torch.int64 or len(index) == 0 \
            or int(index.min()) < 0 or int(index.max()) >= n:
        raise ValueError(f"index: expected a non-empty int64 tensor (S,) of indices into the "
                         f"{n} posteriors, got {tuple(index.shape)} {index.dtype}")
    own = Posterior(mu[index], logvar[index])
    with torch.no_grad():
        z = own.rsample(generator=generator)
        log_q_own = own.log_prob(z)
        log_qz = log_prob_diag_mixture(z.double(), mu.double(), logvar.double(),
                                       torch.full((n,), -math.log(n), dtype=torch.float64,
                                                  device=mu.device)).to(z.dtype)
        log_p = prior.log_prob(z)
    return MarginalSplit(log_q_own - log_qz, log_qz - log_p)
