"""Chapter 6 (``chapters/06_latent_space.ipynb``): what the latent space looks like.

The reference network, data and schedule of chapter 5
(:data:`vaecourse.chapters.ch05_first_vae.REFERENCE`: MLP 784-400-D,
Bernoulli decoder, dynamically binarized MNIST, Adam 1e-3, batch 128,
30 epochs) with only the latent size D changed:

- D = 1 and D = 2, small enough to decode a whole grid of codes and draw
  every test image's code;
- D = 50, more dimensions than the data needs, to see the ELBO switch the
  extra ones off (inactive units, partial posterior collapse).

:func:`kl_decomposition` is the chapter's estimator of the two terms of
Equation (kl-decomposition), the mutual information and KL(q(z) || p(z)),
for the aggregate posterior of a set of encoded images; chapters 7 and 11
use it too.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import torch

from ..protocol import mnist_recipe
from ..recipe import checkpoint_name
from .ch05_first_vae import REFERENCE, mlp_vae

__all__ = ["LATENT_SIZES", "latent_name", "RECIPES", "log_mixture", "KLTerms", "kl_decomposition"]

LATENT_SIZES = (1, 2, 20, 50)
_SUMMARY = ("MNIST (dynamically binarized; 55,000 training images, a random 5,000 held out, "
            "seed 0), MLP 784-400-{d}, Bernoulli decoder, negative ELBO, Adam 1e-3, batch 128, "
            "30 epochs")


def latent_name(d: int) -> str:
    """The checkpoint of the reference model with latent size ``d`` (20: the reference itself)."""
    return checkpoint_name("mnist", "mlp", "bernoulli", z=d, epochs=30)


assert latent_name(20) == REFERENCE

RECIPES = {
    latent_name(d): mnist_recipe(partial(mlp_vae, latent_dim=d), epochs=30,
                                 summary=_SUMMARY.format(d=d))
    for d in LATENT_SIZES if d != 20
}


def log_mixture(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                chunk: int = 1000) -> torch.Tensor:
    """``log q(z)`` of Equation (aggregate-posterior) at each row of ``z`` ``(M, D)``: ``(M,)``.

    ``q(z)`` is the mixture of the ``N`` diagonal Gaussians ``(mu, logvar)`` ``(N, D)``
    with equal weights; computed exactly, by a log-mean-exp over all ``N``.
    """
    precision = (-logvar).exp()                                            # 1/σ², (N, D)
    const = (mu ** 2 * precision + logvar + math.log(2 * math.pi)).sum(1)  # (N,)
    parts = []
    for zc in z.split(chunk):  # Σ_d (z_d − μ_d)²/σ_d² expanded into two matrix products
        quad = (zc ** 2) @ precision.T - 2 * zc @ (mu * precision).T + const
        parts.append(torch.logsumexp(-0.5 * quad, dim=1))
    return torch.cat(parts) - math.log(len(mu))


class KLTerms(NamedTuple):
    """The terms of Equation (kl-decomposition), nats: (mean, standard error) each."""
    mutual_information: tuple[float, float]
    kl_aggregate_prior: tuple[float, float]
    total: tuple[float, float]


def kl_decomposition(mu: torch.Tensor, logvar: torch.Tensor,
                     log_prior: Callable[[torch.Tensor], torch.Tensor],
                     generator: torch.Generator, n_draws: int | None = None) -> KLTerms:
    """I(n; z) and KL(q(z) || p(z)) for the aggregate posterior of ``N`` encoded images.

    One ``z ~ q(z | x_n)`` for each of ``n_draws`` images chosen at random (default:
    all ``N``); ``log q(z)`` exact over all ``N`` Gaussians (:func:`log_mixture`);
    ``log_prior`` maps ``(M, D)`` to ``(M,)``. Monte-Carlo means over the draws with
    their standard errors, in float64 (``log_prior`` gets ``z`` in the dtype of
    ``mu``). I(n; z) is at most ``log N``.
    """
    dtype = mu.dtype
    mu, logvar = mu.double(), logvar.double()
    n_draws = len(mu) if n_draws is None else n_draws
    pick = torch.randperm(len(mu), generator=generator)[:n_draws]
    std = (0.5 * logvar[pick]).exp()
    z = mu[pick] + std * torch.randn(mu[pick].shape, generator=generator, dtype=mu.dtype)
    log_q_given_x = torch.distributions.Normal(mu[pick], std).log_prob(z).sum(1)
    log_q = log_mixture(z, mu, logvar)
    log_p = log_prior(z.to(dtype)).double()

    def mean_se(v: torch.Tensor) -> tuple[float, float]:
        return v.mean().item(), v.std().item() / math.sqrt(len(v))

    return KLTerms(mean_se(log_q_given_x - log_q), mean_se(log_q - log_p),
                   mean_se(log_q_given_x - log_p))
