"""Recipes of chapter 6 (what the latent space looks like): the reference MLP with other latent sizes.

The same network, data and schedule as ``mnist-mlp-bernoulli`` (784-400-D,
Bernoulli decoder, dynamically binarized MNIST, Adam 1e-3, batch 128,
30 epochs), with only the latent size changed:

- D = 1 and D = 2, small enough to decode a whole grid of codes and draw
  every test image's code (report 000's strip and 2-D manifold);
- D = 50, more dimensions than the data needs, to see the ELBO switch the
  extra ones off (inactive units, partial posterior collapse).
"""
from __future__ import annotations

from functools import partial

from ._mnist import vae_recipe
from .mnist_mlp import mlp_vae

_SUMMARY = ("MNIST (dynamically binarized), MLP 784-400-{d}, Bernoulli decoder, "
            "negative ELBO, Adam 1e-3, batch 128, 30 epochs")

RECIPES = {
    f"mnist-mlp-latent{d}": vae_recipe(partial(mlp_vae, latent_dim=d), epochs=30,
                                       summary=_SUMMARY.format(d=d))
    for d in (1, 2, 50)
}
