"""Recipes of chapter 11 (evaluating VAEs honestly, and a flow prior).

Three models beside the course's MLP and conv VAEs, all on dynamically
binarized MNIST with a Bernoulli decoder:

- ``mnist-mlp-flow``: the course's MLP 784-400-20 with a RealNVP flow prior
  (:class:`vaecore.flows.FlowPrior`, 4 coupling layers) instead of
  :math:`\\mathcal N(0, I)`; same split, optimiser and 30 epochs as
  ``mnist-mlp-bernoulli``, so the prior is the only difference;
- ``mnist-mlp-iwae-k5``: the same MLP VAE with the standard prior trained
  with the IWAE objective, k = 5 (:func:`vaecore.elbo.iwae_loss`);
- ``mnist-mlp-fixed-binarization``: the course's MLP VAE trained on *one*
  fixed random binarization of the training images (the "statically
  binarized MNIST" of the literature), to measure what that protocol costs;
- ``mnist-mlp2-flow-iwae-k5``: the course's strongest attempt at the
  benchmark: a wider, deeper MLP (784-500-500-50), an 8-layer flow prior,
  the IWAE objective with k = 5, all 60,000 training images, the learning
  rate decayed linearly to 1/20 over 50 epochs.

Every recipe reports the test metrics of the plain negative ELBO; the
importance-sampled test NLL is computed by ``benchmarks/nll.py``.
"""
from __future__ import annotations

from functools import partial

import torch

from .. import data
from ..elbo import iwae_loss, negative_elbo
from ..flows import FlowPrior
from ..mlp import MLPDecoder, MLPEncoder
from ..train import fit, linear_decay
from ..vae import VAE
from ..zoo import Recipe
from ._mnist import _evaluate_test, splits, vae_recipe
from .mnist_mlp import mlp_vae

__all__ = ["flow_vae", "fixed_binarization", "RECIPES"]

BEST_EPOCHS = 50


def flow_vae(latent_dim: int = 20, hidden=(400,), flow_layers: int = 4, flow_hidden: int = 64,
             seed: int = 0) -> VAE:
    """A freshly initialised (seeded) MLP VAE with a RealNVP flow prior, for 1×28×28 images."""
    torch.manual_seed(seed)
    return VAE(MLPEncoder((1, 28, 28), latent_dim, hidden=hidden),
               MLPDecoder(latent_dim, (1, 28, 28), hidden=hidden),
               prior=FlowPrior(latent_dim, n_layers=flow_layers, hidden=flow_hidden))


def fixed_binarization(x: torch.Tensor, seed: int) -> torch.Tensor:
    """One Bernoulli draw of the grey levels ``x``, the same for every epoch (seeded)."""
    return data.binarize_dynamic(x, torch.Generator().manual_seed(seed))


def _train_fixed_binarization(model, checkpoint=None, history=None):
    x_train, x_val, _ = splits()
    x_train, x_val = fixed_binarization(x_train, 10), fixed_binarization(x_val, 11)
    remaining = 30 - (len(history) if history else 0)
    return fit(model, negative_elbo, x_train, val=x_val, epochs=max(remaining, 1), lr=1e-3,
               batch_size=128, seed=0, checkpoint=checkpoint, history=history)


RECIPES = {
    "mnist-mlp-flow": vae_recipe(
        flow_vae, epochs=30,
        summary="MNIST (dynamically binarized), MLP 784-400-20, Bernoulli decoder, RealNVP "
                "flow prior (4 coupling layers, hidden 64), negative ELBO (single-sample KL), "
                "Adam 1e-3, batch 128, 30 epochs"),
    "mnist-mlp-iwae-k5": vae_recipe(
        mlp_vae, epochs=30, loss_fn=partial(iwae_loss, k=5), eval_loss_fn=negative_elbo,
        summary="MNIST (dynamically binarized), MLP 784-400-20, Bernoulli decoder, IWAE "
                "objective k = 5, Adam 1e-3, batch 128, 30 epochs"),
    "mnist-mlp-fixed-binarization": Recipe(
        build=mlp_vae, train=_train_fixed_binarization,
        evaluate=lambda model: _evaluate_test(model, loss_fn=negative_elbo, binarize=True),
        summary="MNIST binarized once (one fixed Bernoulli draw of the training and validation "
                "images), MLP 784-400-20, Bernoulli decoder, negative ELBO, Adam 1e-3, batch "
                "128, 30 epochs"),
    "mnist-mlp2-flow-iwae-k5": vae_recipe(
        partial(flow_vae, latent_dim=50, hidden=(500, 500), flow_layers=8, flow_hidden=128),
        epochs=BEST_EPOCHS, loss_fn=partial(iwae_loss, k=5), eval_loss_fn=negative_elbo,
        all_training_images=True, lr_schedule=linear_decay(BEST_EPOCHS, final=0.05),
        summary="MNIST (dynamically binarized, all 60,000 training images), MLP 784-500-500-50, "
                "Bernoulli decoder, RealNVP flow prior (8 coupling layers, hidden 128), IWAE "
                "objective k = 5, Adam 1e-3 decayed linearly to 1/20, batch 128, 50 epochs"),
}
