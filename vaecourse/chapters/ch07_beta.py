r"""Chapter 7 (``chapters/07_beta.ipynb``): β, rate and distortion; KL warm-up; noise.

Every model is the course's reference network (MLP 784-400-D, Bernoulli
decoder, dynamically binarized MNIST, Adam 1e-3, batch 128, 30 epochs; see
:mod:`vaecourse.chapters.ch05_first_vae`); only the objective or the data
change.

- ``mnist-mlp-bernoulli-z20-beta{0.1,0.5,2,10}-e30``: the β-weighted
  negative ELBO ``partial(negative_elbo, beta=β)``, Equation (beta-elbo).
  β = 1 is the reference model itself. The test metrics record the rate
  ``test_kl`` and minus the distortion ``test_log_likelihood`` (nats per
  image, summed over latent dimensions and pixels).
- ``mnist-mlp-bernoulli-warmup-z50-e30``: D = 50 with a linear KL warm-up,
  Equation (linear-warmup), over the first 10 epochs; its twin without
  warm-up is chapter 6's D = 50 model.
- ``mnist-mlp-bernoulli-noise-z20-e30``: D = 20, trained on images with white
  noise added before binarization (:func:`noisy_binarize`), tested on the
  clean test set.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch

from vaecore import data
from vaecore.elbo import negative_elbo

from ..protocol import NOISE_STD, mnist_recipe, noisy_binarize
from ..recipe import checkpoint_name
from .ch05_first_vae import mlp_vae

__all__ = ["BETAS", "WARMUP_EPOCHS", "NOISE_STD", "beta_name", "WARMUP", "NOISE",
           "linear_warmup", "WarmUpTerms", "WarmUpLoss", "noisy_binarize", "RECIPES"]

BETAS = (0.1, 0.5, 2.0, 10.0)  # the sweep, without β = 1 (the reference model)
WARMUP_EPOCHS = 10
_SETUP = "Adam 1e-3, batch 128, 30 epochs"
_DATA = "55,000 training images, a random 5,000 held out, seed 0"


def beta_name(beta: float) -> str:
    """The checkpoint name of the sweep's model for ``beta`` (1 → the reference model)."""
    return checkpoint_name("mnist", "mlp", "bernoulli", z=20, beta=beta, epochs=30)


WARMUP = checkpoint_name("mnist", "mlp", "bernoulli", "warmup", z=50, epochs=30)
NOISE = checkpoint_name("mnist", "mlp", "bernoulli", "noise", z=20, epochs=30)


def linear_warmup(epochs_done: int, warmup_epochs: int) -> float:
    r"""The KL weight of a linear warm-up for the epoch after ``epochs_done`` epochs.

    .. math::
        \beta(e) = \min\Big(1, \frac{e}{E_{\mathrm{w}}}\Big)

    Equation (linear-warmup): :math:`e` counts the epochs done before the
    current one (0 in the first), :math:`E_{\mathrm{w}}` is ``warmup_epochs``,
    the length of the warm-up. β is 0 in the first epoch, reaches 1 in epoch
    :math:`E_{\mathrm{w}} + 1` and stays there.
    """
    if warmup_epochs < 1 or epochs_done < 0:
        raise ValueError(f"expected epochs_done >= 0 and warmup_epochs >= 1, got "
                         f"{epochs_done} and {warmup_epochs}")
    return min(1.0, epochs_done / warmup_epochs)


class WarmUpTerms(NamedTuple):
    """The fields of ``negative_elbo`` plus the ``beta`` (scalar) the batch was trained with."""
    loss: torch.Tensor
    log_likelihood: torch.Tensor
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


_warmup_loss = WarmUpLoss(WARMUP_EPOCHS)

RECIPES = {
    **{beta_name(beta): mnist_recipe(
        mlp_vae, epochs=30, loss=partial(negative_elbo, beta=beta),
        summary=f"MNIST (dynamically binarized; {_DATA}), MLP 784-400-20, Bernoulli decoder, "
                f"β-weighted negative ELBO with β = {beta:g}, {_SETUP}")
       for beta in BETAS},
    WARMUP: mnist_recipe(
        partial(mlp_vae, latent_dim=50), epochs=30, loss=_warmup_loss, eval_loss=negative_elbo,
        callbacks=(lambda model: _warmup_loss.callback,),
        summary=f"MNIST (dynamically binarized; {_DATA}), MLP 784-400-50, Bernoulli decoder, "
                f"negative ELBO with β rising linearly from 0 to 1 over the first "
                f"{WARMUP_EPOCHS} epochs, {_SETUP}"),
    NOISE: mnist_recipe(
        mlp_vae, epochs=30, transform=partial(noisy_binarize, std=NOISE_STD),
        eval_loss=negative_elbo,
        summary=f"MNIST with white noise (std {NOISE_STD:g}) added before dynamic binarization "
                f"({_DATA}), MLP 784-400-20, Bernoulli decoder, negative ELBO, {_SETUP}; tested "
                f"on the clean binarized test set"),
}
