r"""The conditional VAE (Sohn, Lee and Yan, 2015), for completing images, and a deterministic baseline.

A conditional VAE models :math:`p(x \mid y)` through a code :math:`z`:

.. math::
    p(x \mid y) = \int p(x \mid y, z)\, p(z \mid y)\, dz

with a learned conditional prior :math:`p(z \mid y) = \mathcal N(\mu_p(y),
\operatorname{diag}\sigma_p^2(y))`, a recognition network :math:`q(z \mid x, y)`
and a decoder :math:`p(x \mid y, z)`. The conditional ELBO:

.. math::
    \log p(x \mid y) \ge \mathbb E_{q(z \mid x, y)}\big[\log p(x \mid y, z)\big]
    - \mathrm{KL}\big(q(z \mid x, y) \,\|\, p(z \mid y)\big)

Image completion (as in Pyro's CVAE tutorial): :math:`y` is the image with
some of its four quadrants hidden, the hidden pixels set to −1 (a value no
pixel takes, so "unknown" differs from "black"), and :math:`x` the hidden
pixels, modelled as Bernoulli variables. :class:`ConditionalVAE` splits a batch
of whole images itself (:meth:`ConditionalVAE.split`), so that ``fit`` trains it
on images alone and binarizes them with its ``transform``.

:class:`Completer` is the deterministic network that fills the same pixels:
:math:`y \mapsto` one Bernoulli probability per hidden pixel. It is a
conditional model too, :math:`p(x \mid y) = \prod_i \mathrm{Bernoulli}(x_i;
\pi_i(y))`, with an exact log-likelihood, so the two can be compared on
:math:`\log p(x \mid y)`: the CVAE's estimated by importance sampling
(:func:`conditional_log_likelihood_is`, a lower bound in expectation), the
completer's exact. The completer gives one completion per input; the CVAE one
per draw of :math:`z \sim p(z \mid y)`.

:class:`LabelCVAE` conditions on a class instead: :math:`y` is a label, the
prior :math:`p(z \mid y)` one learned diagonal Gaussian per class, and
:math:`x` the whole image (:func:`label_cvae_loss`, a ``fit`` loss on
``(images, labels)``).

Reduction rule: per-example terms ``(B,)`` are summed over the hidden pixels and
the latent dimensions; only the ``loss`` field averages over the batch.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import nn

from ._checks import check_positive_int, check_tensor
from .kl import kl_normal_normal
from .likelihoods import log_prob_bernoulli
from .mlp import _hidden_layers
from .posterior import Posterior

__all__ = ["HIDDEN_VALUE", "quadrant_mask", "CVAETerms", "ConditionalVAE", "cvae_loss",
           "conditional_log_likelihood_is", "Completer", "CompleterTerms", "completer_loss",
           "LabelCVAE", "label_cvae_loss"]

#: The value of the hidden pixels in the condition ``y``.
HIDDEN_VALUE = -1.0


def quadrant_mask(size: int, observed: Sequence[int]) -> torch.Tensor:
    """Boolean ``(size, size)``: True on the observed quadrants.

    Quadrants are numbered 0 (top left), 1 (top right), 2 (bottom left) and 3
    (bottom right); ``size`` must be even.
    """
    check_positive_int("size", size)
    if size % 2:
        raise ValueError(f"size: expected an even image side, got {size}")
    observed = sorted(set(observed))
    if not observed or not set(observed) <= {0, 1, 2, 3} or len(observed) == 4:
        raise ValueError(f"observed: expected one to three quadrants among 0, 1, 2, 3, got "
                         f"{observed}")
    half, mask = size // 2, torch.zeros(size, size, dtype=torch.bool)
    for q in observed:
        row, col = divmod(q, 2)
        mask[row * half:(row + 1) * half, col * half:(col + 1) * half] = True
    return mask


def _mlp(sizes: list[int]) -> nn.Sequential:
    """ReLU hidden layers, then a linear output layer: one flat Sequential."""
    return nn.Sequential(*_hidden_layers(sizes[:-1], 0.0, nn.ReLU),
                         nn.Linear(sizes[-2], sizes[-1]))


class _Quadrants(nn.Module):
    """Holds the observed mask and splits whole images into ``(x, y)``."""

    def __init__(self, size: int, observed: Sequence[int]):
        super().__init__()
        self.size = size
        self.register_buffer("observed", quadrant_mask(size, observed), persistent=False)
        self.x_dim = int((~self.observed).sum())
        self.y_dim = size * size

    def split(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of images ``(B, 1, size, size)``: the hidden pixels ``(B, x_dim)`` and the
        images with the hidden pixels set to ``HIDDEN_VALUE``, flattened ``(B, size²)``."""
        check_tensor("images", images, ndim=4)
        if tuple(images.shape[1:]) != (1, self.size, self.size):
            raise ValueError(f"images: expected (B, 1, {self.size}, {self.size}), got "
                             f"{tuple(images.shape)}")
        flat = images.flatten(1)
        keep = self.observed.flatten()
        y = torch.where(keep, flat, torch.full_like(flat, HIDDEN_VALUE))
        return flat[:, ~keep], y

    def fill(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 1, size, size)``: ``y``'s observed pixels with ``x`` in the hidden ones."""
        out = y.clone()
        out[:, ~self.observed.flatten()] = x
        return out.view(-1, 1, self.size, self.size)


class ConditionalVAE(_Quadrants):
    """CVAE for completing ``size × size`` images from the ``observed`` quadrants.

    Prior network :math:`y \\mapsto (\\mu_p, \\log\\sigma_p^2)`, recognition network
    :math:`(x, y) \\mapsto (\\mu_q, \\log\\sigma_q^2)`, decoder :math:`(z, y) \\mapsto`
    logits of the hidden pixels; each an MLP with ReLU hidden layers ``hidden``.
    """

    def __init__(self, size: int = 28, observed: Sequence[int] = (2,), latent_dim: int = 2,
                 hidden: Sequence[int] = (500, 500)):
        super().__init__(size, observed)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        hidden = [check_positive_int("hidden", h) for h in hidden]
        self.prior_net = _mlp([self.y_dim, *hidden, 2 * latent_dim])
        self.recognition_net = _mlp([self.x_dim + self.y_dim, *hidden, 2 * latent_dim])
        self.decoder = _mlp([latent_dim + self.y_dim, *hidden, self.x_dim])

    def prior(self, y: torch.Tensor) -> Posterior:
        """:math:`p(z \\mid y)` as ``Posterior(mu, logvar)``, each ``(B, latent_dim)``."""
        return Posterior(*self.prior_net(y).chunk(2, dim=-1))

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> Posterior:
        """:math:`q(z \\mid x, y)` as ``Posterior(mu, logvar)``."""
        return Posterior(*self.recognition_net(torch.cat([x, y], -1)).chunk(2, dim=-1))

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits of the hidden pixels ``(..., x_dim)`` for codes ``z`` ``(..., latent_dim)``."""
        return self.decoder(torch.cat([z, y.expand(*z.shape[:-1], y.shape[-1])], -1))

    @torch.no_grad()
    def complete(self, images: torch.Tensor, n: int = 1,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` completions of each image ``(n, B, 1, size, size)``: observed pixels kept, the
        hidden ones the decoder's means for :math:`z \\sim p(z \\mid y)`."""
        check_positive_int("n", n)
        _, y = self.split(images)
        z = self.prior(y).rsample((n,), generator=generator)
        x = torch.sigmoid(self.decode(z, y))
        return torch.stack([self.fill(y, xi) for xi in x])


class CVAETerms(NamedTuple):
    """``loss`` (scalar, minimised); ``log_likelihood`` and ``kl``, each ``(B,)``."""
    loss: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor


def cvae_loss(model: ConditionalVAE, images: torch.Tensor,
              generator: torch.Generator | None = None) -> CVAETerms:
    r"""Minus the conditional ELBO (module docstring), averaged over the batch; a ``fit`` loss.

    One reparameterised :math:`z \sim q(z \mid x, y)` per image; the KL between
    the two diagonal Gaussians in closed form (Equation (kl-normal-normal)).
    """
    x, y = model.split(images)
    q = model.encode(x, y)
    p = model.prior(y)
    z = q.rsample(generator=generator)
    log_likelihood = log_prob_bernoulli(x, model.decode(z, y))
    kl = kl_normal_normal(q.mu, q.logvar, p.mu, p.logvar)
    return CVAETerms((kl - log_likelihood).mean(), log_likelihood, kl)


@torch.no_grad()
def conditional_log_likelihood_is(model: ConditionalVAE, images: torch.Tensor, k: int,
                                  generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Importance-sampled :math:`\log p(x \mid y)` of each image's hidden pixels, ``(B,)``.

    .. math::
        \log \hat p(x \mid y) = \log \frac1k \sum_{i=1}^k
        \frac{p(x \mid y, z_i)\, p(z_i \mid y)}{q(z_i \mid x, y)},
        \qquad z_i \sim q(z \mid x, y)

    A lower bound on :math:`\log p(x \mid y)` in expectation, tighter as
    :math:`k` grows; :math:`k = 1` is the conditional ELBO with a sampled KL.
    """
    check_positive_int("k", k)
    x, y = model.split(images)
    q, p = model.encode(x, y), model.prior(y)
    z = q.rsample((k,), generator=generator)                            # (k, B, D)
    logits = model.decode(z, y)                                          # (k, B, x_dim)
    log_px = log_prob_bernoulli(x.expand(k, *x.shape).flatten(0, 1),
                                logits.flatten(0, 1)).view(k, len(x))
    log_w = log_px + p.log_prob(z) - q.log_prob(z)
    return torch.logsumexp(log_w, 0) - math.log(k)


class Completer(_Quadrants):
    """The deterministic baseline: an MLP from ``y`` to one logit per hidden pixel."""

    def __init__(self, size: int = 28, observed: Sequence[int] = (2,),
                 hidden: Sequence[int] = (500, 500)):
        super().__init__(size, observed)
        hidden = [check_positive_int("hidden", h) for h in hidden]
        self.net = _mlp([self.y_dim, *hidden, self.x_dim])

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)

    @torch.no_grad()
    def complete(self, images: torch.Tensor) -> torch.Tensor:
        """The one completion of each image ``(B, 1, size, size)``: the predicted means."""
        _, y = self.split(images)
        return self.fill(y, torch.sigmoid(self(y)))


class CompleterTerms(NamedTuple):
    """``loss`` (scalar) and ``log_likelihood`` :math:`\\log p(x \\mid y)` ``(B,)``, exact."""
    loss: torch.Tensor
    log_likelihood: torch.Tensor


def completer_loss(model: Completer, images: torch.Tensor,
                   generator: torch.Generator | None = None) -> CompleterTerms:
    """Minus the completer's exact Bernoulli log-likelihood of the hidden pixels (the binary
    cross-entropy summed over them), averaged over the batch; a ``fit`` loss (``generator``
    is unused: nothing is sampled)."""
    x, y = model.split(images)
    log_likelihood = log_prob_bernoulli(x, model(y))
    return CompleterTerms(-log_likelihood.mean(), log_likelihood)


class LabelCVAE(nn.Module):
    r"""CVAE for whole ``(1, size, size)`` images given their class.

    Prior :math:`p(z \mid y) = \mathcal N(\mu_y, \operatorname{diag}\sigma_y^2)`, one
    learned mean and log-variance per class (initialised to :math:`\mathcal N(0, I)`);
    recognition network :math:`(x, y) \mapsto (\mu_q, \log\sigma_q^2)` and decoder
    :math:`(z, y) \mapsto` pixel logits, MLPs with ReLU hidden layers ``hidden``; ``y``
    enters them one-hot.
    """

    def __init__(self, size: int = 28, n_classes: int = 10, latent_dim: int = 20,
                 hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.size = check_positive_int("size", size)
        self.n_classes = check_positive_int("n_classes", n_classes)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        hidden = [check_positive_int("hidden", h) for h in hidden]
        self.x_dim = size * size
        self.prior_table = nn.Parameter(torch.zeros(n_classes, 2 * latent_dim))
        self.recognition_net = _mlp([self.x_dim + n_classes, *hidden, 2 * latent_dim])
        self.decoder = _mlp([latent_dim + n_classes, *hidden, self.x_dim])

    def _onehot(self, y: torch.Tensor) -> torch.Tensor:
        if y.dtype.is_floating_point or y.dim() != 1:
            raise ValueError(f"y: expected integer labels of shape (B,), got {y.dtype} of "
                             f"shape {tuple(y.shape)}")
        if len(y) and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"y: expected labels in [0, {self.n_classes}), got "
                             f"{y.min().item()} to {y.max().item()}")
        return nn.functional.one_hot(y, self.n_classes).to(self.prior_table.dtype)

    def prior(self, y: torch.Tensor) -> Posterior:
        r""":math:`p(z \mid y)` as ``Posterior(mu, logvar)``, each ``(B, latent_dim)``, for
        integer labels ``y`` ``(B,)`` (a clear error for anything else)."""
        return Posterior(*(self._onehot(y) @ self.prior_table).chunk(2, dim=-1))

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> Posterior:
        r""":math:`q(z \mid x, y)` for images ``(B, 1, size, size)`` and labels ``(B,)``."""
        check_tensor("x", x, ndim=4)
        return Posterior(*self.recognition_net(
            torch.cat([x.flatten(1), self._onehot(y)], -1)).chunk(2, dim=-1))

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Pixel logits ``(..., size²)`` for codes ``z`` ``(..., latent_dim)`` and labels."""
        onehot = self._onehot(y)
        return self.decoder(torch.cat([z, onehot.expand(*z.shape[:-1], onehot.shape[-1])], -1))

    @torch.no_grad()
    def sample(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""One image per label, ``(B, 1, size, size)``: the decoder's means for
        :math:`z \sim p(z \mid y)`."""
        z = self.prior(y).rsample(generator=generator)
        return torch.sigmoid(self.decode(z, y)).view(-1, 1, self.size, self.size)


def label_cvae_loss(model: LabelCVAE, x: torch.Tensor, y: torch.Tensor,
                    generator: torch.Generator | None = None) -> CVAETerms:
    r"""Minus the conditional ELBO of images ``x`` given their labels ``y``, batch mean; a ``fit``
    loss on ``(images, labels)``: one :math:`z \sim q(z \mid x, y)`, the KL to
    :math:`p(z \mid y)` in closed form."""
    q, p = model.encode(x, y), model.prior(y)
    z = q.rsample(generator=generator)
    log_likelihood = log_prob_bernoulli(x.flatten(1), model.decode(z, y))
    kl = kl_normal_normal(q.mu, q.logvar, p.mu, p.logvar)
    return CVAETerms((kl - log_likelihood).mean(), log_likelihood, kl)

