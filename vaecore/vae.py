r"""The variational autoencoder: an encoder, a decoder, a likelihood and a prior.

The pieces are passed in, not built here:

- ``encoder(x) -> (mu, logvar)``, each ``(B, D)``, the parameters of
  :math:`q(z \mid x) = \mathcal N(\mu, \operatorname{diag} e^{\mathrm{logvar}})`;
  it has an attribute ``latent_dim``;
- ``decoder(z) -> params`` of :math:`p(x \mid z)`: logits, a mean, or a tuple
  ``(mean, logvar)``; it has attributes ``latent_dim`` and ``out_shape``;
- ``likelihood``: a :class:`vaecore.likelihoods.Likelihood` that reads those
  params (default: Bernoulli, the decoder returns ``x_logits``);
- ``prior``: ``log_prob`` / ``sample`` / ``kl`` (default
  :class:`vaecore.priors.StdNormalPrior`).

Reduction rule: per-example quantities have shape ``(B,)``, summed over
event dimensions (pixels, latent dimensions); the training objectives in
:mod:`vaecore.elbo` average over the batch.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from vaecore._checks import check_batch, check_dtype, check_positive_int
from vaecore.likelihoods import Likelihood, bernoulli
from vaecore.priors import StdNormalPrior
from vaecore.posterior import Posterior

__all__ = ["Posterior", "VAEOutput", "VAE"]


class VAEOutput(NamedTuple):
    """One pass x → q(z|x) → z → p(x|z): decoder params, the sample ``z`` ``(B, D)``, ``mu``, ``logvar``."""
    x_params: object
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


def _check_latent_sizes(encoder, decoder, prior) -> int:
    sizes = {"encoder": getattr(encoder, "latent_dim", None),
             "decoder": getattr(decoder, "latent_dim", None),
             "prior": getattr(prior, "latent_dim", None)}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        listed = ", ".join(f"{k}.latent_dim={v}" for k, v in sizes.items())
        raise ValueError(f"expected encoder, decoder and prior with one latent_dim, got {listed}")
    return check_positive_int("encoder.latent_dim", sizes["encoder"])


class VAE(nn.Module):
    r"""A VAE assembled from an encoder, a decoder, a likelihood and a prior.

    Raises ``ValueError`` if ``encoder.latent_dim``, ``decoder.latent_dim``
    and ``prior.latent_dim`` differ. The constructor only stores its parts.
    ``prior=None`` means :math:`\mathcal N(0, I)` of the encoder's size.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module,
                 likelihood: Likelihood = bernoulli, prior: nn.Module | None = None):
        super().__init__()
        if not isinstance(likelihood, Likelihood):
            raise ValueError("likelihood: expected a vaecore.likelihoods.Likelihood "
                             f"(e.g. bernoulli, normal(0.0)), got {type(likelihood).__name__}")
        if prior is None:
            prior = StdNormalPrior(getattr(encoder, "latent_dim", 1))
        _check_latent_sizes(encoder, decoder, prior)
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.likelihood = likelihood

    @property
    def latent_dim(self) -> int:
        """D, the size of z."""
        return self.encoder.latent_dim

    def encode(self, x: torch.Tensor) -> Posterior:
        """Return the posterior parameters ``Posterior(mu, logvar)``, each ``(B, D)``.

        ``ValueError`` if ``x`` is not a tensor (e.g. an ``(x, y)`` pair) or
        not in the dtype of the encoder's parameters.
        """
        check_batch("x", x, "; pass the images alone", allow_empty=True)
        weight = next(self.encoder.parameters(), None)
        check_dtype("x", x, None if weight is None else weight.dtype)
        return Posterior(*self.encoder(x))

    def decode(self, z: torch.Tensor):
        """Return the decoder's parameters of p(x|z) for z ``(B, D)`` (logits, mean, or (mean, logvar))."""
        return self.decoder(z)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\log p(x \mid z)`, ``(B,)``, summed over the pixels (maximised)."""
        return self.likelihood.log_prob(x, self.decode(z))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        r"""Encode, draw one :math:`z = \mu + \sigma \odot \epsilon` per example, decode.

        Returns:
            ``VAEOutput(x_params, z, mu, logvar)``; ``z``, ``mu``, ``logvar``
            are ``(B, D)``; ``x_params`` is what the decoder returns.
        """
        posterior = self.encode(x)
        z = posterior.rsample(generator=generator)
        return VAEOutput(self.decode(z), z, *posterior)

    def sample(self, n: int, generator: torch.Generator | None = None,
               mean: bool = True) -> torch.Tensor:
        r"""Draw :math:`z \sim p(z)` and return :math:`E[x \mid z]` (``mean=True``) or :math:`x \sim p(x \mid z)`.

        Runs under ``torch.no_grad`` and leaves the train/eval mode as it
        is: call ``model.eval()`` first when the nets have BatchNorm or
        dropout.

        Returns:
            ``(n, *x_shape)``; for the Bernoulli likelihood the means lie in ``[0, 1]``.
        """
        check_positive_int("n", n)
        with torch.no_grad():
            params = self.decode(self.prior.sample(n, generator=generator))
            if mean:
                return self.likelihood.mean(params)
            return self.likelihood.sample(params, generator)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`E[x \mid z = \mu(x)]`, the decoded posterior mean, same shape as ``x``.

        Deterministic (no sampling of z); runs under ``torch.no_grad`` and
        leaves the train/eval mode as it is (call ``model.eval()`` first).
        """
        with torch.no_grad():
            return self.likelihood.mean(self.decode(self.encode(x).mu))
