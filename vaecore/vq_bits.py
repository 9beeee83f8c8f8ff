r"""Bits per dimension of a whole VQ model: the codes under their prior, then the image.

A VQ-VAE's encoder is deterministic: :math:`q(c \mid x)` puts all its mass on
the grid of nearest codes :math:`c(x)`. Its entropy is 0, so
:math:`\mathrm{KL}(q \,\|\, p) = -\log p(c(x))`, and the evidence lower bound is

.. math::
    \log p(x) \ge \mathbb E_{q(c \mid x)}[\log p(x \mid c)] - \mathrm{KL}(q \,\|\, p)
    = \log p(x \mid c(x)) + \log p(c(x)) .

Minus the bound is the length of a two-part code: first the codes, with
:math:`-\log_2 p(c(x))` bits under the prior, then the image given the codes,
with :math:`-\log_2 p(x \mid c(x))` bits. Per dimension of the image
(:math:`D_x`, e.g. 784 for MNIST, :math:`3 \cdot 32 \cdot 32` for CIFAR-10):

.. math::
    \mathrm{bpd}(x) = \frac{-\log p(c(x)) - \log p(x \mid c(x))}{D_x \ln 2}
    \;\ge\; \frac{-\log p(x)}{D_x \ln 2} .

Both terms must be log-probabilities of discrete outcomes for this to be a
code length: the codes are discrete by construction; the image needs a
discrete likelihood (Bernoulli on binary images, the discretized logistic on
8-bit levels), never a density. During VQ-VAE training the prior is uniform
over :math:`K` codes, so :math:`\mathrm{KL} = hw \log K` (an :math:`h \times w` grid) is a constant and
drops out of the loss; a learned prior (e.g.
:class:`vaecore.pixelcnn.PixelCNNCodePrior`) shortens the first part.

Reduction rule: ``(B,)``, one number per image; nothing here averages over the batch.
"""
from __future__ import annotations

import torch

from vaecore._checks import check_same_shape, check_tensor
from vaecore.likelihoods import Likelihood
from vaecore.units import bits_per_dim

__all__ = ["DISCRETE_LIKELIHOODS", "vq_bits_per_dim"]

#: The likelihoods whose log-probabilities are code lengths (x binary for the Bernoulli ones).
DISCRETE_LIKELIHOODS = ("bernoulli", "autoregressive_bernoulli", "discretized_logistic")


def vq_bits_per_dim(x: torch.Tensor, x_params, likelihood: Likelihood,
                    log_prob_codes: torch.Tensor) -> torch.Tensor:
    r"""Bits per dimension of ``x`` under a VQ model: prior NLL of the codes plus the image's.

    :math:`\big(-\log p(c(x)) - \log p(x \mid c(x))\big) / (D_x \ln 2)`, an
    upper bound on :math:`-\log_2 p(x) / D_x` (the module's derivation).

    Args:
        x: images ``(B, ...)``: binary for the Bernoulli likelihoods, levels
            :math:`k/255` for the discretized logistic.
        x_params: what the decoder returns for the quantised codes of ``x``.
        likelihood: one of :data:`DISCRETE_LIKELIHOODS` (``ValueError`` for a density).
        log_prob_codes: :math:`\log p(c(x))` in nats, ``(B,)``, e.g.
            ``prior.log_prob(codes)``.

    Returns:
        ``(B,)``: bits per dimension (minimised), in the dtype of the log-probabilities.
    """
    if not isinstance(likelihood, Likelihood) or likelihood.name not in DISCRETE_LIKELIHOODS:
        name = getattr(likelihood, "name", type(likelihood).__name__)
        raise ValueError(f"likelihood: expected a discrete likelihood, one of "
                         f"{', '.join(DISCRETE_LIKELIHOODS)}, got {name}; a density's log "
                         "is not a code length")
    check_tensor("x", x, min_dim=2)
    if likelihood.name.endswith("bernoulli") and ((x != 0) & (x != 1)).any():
        raise ValueError(f"x: expected binary images (0 or 1) for the {likelihood.name} "
                         "likelihood; binarize them, or use the discretized logistic for levels")
    check_tensor("log_prob_codes", log_prob_codes, ndim=1)
    log_prob_x = likelihood.log_prob(x, x_params)
    check_same_shape(log_prob_codes=log_prob_codes, log_prob_x=log_prob_x)
    # $\mathrm{bpd} = (-\log p(c) - \log p(x \mid c)) / (D_x \ln 2)$
    return bits_per_dim(-(log_prob_codes + log_prob_x), x[0].numel())
