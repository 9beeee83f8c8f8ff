r"""A VAE with two stochastic layers and top-down inference (a two-layer ladder VAE).

The generative model is a chain, :math:`z_2 \to z_1 \to x`:

.. math::
    p(x, z_1, z_2) = p(x \mid z_1)\, p(z_1 \mid z_2)\, p(z_2)

with :math:`p(z_2)` a prior of :mod:`vaecore.priors` (standard normal by
default), :math:`p(z_1 \mid z_2) = \mathcal N(\mu_p(z_2), \operatorname{diag}
\sigma_p^2(z_2))` and a Bernoulli :math:`p(x \mid z_1)`. Inference runs the
other way in two passes. A bottom-up pass maps :math:`x` to deterministic
features :math:`(\hat\mu_1, \log \hat\sigma_1^2)` and to
:math:`q(z_2 \mid x) = \mathcal N(\mu_2, \sigma_2^2)`; a top-down pass draws
:math:`z_2`, computes the generative :math:`p(z_1 \mid z_2)` and combines it with
the bottom-up features into :math:`q(z_1 \mid x, z_2)`, in one of two ways
(``combine``):

- ``"residual"`` (the default), a correction of the conditional prior, as in the
  top-down inference of Kingma et al. (2016) and the residual normal of Vahdat and
  Kautz (2020), Equation (residual-posterior):
  :math:`q(z_1 \mid x, z_2) = \mathcal N\big(\mu_p + \hat\mu_1,\ \operatorname{diag}
  \sigma_p^2 \hat\sigma_1^2\big)`;
- ``"combined"``, the residual form with a correction computed from the bottom-up
  *and* the top-down features, as in the combiner of Vahdat and Kautz (2020),
  Equation (combined-correction):
  :math:`\hat\mu_1 = A h_1(x) + B h_d(z_2) + a` (and likewise
  :math:`\log\hat\sigma_1^2`), where :math:`h_1` is the last bottom-up hidden layer
  and :math:`h_d` the last top-down one. With ``"residual"`` the correction depends
  on :math:`x` only, so the KL of :math:`z_1`,
  :math:`\tfrac12\sum(\hat\sigma_1^2 + \hat\mu_1^2/\sigma_p^2 - 1 - \log\hat\sigma_1^2)`,
  involves :math:`z_2` only through :math:`\sigma_p`, and :math:`z_2` can go unused;
  the combined correction lets the posterior of :math:`z_1` move with :math:`z_2`;
- ``"precision"``, the ladder VAE's precision weighting (Sønderby et al., 2016),
  Equation (precision-weighting):
  :math:`\sigma_{q}^{-2} = \hat\sigma_1^{-2} + \sigma_p^{-2}`,
  :math:`\mu_{q} = \sigma_q^2 (\hat\mu_1 \hat\sigma_1^{-2} + \mu_p \sigma_p^{-2})`,
  the posterior of a Gaussian prior :math:`p(z_1 \mid z_2)` times a Gaussian
  "likelihood" centred on :math:`\hat\mu_1`. Its KL to :math:`p(z_1 \mid z_2)`
  vanishes as :math:`\hat\sigma_1 \to \infty`, where the gradient through
  :math:`\hat\mu_1` vanishes too: early in training (before the decoder uses
  :math:`z_1`) the bottom-up variance runs off and the layer learns slowly.
  The residual form reaches the prior at :math:`\hat\mu_1 = 0,\ \hat\sigma_1 = 1`,
  where gradients flow.

The ELBO then splits layer by layer, Equation (hierarchical-elbo):

.. math::
    \mathrm{ELBO}(x) = \mathbb E_q[\log p(x \mid z_1)]
    - \mathbb E_{q(z_2 \mid x)} \mathrm{KL}\big(q(z_1 \mid x, z_2) \,\|\, p(z_1 \mid z_2)\big)
    - \mathrm{KL}\big(q(z_2 \mid x) \,\|\, p(z_2)\big)

Both KLs are between diagonal Gaussians (the first at the sampled :math:`z_2`),
so each is in closed form; with a learned top prior the second is the
one-sample estimate of :func:`vaecore.elbo.kl_term`.

The model exposes ``log_weights(x, k)``, the :math:`k` log importance weights
:math:`\log p(x, z_1, z_2) - \log q(z_1, z_2 \mid x)` per example: the IWAE objective
(:func:`ladder_iwae_loss`) and the importance-sampled likelihood
(:func:`vaecore.elbo.log_likelihood_is`) are computed from them.

Reduction rule: per-example quantities have shape ``(B,)``, summed over the
pixels and latent dimensions; only ``ladder_loss(...).loss`` averages over the batch.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from vaecore._checks import check_batch, check_event_shape, check_positive_int
from vaecore.elbo import IWAETerms, kl_term
from vaecore.importance import _log_mean_exp
from vaecore.kl import kl_normal_normal
from vaecore.likelihoods import bernoulli, log_prob_normal
from vaecore.mlp import MLPDecoder, _hidden_layers
from vaecore.posterior import Posterior
from vaecore.priors import StdNormalPrior

__all__ = ["precision_weighted", "residual_posterior", "LadderPass", "LadderTerms", "LadderVAE",
           "ladder_loss", "ladder_iwae_bound", "ladder_iwae_loss"]


def precision_weighted(mu_hat: torch.Tensor, logvar_hat: torch.Tensor,
                       mu_p: torch.Tensor, logvar_p: torch.Tensor) -> Posterior:
    r"""Combine two diagonal Gaussians by their precisions, Equation (precision-weighting).

    Returns the normalised product :math:`\mathcal N(\hat\mu, \hat\sigma^2)\,
    \mathcal N(\mu_p, \sigma_p^2)` as a :class:`~vaecore.posterior.Posterior`:
    ``logvar = -logaddexp(-logvar_hat, -logvar_p)`` and ``mu = w mu_hat + (1 - w) mu_p``
    with :math:`w = \sigma_p^2 / (\hat\sigma^2 + \sigma_p^2)`, computed as a sigmoid of
    the log-variances (no division, no overflow). All four tensors have one shape.
    """
    weight = torch.sigmoid(logvar_p - logvar_hat)
    return Posterior(weight * mu_hat + (1 - weight) * mu_p,
                     -torch.logaddexp(-logvar_hat, -logvar_p))


def residual_posterior(mu_hat: torch.Tensor, logvar_hat: torch.Tensor,
                       mu_p: torch.Tensor, logvar_p: torch.Tensor) -> Posterior:
    r"""The conditional prior corrected by the bottom-up features, Equation (residual-posterior).

    Returns :math:`\mathcal N(\mu_p + \hat\mu,\ \sigma_p^2 \hat\sigma^2)`: ``mu = mu_p +
    mu_hat``, ``logvar = logvar_p + logvar_hat``. All four tensors have one shape.
    """
    return Posterior(mu_p + mu_hat, logvar_p + logvar_hat)


_COMBINE = {"residual": residual_posterior, "combined": residual_posterior,
            "precision": precision_weighted}


class LadderPass(NamedTuple):
    """One pass: the draws ``z1`` ``(..., B, D1)`` and ``z2`` ``(..., B, D2)``, the two posteriors
    and the conditional prior ``p1`` of z1 given z2 (``Posterior``-shaped ``(mu, logvar)``)."""
    z1: torch.Tensor
    z2: torch.Tensor
    q1: Posterior
    q2: Posterior
    p1: Posterior


class LadderTerms(NamedTuple):
    """``loss`` (scalar, minimised); ``log_likelihood``, ``kl`` (= ``kl_z1 + kl_z2``),
    ``kl_z1``, ``kl_z2``: each ``(B,)``."""
    loss: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor
    kl_z1: torch.Tensor
    kl_z2: torch.Tensor


class LadderVAE(nn.Module):
    r"""Two stochastic layers :math:`z_1` (``latent_dims[0]``) and :math:`z_2` (``latent_dims[1]``).

    The networks are MLPs with ``hidden = (h1, h2)``: bottom-up ``x → h1 →
    (mu_hat1, logvar_hat1)`` and ``h1 → h2 → (mu2, logvar2)``; top-down
    ``z2 → reversed(h2) → (mu_p1, logvar_p1)``; the decoder ``z1 → reversed(h1) →
    logits``. Burda et al.'s two-layer sizes are ``latent_dims=(100, 50)``,
    ``hidden=((200, 200), (100, 100))``. ``prior`` is :math:`p(z_2)`
    (default :math:`\mathcal N(0, I)`); ``combine`` is ``"residual"``, ``"combined"``
    (which adds ``mix_mu`` and ``mix_logvar``, ``h2[0] → D1`` without bias) or
    ``"precision"`` (module docstring).
    """

    def __init__(self, in_shape=(1, 28, 28), latent_dims=(100, 50),
                 hidden=((200, 200), (100, 100)), prior: nn.Module | None = None,
                 activation=nn.ReLU, combine: str = "residual"):
        super().__init__()
        if combine not in _COMBINE:
            raise ValueError(f"combine: expected one of {sorted(_COMBINE)}, got {combine!r}")
        self.combine = combine
        if len(latent_dims) != 2 or len(hidden) != 2 or not all(hidden):
            raise ValueError(f"expected two latent sizes and two non-empty hidden stacks, got "
                             f"latent_dims={latent_dims!r}, hidden={hidden!r}")
        self.in_shape = tuple(in_shape)
        d1, d2 = (check_positive_int(f"latent_dims[{i}]", d) for i, d in enumerate(latent_dims))
        self.latent_dims = (d1, d2)
        h1, h2 = (tuple(h) for h in hidden)
        self.up1 = nn.Sequential(nn.Flatten(), *_hidden_layers([math.prod(self.in_shape), *h1],
                                                               0.0, activation))
        self.up1_mu, self.up1_logvar = nn.Linear(h1[-1], d1), nn.Linear(h1[-1], d1)
        self.up2 = _hidden_layers([h1[-1], *h2], 0.0, activation)
        self.up2_mu, self.up2_logvar = nn.Linear(h2[-1], d2), nn.Linear(h2[-1], d2)
        self.down = _hidden_layers([d2, *reversed(h2)], 0.0, activation)
        self.down_mu, self.down_logvar = nn.Linear(h2[0], d1), nn.Linear(h2[0], d1)
        self.decoder = MLPDecoder(d1, self.in_shape, hidden=tuple(reversed(h1)),
                                  activation=activation)
        self.prior = StdNormalPrior(d2) if prior is None else prior
        if getattr(self.prior, "latent_dim", None) != d2:
            raise ValueError(f"prior: expected latent_dim {d2} (the top layer), got "
                             f"{getattr(self.prior, 'latent_dim', None)}")
        self.likelihood = bernoulli
        if combine == "combined":  # the top-down part of the correction (created last, so
            # that at a seed the other nets start as with the other two forms)
            self.mix_mu = nn.Linear(h2[0], d1, bias=False)
            self.mix_logvar = nn.Linear(h2[0], d1, bias=False)

    @property
    def latent_dim(self) -> int:
        """D1 + D2, the size of (z1, z2) together."""
        return sum(self.latent_dims)

    def upward(self, x: torch.Tensor) -> tuple[Posterior, Posterior]:
        r"""The bottom-up pass: ``(Posterior(mu_hat1, logvar_hat1), q(z2|x))``, ``(B, D1)``, ``(B, D2)``."""
        check_batch("x", x, "; pass the images alone", allow_empty=True)
        h1 = self.up1(check_event_shape("x", x, self.in_shape, self.up1_mu.weight.dtype))
        h2 = self.up2(h1)
        return (Posterior(self.up1_mu(h1), self.up1_logvar(h1)),
                Posterior(self.up2_mu(h2), self.up2_logvar(h2)))

    def conditional_prior(self, z2: torch.Tensor) -> Posterior:
        r""":math:`p(z_1 \mid z_2)` as ``(mu_p1, logvar_p1)`` for z2 ``(..., D2)``: ``(..., D1)`` each."""
        return self.top_down(z2)[0]

    def top_down(self, z2: torch.Tensor) -> tuple[Posterior, Posterior | None]:
        r"""The top-down pass for z2 ``(..., D2)``: :math:`p(z_1 \mid z_2)` and, with
        ``combine="combined"``, the top-down part of the correction (else ``None``)."""
        h = self.down(z2)
        p1 = Posterior(self.down_mu(h), self.down_logvar(h))
        if self.combine != "combined":
            return p1, None
        return p1, Posterior(self.mix_mu(h), self.mix_logvar(h))

    def infer(self, x: torch.Tensor, sample_shape=(),
              generator: torch.Generator | None = None) -> LadderPass:
        r"""Draw :math:`z_2 \sim q(z_2 \mid x)`, then :math:`z_1 \sim q(z_1 \mid x, z_2)` (reparameterised).

        ``sample_shape=(k,)`` gives ``k`` joint draws per example, ``(k, B, D)``.
        """
        up1, q2 = self.upward(x)
        z2 = q2.rsample(sample_shape, generator=generator)
        p1, mix = self.top_down(z2)
        q1 = self.posterior_z1(up1, p1, mix)
        return LadderPass(q1.rsample(generator=generator), z2, q1, q2, p1)

    def posterior_z1(self, up1: Posterior, p1: Posterior, mix: Posterior | None = None) -> Posterior:
        r""":math:`q(z_1 \mid x, z_2)` from the bottom-up ``up1`` ``(B, D1)``, :math:`p(z_1 \mid z_2)`
        ``(..., B, D1)`` and, with ``combine="combined"``, the top-down correction ``mix``
        (the second output of :meth:`top_down`), added to the bottom-up one."""
        mu_hat, logvar_hat = up1.mu.expand_as(p1.mu), up1.logvar.expand_as(p1.mu)
        if self.combine == "combined":
            if mix is None:
                raise ValueError("posterior_z1: combine='combined' needs the top-down correction "
                                 "`mix`, the second output of top_down(z2)")
            mu_hat, logvar_hat = mu_hat + mix.mu, logvar_hat + mix.logvar
        return _COMBINE[self.combine](mu_hat, logvar_hat, *p1)

    def decode(self, z1: torch.Tensor) -> torch.Tensor:
        """The logits of :math:`p(x \\mid z_1)`, ``(B, *in_shape)``."""
        return self.decoder(z1)

    def log_weights(self, x: torch.Tensor, k: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``(k, B)`` log importance weights :math:`\log p(x, z_1, z_2) - \log q(z_1, z_2 \mid x)`.

        .. math::
            \log w = \log p(x \mid z_1) + \log p(z_1 \mid z_2) + \log p(z_2)
            - \log q(z_2 \mid x) - \log q(z_1 \mid x, z_2)

        with ``k`` joint draws per example (reparameterised, so differentiable).
        """
        check_positive_int("k", k)
        s = self.infer(x, (k,), generator=generator)
        d1, d2 = self.latent_dims
        z1, z2 = s.z1.reshape(-1, d1), s.z2.reshape(-1, d2)
        x_rep = x.expand(k, *x.shape).reshape(-1, *x.shape[1:])
        log_p = (self.likelihood.log_prob(x_rep, self.decode(z1))
                 + log_prob_normal(z1, s.p1.mu.reshape(-1, d1), s.p1.logvar.reshape(-1, d1))
                 + self.prior.log_prob(z2)).view(k, -1)
        return log_p - s.q2.log_prob(s.z2) - s.q1.log_prob(s.z1)

    def terms(self, x: torch.Tensor, generator: torch.Generator | None = None):
        r"""One-sample ELBO terms ``(log p(x|z1), KL_1, KL_2)``, each ``(B,)``, Equation (hierarchical-elbo)."""
        s = self.infer(x, generator=generator)
        log_likelihood = self.likelihood.log_prob(x, self.decode(s.z1))
        kl_z1 = kl_normal_normal(s.q1.mu, s.q1.logvar, s.p1.mu, s.p1.logvar)
        kl_z2 = kl_term(self.prior, s.q2.mu, s.q2.logvar, s.z2)
        return log_likelihood, kl_z1, kl_z2

    def posterior_means(self, x: torch.Tensor, samples: int = 10,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Each layer's posterior mean: :math:`E_q[z_1 \mid x]` ``(B, D1)``, :math:`E_q[z_2 \mid x]` ``(B, D2)``.

        :math:`E_q[z_2 \mid x] = \mu_2(x)` exactly; :math:`E_q[z_1 \mid x] =
        E_{q(z_2 \mid x)}[\mu_q(x, z_2)]` is averaged over ``samples`` draws of
        :math:`z_2`. Their variances over a data set count each layer's active
        units (:func:`vaecore.latent.active_units`). Runs under ``torch.no_grad``.
        """
        check_positive_int("samples", samples)
        with torch.no_grad():
            up1, q2 = self.upward(x)
            q1 = self.posterior_z1(up1, *self.top_down(q2.rsample((samples,), generator=generator)))
            return q1.mu.mean(0), q2.mu

    def sample(self, n: int, generator: torch.Generator | None = None,
               mean: bool = True) -> torch.Tensor:
        r"""Ancestral samples: :math:`z_2 \sim p(z_2)`, :math:`z_1 \sim p(z_1 \mid z_2)`, then x.

        ``mean=True`` returns :math:`E[x \mid z_1]`; runs under ``torch.no_grad``.
        """
        with torch.no_grad():
            p1 = self.conditional_prior(self.prior.sample(n, generator=generator))
            params = self.decode(p1.rsample(generator=generator))
            return (self.likelihood.mean(params) if mean
                    else self.likelihood.sample(params, generator))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`E[x \mid z_1 = \mu_q]` with :math:`z_2 = \mu_2(x)`: the decoded posterior means."""
        with torch.no_grad():
            up1, q2 = self.upward(x)
            q1 = self.posterior_z1(up1, *self.top_down(q2.mu))
            return self.likelihood.mean(self.decode(q1.mu))


def ladder_loss(model: LadderVAE, x: torch.Tensor,
                generator: torch.Generator | None = None) -> LadderTerms:
    r"""Minus the two-layer ELBO, Equation (hierarchical-elbo), averaged over the batch.

    A ``fit`` loss function: ``fit(model, ladder_loss, x)``. One joint draw
    :math:`(z_1, z_2)` per example; the KL of each layer is reported apart
    (``kl_z1``, ``kl_z2``) and summed in ``kl``.
    """
    check_batch("x", x, hint="; pass the images alone: ladder_loss(model, x)")
    log_likelihood, kl_z1, kl_z2 = model.terms(x, generator=generator)
    kl = kl_z1 + kl_z2
    return LadderTerms(-(log_likelihood - kl).mean(), log_likelihood, kl, kl_z1, kl_z2)


def ladder_iwae_bound(model: LadderVAE, x: torch.Tensor, k: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The importance-weighted bound :math:`\mathcal L_k(x)` of a ladder VAE, ``(B,)`` (maximised).

    The log-mean-exp of :meth:`LadderVAE.log_weights` over ``k`` joint draws per example:
    :func:`vaecore.elbo.iwae_bound` with the two-layer posterior as proposal.
    """
    check_batch("x", x, hint="; pass the images alone: ladder_iwae_bound(model, x, k)")
    return _log_mean_exp(model.log_weights(x, k, generator=generator))


def ladder_iwae_loss(model: LadderVAE, x: torch.Tensor, k: int = 5,
                     generator: torch.Generator | None = None) -> IWAETerms:
    """The IWAE objective of a ladder VAE: ``IWAETerms(-bound.mean(), bound)``, a ``fit`` loss."""
    bound = ladder_iwae_bound(model, x, k, generator=generator)
    return IWAETerms(-bound.mean(), bound)
