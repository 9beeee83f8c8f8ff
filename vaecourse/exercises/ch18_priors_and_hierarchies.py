"""Checks for the exercises of chapter 18 (priors and hierarchies): a mixture's log-density,
the KL of the residual top-down posterior, and a prior fitted after training.

The implement check compares the student's mixture log-density with
``torch.distributions.MixtureSameFamily`` (an independent route) on random cases, one of them
far from every component (where the exponentials underflow), and names the usual slips; the
derive check compares the student's closed form with ``torch.distributions.kl_divergence``;
the experiment check measures the test ELBO of the shipped reference VAE with the student's
prior in place of N(0, I).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch.distributions import (Categorical, Independent, MixtureSameFamily, Normal,
                                 kl_divergence)

from vaecore.hierarchical import residual_posterior
from vaecore.kl import kl_normal_normal
from vaecore.priors import MixturePrior, log_prob_diag_mixture
from ._answers import measured
from ._check import CheckResult, known_mistakes, run_cases
from ._submission import exercise, rng

__all__ = ["check_mixture_log_density", "check_residual_kl", "check_fitted_prior",
           "training_posteriors", "FITTED_PRIOR_GAIN", "MAX_COMPONENTS", "N_TRAIN_POSTERIORS"]

#: The experiment passes when the student's prior raises the reference VAE's mean test ELBO by
#: at least this many nats over N(0, I) (10,000 test images, the protocol's draws of z).
#: Measured on the shipped reference VAE: a mixture of 10 Gaussians fitted by 300 Adam steps
#: to draws of the training posteriors gains 0.9 nats, of 50, 2.3, of 200, 3.1 (the solution).
FITTED_PRIOR_GAIN = 2.0
#: The most components the experiment's prior may have (each costs a pass over the test draws).
MAX_COMPONENTS = 1000
#: The training images whose posteriors the prior is fitted to: the first of the split.
N_TRAIN_POSTERIORS = 20_000


# Exercise: the log-density of a mixture (implement)
def _reference_mixture(z, means, logvars, log_weights):
    components = Independent(Normal(means, torch.exp(0.5 * logvars)), 1)
    return MixtureSameFamily(Categorical(logits=log_weights), components).log_prob(z)


def _mixture_cases(seed: int):
    g = rng(seed)
    cases = []
    for batch, k, dim, spread in ((7, 5, 3, 1.0), (4, 1, 2, 1.0), (6, 30, 20, 1.0),
                                  (3, 4, 2, 40.0)):  # the last: far from every component
        means = torch.randn(k, dim, generator=g, dtype=torch.float64)
        logvars = torch.randn(k, dim, generator=g, dtype=torch.float64) - 1
        log_weights = torch.log_softmax(torch.randn(k, generator=g, dtype=torch.float64), 0)
        z = spread * torch.randn(batch, dim, generator=g, dtype=torch.float64)
        cases.append((z, means, logvars, log_weights))
    return cases


def _naive(z, means, logvars, log_weights):
    """exp, weight, sum, log: -inf (or NaN) once every component underflows."""
    dens = Normal(means, torch.exp(0.5 * logvars)).log_prob(z[:, None, :]).sum(-1).exp()
    return torch.log((dens * log_weights.exp()).sum(1))


_MIXTURE_SLIPS = [
    ("weights", lambda z, m, v, w: torch.logsumexp(
        Normal(m, torch.exp(0.5 * v)).log_prob(z[:, None, :]).sum(-1), 1),
     "add each component's log-weight log π_k before the log-sum-exp."),
    ("std-as-var", lambda z, m, v, w: torch.logsumexp(
        w + Normal(m, torch.exp(v)).log_prob(z[:, None, :]).sum(-1), 1),
     "exp(logvar) is the variance; the standard deviation is exp(logvar / 2)."),
    ("max-not-sum", lambda z, m, v, w: (
        w + Normal(m, torch.exp(0.5 * v)).log_prob(z[:, None, :]).sum(-1)).max(1).values,
     "the mixture sums the weighted densities of all components (log-sum-exp), not the "
     "largest one."),
]


@exercise(log_prob_diag_mixture)
def check_mixture_log_density(log_mixture_density) -> CheckResult:
    """Check ``log_mixture_density(z, means, logvars, log_weights)`` → ``(B,)``: the
    log-density of the mixture of diagonal Gaussians at each row of ``z`` ``(B, D)``, with
    ``means`` and ``logvars`` ``(K, D)`` and normalised ``log_weights`` ``(K,)``; four float64
    cases, the last far from every component."""
    cases = _mixture_cases(1801)

    def explain(args, got, want):
        if not torch.isfinite(got).all() and torch.isfinite(_naive(*args)).sum() < len(got):
            return ("underflow", "far from every component each density underflows to 0 "
                    "and its log to -inf: stay in logs and use torch.logsumexp over the "
                    "components.")
        return known_mistakes(_MIXTURE_SLIPS, lambda a, b: torch.allclose(
            a.double(), b.double(), rtol=1e-6, atol=1e-6))(args, got, want)

    return run_cases("log_mixture_density", log_mixture_density, _reference_mixture, cases,
                     event_size=None, explain=explain, rtol=1e-9, atol=1e-9)


# Exercise: the KL of the residual posterior (derive)
def _reference_residual_kl(mu_hat, logvar_hat, logvar_p):
    """Through torch.distributions, at a prior mean that the answer must not depend on."""
    mu_p = torch.linspace(-2, 3, mu_hat.shape[-1], dtype=mu_hat.dtype).expand_as(mu_hat)
    q = residual_posterior(mu_hat, logvar_hat, mu_p, logvar_p)
    return kl_divergence(Normal(q.mu, torch.exp(0.5 * q.logvar)),
                         Normal(mu_p, torch.exp(0.5 * logvar_p))).sum(-1)


def _residual_cases(seed: int):
    g = rng(seed)
    return [tuple(torch.randn(b, d, generator=g, dtype=torch.float64) for _ in range(3))
            for b, d in ((5, 4), (3, 1), (8, 100))]


_RESIDUAL_SLIPS = [
    ("prior-scale", lambda m, lv, lp: 0.5 * (torch.exp(lv) + m ** 2 - 1 - lv).sum(-1),
     "the mean shift μ̂ is measured in units of the prior's standard deviation: μ̂² / σ_p²."),
    ("no-one", lambda m, lv, lp: 0.5 * (torch.exp(lv) + m ** 2 * torch.exp(-lp) - lv).sum(-1),
     "the closed form of two Gaussians' KL has a −1 per dimension."),
]


@exercise(kl_normal_normal, residual_posterior)
def check_residual_kl(residual_kl) -> CheckResult:
    """Check ``residual_kl(mu_hat, logvar_hat, logvar_p)`` → ``(B,)``: the closed-form
    KL(q(z₁ | x, z₂) ‖ p(z₁ | z₂)) of the residual posterior, summed over the dimensions,
    from the bottom-up ``mu_hat``, ``logvar_hat`` and the prior's ``logvar_p`` (each
    ``(B, D)``, float64)."""
    return run_cases("residual_kl", residual_kl, _reference_residual_kl,
                     _residual_cases(1802), event_size="auto", rtol=1e-9, atol=1e-9,
                     explain=known_mistakes(_RESIDUAL_SLIPS, lambda a, b: torch.allclose(
                         a.double(), b.double(), rtol=1e-6, atol=1e-6)))


# Exercise: a prior fitted after training (experiment)
@lru_cache(maxsize=1)
def _reference_and_posteriors():
    """The shipped reference VAE (seed 0) and the posteriors of the first
    :data:`N_TRAIN_POSTERIORS` training images, binarized once (seed 0)."""
    from vaecore import data
    from vaecore.latent import encode_dataset
    from vaecourse import zoo
    from vaecourse.chapters.ch05_first_vae import REFERENCE
    from vaecourse.protocol import mnist_split
    model = zoo.load(REFERENCE, train_if_missing=False)[0].eval()
    images = data.binarize_dynamic(mnist_split()[0][:N_TRAIN_POSTERIORS],
                                   torch.Generator().manual_seed(0))
    return model, encode_dataset(model, images)


def training_posteriors() -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu, logvar)`` of the reference VAE's posteriors of the experiment's training images
    (copies), each ``(N_TRAIN_POSTERIORS, 20)``."""
    posterior = _reference_and_posteriors()[1]
    return posterior.mu.clone(), posterior.logvar.clone()


def _test_elbo(model, prior) -> float:
    """The mean test -ELBO of ``model``'s encoder and decoder under ``prior`` (protocol draws)."""
    from vaecore.elbo import negative_elbo
    from vaecore.vae import VAE
    from vaecourse.protocol import evaluate_elbo, test_images
    swapped = VAE(model.encoder, model.decoder, model.likelihood, prior=prior)
    return evaluate_elbo(swapped, test_images(), negative_elbo)["test_loss"]


def _standard_normal_as_mixture(latent_dim: int) -> MixturePrior:
    """N(0, I) as a one-component mixture: the same one-sample KL at the same draws of z as
    the student's prior, so that the two ELBOs differ only by log p(z)."""
    prior = MixturePrior(latent_dim, 1)
    with torch.no_grad():
        prior.means.zero_()
    return prior.eval()


@exercise()
def check_fitted_prior(fitted_prior) -> CheckResult:
    """Check ``fitted_prior(mu, logvar)`` → a :class:`vaecore.priors.MixturePrior` over the
    reference VAE's 20 latents, fitted to the posteriors ``(mu, logvar)`` of
    :func:`training_posteriors`, the encoder and decoder left as they are. It passes when the
    reference VAE's mean test ELBO with this prior is at least :data:`FITTED_PRIOR_GAIN`
    nats higher than with N(0, I)."""
    name = "fitted_prior"
    g = rng(1803)
    probe = (torch.randn(50, 20, generator=g), torch.randn(50, 20, generator=g) - 2)
    prior, failed = _call_prior(name, fitted_prior, probe)
    if failed is not None and failed.hint == "todo":  # said before the model is loaded
        return failed
    model, _ = _reference_and_posteriors()
    prior, failed = _call_prior(name, fitted_prior, training_posteriors())
    if failed is not None:
        return failed
    if not isinstance(prior, MixturePrior) or prior.latent_dim != model.latent_dim:
        got = type(prior).__name__
        return measured(name, False, f"your function returned {got}", "type",
                        f"Return a vaecore.priors.MixturePrior({model.latent_dim}, K), "
                        "fitted: a normalised density, so that the ELBO stays a bound.")
    if prior.n_components > MAX_COMPONENTS:
        return measured(name, False, f"your prior has {prior.n_components:,} components",
                        "size", f"Use at most {MAX_COMPONENTS:,}: a mixture that keeps one "
                        "component per training image memorises them.")
    if not all(torch.isfinite(p).all() for p in prior.parameters()):
        return measured(name, False, "your prior's parameters hold NaN or infinite values",
                        "nan", "Check the fitting loop (a learning rate too large?).")
    prior = prior.to(torch.float32).eval()
    with torch.no_grad():
        gain = (_test_elbo(model, _standard_normal_as_mixture(model.latent_dim))
                - _test_elbo(model, prior))
    return measured(name, gain >= FITTED_PRIOR_GAIN,
                    f"with your prior the mean test ELBO is {gain:+.2f} nats from N(0, I)'s",
                    "gain", f"At least +{FITTED_PRIOR_GAIN:g} is needed: fit more components "
                    "(their means started at posterior means), or fit longer, maximising the "
                    "mean of prior.log_prob(z) over draws z of the training posteriors.")


def _call_prior(name, fitted_prior, posteriors):
    from ._answers import call
    return call(name, fitted_prior, *(t.clone() for t in posteriors))
