"""Chapter 6 (``chapters/06_latent_space.ipynb``): what the latent space looks like.

The reference network, data and schedule of chapter 5
(:data:`vaecourse.chapters.ch05_first_vae.REFERENCE`: MLP 784-400-D,
Bernoulli decoder, dynamically binarized MNIST, Adam 1e-3, batch 128,
30 epochs) with only the latent size D changed:

- D = 1 and D = 2, small enough to decode a whole grid of codes and draw
  every test image's code;
- D = 50, more dimensions than the data needs, to see the ELBO switch the
  extra ones off (inactive units, partial posterior collapse).
"""
from __future__ import annotations

from functools import partial

from ..protocol import mnist_recipe
from ..recipe import checkpoint_name
from .ch05_first_vae import REFERENCE, mlp_vae

__all__ = ["LATENT_SIZES", "latent_name", "RECIPES"]

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
