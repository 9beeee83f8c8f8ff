r"""The semi-supervised VAE M2 (Kingma, Rezende, Mohamed and Welling, 2014).

Generative model: a class :math:`y \sim p(y)` (uniform over :math:`K` classes), a code
:math:`z \sim \mathcal N(0, I)` and :math:`x \sim p_\theta(x \mid y, z)`. Inference
model: a classifier :math:`q_\phi(y \mid x)` and an encoder
:math:`q_\phi(z \mid x, y) = \mathcal N(\mu, \operatorname{diag}\sigma^2)`.

For a labelled pair (paper, Eq. 6):

.. math::
    \log p(x, y) \ge \mathcal L(x, y) = \mathbb E_{q(z \mid x, y)}\bigl[\log p(x \mid y, z)\bigr]
        + \log p(y) - \mathrm{KL}\bigl(q(z \mid x, y) \,\|\, p(z)\bigr).

For an unlabelled image the class is a latent variable too (Eq. 7):

.. math::
    \log p(x) \ge \mathcal U(x) = \sum_y q(y \mid x)\, \mathcal L(x, y)
        + \mathcal H\bigl(q(y \mid x)\bigr),

a sum over all :math:`K` classes, which makes an unlabelled image cost about
:math:`K` labelled ones. Neither bound trains the classifier on the labels, so the
objective adds its log-likelihood on the labelled pairs with a weight (Eq. 9; the
paper's :math:`\alpha`, here ``classifier_weight`` so as not to collide with the
InfoVAE's :math:`\alpha`; the paper uses :math:`0.1 N`):

.. math::
    J = \sum_{\text{labelled}} -\mathcal L(x, y) + \sum_{\text{unlabelled}} -\mathcal U(x)
        + \text{classifier\_weight} \sum_{\text{labelled}} -\log q(y \mid x).

A model is anything with ``n_classes``, ``latent_dim``, ``classify(x) -> logits``
``(B, K)``, ``encode(x, y_onehot) -> (mu, logvar)`` and
``log_likelihood(x, z, y_onehot) -> (B,)``; :class:`M2` is the MLP version.

Reduction rule: the bounds are ``(B,)``; :func:`m2_loss` averages each sum over its
own batch (labelled and unlabelled), as the per-image objective.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ._checks import check_positive_int, check_tensor
from .kl import kl_normal_std_normal
from .likelihoods import log_prob_bernoulli

__all__ = ["M2", "labelled_bound", "unlabelled_bound", "M2Terms", "m2_loss", "labelled_pairs",
           "m2_fit_loss"]


def _onehot(y: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    if y.dtype != torch.long or y.dim() != 1:
        raise ValueError(f"labels must be a 1-d integer (long) tensor, got {y.dtype} "
                         f"{tuple(y.shape)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}], got "
                         f"[{int(y.min())}, {int(y.max())}]")
    return nn.functional.one_hot(y, n_classes).to(dtype)


def labelled_bound(model, x: torch.Tensor, y: torch.Tensor, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """:math:`\\mathcal L(x, y)` per pair, ``(B,)``: one reparameterised draw of z, the
    closed-form KL and :math:`\\log p(y) = -\\log K`."""
    check_tensor("x", x)
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels")
    onehot = _onehot(y, model.n_classes, x.dtype)
    mu, logvar = model.encode(x, onehot)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    z = mu + torch.exp(0.5 * logvar) * eps
    return (model.log_likelihood(x, z, onehot) - kl_normal_std_normal(mu, logvar)
            - math.log(model.n_classes))


def unlabelled_bound(model, x: torch.Tensor, *, generator: torch.Generator | None = None,
                     logits: torch.Tensor | None = None) -> torch.Tensor:
    """:math:`\\mathcal U(x)` per image, ``(B,)``: the labelled bound of every class,
    averaged under :math:`q(y \\mid x)`, plus the entropy of :math:`q(y \\mid x)`.

    ``logits`` (``(B, K)``) reuses a classifier output already computed."""
    check_tensor("x", x)
    k, b = model.n_classes, len(x)
    logits = model.classify(x) if logits is None else logits
    log_q = torch.log_softmax(logits, dim=1)
    every = torch.arange(k, device=x.device).repeat_interleave(b)        # (K * B,)
    bounds = labelled_bound(model, x.repeat(k, *([1] * (x.dim() - 1))), every,
                            generator=generator).view(k, b).T          # (B, K)
    q = log_q.exp()
    return (q * bounds).sum(1) - (q * log_q).sum(1)


class M2Terms(NamedTuple):
    """``loss`` (scalar, minimised) and its parts, each a batch mean: ``labelled``
    :math:`\\mathcal L`, ``unlabelled`` :math:`\\mathcal U`, ``classifier``
    :math:`\\log q(y \\mid x)` on the labelled pairs; ``accuracy`` on them."""
    loss: torch.Tensor
    labelled: torch.Tensor
    unlabelled: torch.Tensor
    classifier: torch.Tensor
    accuracy: torch.Tensor


def m2_loss(model, x_labelled: torch.Tensor, y: torch.Tensor, x_unlabelled: torch.Tensor,
            *, classifier_weight: float, generator: torch.Generator | None = None
            ) -> M2Terms:
    """The per-image M2 objective:
    ``-mean L(x_l, y) - mean U(x_u) - classifier_weight * mean log q(y | x_l)``.

    The labelled and unlabelled parts are averaged over their own batches, so their
    weight does not depend on the two batch sizes; ``classifier_weight`` is then per
    labelled image (the paper's :math:`\\alpha = 0.1 N` is for sums over the data set).
    """
    if not (isinstance(classifier_weight, (int, float)) and classifier_weight >= 0):
        raise ValueError(f"classifier_weight must be a number >= 0, got {classifier_weight!r}")
    labelled = labelled_bound(model, x_labelled, y, generator=generator).mean()
    unlabelled = unlabelled_bound(model, x_unlabelled, generator=generator).mean()
    logits = model.classify(x_labelled)
    classifier = -nn.functional.cross_entropy(logits, y)
    accuracy = (logits.argmax(1) == y).float().mean()
    loss = -labelled - unlabelled - classifier_weight * classifier
    return M2Terms(loss, labelled.detach(), unlabelled.detach(), classifier.detach(),
                   accuracy)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.Softplus()]
    return nn.Sequential(*layers)


class M2(nn.Module):
    """M2 with MLPs and a Bernoulli decoder on flat images ``(B, x_dim)`` in [0, 1].

    ``classify``: x → hidden → K logits; ``encode``: [x, y] → hidden → (mu, logvar);
    the decoder: [z, y] → hidden → x logits. Softplus activations, as in the paper.
    """

    def __init__(self, x_dim: int = 784, n_classes: int = 10, latent_dim: int = 50,
                 hidden: int = 500):
        super().__init__()
        self.x_dim = check_positive_int("x_dim", x_dim)
        self.n_classes = check_positive_int("n_classes", n_classes)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        check_positive_int("hidden", hidden)
        self.classifier = nn.Sequential(_mlp([x_dim, hidden]), nn.Linear(hidden, n_classes))
        self.encoder = _mlp([x_dim + n_classes, hidden])
        self.to_mu = nn.Linear(hidden, latent_dim)
        self.to_logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(_mlp([latent_dim + n_classes, hidden]),
                                     nn.Linear(hidden, x_dim))

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if x.shape[1] != self.x_dim:
            raise ValueError(f"expected images of {self.x_dim} values, got {x.shape[1]}")
        return x

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self._flat(x))

    def encode(self, x: torch.Tensor, y_onehot: torch.Tensor):
        h = self.encoder(torch.cat([self._flat(x), y_onehot], 1))
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor, y_onehot: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits ``(B, x_dim)``."""
        return self.decoder(torch.cat([z, y_onehot], 1))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor,
                       y_onehot: torch.Tensor) -> torch.Tensor:
        return log_prob_bernoulli(self._flat(x), self.decode(z, y_onehot))


def labelled_pairs(n: int, x_labelled: torch.Tensor, y: torch.Tensor, *,
                   generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The few labelled pairs repeated, in shuffled rounds, to ``n`` rows.

    Passed to ``fit`` beside the ``n`` unlabelled images, as
    ``fit(model, m2_fit_loss, (x_unlabelled, *labelled_pairs(len(x_unlabelled), x_l, y)))``,
    every batch then holds as many labelled pairs as unlabelled images (each labelled pair
    about ``n / len(y)`` times per epoch), and ``fit`` shuffles all three together.
    """
    check_positive_int("n", n)
    check_tensor("x_labelled", x_labelled)
    if len(x_labelled) != len(y) or len(y) == 0:
        raise ValueError(f"expected as many labels as labelled images (at least one), got "
                         f"{len(y)} labels for {len(x_labelled)} images")
    rounds = -(-n // len(y))
    order = torch.cat([torch.randperm(len(y), generator=generator) for _ in range(rounds)])[:n]
    return x_labelled[order], y[order]


def m2_fit_loss(model, x_unlabelled: torch.Tensor, x_labelled: torch.Tensor,
                y: torch.Tensor, *, classifier_weight: float,
                generator: torch.Generator | None = None) -> M2Terms:
    """:func:`m2_loss` with ``fit``'s argument order (the unlabelled images first, so that
    ``fit``'s ``transform`` binarizes them); bind ``classifier_weight`` with
    ``functools.partial``."""
    return m2_loss(model, x_labelled, y, x_unlabelled, classifier_weight=classifier_weight,
                   generator=generator)
