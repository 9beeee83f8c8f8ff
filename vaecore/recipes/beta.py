r"""Recipes of chapter 7 (β, rate and distortion): the β sweep, KL warm-up, noise augmentation.

Every model is the course's reference network (MLP 784-400-D, Bernoulli
decoder, dynamically binarized MNIST, Adam 1e-3, batch 128, 30 epochs; see
:mod:`vaecore.recipes.mnist_mlp`); only the objective or the data change.

- ``mnist-mlp-beta-{0.1,0.5,2,10}``: the β-weighted negative ELBO
  ``partial(negative_elbo, beta=β)``, Equation (beta-elbo). β = 1 is
  ``mnist-mlp-bernoulli`` itself. The test metrics record the rate
  ``test_kl`` and minus the distortion ``test_reconstruction`` (nats per
  image, summed over latent dimensions and pixels).
- ``mnist-mlp-latent50-warmup``: D = 50 with a linear KL warm-up,
  Equation (linear-warmup), over the first 10 epochs; its twin without
  warm-up is ``mnist-mlp-latent50`` (chapter 6).
- ``mnist-mlp-noise``: D = 20, trained on images with white noise added
  before binarization (:func:`noisy_binarize`), tested on the clean test set.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch

from .. import data
from ..elbo import negative_elbo
from ..train import fit
from ..zoo import Recipe
from ._mnist import evaluate, splits, test_images, vae_recipe
from .mnist_mlp import mlp_vae

__all__ = ["BETAS", "WARMUP_EPOCHS", "NOISE_STD", "beta_name", "linear_warmup",
           "WarmUpTerms", "WarmUpLoss", "noisy_binarize", "RECIPES"]

BETAS = (0.1, 0.5, 2.0, 10.0)  # the sweep of report 000 without β = 1 (the reference model)
WARMUP_EPOCHS = 10
NOISE_STD = 0.1  # standard deviation of the white noise, in grey levels (pixel range [0, 1])
_SETUP = "Adam 1e-3, batch 128, 30 epochs"


def beta_name(beta: float) -> str:
    """The checkpoint name of the sweep's model for ``beta`` (1 → the reference model)."""
    return "mnist-mlp-bernoulli" if beta == 1 else f"mnist-mlp-beta-{beta:g}"


def linear_warmup(epochs_done: int, warmup_epochs: int) -> float:
    r"""The KL weight of a linear warm-up for the epoch after ``epochs_done`` epochs.

    .. math::
        \beta(e) = \min\Big(1, \frac{e}{N}\Big)

    Equation (linear-warmup): :math:`e` counts the epochs done before the
    current one (0 in the first), :math:`N` is ``warmup_epochs``. β is 0 in
    the first epoch, reaches 1 in epoch :math:`N + 1` and stays there.
    """
    if warmup_epochs < 1 or epochs_done < 0:
        raise ValueError(f"expected epochs_done >= 0 and warmup_epochs >= 1, got "
                         f"{epochs_done} and {warmup_epochs}")
    return min(1.0, epochs_done / warmup_epochs)


class WarmUpTerms(NamedTuple):
    """The fields of ``negative_elbo`` plus the ``beta`` (scalar) the batch was trained with."""
    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    beta: torch.Tensor


class WarmUpLoss:
    r"""``negative_elbo`` whose β follows :func:`linear_warmup`, for ``fit``.

    ``loss(model, x)`` is the β-weighted negative ELBO, Equation (beta-elbo),
    with the current ``beta``; pass ``loss.callback`` to ``fit(callbacks=...)``
    and it sets β for the next epoch after each one. The model never sees
    the schedule: only this loss object holds β. ``start(epochs_done)`` sets
    β for a run that resumes after ``epochs_done`` epochs.
    """

    def __init__(self, warmup_epochs: int):
        self.warmup_epochs = warmup_epochs
        self.beta = linear_warmup(0, warmup_epochs)

    def __call__(self, model, x: torch.Tensor, generator=None) -> WarmUpTerms:
        terms = negative_elbo(model, x, beta=self.beta, generator=generator)
        return WarmUpTerms(*terms, beta=torch.tensor(self.beta))

    def start(self, epochs_done: int) -> None:
        """Set β for the epoch that follows ``epochs_done`` finished epochs."""
        self.beta = linear_warmup(epochs_done, self.warmup_epochs)

    def callback(self, epoch: int, history) -> None:
        """``fit`` callback: epoch ``epoch`` (counted from 1) is done; set β for the next."""
        self.start(epoch)


def _warmup_recipe(latent_dim: int, warmup_epochs: int) -> Recipe:
    loss = WarmUpLoss(warmup_epochs)
    base = vae_recipe(partial(mlp_vae, latent_dim=latent_dim), epochs=30, loss_fn=loss,
                      callbacks=(loss.callback,), summary="")

    def train(model, checkpoint=None, history=None):
        loss.start(len(history) if history else 0)  # a resumed run continues the schedule
        return base.train(model, checkpoint=checkpoint, history=history)

    return Recipe(build=base.build, train=train,
                  evaluate=lambda model: evaluate(model, test_images(), loss_fn=negative_elbo),
                  summary=f"MNIST (dynamically binarized), MLP 784-400-{latent_dim}, Bernoulli "
                          f"decoder, negative ELBO with β rising linearly from 0 to 1 over the "
                          f"first {warmup_epochs} epochs, {_SETUP}")


def noisy_binarize(x: torch.Tensor, generator=None, *, std: float = NOISE_STD) -> torch.Tensor:
    r"""White-noise augmentation, then dynamic binarization.

    .. math::
        \tilde x = \operatorname{clip}(x + \sigma \epsilon, 0, 1), \quad
        \epsilon \sim \mathcal N(0, I), \qquad x_{\text{bin}} \sim \mathrm{Bernoulli}(\tilde x)

    ``x``: grey levels in ``[0, 1]``, any shape; returns 0/1 of the same shape.
    """
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return data.binarize_dynamic((x + std * eps).clamp(0, 1), generator)


def _noise_recipe(std: float) -> Recipe:
    def train(model, checkpoint=None, history=None):
        x_train, x_val, _ = splits()
        remaining = 30 - (len(history) if history else 0)
        return fit(model, negative_elbo, x_train, val=x_val, epochs=max(remaining, 1),
                   seed=0, checkpoint=checkpoint, history=history,
                   transform=partial(noisy_binarize, std=std))

    return Recipe(build=mlp_vae, train=train,
                  evaluate=lambda model: evaluate(model, test_images(), loss_fn=negative_elbo),
                  summary=f"MNIST with white noise (std {std:g}) added before dynamic "
                          f"binarization, MLP 784-400-20, Bernoulli decoder, negative ELBO, "
                          f"{_SETUP}; tested on the clean binarized test set")


RECIPES = {
    **{beta_name(beta): vae_recipe(
        mlp_vae, epochs=30, loss_fn=partial(negative_elbo, beta=beta),
        summary=f"MNIST (dynamically binarized), MLP 784-400-20, Bernoulli decoder, "
                f"β-weighted negative ELBO with β = {beta:g}, {_SETUP}")
       for beta in BETAS},
    "mnist-mlp-latent50-warmup": _warmup_recipe(50, WARMUP_EPOCHS),
    "mnist-mlp-noise": _noise_recipe(NOISE_STD),
}
